# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Pruning history: every step (method, config, base, calibration data, version) lands in config.json and the card;
pruning an already pruned model warns; short calibration data that repeats warns with the numbers."""

from __future__ import annotations

import json
import logging

import torch

from optimum_sinkprune import SinkAwarePruner, SinkAwarePruningConfig
from optimum_sinkprune.calibration.data import get_calibration_dataset
from optimum_sinkprune.pruner import HISTORY_KEY, prior_pruning
from optimum_sinkprune.version import __version__


def _ids(n=4, seq=16, vocab=60, seed=0):
    return torch.randint(5, vocab, (n, seq), generator=torch.Generator().manual_seed(seed))


def test_two_steps_are_recorded_and_the_second_warns(tiny_llada, tmp_path, caplog):
    pruner = SinkAwarePruner(tiny_llada, base_model="tiny-llada")
    assert prior_pruning(tiny_llada.config, 0, 100) == []
    with caplog.at_level(logging.WARNING, logger="optimum_sinkprune.pruner"):
        pruner.prune(SinkAwarePruningConfig(method="magnitude", sparsity=0.5), progress=False)
    assert not [r for r in caplog.records if "already pruned" in r.message]
    with caplog.at_level(logging.WARNING, logger="optimum_sinkprune.pruner"):
        pruner.prune(SinkAwarePruningConfig(method="wanda", sparsity=0.6, num_samples=4, seq_len=16), _ids(),
                     progress=False)
    warned = [r.message for r in caplog.records if "already pruned" in r.message]
    assert len(warned) == 1 and "magnitude" in warned[0] and "exactly zero" in warned[0]
    history = getattr(tiny_llada.config, HISTORY_KEY)
    assert [step["method"] for step in history] == ["magnitude", "wanda"]
    assert history[0]["calibration_data"] is None and history[1]["calibration_data"] == "token ids [4, 16]"
    assert all(step["base_model"] == "tiny-llada" and step["optimum_sinkprune"] == __version__ for step in history)
    assert history[1]["config"]["sparsity"] == 0.6

    folder = pruner.save_pretrained(tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert [step["method"] for step in saved[HISTORY_KEY]] == ["magnitude", "wanda"]
    card = (tmp_path / "out" / "README.md").read_text()
    assert "### Pruning history" in card and "| 1 | `magnitude` | tiny-llada |" in card
    assert "| 2 | `wanda` | tiny-llada | token ids [4, 16] |" in card
    assert folder


class _Tok:
    bos_token_id = 2
    eos_token_id = 1

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [5 + (ord(c) % 40) for c in text]}


def test_repeated_calibration_windows_warn_with_the_numbers(caplog):
    texts = ["abcdefghij" * 2] * 3  # 3 texts of 20 tokens (+EOS each): 63 tokens
    with caplog.at_level(logging.WARNING, logger="optimum_sinkprune.calibration.data"):
        ids = get_calibration_dataset(_Tok(), texts, num_samples=64, seq_len=48)
    assert ids.shape == (64, 48)
    [message] = [r.getMessage() for r in caplog.records if "repeats" in r.getMessage()]
    assert "3 texts" in message and "63 tokens" in message and "64 windows were requested" in message
    assert "17 possible windows of 47 tokens" in message
    unique = int(message.split("only ")[1].split()[0])
    assert unique <= 17


def test_enough_data_does_not_warn(caplog):
    texts = ["".join(chr(65 + (i * 7 + j) % 50) for j in range(400)) for i in range(20)]
    with caplog.at_level(logging.WARNING, logger="optimum_sinkprune.calibration.data"):
        get_calibration_dataset(_Tok(), texts, num_samples=4, seq_len=32)
    assert not [r for r in caplog.records if "repeats" in r.getMessage()]
