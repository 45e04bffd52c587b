# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The adapters' surgery and naming API on every family: locate round trips, projection replacement and slicing,
head-count and MLP-width attributes, resizing for reload, q/k post-processing, attention scale, noise defaults, and
that one adapter instance serves a whole structured removal."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch
from torch import nn

from optimum_sinkprune.adapters import ALL_ROLES, NoiseDefaults, get_adapter
from optimum_sinkprune.adapters.surgery import linear_like, sliced_linear, zero_linear_
from optimum_sinkprune.calibration.noise import NoiseSchedule
from optimum_sinkprune.structured import removal

FAMILIES = ["tiny_llada", "tiny_dream", "tiny_llama", "tiny_qwen2"]


@pytest.mark.parametrize("fixture", FAMILIES)
def test_locate_round_trips_module_and_parameter_names(fixture, request):
    model = request.getfixturevalue(fixture)
    adapter = get_adapter(model)
    params = dict(model.named_parameters())
    for i in range(adapter.num_layers(model)):
        for role in ALL_ROLES:
            name = adapter.projection_name(i, role)
            assert adapter.locate(name) == (i, role)
            assert adapter.locate(name + ".weight") == (i, role)
            assert name + ".weight" in params
    # every block parameter of a projection is located; norms and embeddings are not projections
    located = [n for n in params if n.startswith(adapter.block_name(0) + ".")]
    for name in located:
        try:
            index, role = adapter.locate(name)
        except ValueError:
            assert not any(name.startswith(adapter.projection_name(0, r) + ".") for r in ALL_ROLES)
        else:
            assert index == 0 and name.startswith(adapter.projection_name(0, role) + ".")


@pytest.mark.parametrize("fixture", FAMILIES)
def test_locate_rejects_other_names(fixture, request):
    model = request.getfixturevalue(fixture)
    adapter = get_adapter(model)
    q = adapter.projection_name(1, "q")
    bad = [
        "lm_head.weight",
        adapter.block_name(0),
        adapter.block_name(0) + "." + adapter.layout.input_norm + ".weight",
        q.replace(".1.", ".x."),
        q + ".weight.extra",
        q + "_suffix",
        "prefix." + q,
    ]
    for name in bad:
        with pytest.raises(ValueError, match="is not a block projection") as err:
            adapter.locate(name)
        assert repr(name) in str(err.value)


def test_input_groups_pair_roles_that_read_one_tensor(tiny_llada):
    adapter = get_adapter(tiny_llada)
    groups = {role: adapter.input_group(role) for role in ALL_ROLES}
    assert groups["q"] == groups["k"] == groups["v"] and groups["gate"] == groups["up"]
    assert len({groups["q"], groups["o"], groups["gate"], groups["down"]}) == 4
    with pytest.raises(ValueError, match="role='qkv'"):
        adapter.input_group("qkv")


@pytest.mark.parametrize("fixture", FAMILIES)
def test_replace_and_slice_projection(fixture, request, randomize):
    model = randomize(request.getfixturevalue(fixture), seed=5)
    adapter = get_adapter(model)
    block = adapter.blocks(model)[0]
    new = nn.Linear(64, 3)
    adapter.replace_projection(block, "up", new)
    assert adapter.projection(block, "up") is new
    assert dict(model.named_modules())[adapter.projection_name(0, "up")] is new
    old_q = adapter.projection(block, "q")
    rows, cols = torch.tensor([3, 0, 17]), torch.tensor([1, 2, 63])
    expected_w = old_q.weight.detach()[rows][:, cols].clone()
    expected_b = old_q.bias.detach()[rows].clone() if old_q.bias is not None else None
    sliced = adapter.slice_projection(block, "q", rows=rows, cols=cols)
    assert adapter.projection(block, "q") is sliced and sliced is not old_q
    assert torch.equal(sliced.weight, expected_w)
    assert (sliced.bias is None) == (expected_b is None)
    assert expected_b is None or torch.equal(sliced.bias, expected_b)
    down = adapter.projection(block, "down")
    adapter.zero_projection(block, "down", cols=torch.tensor([0, 5]))
    assert adapter.projection(block, "down") is down
    assert not down.weight[:, [0, 5]].any() and down.weight[:, 1].abs().sum() > 0
    with pytest.raises(ValueError, match="role='qkv'"):
        adapter.replace_projection(block, "qkv", new)
    with pytest.raises(ValueError, match="new_linear must be an nn.Module"):
        adapter.replace_projection(block, "q", torch.zeros(2, 2))


def test_pure_linear_helpers():
    torch.manual_seed(0)
    lin = nn.Linear(4, 6)
    cut = sliced_linear(lin, rows=torch.tensor([5, 1]))
    assert torch.equal(cut.weight, lin.weight[[5, 1]]) and torch.equal(cut.bias, lin.bias[[5, 1]])
    fresh = linear_like(lin, 3, 2)
    assert (fresh.in_features, fresh.out_features, fresh.bias is not None) == (3, 2, True)
    zero_linear_(lin, rows=torch.tensor([0]), cols=torch.tensor([3]))
    assert not lin.weight[0].any() and lin.bias[0] == 0 and not lin.weight[:, 3].any() and lin.weight[1, 0] != 0


@pytest.mark.parametrize("fixture,attributes", [
    ("tiny_llada", {"num_heads": 2, "num_kv_heads": 2, "num_key_value_groups": 1}),
    ("tiny_dream", {"num_heads": 2, "num_kv_heads": 1, "num_key_value_groups": 2}),
    ("tiny_llama", {"num_key_value_groups": 2}),
])
def test_set_head_count_updates_the_attributes_a_module_has(fixture, attributes, request):
    model = request.getfixturevalue(fixture)
    adapter = get_adapter(model)
    block = adapter.blocks(model)[0]
    attention = adapter.attention_module(block)
    heads, kv = (2, 2) if fixture == "tiny_llada" else (2, 1)
    attention.num_key_value_groups = -1  # so the test sees it rewritten
    adapter.set_head_count(block, heads, kv)
    for name, value in attributes.items():
        assert getattr(attention, name) == value
    for name in {"num_heads", "num_kv_heads", "num_key_value_heads"} - set(attributes):
        assert not hasattr(attention, name)  # never adds attributes a module does not have


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_llada"])
def test_set_mlp_width(fixture, request):
    model = request.getfixturevalue(fixture)
    adapter = get_adapter(model)
    block = adapter.blocks(model)[1]
    mlp = adapter.mlp_module(block)
    had = hasattr(mlp, "intermediate_size")
    adapter.set_mlp_width(block, 40)
    assert had == hasattr(mlp, "intermediate_size") and (not had or mlp.intermediate_size == 40)


def test_resize_block_builds_the_pruned_shapes_and_keeps_the_rest(tiny_llama):
    adapter = get_adapter(tiny_llama)
    block = adapter.blocks(tiny_llama)[0]
    keep = {r: adapter.projection(block, r) for r in ("gate", "up", "down")}
    adapter.resize_block(block, hidden_size=64, head_dim=16, num_heads=2, num_kv_heads=1, mlp_width=96)
    shapes = {r: tuple(adapter.projection(block, r).weight.shape) for r in ALL_ROLES}
    assert shapes["q"] == (32, 64) and shapes["k"] == shapes["v"] == (16, 64) and shapes["o"] == (64, 32)
    assert all(adapter.projection(block, r) is keep[r] for r in keep)  # width unchanged: same modules
    assert adapter.attention_module(block).num_key_value_groups == 2
    adapter.resize_block(block, hidden_size=64, head_dim=16, num_heads=2, num_kv_heads=1, mlp_width=24)
    assert adapter.projection(block, "down").in_features == 24 and adapter.mlp_module(block).intermediate_size == 24
    assert adapter.num_heads(tiny_llama, 0) == 2 and adapter.mlp_width(tiny_llama, 0) == 24


class _Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def test_qk_postprocess_llada_norms_and_clip(tiny_llada):
    adapter = get_adapter(tiny_llada)
    block = adapter.blocks(tiny_llada)[0]
    q, k = torch.linspace(-3, 3, 12).reshape(1, 2, 6), torch.linspace(-1, 1, 12).reshape(1, 2, 6)
    same_q, same_k = adapter.qk_postprocess(block, q, k, config=tiny_llada.config)
    assert torch.equal(same_q, q) and torch.equal(same_k, k)  # no norms, no clip configured
    block.q_norm, block.k_norm = _Scale(2.0), _Scale(3.0)
    tiny_llada.config.clip_qkv = 2.5
    got_q, got_k = adapter.qk_postprocess(block, q, k, config=tiny_llada.config)
    torch.testing.assert_close(got_q, (2 * q).clamp(-2.5, 2.5))
    torch.testing.assert_close(got_k, (3 * k).clamp(-2.5, 2.5))
    del block.k_norm  # only both norms together are applied (as the Hub code defines them)
    got_q, _ = adapter.qk_postprocess(block, q, k, config=tiny_llada.config)
    torch.testing.assert_close(got_q, q.clamp(-2.5, 2.5))


@pytest.mark.parametrize("fixture", ["tiny_dream", "tiny_llama", "tiny_qwen2"])
def test_qk_postprocess_is_identity_for_qwen2_layout(fixture, request):
    model = request.getfixturevalue(fixture)
    adapter = get_adapter(model)
    q, k = torch.randn(1, 3, 64), torch.randn(1, 3, 32)
    got_q, got_k = adapter.qk_postprocess(adapter.blocks(model)[0], q, k, config=model.config)
    assert got_q is q and got_k is k


@pytest.mark.parametrize("fixture", FAMILIES)
def test_attention_scaling_and_noise_defaults(fixture, request):
    model = request.getfixturevalue(fixture)
    adapter = get_adapter(model)
    block = adapter.blocks(model)[0]
    assert adapter.attention_scaling(block, adapter.head_dim(model)) == pytest.approx(16**-0.5)
    defaults = adapter.noise_defaults()
    # the paper's per-family choice: LLaDA/MMaDA t = s/K with nothing protected; Dream t ~ U(0, 1), first and last kept
    expected = ("uniform", "first_last") if fixture == "tiny_dream" else ("ladder", "none")
    assert defaults == NoiseDefaults(schedule=expected[0], protected=expected[1])
    schedule = NoiseSchedule(**asdict(defaults))
    assert (schedule.schedule, schedule.protected) == expected


def test_one_adapter_serves_a_structured_removal(tiny_dream, monkeypatch):
    """Given an adapter, removal never looks one up again; the result equals the default path's."""
    reference = get_adapter(tiny_dream)
    twin = type(tiny_dream)(tiny_dream.config.__class__(**tiny_dream.config.to_dict()))
    twin.load_state_dict(tiny_dream.state_dict())
    removal.prune_structure(twin, heads={0: [2, 3]}, channels={1: [0, 4, 7]})

    def no_lookup(model):
        raise AssertionError("get_adapter called although an adapter was passed")

    monkeypatch.setattr(removal, "get_adapter", no_lookup)
    removal.prune_structure(tiny_dream, heads={0: [2, 3]}, channels={1: [0, 4, 7]}, adapter=reference)
    assert tiny_dream.config.pruned_heads == twin.config.pruned_heads == {0: [2, 3]}
    got, want = tiny_dream.state_dict(), twin.state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)
