# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Turn a parameter budget and scores into which head units and MLP channels to remove (pure functions).

A *head unit* is the smallest piece of attention that can be removed: one head under multi-head attention, one kv
group (its query heads plus its key/value head) under grouped-query attention.

Budget rule (docs/structured.md):
* `target_param_reduction = r`: remove T = round(r · block parameters). The same fraction f = T / (A + M) is taken
  from the removable attention parameters A and the MLP parameters M: head units = round(f · A / unit cost), then
  MLP channels = round((T − removed attention) / channel cost), so the realised count is within half a channel of T
  (or of one head unit when the MLP is exhausted). Norm weights are never removed.
* `head_ratio` / `mlp_ratio` (instead of a target): round(ratio · present head units / channels) are removed.

Layers whose head units differ in size (DiffusionGemma's sliding and full-attention layers: their own head size and
kv-head count) cannot state the attention share as a number of units before the scores pick the layers. There the
attention share is a parameter count, A_T = min(round(f · A), what the capacities allow), with A the attention of the
layers that can lose a unit (`solve_layered_budget`);
after scoring, units are taken in removal order (`removal_order`: the `allocation`'s order), each one that brings
the removed attention parameters closer to A_T (`take_to_params`), and the MLP channels take the rest as above. With
one unit size this is the rule above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..configuration import ALLOCATIONS, check_budget_removes_something  # the allowed values live with the config


@dataclass(frozen=True)
class UnitCosts:
    """Parameters removed with one head unit and with one MLP channel."""

    head_unit: int
    channel: int


@dataclass(frozen=True)
class Budget:
    """How many head units and MLP channels to remove in total."""

    head_units: int
    channels: int
    target_params: int | None

    def params(self, costs: UnitCosts) -> int:
        return self.head_units * costs.head_unit + self.channels * costs.channel


def _check_fraction(name: str, value) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value < 1
    if not ok:
        raise ValueError(f"{name}={value!r} is not allowed; it must be a number in [0, 1)")


def validate_budget_args(target_param_reduction, head_ratio, mlp_ratio) -> None:
    """Exactly one way of stating the budget, each value in [0, 1)."""
    explicit = head_ratio is not None or mlp_ratio is not None
    if target_param_reduction is not None and explicit:
        raise ValueError(
            f"give either target_param_reduction (={target_param_reduction}) or head_ratio/mlp_ratio "
            f"(={head_ratio}/{mlp_ratio}), not both"
        )
    if target_param_reduction is None and not explicit:
        raise ValueError("structured pruning needs target_param_reduction or head_ratio/mlp_ratio")
    for name, value in (("target_param_reduction", target_param_reduction), ("head_ratio", head_ratio),
                        ("mlp_ratio", mlp_ratio)):
        if value is not None:
            _check_fraction(name, value)
    check_budget_removes_something(target_param_reduction, head_ratio, mlp_ratio)


def _reachable_target(target_param_reduction: float, block_params: int, *, most: int, channel_cost: int) -> int:
    """round(target_param_reduction · block_params), the parameters to remove; `most` is what the capacities allow
    (a target within half a channel of it is met by rounding).

    Raises:
        `ValueError`: the target is more than the capacities allow.
    """
    target = round(target_param_reduction * block_params)
    if target > most + channel_cost / 2:
        raise ValueError(
            f"target_param_reduction={target_param_reduction} asks for {target} of {block_params} block parameters, "
            f"but at most {most} can be removed while keeping min_heads_per_layer heads and one MLP channel per layer"
        )
    return target


def solve_budget(
    *,
    block_params: int,
    head_units_present: int,
    head_units_capacity: int,
    channels_present: int,
    channels_capacity: int,
    costs: UnitCosts,
    target_param_reduction: float | None = None,
    head_ratio: float | None = None,
    mlp_ratio: float | None = None,
) -> Budget:
    """Head units and channels to remove (module docstring: the rule). Capacities are what may go while keeping
    `min_heads_per_layer` heads and one channel per layer.

    Raises:
        `ValueError`: bad fractions, both kinds of budget, or a target the capacities cannot reach.
    """
    validate_budget_args(target_param_reduction, head_ratio, mlp_ratio)
    if target_param_reduction is None:
        heads = round((head_ratio or 0.0) * head_units_present)
        channels = round((mlp_ratio or 0.0) * channels_present)
        if heads > head_units_capacity:
            raise ValueError(
                f"head_ratio={head_ratio} asks for {heads} of {head_units_present} head units, but at most "
                f"{head_units_capacity} can go while keeping min_heads_per_layer heads in every layer"
            )
        return Budget(heads, min(channels, channels_capacity), None)
    target = _reachable_target(target_param_reduction, block_params,
                               most=head_units_capacity * costs.head_unit + channels_capacity * costs.channel,
                               channel_cost=costs.channel)
    attention = head_units_present * costs.head_unit
    mlp = channels_present * costs.channel
    fraction = target / max(attention + mlp, 1)
    heads = min(round(fraction * attention / costs.head_unit), head_units_capacity)
    channels = round((target - heads * costs.head_unit) / costs.channel)
    if channels > channels_capacity:  # MLP exhausted: attention takes the rest
        channels = channels_capacity
        heads = min(head_units_capacity, round((target - channels * costs.channel) / costs.head_unit))
    return Budget(heads, max(channels, 0), target)


def _order(scores: torch.Tensor) -> list[int]:
    """Indices of the finite scores, lowest first (ties: lower index first)."""
    finite = [i for i in range(scores.numel()) if math.isfinite(float(scores[i]))]
    return sorted(finite, key=lambda i: (float(scores[i]), i))


def allocate(
    scores: list[torch.Tensor], total: int, *, capacity: list[int], allocation: str
) -> dict[int, list[int]]:
    """Pick `total` lowest-scored units across layers.

    Args:
        scores: one 1-D tensor per layer (NaN = not available).
        total: how many units to remove.
        capacity: the most units each layer may lose.
        allocation: `"uniform"` (every layer loses ⌊total / layers⌋ or one more, as its capacity allows; the extra
            ones go to the layers whose next candidate scores lowest) or `"global"` (one ranking over all layers).

    Returns:
        {layer: sorted unit indices} (layers with nothing removed are omitted).
    """
    order = removal_order(scores, capacity=capacity, allocation=allocation)
    if total > len(order):
        raise ValueError(f"cannot remove {total} units: only {len(order)} are removable under the per-layer limits")
    counts = [0] * len(scores)
    for layer, _ in order[:total]:
        counts[layer] += 1
    # each layer's lowest-scored units, as many as the order takes from it
    orders = [_order(s)[: max(c, 0)] for s, c in zip(scores, capacity)]
    return {layer: sorted(orders[layer][: counts[layer]]) for layer in range(len(orders)) if counts[layer]}


def removal_order(scores: list[torch.Tensor], *, capacity: list[int], allocation: str) -> list[tuple[int, int]]:
    """Every removable (layer, unit), in the order `allocation` removes them: `"global"` by score over all layers
    (ties: lower layer, then lower unit); `"uniform"` in rounds, each open layer (capacity left) giving its next
    lowest-scored unit, the layers of a round ordered by that unit's score (ties: lower layer). The first `total`
    entries are what `allocate(scores, total, ...)` picks.

    Args:
        scores: one 1-D tensor per layer (NaN = not available).
        capacity: the most units each layer may lose.
        allocation: `"uniform"` or `"global"`.
    """
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation={allocation!r} is not one of {ALLOCATIONS}")
    orders = [_order(s)[: max(c, 0)] for s, c in zip(scores, capacity)]
    if allocation == "global":
        ranked = sorted(
            ((float(scores[layer][u]), layer, u) for layer, order in enumerate(orders) for u in order),
            key=lambda x: (x[0], x[1], x[2]),
        )
        return [(layer, u) for _, layer, u in ranked]
    out: list[tuple[int, int]] = []
    taken = [0] * len(orders)
    while True:
        open_layers = [i for i in range(len(orders)) if taken[i] < len(orders[i])]
        if not open_layers:
            return out
        for i in sorted(open_layers, key=lambda i: (float(scores[i][orders[i][taken[i]]]), i)):
            out.append((i, orders[i][taken[i]]))
            taken[i] += 1


def take_to_params(order: list[tuple[int, int]], unit_costs: list[int], target: int) -> dict[int, list[int]]:
    """Units of `order`, taken in that order, each one that brings the removed parameters closer to `target`
    (total + cost / 2 < target); a unit that would overshoot by more than it adds is skipped (a smaller unit further
    on may still fit). Pure.

    Args:
        order: (layer, unit) in removal order (`removal_order`).
        unit_costs: parameters of one unit of each layer.
        target: attention parameters to remove.

    Returns:
        {layer: sorted unit indices} (layers with nothing removed are omitted).
    """
    out: dict[int, list[int]] = {}
    total = 0
    for layer, unit in order:
        cost = unit_costs[layer]
        if total + cost / 2 >= target:
            continue
        out.setdefault(layer, []).append(unit)
        total += cost
    return {layer: sorted(units) for layer, units in sorted(out.items())}


@dataclass(frozen=True)
class LayeredBudget:
    """The budget of layers whose head units differ in size: the attention parameters to remove (`attention_params`,
    None under `head_ratio`, where `head_units` counts units) and, before the scores pick the units, the MLP channels
    (`channels`; `channels_for` gives the final count once the removed attention is known)."""

    head_units: int | None
    attention_params: int | None
    channels: int
    target_params: int | None
    channel_cost: int
    channels_capacity: int

    def channels_for(self, removed_attention: int) -> int:
        """MLP channels that bring the removal closest to the target, given the attention parameters removed."""
        if self.target_params is None:
            return self.channels
        return min(max(round((self.target_params - removed_attention) / self.channel_cost), 0),
                   self.channels_capacity)


def solve_layered_budget(
    *,
    block_params: int,
    unit_costs: list[int],
    head_units_present: list[int],
    head_units_capacity: list[int],
    channels_present: int,
    channels_capacity: int,
    channel_cost: int,
    target_param_reduction: float | None = None,
    head_ratio: float | None = None,
    mlp_ratio: float | None = None,
) -> LayeredBudget:
    """The budget when each layer's head unit has its own size (`unit_costs[layer]`); module docstring: the rule.

    Raises:
        `ValueError`: bad fractions, both kinds of budget, or a target the capacities cannot reach.
    """
    validate_budget_args(target_param_reduction, head_ratio, mlp_ratio)
    present_units, capacity_units = sum(head_units_present), sum(head_units_capacity)
    if target_param_reduction is None:
        base = solve_budget(block_params=block_params, head_units_present=present_units,
                            head_units_capacity=capacity_units, channels_present=channels_present,
                            channels_capacity=channels_capacity, costs=UnitCosts(1, channel_cost),
                            head_ratio=head_ratio, mlp_ratio=mlp_ratio)
        return LayeredBudget(base.head_units, None, base.channels, None, channel_cost, channels_capacity)
    attention_capacity = sum(u * c for u, c in zip(head_units_capacity, unit_costs))
    target = _reachable_target(target_param_reduction, block_params,
                               most=attention_capacity + channels_capacity * channel_cost, channel_cost=channel_cost)
    # layers that cannot lose a unit (min_heads_per_layer) are left out of A: their share would fall on the others
    attention = sum(u * c for u, c, cap in zip(head_units_present, unit_costs, head_units_capacity) if cap > 0)
    mlp = channels_present * channel_cost
    fraction = target / max(attention + mlp, 1)
    attention_target = min(round(fraction * attention), attention_capacity)
    if round((target - attention_target) / channel_cost) > channels_capacity:  # MLP exhausted: attention takes the rest
        attention_target = min(attention_capacity, target - channels_capacity * channel_cost)
    channels = min(max(round((target - attention_target) / channel_cost), 0), channels_capacity)
    return LayeredBudget(None, attention_target, channels, target, channel_cost, channels_capacity)


def units_to_heads(units: dict[int, list[int]], group_size: int | list[int]) -> dict[int, list[int]]:
    """Expand head units (kv groups) to their original query-head indices (`group_size`: one for every layer, or
    one per layer)."""
    sizes = group_size if isinstance(group_size, list) else None
    return {
        layer: sorted(g * (sizes[layer] if sizes else group_size) + i for g in groups
                      for i in range(sizes[layer] if sizes else group_size))
        for layer, groups in units.items()
    }


__all__ = [
    "ALLOCATIONS",
    "Budget",
    "LayeredBudget",
    "UnitCosts",
    "allocate",
    "removal_order",
    "solve_budget",
    "solve_layered_budget",
    "take_to_params",
    "units_to_heads",
    "validate_budget_args",
]
