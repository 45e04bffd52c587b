# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
import pytest
import torch

from optimum_sinkprune.evaluation import measure_speed
from optimum_sinkprune.evaluation import speed as speed_module


def test_repeats_are_interleaved_and_reported(monkeypatch, tiny):
    a, b = tiny.build_model(0), tiny.build_model(1)
    calls = []
    import optimum_sinkprune.diffusion as diffusion

    real = diffusion.generate

    def recording(model, prompt, **kwargs):
        calls.append("a" if model is a else "b")
        return real(model, prompt, **kwargs)

    monkeypatch.setattr(diffusion, "generate", recording)
    prompt = torch.tensor([[2, 40, 41, 42]])
    out = measure_speed({"a": a, "b": b}, prompt, steps=4, gen_length=8, repeats=3, warmup=1, max_repeats=3)
    assert calls == ["a", "b", "b", "a"] * 2  # interleaved, who goes first alternating
    for r in out.values():
        assert r.steps == 4 and r.repeats == 3 and len(r.latency_ms_per_step_all) == 3
        assert r.latency_ms_per_step == min(r.latency_ms_per_step_all)
        assert r.tokens_per_second == pytest.approx(8 / (r.latency_ms_per_step * 4 / 1000))
        assert r.memory_kind in ("rss", "rss_process_peak") and r.peak_memory_bytes > 0
        assert r.threads == torch.get_num_threads()


def test_peak_rss_reads_the_process(monkeypatch):
    assert speed_module._peak_rss_bytes() > 1_000_000
    with pytest.raises(ValueError, match="repeats"):
        measure_speed({"x": torch.nn.Linear(1, 1)}, torch.zeros(1, 1, dtype=torch.long), steps=1, gen_length=1,
                      repeats=0)  # fmt: skip
