# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The structural record of a pruned config.json (`optimum_sinkprune.models.structural_record`): every malformed or
out-of-range `pruned_heads` / per-layer MLP width is refused at config load, for our LLaDA / MMaDA / Dream classes and
for native Llama / Qwen2, with a message naming the field, the layer and the allowed range; valid records load."""

from __future__ import annotations

import json

import pytest
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config

from optimum_sinkprune.models import structural_record
from optimum_sinkprune.models.configuration_dream import DreamConfig
from optimum_sinkprune.models.configuration_llada import LLaDAConfig
from optimum_sinkprune.models.configuration_mmada import MMaDAConfig
from optimum_sinkprune.models.pruned_loading import (
    native_structural_record,
    pruned_layer_shape,
    register_pruned_loading,
)

# every family: 2 layers, 4 query heads in kv groups of 2, MLP width 96
SHAPES = {
    "llada": (LLaDAConfig, dict(d_model=64, n_heads=4, n_kv_heads=2, n_layers=2, mlp_hidden_size=96, vocab_size=128,
                                embedding_size=128, mask_token_id=127, eos_token_id=1, pad_token_id=0),
              "mlp_hidden_sizes"),
    "mmada": (MMaDAConfig, dict(d_model=64, n_heads=4, n_kv_heads=2, n_layers=2, mlp_hidden_size=96, vocab_size=128,
                                embedding_size=128, mask_token_id=127, eos_token_id=1, pad_token_id=0),
              "mlp_hidden_sizes"),
    "dream": (DreamConfig, dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
                                intermediate_size=96, vocab_size=128, mask_token_id=127, pad_token_id=0,
                                bos_token_id=1, eos_token_id=1),
              "intermediate_sizes"),
    "llama": (LlamaConfig, dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
                                intermediate_size=96, vocab_size=128), "intermediate_sizes"),
    "qwen2": (Qwen2Config, dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
                                intermediate_size=96, vocab_size=128), "intermediate_sizes"),
}

# (record, what the message must say); WIDTHS stands for the family's per-layer width key
BAD_RECORDS = [
    (dict(pruned_heads={"0": [4, 5]}), r"pruned_heads\[0\] has head indices \[4, 5\] out of range: .*\[0, 4\)"),
    (dict(pruned_heads={"0": [-2, -1]}), r"pruned_heads\[0\] has head indices \[-2, -1\] out of range"),
    (dict(pruned_heads={"1": [0, 1, 1]}), r"pruned_heads\[1\]=\[0, 1, 1\] repeats a head index"),
    (dict(pruned_heads={"2": [0, 1]}), r"pruned_heads has layer '2', out of range: .*2 layers.*\[0, 2\)"),
    (dict(pruned_heads={"-1": [0, 1]}), r"pruned_heads has layer '-1', out of range"),
    (dict(pruned_heads={"first": [0, 1]}), r"pruned_heads has layer key 'first'; .*integers in \[0, 2\)"),
    (dict(pruned_heads={"0": [1]}), r"pruned_heads\[0\]=\[1\] splits kv group 0 .*whole kv groups"),
    (dict(pruned_heads=[0, 1]), r"pruned_heads=\[0, 1\] is not allowed; give a dict"),
    (dict(pruned_heads={"0": "01"}), r"pruned_heads\['0'\]='01' is not allowed; give a list of integer indices"),
    (dict(pruned_heads={"0": [0.5, 1]}), r"pruned_heads\['0'\]=\[0.5, 1\] is not allowed; .*integer"),
    (dict(pruned_heads={"0": {"a": 1}}), r"pruned_heads\['0'\].* is not allowed; give a list of integer indices"),
    (dict(WIDTHS=[96]), r"WIDTHS has 1 entries; the model has 2 layers, so it needs exactly 2"),
    (dict(WIDTHS=[96, 97]), r"WIDTHS\[1\]=97 is not allowed: layer 1's MLP width must be an integer in \[1, 96\]"),
    (dict(WIDTHS=[0, 96]), r"WIDTHS\[0\]=0 is not allowed: .*\[1, 96\]"),
    (dict(WIDTHS=[48, "48"]), r"WIDTHS\[1\]='48' is not allowed"),
    (dict(WIDTHS=[48, 40.5]), r"WIDTHS\[1\]=40.5 is not allowed"),
    (dict(WIDTHS={"0": 48}), r"WIDTHS=\{'0': 48\} is not allowed; give a list of 2 integer MLP widths"),
    (dict(WIDTHS=96), r"WIDTHS=96 is not allowed; give a list"),
]


def _record(family: str, record: dict) -> dict:
    key = SHAPES[family][2]
    return {key if k == "WIDTHS" else k: v for k, v in record.items()}


def _write_config(tmp_path, family: str, record: dict):
    cls, shape, _key = SHAPES[family]
    raw = cls(**shape).to_dict()
    raw.update(_record(family, record))
    (tmp_path / "config.json").write_text(json.dumps(raw), encoding="utf-8")
    return cls


@pytest.mark.parametrize("family", list(SHAPES))
@pytest.mark.parametrize("record,match", BAD_RECORDS)
def test_malformed_record_refused_at_config_load(tmp_path, family, record, match):
    cls = _write_config(tmp_path, family, record)
    field = f"{cls.__name__}.{SHAPES[family][2]}"
    expected = match.replace("WIDTHS", field.replace(".", r"\.")).replace("pruned_heads", f"{cls.__name__}\\.pruned_heads")
    with pytest.raises(ValueError, match=expected):
        AutoConfig.from_pretrained(tmp_path)


@pytest.mark.parametrize("family", list(SHAPES))
def test_valid_record_loads_normalised(tmp_path, family):
    _write_config(tmp_path, family, dict(pruned_heads={"1": [3, 2], "0": []}, WIDTHS=[96, 10]))
    config = AutoConfig.from_pretrained(tmp_path)
    if family in ("llama", "qwen2"):  # transformers' own classes keep the raw record; ours normalise it
        heads, widths = native_structural_record(config)
        assert pruned_layer_shape(config, 1) == (2, 1, 10) and pruned_layer_shape(config, 0) == (4, 2, 96)
    else:
        heads, widths = config.pruned_heads, getattr(config, SHAPES[family][2])
        assert (config.layer_num_heads(1), config.layer_num_kv_heads(1), config.layer_mlp_hidden_size(1)) == (2, 1, 10)
    assert heads == {1: [2, 3]} and widths == [96, 10]


def test_native_checkpoint_with_bad_record_fails_before_any_weight_loads(tmp_path):
    # the config alone: the bad record must fail when the config is read, before any weight file is looked for
    LlamaConfig(**SHAPES["llama"][1]).save_pretrained(tmp_path)
    raw = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    raw["pruned_heads"] = {"0": [0, 1], "7": [2, 3]}
    (tmp_path / "config.json").write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ValueError, match=r"LlamaConfig\.pruned_heads has layer '7', out of range"):
        AutoModelForCausalLM.from_pretrained(tmp_path)
    # a record assigned to a config object after it was built is checked when a layer is built from it
    register_pruned_loading()  # (a config built with a record registers the replacements itself)
    config = LlamaConfig(**SHAPES["llama"][1])
    config.intermediate_sizes = [96, 200]
    with pytest.raises(ValueError, match=r"LlamaConfig\.intermediate_sizes\[1\]=200 .*\[1, 96\]"):
        AutoModelForCausalLM.from_config(config)
    from transformers.models.llama import modeling_llama

    assert type(LlamaForCausalLM(LlamaConfig(**SHAPES["llama"][1])).model.layers[0]).__module__ == \
        modeling_llama.__name__  # the failed build left transformers' own classes in place


def test_removal_requests_follow_the_same_rules():
    """`structured.removal` checks requests with the same functions (one set of rules, not two)."""
    from optimum_sinkprune.structured import removal

    geometry = removal.HeadGeometry(num_heads=4, num_kv_heads=2, head_dim=16)
    with pytest.raises(ValueError, match=r"heads\[1\]=\[2\] splits kv group 1"):
        removal.validate_head_request({1: [2]}, geometry=geometry, already={}, num_layers=2)
    with pytest.raises(ValueError, match=r"heads\[0\] asks for heads \[0, 1\] that were already removed"):
        removal.validate_head_request({"0": [0, 1]}, geometry=geometry, already={0: [0, 1]}, num_layers=2)
    assert removal.validate_head_request({"1": (3, 2)}, geometry=geometry, already={}, num_layers=2) == {1: [2, 3]}
    with pytest.raises(ValueError, match=r"channels\[0\] has channel indices \[9\] out of range: .*\[0, 9\)"):
        removal.validate_channel_request({0: [9]}, widths=[9, 9])
    assert removal.validate_head_request is not structural_record.validate_head_request  # a thin wrapper …
    assert removal.structural_record is structural_record  # … over the shared module


def test_record_module_is_standard_library_only():
    """A saved checkpoint carries the file as remote code: it must not import torch or optimum_sinkprune."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(structural_record.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported <= {"__future__", "operator", "collections"}


@pytest.mark.parametrize("family", list(SHAPES))
def test_a_layer_that_lost_every_head_is_a_valid_record(tmp_path, family):
    """Our classes (and the native reload) build a layer with no heads left, which adds nothing to the residual."""
    cls = _write_config(tmp_path, family, dict(pruned_heads={"0": [0, 1, 2, 3]}))
    config = cls.from_pretrained(tmp_path)
    assert sorted(int(h) for h in (config.pruned_heads.get("0") or config.pruned_heads.get(0))) == [0, 1, 2, 3]
