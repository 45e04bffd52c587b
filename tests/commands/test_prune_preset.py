# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sinkprune prune --preset paper` on a tiny model with a tiny local wikitext-style dataset."""

from __future__ import annotations

import json

import pytest

from optimum_sinkprune.assets import default_ar_model_path
from optimum_sinkprune.commands.cli import main

from tiny_llada_checkpoint import save_tiny_llada

ROWS = ["", " = Genesis = \n", " In the beginning God created the heaven and the earth .\n", "",
        " And the earth was without form , and void ; and darkness was upon the face of the deep .\n"] * 20


@pytest.fixture
def tiny_model_and_dataset(tmp_path):
    import datasets

    base = save_tiny_llada(tmp_path / "base")
    folder = tmp_path / "wikitext-2-raw-v1"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ROWS})}).save_to_disk(folder)
    return base, folder


@pytest.mark.slow
def test_prune_with_the_paper_preset(tiny_model_and_dataset, tmp_path, capsys, monkeypatch):
    from optimum_sinkprune.pruner import SinkAwarePruner

    base, folder = tiny_model_and_dataset
    printed_before_loading = []
    original = SinkAwarePruner.from_pretrained.__func__

    def from_pretrained(cls, *args, **kwargs):
        printed_before_loading.append(capsys.readouterr().out)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(SinkAwarePruner, "from_pretrained", classmethod(from_pretrained))
    out = tmp_path / "out"
    code = main(["prune", str(base), "--preset", "paper", "--method", "sink_wanda", "--sparsity", "0.5",
                 "--num-samples", "2", "--seq-len", "32", "--data", str(folder), "--output", str(out)])
    assert code == 0
    assert "memory estimate (sink_wanda, 2 x 32 tokens)" in printed_before_loading[0]
    saved = json.loads((out / "sink_pruning_config.json").read_text())
    assert (saved["num_samples"], saved["seq_len"]) == (2, 32)  # the overrides
    assert (saved["diffusion_steps"], saved["sample_interval"], saved["sink_alpha"], saved["sink_std"],
            saved["dampening"], saved["block_size"], saved["batch_size"]) == (50, 5, 5.0, 2.0, 0.01, 128, 1)
    assert (saved["noise_schedule"], saved["protected_positions"]) == ("ladder", "none")
    card = (out / "README.md").read_text()
    assert "--preset paper" in card


def test_preset_for_a_family_without_one_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["prune", default_ar_model_path(), "--preset", "paper", "--output", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "family='llama' has no paper preset" in err and "llada, mmada, dream" in err
    assert not out.exists()


def test_unknown_preset_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        main(["prune", "m", "--preset", "wanda-paper", "--output", "o"])
    assert "invalid choice: 'wanda-paper'" in capsys.readouterr().err
