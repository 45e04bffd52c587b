# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sinkprune eval` on tiny saved models and local texts."""

import importlib.util
import json
from pathlib import Path

import pytest

from optimum_sinkprune.commands.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"
SMALL = ["--num-sequences", "3", "--seq-len", "48", "--mc-num", "2", "--num-prompts", "2", "--prompt-tokens", "24",
         "--gen-length", "8", "--steps", "4", "--speed-repeats", "1", "--no-progress", "--threads", "1"]  # fmt: skip


@pytest.fixture(scope="module")
def tiny():
    spec = importlib.util.spec_from_file_location("sinkprune_tests_tiny_dlm", DATA / "tiny_dlm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_eval_compare_prints_table_and_writes_json(tmp_path, tiny, capsys):
    dense, other = tiny.save_model(tmp_path / "dense", 0), tiny.save_model(tmp_path / "other", 1)
    texts = tiny.write_texts_jsonl(tmp_path / "texts.jsonl", tiny.make_texts())
    out = tmp_path / "res" / "eval.json"
    code = main(["eval", str(other), "--compare", str(dense), "--data", str(texts), "--output", str(out), *SMALL])
    assert code == 0
    printed = capsys.readouterr().out
    assert "ELBO ppl" in printed and "other" in printed and "dense" in printed and "2 MC draws x 3 sequences" in printed
    payload = json.loads(out.read_text())
    assert payload["settings"]["mc_num"] == 2 and payload["compare"] == str(dense)
    names = [r["name"] for r in payload["results"]]
    assert names == ["dense", "other"]
    dense_r, other_r = payload["results"]
    assert other_r["nll_delta_vs_dense"] == pytest.approx(other_r["nll_per_token"] - dense_r["nll_per_token"])
    assert other_r["checkpoint_bytes"] == (other / "model.safetensors").stat().st_size
    assert dense_r["speed"] == other_r["dense_speed"]  # one interleaved timing run


@pytest.mark.slow
def test_eval_single_model_without_speed(tmp_path, tiny, capsys):
    model = tiny.save_model(tmp_path / "m", 0)
    texts = tiny.write_texts_jsonl(tmp_path / "texts.jsonl", tiny.make_texts())
    assert main(["eval", str(model), "--data", str(texts), "--no-speed", *SMALL]) == 0
    assert "Δnll" in capsys.readouterr().out


def test_eval_bad_arguments_fail_cleanly(tmp_path, tiny, capsys):
    model = tiny.save_model(tmp_path / "m", 0)
    assert main(["eval", str(model), "--data", str(tmp_path / "missing.jsonl"), *SMALL]) == 2
    assert "does not exist" in capsys.readouterr().err
    texts = tiny.write_texts_jsonl(tmp_path / "texts.jsonl", tiny.make_texts())
    assert main(["eval", str(model), "--data", str(texts), *SMALL, "--mc-num", "0"]) == 2
    assert "mc_num" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_with_a_block_on_disk_scores_what_memory_does(tmp_path, tiny, capsys):
    model = tiny.save_model(tmp_path / "m", 0)
    texts = tiny.write_texts_jsonl(tmp_path / "texts.jsonl", tiny.make_texts())
    common = ["eval", str(model), "--compare", str(model), "--data", str(texts), "--no-speed", *SMALL]
    assert main([*common, "--output", str(tmp_path / "mem.json")]) == 0
    placement = {"model.transformer.wte": "cpu", "model.transformer.blocks.0": "cpu",
                 "model.transformer.blocks.1": "disk", "model.transformer.ln_f": "cpu",
                 "model.transformer.ff_out": "cpu"}
    assert main([*common, "--output", str(tmp_path / "off.json"), "--device-map", json.dumps(placement),
                 "--offload-folder", str(tmp_path / "offload")]) == 0, capsys.readouterr().err
    mem = json.loads((tmp_path / "mem.json").read_text())["results"]
    off = json.loads((tmp_path / "off.json").read_text())["results"]
    for a, b in zip(mem, off):
        assert b["nll_per_token"] == pytest.approx(a["nll_per_token"], abs=1e-5)
