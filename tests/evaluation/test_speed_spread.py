# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Speed runs repeat while timings disagree and flag a figure that stays noisy (a fake clock, no real timing)."""

from __future__ import annotations

import types

import torch
from torch import nn

import optimum_sinkprune.diffusion as diffusion
from optimum_sinkprune.evaluation import speed


def _fake(monkeypatch, durations):
    """`durations[name]`: a function of the run index giving the seconds one sampler run of that model takes."""
    clock = {"now": 0.0}
    runs = {}

    def generate(model, prompt_ids, **kwargs):
        i = runs.get(model.tag, 0)
        runs[model.tag] = i + 1
        clock["now"] += durations[model.tag](i)
        return types.SimpleNamespace(steps_taken=4)

    monkeypatch.setattr(diffusion, "generate", generate)
    monkeypatch.setattr(speed.time, "perf_counter", lambda: clock["now"])
    return runs


def _model(tag):
    model = nn.Linear(1, 1)
    model.tag = tag
    return model


def test_steady_timings_stop_at_the_asked_repeats(monkeypatch):
    runs = _fake(monkeypatch, {"a": lambda i: 1.0, "b": lambda i: 0.5})
    out = speed.measure_speed({"a": _model("a"), "b": _model("b")}, torch.zeros(1, 2, dtype=torch.long), steps=4,
                              gen_length=4, repeats=3, warmup=1)
    assert runs == {"a": 4, "b": 4}
    assert out["b"].repeats == 3 and not out["b"].noisy and out["b"].spread == 0.0
    assert out["a"].latency_ms_per_step == 250.0


def test_noisy_timings_repeat_then_get_flagged(monkeypatch, caplog):
    _fake(monkeypatch, {"a": lambda i: 1.0, "b": lambda i: 0.5 if i % 2 else 1.5})
    out = speed.measure_speed({"a": _model("a"), "b": _model("b")}, torch.zeros(1, 2, dtype=torch.long), steps=4,
                              gen_length=4, repeats=3, warmup=0, max_spread=0.1)
    assert out["b"].repeats == 9 and out["a"].repeats == 9  # 3 x repeats, every model alike
    assert out["b"].noisy and out["b"].spread > 0.1 and not out["a"].noisy
    assert any("noisy" in r.getMessage() for r in caplog.records)


def test_spread_is_median_over_fastest():
    assert speed._spread([1.0]) == 0.0
    assert abs(speed._spread([1.0, 1.2, 2.0]) - 0.2) < 1e-12
