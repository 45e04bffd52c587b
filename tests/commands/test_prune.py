# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sinkprune prune` end to end on a tiny model saved to a temporary folder."""

from __future__ import annotations

import os

import pytest
import torch

from optimum_sinkprune.commands.cli import main
from optimum_sinkprune.models import LLaDAConfig, LLaDAModelLM

ASSET_TOKENIZER = os.path.join(os.path.dirname(__file__), "..", "..", "optimum_sinkprune", "assets", "tiny-llada")


@pytest.fixture
def tiny_model_dir(tmp_path):
    from transformers import AutoTokenizer

    if not os.path.isfile(os.path.join(ASSET_TOKENIZER, "tokenizer.json")):
        pytest.skip("the shipped tiny-llada tokenizer is missing")
    tokenizer = AutoTokenizer.from_pretrained(ASSET_TOKENIZER)
    config = LLaDAConfig(d_model=64, n_heads=4, n_layers=2, mlp_hidden_size=96, vocab_size=len(tokenizer),
                         embedding_size=len(tokenizer), mask_token_id=tokenizer.mask_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, max_sequence_length=128)
    torch.manual_seed(0)
    path = tmp_path / "base"
    LLaDAModelLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    text = tmp_path / "calib.txt"
    text.write_text("In the beginning God created the heaven and the earth. " * 40)
    return path, text


def test_cli_prune_end_to_end(tiny_model_dir, tmp_path, capsys):
    from transformers import AutoModel

    base, text = tiny_model_dir
    out = tmp_path / "out"
    args = [ "prune", str(base), "--method", "sink_wanda", "--sparsity", "0.5", "--pattern", "2:4", "--num-samples",
            "2", "--seq-len", "32", "--diffusion-steps", "10", "--sample-interval", "5", "--data", str(text),
            "--output", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "sink_wanda (2:4)" in printed and "sparsity 50.00%" in printed and str(out) in printed
    model = AutoModel.from_pretrained(out)
    w = model.model.transformer.blocks[0].q_proj.weight
    assert ((w != 0).reshape(w.shape[0], -1, 4).sum(-1) == 2).all()
    assert model.config.sink_pruning_config["pattern"] == "2:4"
    assert (out / "sink_pruning_config.json").is_file()
    # an existing output folder needs --overwrite
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite", "--method", "magnitude"]) == 0


def test_cli_bad_input_is_a_clean_error(tiny_model_dir, tmp_path, capsys):
    base, text = tiny_model_dir
    code = main(["prune", str(base), "--sparsity", "0.5", "--pattern", "2:4", "--method", "wanda", "--sparsity",
                 "0.7", "--output", str(tmp_path / "o"), "--data", str(text)])
    assert code == 2
    assert "must be 1 - N/M" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
