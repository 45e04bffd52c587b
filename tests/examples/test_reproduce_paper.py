# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""examples/reproduce_paper.py: the memory estimate for LLaDA-8B comes from the shipped config, before anything
loads (the end-to-end run is `sinkprune reproduce`'s test, tests/commands/test_reproduce.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from script_loading import load_script

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "reproduce_paper.py"


def _example():
    return load_script(EXAMPLE, "sinkprune_example_reproduce_paper")


@pytest.mark.slow
def test_estimate_only_prints_the_llada_8b_estimate_offline(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert _example().main(["--estimate-only", "--method", "sink_sparsegpt"]) == 0
    printed = capsys.readouterr().out
    assert "memory estimate: 8.02B parameters: weights 14.9 GiB (bfloat16)" in printed
    assert "hessians of one block" in printed


def test_bad_family_fails_before_loading(capsys, tmp_path):
    config = tmp_path / "config.json"
    config.write_text('{"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 1, '
                      '"num_attention_heads": 4, "intermediate_size": 96, "vocab_size": 128}')
    with pytest.raises(ValueError, match="family='llama' has no paper preset; known families: llada, mmada, dream"):
        _example().main(["--model", str(tmp_path), "--estimate-only"])
