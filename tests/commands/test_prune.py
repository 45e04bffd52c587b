# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sinkprune prune` end to end on a tiny model saved to a temporary folder."""

from __future__ import annotations

import pytest

from optimum_sinkprune.assets import default_model_path
from optimum_sinkprune.commands.cli import main

from tiny_llada_checkpoint import save_tiny_llada

ASSET_TOKENIZER = default_model_path()  # raises when the shipped model is missing: a broken install, not a skip


@pytest.fixture
def tiny_model_dir(tmp_path):
    path = save_tiny_llada(tmp_path / "base")
    text = tmp_path / "calib.txt"
    text.write_text("In the beginning God created the heaven and the earth. " * 40)
    return path, text


@pytest.mark.slow
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


@pytest.mark.slow
def test_reproduce_command_is_the_one_builder(tiny_model_dir, tmp_path):
    from optimum_sinkprune.configuration import SinkAwarePruningConfig
    from optimum_sinkprune.hub.model_card import default_reproduce_command, prune_command

    base, text = tiny_model_dir
    out = tmp_path / "with space"
    assert main(["prune", str(base), "--method", "magnitude", "--sparsity", "0.25", "--seed", "3", "--output",
                 str(out)]) == 0
    config = SinkAwarePruningConfig.from_pretrained(out)
    expected = prune_command(config.to_dict(), str(base))
    assert "--sparsity 0.25" in expected and "--seed" not in expected and "--diffusion-steps" not in expected  # weights only
    assert str(tmp_path) not in expected  # portable: the folder's name only, never a path of this machine
    card = (out / "README.md").read_text(encoding="utf-8")
    assert expected in card
    # the Python API's card gets the same command from the same builder
    from optimum_sinkprune import SinkAwarePruner

    pruner = SinkAwarePruner.from_pretrained(str(base))
    pruner.prune(config, progress=False)
    pruner.save_pretrained(tmp_path / "api")
    assert expected in (tmp_path / "api" / "README.md").read_text(encoding="utf-8")
    rebuilt = default_reproduce_command(config.to_dict(), None)
    assert rebuilt == prune_command(config.to_dict(), "BASE_MODEL")
    assert rebuilt.endswith("--output BASE_MODEL-magnitude") and "--data" not in rebuilt
    assert "--data" in prune_command(config.to_dict(), "m", data=str(text))


@pytest.mark.slow
def test_prune_evaluate_records_measurements_in_the_card(tiny_model_dir, tmp_path, capsys):
    import yaml

    base, text = tiny_model_dir
    out = tmp_path / "out"
    assert main(["prune", str(base), "--method", "magnitude", "--sparsity", "0.5", "--output", str(out),
                 "--evaluate", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "ELBO" in printed or "ppl" in printed
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "No quality or speed measurements were recorded" not in card
    meta = yaml.safe_load(card.split("---\n")[1])
    metrics = {m["type"] for r in meta["model-index"][0]["results"] for m in r["metrics"]}
    assert {"perplexity", "masked_accuracy", "tokens_per_second"} <= metrics
