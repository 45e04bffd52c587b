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
    target = round(target_param_reduction * block_params)
    most = head_units_capacity * costs.head_unit + channels_capacity * costs.channel
    if target > most + costs.channel / 2:
        raise ValueError(
            f"target_param_reduction={target_param_reduction} asks for {target} of {block_params} block parameters, "
            f"but at most {most} can be removed while keeping min_heads_per_layer heads and one MLP channel per layer"
        )
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
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation={allocation!r} is not one of {ALLOCATIONS}")
    orders = [_order(s)[: max(c, 0)] for s, c in zip(scores, capacity)]
    available = sum(len(o) for o in orders)
    if total > available:
        raise ValueError(f"cannot remove {total} units: only {available} are removable under the per-layer limits")
    counts = [0] * len(scores)
    if allocation == "global":
        ranked = sorted(
            ((float(scores[layer][u]), layer, u) for layer, order in enumerate(orders) for u in order),
            key=lambda x: (x[0], x[1], x[2]),
        )
        for _, layer, _u in ranked[:total]:
            counts[layer] += 1
    else:
        left = total
        while left > 0:
            open_layers = [i for i in range(len(orders)) if counts[i] < len(orders[i])]
            if len(open_layers) <= left:
                for i in open_layers:
                    counts[i] += 1
                left -= len(open_layers)
            else:  # a partial round: the layers whose next candidate scores lowest
                nxt = sorted(open_layers, key=lambda i: (float(scores[i][orders[i][counts[i]]]), i))
                for i in nxt[:left]:
                    counts[i] += 1
                left = 0
    return {layer: sorted(orders[layer][: counts[layer]]) for layer in range(len(orders)) if counts[layer]}


def units_to_heads(units: dict[int, list[int]], group_size: int) -> dict[int, list[int]]:
    """Expand head units (kv groups) to their original query-head indices."""
    return {
        layer: sorted(g * group_size + i for g in groups for i in range(group_size)) for layer, groups in units.items()
    }


__all__ = [
    "ALLOCATIONS",
    "Budget",
    "UnitCosts",
    "allocate",
    "solve_budget",
    "units_to_heads",
    "validate_budget_args",
]
