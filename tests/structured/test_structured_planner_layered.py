# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The planner for layers whose head units differ in size (pure functions): the removal order is the one `allocate`
picks from, units are taken to a parameter target (skipping those that overshoot), the attention share is a
parameter count and the channels fill the rest, and kv groups expand with each layer's group size."""

from __future__ import annotations

import pytest
import torch

from optimum_sinkprune.structured.planner import (
    allocate,
    removal_order,
    solve_budget,
    solve_layered_budget,
    take_to_params,
    UnitCosts,
    units_to_heads,
)


@pytest.mark.parametrize("allocation", ["uniform", "global"])
def test_every_prefix_of_the_removal_order_is_what_allocate_picks(allocation):
    gen = torch.Generator().manual_seed(0)
    scores = [torch.rand(n, generator=gen) for n in (4, 6, 3)]
    scores[1][2] = float("nan")  # a removed unit is never ordered
    capacity = [3, 5, 2]
    order = removal_order(scores, capacity=capacity, allocation=allocation)
    assert len(order) == 3 + 5 + 2 and (1, 2) not in order
    for total in range(len(order) + 1):
        prefix: dict[int, list[int]] = {}
        for layer, unit in order[:total]:
            prefix.setdefault(layer, []).append(unit)
        expected = allocate(scores, total, capacity=capacity, allocation=allocation)
        assert {k: sorted(v) for k, v in prefix.items()} == expected


def test_units_are_taken_while_they_bring_the_total_closer_and_larger_ones_are_skipped():
    order = [(1, 0), (0, 0), (0, 1), (1, 1)]
    sizes = [10, 30]
    assert take_to_params(order, sizes, 0) == {}
    assert take_to_params(order, sizes, 14) == {0: [0]}  # 30 overshoots by more than it adds: skipped
    assert take_to_params(order, sizes, 16) == {1: [0]}  # 30 is closer to 16 than 0; then 10 would overshoot more
    assert take_to_params(order, sizes, 45) == {0: [0], 1: [0]}  # 30 + 10; the next 10 lands at 50, 45 is the tie
    assert take_to_params(order, sizes, 80) == {0: [0, 1], 1: [0, 1]}


def test_the_attention_share_is_a_parameter_count_and_the_channels_fill_the_rest():
    budget = solve_layered_budget(block_params=10_000, unit_costs=[100, 300], head_units_present=[4, 2],
                                  head_units_capacity=[3, 1], channels_present=100, channels_capacity=90,
                                  channel_cost=30, target_param_reduction=0.2)
    # T = 2000; A = 1000, M = 3000: the attention share is 2000 · 1000 / 4000 = 500
    assert (budget.target_params, budget.attention_params, budget.head_units) == (2000, 500, None)
    assert budget.channels == 50 and budget.channels_for(400) == 53 and budget.channels_for(5000) == 0
    # T = 900, the MLP share (~208, 7 channels) exceeds what may go (5 channels): attention takes the rest
    small_mlp = solve_layered_budget(block_params=10_000, unit_costs=[100, 300], head_units_present=[4, 2],
                                     head_units_capacity=[4, 2], channels_present=10, channels_capacity=5,
                                     channel_cost=30, target_param_reduction=0.09)
    assert small_mlp.attention_params == 900 - 5 * 30 and small_mlp.channels == 5
    with pytest.raises(ValueError, match=r"target_param_reduction=0.5 asks for 5000 .* at most 3300"):
        solve_layered_budget(block_params=10_000, unit_costs=[100, 300], head_units_present=[4, 2],
                             head_units_capacity=[3, 1], channels_present=100, channels_capacity=90,
                             channel_cost=30, target_param_reduction=0.5)


def test_a_layer_that_cannot_lose_a_unit_is_left_out_of_the_attention_share():
    budget = solve_layered_budget(block_params=10_000, unit_costs=[100, 300], head_units_present=[4, 1],
                                  head_units_capacity=[3, 0], channels_present=100, channels_capacity=90,
                                  channel_cost=30, target_param_reduction=0.2)
    # A = 4 · 100 (the second layer keeps its only unit), M = 3000: 2000 · 400 / 3400 = 235
    assert budget.attention_params == 235 and budget.channels == round((2000 - 235) / 30)


def test_ratios_count_units_as_with_one_head_layout():
    layered = solve_layered_budget(block_params=10_000, unit_costs=[100, 300], head_units_present=[4, 2],
                                   head_units_capacity=[3, 1], channels_present=100, channels_capacity=90,
                                   channel_cost=30, head_ratio=0.5, mlp_ratio=0.25)
    single = solve_budget(block_params=10_000, head_units_present=6, head_units_capacity=4, channels_present=100,
                          channels_capacity=90, costs=UnitCosts(100, 30), head_ratio=0.5, mlp_ratio=0.25)
    assert (layered.head_units, layered.channels, layered.attention_params) == (single.head_units, 25, None)


def test_kv_groups_expand_with_each_layers_group_size():
    assert units_to_heads({0: [1], 1: [0]}, [2, 4]) == {0: [2, 3], 1: [0, 1, 2, 3]}
    assert units_to_heads({0: [1]}, 2) == {0: [2, 3]}
