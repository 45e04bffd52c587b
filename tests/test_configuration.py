# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
from __future__ import annotations

import json

import pytest

import optimum_sinkprune
from optimum_sinkprune.configuration import SinkAwarePruningConfig, parse_pattern
from optimum_sinkprune.registry import method_names

KNOWN_METHODS = method_names()
STRUCTURED_METHODS = method_names("structured")


def _config(method):
    if method in method_names("experts"):
        return SinkAwarePruningConfig(method=method, expert_ratio=0.5, num_samples=7)
    if method in STRUCTURED_METHODS:
        return SinkAwarePruningConfig(method=method, target_param_reduction=0.3, allocation="global")
    return SinkAwarePruningConfig(method=method, sparsity=0.5, pattern="2:4", targets=["q", "*.ff_out"],
                                  ignore=["*.0.*"], num_samples=7)


@pytest.mark.parametrize("method", KNOWN_METHODS)
def test_round_trip(method, tmp_path):
    config = _config(method)
    data = config.to_dict()
    assert data["sinkprune_version"] == optimum_sinkprune.__version__ and data["config_format"] == 1
    assert SinkAwarePruningConfig.from_dict(data) == config
    assert SinkAwarePruningConfig.from_json_string(json.dumps(data)) == config
    path = config.save_pretrained(tmp_path)
    assert path.endswith("sink_pruning_config.json")
    assert SinkAwarePruningConfig.from_pretrained(tmp_path) == config
    assert SinkAwarePruningConfig.from_pretrained(path) == config


def test_defaults_follow_the_paper():
    c = SinkAwarePruningConfig()
    assert (c.method, c.num_samples, c.seed, c.diffusion_steps, c.sample_interval) == ("sink_wanda", 128, 0, 50, 5)
    assert (c.noise_eps, c.sink_std, c.sink_alpha, c.block_size, c.dampening) == (1e-3, 2.0, 5.0, 128, 0.01)
    assert c.sampled_steps == list(range(5, 51, 5))


@pytest.mark.parametrize("kwargs,match", [
    (dict(sparsity=1.0), "sparsity=1.0"),
    (dict(sparsity=-0.1), "sparsity=-0.1"),
    (dict(sparsity=float("nan")), "sparsity=nan"),
    (dict(method="obs"), "known methods: magnitude, wanda"),
    (dict(pattern="4:2", sparsity=0.5), "0 < N < M"),
    (dict(pattern="2:2", sparsity=0.0), "0 < N < M"),
    (dict(pattern="2:4", sparsity=0.6), "must be 1 - N/M = 0.5"),
    (dict(pattern="dense"), "pattern='dense'"),
    (dict(num_samples=0), "num_samples=0"),
    (dict(seq_len=2.5), "seq_len=2.5"),
    (dict(sample_interval=60), "sample_interval=60"),
    (dict(sink_alpha=0), "sink_alpha=0"),
    (dict(dampening=-1), "dampening=-1"),
    (dict(targets=[""]), "targets="),
    (dict(method="sink_heads"), "needs target_param_reduction"),
    (dict(method="sink_heads", target_param_reduction=1.0), "target_param_reduction=1.0"),
    (dict(method="sink_heads", target_param_reduction=0.2, head_ratio=0.1), "not both"),
    (dict(method="magnitude_heads", head_ratio=0.2, allocation="local"), "allocation='local'"),
    (dict(method="random_heads", mlp_ratio=0.2, structured_mode="drop"), "structured_mode='drop'"),
    (dict(method="random_heads", mlp_ratio=0.2, min_heads_per_layer=-1), "min_heads_per_layer=-1"),
])
def test_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        SinkAwarePruningConfig(**kwargs)


def test_from_dict_rejects_unknown_and_newer():
    with pytest.raises(ValueError, match="unknown SinkAwarePruningConfig keys"):
        SinkAwarePruningConfig.from_dict({"method": "wanda", "spars": 0.5})
    with pytest.raises(ValueError, match="config_format=2"):
        SinkAwarePruningConfig.from_dict({"config_format": 2})


def test_parse_pattern():
    assert parse_pattern("unstructured") is None
    assert parse_pattern("2:4") == (2, 4)
    with pytest.raises(ValueError):
        parse_pattern("2:4:8")
