# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Structured sink-aware pruning: remove whole attention heads and MLP channels (smaller, faster checkpoints).

See docs/structured.md for the methods, the grouped-query rule and the checkpoint format.
"""

from .planner import Budget, UnitCosts, allocate, solve_budget, units_to_heads
from .pruner import (
    StructuredPruningResult,
    head_weight_norms,
    o_column_norms,
    plan_structured_budget,
    prune_structured,
    score_heads_and_channels,
    unit_costs,
)
from .removal import (
    block_parameter_count,
    current_widths,
    kept_heads,
    nonzero_block_parameter_count,
    prune_structure,
    remove_heads,
    remove_mlp_channels,
)
from .statistics import StructuredStatistics, collect_structured_statistics

__all__ = [
    "Budget",
    "StructuredPruningResult",
    "StructuredStatistics",
    "UnitCosts",
    "allocate",
    "block_parameter_count",
    "collect_structured_statistics",
    "current_widths",
    "head_weight_norms",
    "kept_heads",
    "nonzero_block_parameter_count",
    "o_column_norms",
    "plan_structured_budget",
    "prune_structure",
    "prune_structured",
    "remove_heads",
    "remove_mlp_channels",
    "score_heads_and_channels",
    "solve_budget",
    "unit_costs",
    "units_to_heads",
]
