# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""SinkReport: summary, JSON round trip, plots."""

from __future__ import annotations

import json
import os

import pytest
import torch
from sink_test_models import planted_sink_llada, text_ids, tiny_llama_ar

from optimum_sinkprune.analysis import SinkReport, build_sink_report, plot_report, summary_markdown

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def report() -> SinkReport:
    ids = text_ids(batch=2, seq=16)
    return build_sink_report(
        planted_sink_llada(), ids, ar_model=tiny_llama_ar(), steps=6, sample_interval=2, seed=3, protected="first",
        generation_prompt=ids[:, :4], generation_kwargs=dict(steps=4, gen_length=4, block_length=4),
        model_name="planted", ar_model_name="ar", progress=False,
    )


def _assert_trajectories_equal(a, b):
    for name in ("dominant", "topk", "token_kind", "sink_set_size", "tokens", "valid", "heads_present"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    for name in ("share", "mass"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=0)
    assert (a.steps, a.t, a.kind, a.is_diffusion, a.k_std, a.mask_token_id) == (
        b.steps, b.t, b.kind, b.is_diffusion, b.k_std, b.mask_token_id
    )


def test_summary_fields(report):
    s = report.statistics()
    assert s["model_name"] == "planted" and s["ar_model_name"] == "ar"
    for part in ("model", "ar_baseline", "generation"):
        d = s[part]
        for key in ("moving_head_fraction", "mean_position_variance", "median_position_variance", "token_kind_frequencies"):
            assert key in d
        assert sum(d["token_kind_frequencies"].values()) == pytest.approx(1.0)
    assert s["ar_baseline"]["moving_head_fraction"] == 0.0
    assert s["ar_baseline"]["mean_position_variance"] == 0.0
    assert s["model"]["token_kind_frequencies"]["mask"] > 0.5  # the planted sink sits on masks
    assert s["model"]["moving_head_fraction"] == report.trajectory.moving_head_fraction(3)
    table = summary_markdown(report)
    assert "heads whose sink moves > 3 positions" in table and "AR baseline: ar" in table


def test_json_round_trip(report, tmp_path):
    text = report.to_json()
    back = SinkReport.from_json(text)
    _assert_trajectories_equal(back.trajectory, report.trajectory)
    _assert_trajectories_equal(back.ar_trajectory, report.ar_trajectory)
    _assert_trajectories_equal(back.generation, report.generation)
    assert back.statistics() == report.statistics()
    assert back.settings == json.loads(json.dumps(report.settings))
    path = tmp_path / "report.json"
    report.to_json(path)
    assert SinkReport.from_json(str(path)).statistics() == report.statistics()
    assert json.loads(path.read_text())["summary"] == report.statistics()


def test_from_json_errors(report, tmp_path):
    data = json.loads(report.to_json())
    data["format_version"] = 99
    with pytest.raises(ValueError, match="format_version"):
        SinkReport.from_json(json.dumps(data))
    with pytest.raises(FileNotFoundError):
        SinkReport.from_json(str(tmp_path / "missing.json"))


def test_plots_write_pngs(report, tmp_path):
    pytest.importorskip("matplotlib")
    paths = plot_report(report, tmp_path / "plots")
    assert set(paths) == {"sink_heatmap", "variance_distribution", "mass_profiles"}
    for path in paths.values():
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert os.path.getsize(path) > 1000
    with pytest.raises(ValueError, match="sample=5"):
        plot_report(report, tmp_path / "bad", sample=5)


def test_report_without_baseline():
    r = build_sink_report(planted_sink_llada(), text_ids(batch=1, seq=8), steps=2, sample_interval=1, progress=False)
    s = r.statistics()
    assert s["ar_baseline"] is None and s["generation"] is None
    assert SinkReport.from_json(r.to_json()).ar_trajectory is None


def test_trajectory_settings_are_passed_on_with_the_trajectory_defaults_and_unknown_ones_refused():
    ids = text_ids(batch=1, seq=8)
    r = build_sink_report(planted_sink_llada(), ids, steps=4, sample_interval=2, eps=0.01, seed=5, top_k=2,
                          progress=False)
    assert {k: r.settings[k] for k in ("steps", "sample_interval", "eps", "seed", "top_k", "k_std")} == dict(
        steps=4, sample_interval=2, eps=0.01, seed=5, top_k=2, k_std=2.0)  # k_std: forward_process_trajectory's
    noise = r.trajectory.extra["noise"]
    assert r.trajectory.steps == [2, 4] and (noise["seed"], noise["noise_eps"]) == (5, 0.01)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['stepz'\].*'sample_interval'"):
        build_sink_report(planted_sink_llada(), ids, stepz=4, progress=False)
