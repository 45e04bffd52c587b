# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""One writer of sink_pruning_config.json: the config's own save_pretrained and the checkpoint saver write the same
bytes, and a config that is not JSON leaves no file behind."""

from __future__ import annotations

import pytest

from optimum_sinkprune.configuration import CONFIG_NAME, SinkAwarePruningConfig, write_pruning_config
from optimum_sinkprune.hub.save import save_pruned_model


def test_config_and_checkpoint_write_the_same_file(tiny_llada, tmp_path):
    config = SinkAwarePruningConfig(method="magnitude", sparsity=0.5)
    own = config.save_pretrained(tmp_path / "config")
    folder = save_pruned_model(tiny_llada, tmp_path / "ckpt", pruning_config=config.to_dict())
    assert (tmp_path / "ckpt" / CONFIG_NAME).read_bytes() == open(own, "rb").read()
    assert SinkAwarePruningConfig.from_pretrained(folder) == config


def test_unserialisable_config_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="JSON-serialisable"):
        write_pruning_config(tmp_path, {"method": "magnitude", "bad": object()})
    assert list(tmp_path.iterdir()) == []
