# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The main job (`run_demo` / `sinkprune demo`) end to end on a tiny LLaDA in --quick mode."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from optimum_sinkprune.commands.cli import main
from optimum_sinkprune.commands.demo import DemoSettings, run_demo

pytestmark = pytest.mark.slow  # the whole pipeline, end to end

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def tiny():
    spec = importlib.util.spec_from_file_location("sinkprune_tests_tiny_dlm", DATA / "tiny_dlm.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo(tmp_path_factory, tiny):
    root = tmp_path_factory.mktemp("demo")
    model = tiny.save_model(root / "tiny", 0)
    texts = tiny.make_texts()
    result = run_demo(root / "out", model_path=str(model), heldout_texts=texts, calibration_texts=texts, quick=True,
                      progress=False)  # fmt: skip
    return result, model, texts


def test_demo_writes_everything(demo):
    result, _, _ = demo
    out = Path(result.output_dir)
    assert [r.name for r in result.results] == ["dense", "sink_wanda-50", "sink_heads-38"]
    assert set(result.checkpoints) == {"sink_wanda-50", "sink_heads-38"}
    for name, path in result.checkpoints.items():
        card = (Path(path) / "README.md").read_text()
        assert "perplexity" in card.lower() and "sink" in card.lower()
        assert (Path(path) / "plots").is_dir() and (Path(path) / "sink_report.json").is_file()
    assert {p.name for p in (out / "sink_analysis").glob("*.png")} == {
        "sink_heatmap.png", "variance_distribution.png", "mass_profiles.png"}
    saved = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in saved["results"]] == ["dense", "sink_wanda-50", "sink_heads-38"]
    md = (out / "results.md").read_text()
    assert "sink_heads-38" in md and "Monte-Carlo draws" in md
    assert result.generation == saved["generation"]


def test_demo_budgets_and_sizes(demo):
    result, _, _ = demo
    dense, wanda, heads = result.results
    assert wanda.block_sparsity == pytest.approx(0.5, abs=0.01)
    assert wanda.num_parameters == dense.num_parameters  # unstructured: zeros, same shapes
    assert heads.block_sparsity == pytest.approx(0.38, abs=0.03)
    assert heads.num_parameters < dense.num_parameters and heads.checkpoint_bytes < dense.checkpoint_bytes
    assert wanda.checkpoint_bytes < dense.checkpoint_bytes  # sparse layers stored compressed (non-zeros + bitmask)
    for r in (wanda, heads):
        assert r.speedup_vs_dense == pytest.approx(r.dense_speed["latency_ms_per_step"] / r.speed["latency_ms_per_step"])
        assert r.nll_delta_vs_dense == pytest.approx(r.nll_per_token - dense.nll_per_token, abs=1e-9)


def test_saved_checkpoints_reload_and_reproduce_the_measured_perplexity(demo, tiny):
    """The checkpoint on disk is the model that was evaluated: reloaded, it gives the same ELBO under the same masks."""
    from transformers import AutoModel

    from optimum_sinkprune.evaluation import Evaluator

    result, model_path, texts = demo
    settings = DemoSettings.quick().evaluation
    evaluator = Evaluator(tiny.build_tokenizer(), texts=texts, settings=settings, progress=False)
    for r in result.results[1:]:
        reloaded = AutoModel.from_pretrained(result.checkpoints[r.name]).eval()
        assert sum(p.numel() for p in reloaded.parameters()) == r.num_parameters
        draws = evaluator.likelihood(reloaded).draws
        assert math.exp(sum(draws) / len(draws)) == pytest.approx(r.perplexity, rel=1e-5)


def test_demo_refuses_a_non_empty_output_and_bad_budgets(tmp_path, tiny):
    (tmp_path / "x").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        run_demo(tmp_path, model_path=str(tmp_path), quick=True, heldout_texts=["a"], calibration_texts=["a"])
    assert (tmp_path / "x").read_text() == "keep me"
    with pytest.raises(ValueError, match="unstructured_sparsity"):
        run_demo(tmp_path / "new", unstructured_sparsity=1.5, quick=True)
    assert not (tmp_path / "new").exists()


def test_demo_command_prints_the_table(tmp_path, tiny, monkeypatch, capsys):
    from optimum_sinkprune import assets

    texts = tiny.make_texts()
    monkeypatch.setattr(assets, "load_heldout_texts", lambda limit=None: texts)
    monkeypatch.setattr(assets, "load_calibration_texts", lambda limit=None: texts)
    model = tiny.save_model(tmp_path / "tiny", 1)
    code = main(["demo", "--model", str(model), "--output", str(tmp_path / "out"), "--quick", "--no-progress",
                 "--threads", "1"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "| sink_wanda-50 |" in printed and "| sink_heads-38 |" in printed and "dense model continues" in printed
    assert "| BLEU ref | ROUGE-L ref |" in printed  # the columns the notes describe
    assert f"everything went to {tmp_path / 'out'}" in printed
    assert "\x1b[" not in printed  # no progress-bar escape codes when output is not a terminal
    assert main(["demo", "--model", str(model), "--output", str(tmp_path / "out"), "--quick"]) == 2  # not empty
    assert "not empty" in capsys.readouterr().err


