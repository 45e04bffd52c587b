# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
import math
from dataclasses import dataclass

import pytest
import torch

from optimum_sinkprune.structured import block_parameter_count, prune_structured, unit_costs
from optimum_sinkprune.structured.planner import UnitCosts, allocate, solve_budget

from structured_models import tiny_dream, tiny_llada


@dataclass
class StandIn:
    """Any object carrying the structured fields works (SinkAwarePruningConfig is one)."""

    method: str = "magnitude_heads"
    target_param_reduction: float | None = 0.38
    head_ratio: float | None = None
    mlp_ratio: float | None = None
    allocation: str = "uniform"
    structured_mode: str = "remove"
    instability_weight: float = 1.0
    min_heads_per_layer: int = 1
    seed: int = 0
    batch_size: int = 2
    diffusion_steps: int = 10
    sample_interval: int = 5
    noise_eps: float = 1e-3
    sink_std: float = 2.0
    sink_alpha: float = 5.0


def count_block_params_by_hand(model) -> int:
    """Independent count from the config formulas: per layer q,k,v,o + gate,up,down + two norms."""
    c = model.config
    d, hd = c.d_model, c.d_model // c.n_heads
    total = 0
    for i in range(c.n_layers):
        heads = c.n_heads - len(c.pruned_heads.get(i, []))
        width = c.mlp_hidden_sizes[i] if c.mlp_hidden_sizes else c.mlp_hidden_size
        total += 4 * d * heads * hd + 3 * d * width + 2 * d
    return total


def test_unit_costs_match_shapes():
    llada, dream = tiny_llada(), tiny_dream()
    assert unit_costs(llada) == UnitCosts(head_unit=4 * 64 * 16, channel=3 * 64)
    # Dream: q/k/v biases, groups of 2 query heads: 2·(q 16·65 + o 16·64) + k,v 2·16·65
    assert unit_costs(dream) == UnitCosts(head_unit=2 * (16 * 65 + 16 * 64) + 2 * 16 * 65, channel=3 * 64)


@pytest.mark.parametrize("target", [0.05, 0.2, 0.38, 0.5, 0.7])
@pytest.mark.parametrize("allocation", ["uniform", "global"])
@pytest.mark.parametrize("factory", [tiny_llada, tiny_dream])
def test_realised_params_match_budget(target, allocation, factory):
    model = factory()
    before = block_parameter_count(model)
    costs = unit_costs(model)
    result = prune_structured(model, config=StandIn(target_param_reduction=target, allocation=allocation),
                              calibration_ids=None, progress=False)
    after = block_parameter_count(model)
    assert result.params_before == before and result.params_after == after
    # within one channel (the MLP absorbs the rounding of the head count)
    assert abs((before - after) - target * before) <= costs.channel
    assert math.isclose(result.realised_reduction, 1 - after / before)
    assert all(r["heads_left"] >= 1 for r in result.per_layer)
    if factory is tiny_llada:
        assert after == count_block_params_by_hand(model)


def test_same_fraction_from_attention_and_mlp():
    model = tiny_llada(n_layers=4, n_heads=8, d_model=128, mlp_hidden_size=384)
    result = prune_structured(model, config=StandIn(target_param_reduction=0.25), calibration_ids=None, progress=False)
    heads_removed = sum(len(v) for v in result.pruned_heads.values())
    channels_removed = 4 * 384 - sum(result.mlp_widths)
    assert heads_removed == 8  # 25% of 32 heads
    assert abs(channels_removed / (4 * 384) - 0.25) < 0.01
    assert [len(result.pruned_heads.get(i, [])) for i in range(4)] == [2, 2, 2, 2]  # uniform


def test_explicit_ratios():
    model = tiny_llada(n_layers=2, n_heads=8)
    result = prune_structured(model, config=StandIn(target_param_reduction=None, head_ratio=0.5, mlp_ratio=0.25),
                              calibration_ids=None, progress=False)
    assert sum(len(v) for v in result.pruned_heads.values()) == 8
    assert result.mlp_widths == [72, 72]


def test_min_heads_per_layer_caps_heads_and_mlp_absorbs():
    model = tiny_llada(n_layers=2, n_heads=4)
    result = prune_structured(model, config=StandIn(target_param_reduction=0.6, min_heads_per_layer=3),
                              calibration_ids=None, progress=False)
    assert all(len(v) <= 1 for v in result.pruned_heads.values())
    assert abs((result.params_before - result.params_after) - 0.6 * result.params_before) <= unit_costs(model).channel


@pytest.mark.parametrize(
    "changes,match",
    [
        (dict(target_param_reduction=1.0), "target_param_reduction=1.0"),
        (dict(target_param_reduction=-0.1), "target_param_reduction=-0.1"),
        (dict(target_param_reduction=None), "needs target_param_reduction"),
        (dict(head_ratio=0.2), "not both"),
        (dict(target_param_reduction=None, head_ratio=1.5), "head_ratio=1.5"),
        (dict(allocation="layerwise"), "allocation='layerwise'"),
        (dict(structured_mode="prune"), "structured_mode='prune'"),
        (dict(min_heads_per_layer=0), "min_heads_per_layer=0"),
        (dict(method="wanda"), "method='wanda'"),
        (dict(method="sink_heads"), "needs calibration_ids"),
        (dict(target_param_reduction=0.99), "at most"),
        (dict(target_param_reduction=None, head_ratio=0.9, min_heads_per_layer=2), "at most"),
    ],
)
def test_bad_budget_raises_before_any_change(changes, match):
    model = tiny_llada()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=match):
        prune_structured(model, config=StandIn(**changes), calibration_ids=None, progress=False)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert model.config.pruned_heads == {} and model.config.mlp_hidden_sizes is None


def test_solve_budget_rule():
    costs = UnitCosts(head_unit=100, channel=10)
    b = solve_budget(block_params=10_000, head_units_present=40, head_units_capacity=30, channels_present=600,
                     channels_capacity=590, costs=costs, target_param_reduction=0.3)
    # A = 4000, M = 6000, T = 3000 -> f = 0.3: 12 head units (1200), then 180 channels (1800)
    assert (b.head_units, b.channels, b.target_params) == (12, 180, 3000)


def _reference_global(scores, total, capacity):
    flat = sorted((float(s[u]), layer, u) for layer, s in enumerate(scores) for u in range(len(s))
                  if math.isfinite(float(s[u])))
    counts, out = [0] * len(scores), {}
    for value, layer, u in flat:
        if sum(counts) == total:
            break
        if counts[layer] < capacity[layer]:
            counts[layer] += 1
            out.setdefault(layer, []).append(u)
    return {k: sorted(v) for k, v in out.items()}


def test_allocate_global_matches_reference_and_uniform_is_balanced():
    gen = torch.Generator().manual_seed(0)
    scores = [torch.rand(8, generator=gen) for _ in range(5)]
    scores[2][3] = float("nan")  # already removed
    capacity = [7, 7, 2, 7, 7]
    for total in (0, 3, 11, 20):
        assert allocate(scores, total, capacity=capacity, allocation="global") == _reference_global(
            scores, total, capacity)
        uniform = allocate(scores, total, capacity=capacity, allocation="uniform")
        counts = [len(uniform.get(i, [])) for i in range(5)]
        assert sum(counts) == total
        open_counts = [c for i, c in enumerate(counts) if c < capacity[i]]
        assert not open_counts or max(open_counts) - min(open_counts) <= 1
        for layer, units in uniform.items():  # the lowest scores of each layer
            order = sorted((float(scores[layer][u]), u) for u in range(8) if math.isfinite(float(scores[layer][u])))
            assert units == sorted(u for _, u in order[: len(units)])
        assert 3 not in uniform.get(2, [])
