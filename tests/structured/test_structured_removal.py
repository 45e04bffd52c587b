# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
import copy

import pytest
import torch

from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.structured import (
    block_parameter_count,
    nonzero_block_parameter_count,
    prune_structure,
    remove_heads,
    remove_mlp_channels,
)

from structured_models import FACTORIES, GQA, logits, tiny_dream, tiny_llada, valid_heads

CHANNELS = {0: [1, 5, 7], 1: list(range(10))}


def reference_zeroed(model, heads, channels):
    """Independent reference: a head only reaches the residual stream through its o-projection columns and a channel
    through its down-projection column, so zeroing exactly those must give the pruned model's logits."""
    ref = copy.deepcopy(model)
    adapter = get_adapter(ref)
    hd = adapter.head_dim(ref)
    for layer, hs in heads.items():
        o = adapter.projection(adapter.blocks(ref)[layer], "o")
        with torch.no_grad():
            for h in hs:
                o.weight[:, h * hd:(h + 1) * hd] = 0
    for layer, cs in channels.items():
        down = adapter.projection(adapter.blocks(ref)[layer], "down")
        with torch.no_grad():
            down.weight[:, cs] = 0
    return ref


def test_remove_matches_mask_and_independent_reference(family, ids):
    model = FACTORIES[family]()
    heads = valid_heads(family)
    reference = logits(reference_zeroed(model, heads, CHANNELS), ids)
    masked = copy.deepcopy(model)
    remove_heads(masked, heads, mode="mask")
    remove_mlp_channels(masked, CHANNELS, mode="mask")
    remove_heads(model, heads)
    remove_mlp_channels(model, CHANNELS)
    out = logits(model, ids)
    torch.testing.assert_close(out, logits(masked, ids), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)
    # shapes: removed physically, masked not
    adapter = get_adapter(model)
    hd = adapter.head_dim(model)
    q0 = adapter.projection(adapter.blocks(model)[0], "q")
    assert q0.out_features == (4 - len(heads[0])) * hd
    assert adapter.mlp_width(model, 0) == 96 - 3 and adapter.mlp_width(model, 1) == 96 - 10
    assert adapter.mlp_width(masked, 1) == 96
    assert block_parameter_count(model) == nonzero_block_parameter_count(masked)
    assert model.config.pruned_heads == heads


def test_gqa_kv_heads_and_attributes():
    model = tiny_dream()
    remove_heads(model, {1: [0, 1]})
    attn = model.model.layers[1].self_attn
    assert attn.k_proj.out_features == attn.head_dim and attn.q_proj.out_features == 2 * attn.head_dim
    assert (attn.num_heads, attn.num_kv_heads, attn.num_key_value_groups) == (2, 1, 2)
    assert model.config.layer_num_heads(1) == 2 and model.config.layer_num_kv_heads(1) == 1


@pytest.mark.parametrize("family", ["llada", "llama"])
def test_composition_uses_original_indices(family, ids):
    once = FACTORIES[family]()
    twice = copy.deepcopy(once)
    remove_heads(once, {0: [0, 2], 1: [3]})
    remove_mlp_channels(once, {0: [4, 9]})
    remove_heads(twice, {0: [2]})
    remove_mlp_channels(twice, {0: [4]})
    # original head 0 is still at position 0; original channel 9 is now at position 8
    remove_heads(twice, {0: [0], 1: [3]})
    remove_mlp_channels(twice, {0: [8]})
    assert twice.config.pruned_heads == once.config.pruned_heads == {0: [0, 2], 1: [3]}
    torch.testing.assert_close(logits(twice, ids), logits(once, ids), atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="already removed"):
        remove_heads(twice, {0: [2]})


def test_gqa_composition_maps_groups(ids):
    once = tiny_dream(num_attention_heads=8, num_key_value_heads=4)
    twice = copy.deepcopy(once)
    remove_heads(once, {0: [2, 3, 6, 7]})
    remove_heads(twice, {0: [6, 7]})
    remove_heads(twice, {0: [2, 3]})
    assert twice.config.pruned_heads == {0: [2, 3, 6, 7]}
    torch.testing.assert_close(logits(twice, ids), logits(once, ids), atol=1e-6, rtol=1e-6)


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}, copy.deepcopy(model.config.to_dict())


def _unchanged(model, snapshot):
    state, config = snapshot
    now = model.state_dict()
    assert now.keys() == state.keys()
    for k, v in state.items():
        assert now[k].shape == v.shape and torch.equal(now[k], v), k
    assert model.config.to_dict() == config


@pytest.mark.parametrize(
    "factory,heads,channels,match",
    [
        (tiny_llada, {0: [0, 1, 2, 3]}, None, "every head"),
        (tiny_llada, {0: [4]}, None, "out of range"),
        (tiny_llada, {0: [-1]}, None, "out of range"),
        (tiny_llada, {2: [0]}, None, "layer 2, out of range"),
        (tiny_llada, {0: [1, 1]}, None, "repeats"),
        (tiny_llada, {0: ["a"]}, None, "integer"),
        (tiny_dream, {0: [1]}, None, "splits kv group 0"),
        (tiny_dream, {0: [1, 2]}, None, "splits kv group 0"),
        (tiny_dream, {0: [0, 1, 2, 3]}, None, "every head"),
        (tiny_llada, {0: [1]}, {1: list(range(96))}, "at least one must remain"),
        (tiny_llada, {0: [1]}, {1: [96]}, "out of range"),
    ],
)
def test_bad_requests_raise_before_any_change(factory, heads, channels, match):
    model = factory()
    snapshot = _snapshot(model)
    with pytest.raises(ValueError, match=match):
        prune_structure(model, heads=heads, channels=channels)
    _unchanged(model, snapshot)


def test_bad_mode_and_min_heads():
    model = tiny_llada()
    snapshot = _snapshot(model)
    with pytest.raises(ValueError, match="mode='zero'"):
        remove_heads(model, {0: [1]}, mode="zero")
    with pytest.raises(ValueError, match="at least 3 must remain"):
        remove_heads(model, {0: [1, 2]}, min_heads_per_layer=3)
    _unchanged(model, snapshot)


def test_mask_mode_leaves_structure_keys(ids):
    model = tiny_llada()
    remove_heads(model, {0: [1]}, mode="mask")
    assert model.config.pruned_heads == {}
    assert model.config.mlp_hidden_sizes is None
    assert all(p.shape == q.shape for p, q in zip(model.parameters(), tiny_llada().parameters()))


def test_native_mlp_attribute_updated():
    model = FACTORIES["llama"]()
    remove_mlp_channels(model, {1: [0, 1, 2]})
    assert model.model.layers[1].mlp.intermediate_size == 93
    assert model.config.intermediate_sizes == [96, 93]
    assert model.config.intermediate_size == 96  # global field untouched (strict validation)
    assert "dream" in GQA
