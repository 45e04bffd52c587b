# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Every example runs end to end on tiny models saved to a temporary folder (the Hub ids are only defaults)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from script_loading import load_script

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DATA = ROOT / "tests" / "data"
SMALL_PRUNE = ["--num-samples", "4", "--seq-len", "48", "--eval-sequences", "2", "--eval-seq-len", "48",
               "--mc-num", "2", "--device", "cpu", "--dtype", "float32"]  # fmt: skip


def _load(path: Path, name: str):
    return load_script(path, name)


def _example(name: str):
    return _load(EXAMPLES / f"{name}.py", f"sinkprune_example_{name}")


@pytest.fixture(scope="module")
def tiny():
    return _load(DATA / "tiny_dlm.py", "sinkprune_tests_tiny_dlm")


@pytest.fixture
def files(tmp_path, tiny):
    texts = tiny.make_texts()
    return {
        "model": str(tiny.save_model(tmp_path / "tiny-llada", 0)),
        "texts": str(tiny.write_texts_jsonl(tmp_path / "texts.jsonl", texts)),
    }


def _nonzero_fraction(folder: Path) -> float:
    """Non-zero share of the block matrices of the saved checkpoint, reloaded (whatever its storage format)."""
    from transformers import AutoModelForCausalLM

    weights = AutoModelForCausalLM.from_pretrained(folder).state_dict()
    block = [w for name, w in weights.items() if ".blocks." in name and w.dim() == 2]
    return sum(int((w != 0).sum()) for w in block) / sum(w.numel() for w in block)


@pytest.mark.slow
def test_prune_llada_8b_on_a_tiny_llada(tmp_path, files, capsys):
    out = tmp_path / "out"
    args = ["--model", files["model"], "--output", str(out), "--calibration", files["texts"], "--heldout",
            files["texts"], "--diffusion-steps", "10", "--sample-interval", "5", *SMALL_PRUNE]  # fmt: skip
    assert _example("prune_llada_8b").main(args) == 0
    printed = capsys.readouterr().out
    assert "memory estimate" in printed and "pruned ELBO perplexity" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["sink_pruning_config"]["method"] == "sink_wanda"
    assert _nonzero_fraction(out) == pytest.approx(0.5, abs=0.01)
    assert "perplexity" in (out / "README.md").read_text().lower()


@pytest.mark.slow
def test_memory_estimate_counts_the_parameters_from_the_config(files, tiny, capsys):
    assert _example("prune_llada_8b").main(["--model", files["model"], "--estimate-only"]) == 0
    expected = sum(p.numel() for p in tiny.build_model(0).parameters())
    assert f"{expected / 1e9:.2f}B parameters" in capsys.readouterr().out
    utils = _load(EXAMPLES / "example_utils.py", "sinkprune_example_utils")
    est = utils.estimate_memory_gb(files["model"], method="sink_wanda", num_samples=8, seq_len=32)
    assert est["weights"] == pytest.approx(expected * 2 / 1e9)
    assert est["calibration_activations"] == pytest.approx(2 * 8 * 32 * 64 * 4 / 1e9)


@pytest.mark.slow
def test_prune_dream_7b_on_a_tiny_dream(tmp_path, files, tiny, capsys):
    model = tiny.save_dream_model(tmp_path / "tiny-dream")
    out = tmp_path / "out"
    args = ["--model", str(model), "--output", str(out), "--calibration", files["texts"], "--heldout",
            files["texts"], "--diffusion-steps", "10", "--sample-interval", "5", *SMALL_PRUNE]  # fmt: skip
    assert _example("prune_dream_7b").main(args) == 0
    assert "logits shifted: True" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "Dream" and config["sink_pruning_config"]["method"] == "sink_sparsegpt"


@pytest.mark.slow
def test_analyze_sinks_on_a_tiny_llada(tmp_path, files, capsys):
    out = tmp_path / "sinks"
    args = ["--model", files["model"], "--data", files["texts"], "--num-samples", "2", "--seq-len", "32",
            "--steps", "10", "--sample-interval", "5", "--gen-length", "4", "--device", "cpu", "--output", str(out)]
    assert _example("analyze_sinks").main(args) == 0
    report = json.loads((out / "sink_report.json").read_text())
    assert report["summary"]["generation"] is not None
    assert {p.name for p in out.glob("*.png")} == {"sink_heatmap.png", "variance_distribution.png",
                                                   "mass_profiles.png"}  # fmt: skip
    assert "sink" in capsys.readouterr().out.lower()


@pytest.mark.slow
def test_evaluate_with_lm_eval_on_the_local_task(tmp_path, files, monkeypatch, capsys):
    pytest.importorskip("lm_eval", reason="lm-eval is not installed (the `eval` / `test` extras)")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    out = tmp_path / "lm_eval.json"
    args = ["--model", files["model"], "--tasks", "sinkprune_tiny_mc", "--include-path", str(DATA / "lm_eval_tasks"),
            "--limit", "3", "--mc-num", "2", "--batch-size", "2", "--device", "cpu",
            "--datasets-cache", str(tmp_path / "cache"), "--output", str(out)]  # fmt: skip
    assert _example("evaluate_with_lm_eval").main(args) == 0
    results = json.loads(out.read_text())["results"]["sinkprune_tiny_mc"]
    assert 0.0 <= results["acc,none"] <= 1.0 and results["sample_len"] == 3
    assert "sinkprune_tiny_mc: acc" in capsys.readouterr().out


def test_example_cloze_task_is_well_formed():
    yaml = pytest.importorskip("yaml")
    cfg = yaml.safe_load((EXAMPLES / "lm_eval_tasks" / "sinkprune_heldout_cloze.yaml").read_text())
    rows = [json.loads(line) for line in (EXAMPLES / "lm_eval_tasks" / cfg["dataset_kwargs"]["data_files"]["test"])
            .read_text().splitlines()]  # fmt: skip
    assert len(rows) == 40
    assert all(0 <= r["answer"] < len(r["choices"]) == 4 and r["context"] for r in rows)


@pytest.mark.slow
def test_push_to_hub_against_the_loopback_hub(tmp_path, files, monkeypatch, capsys):
    from huggingface_hub import constants

    fake_hub = _load(ROOT / "tests" / "hub" / "fake_hub.py", "sinkprune_example_fake_hub")
    token = "hf_ExampleWriteToken0123456789abcdef"
    hub = fake_hub.FakeHub(tokens={token: "alice"})
    url = hub.start()
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # the loopback Hub speaks LFS, not Xet
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # read from the environment at import time
    try:
        out = tmp_path / "pushed"
        args = ["--model", files["model"], "--repo-id", "alice/tiny-sink-wanda", "--output", str(out),
                "--calibration", files["texts"], "--heldout", files["texts"], "--token", token, "--endpoint", url,
                *SMALL_PRUNE]  # fmt: skip
        assert _example("push_to_hub").main(args) == 0
        stored = hub.files("alice/tiny-sink-wanda")
        assert {"model.safetensors", "README.md", "config.json"} <= set(stored)
        assert stored["model.safetensors"].content == (out / "model.safetensors").read_bytes()
        assert "pushed" in capsys.readouterr().out
    finally:
        hub.stop()


def test_push_to_hub_rejects_a_bad_repo_id_before_pruning(files):
    with pytest.raises(ValueError, match="repo"):
        _example("push_to_hub").main(["--model", files["model"], "--repo-id", "not a repo id"])


