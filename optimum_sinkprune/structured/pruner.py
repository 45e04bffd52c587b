# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`prune_structured`: score heads and MLP channels, plan to a budget, remove (or mask) them, report."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import torch
from torch import nn

from ..adapters import get_adapter
from ..adapters.base import ModelAdapter
from ..calibration.noise import NoiseSchedule
from ..calibration.pipeline import block_names
from ..configuration import ALLOCATIONS, STRUCTURED_MODES
from ..offload import check_not_offloaded
from ..registry import MethodSpec, get_method, method_names
from ..validation import check_choice
from . import scoring
from .planner import (
    Budget,
    UnitCosts,
    allocate,
    removal_order,
    solve_budget,
    solve_layered_budget,
    take_to_params,
    units_to_heads,
    validate_budget_args,
)
from .removal import (
    HeadGeometry,
    block_parameter_count,
    current_widths,
    head_geometry,
    kept_heads,
    layer_geometries,
    nonzero_block_parameter_count,
    prune_structure,
)
from .statistics import StructuredStatistics, collect_structured_statistics

logger = logging.getLogger(__name__)

@dataclass
class StructuredPruningResult:
    """What `prune_structured` did. `to_dict()` is JSON-able."""

    method: str
    mode: str
    pruned_heads: dict[int, list[int]]  # every head now removed/zeroed, original indices
    mlp_widths: list[int]  # per-layer MLP width after the run (mask mode: non-masked channels)
    removed_heads: dict[int, list[int]]  # heads this run removed
    removed_channels: dict[int, list[int]]  # channel positions this run removed (positions before the run)
    params_before: int  # block parameters before
    params_after: int  # block parameters after (mask mode: non-zero block parameters)
    target_params: int | None
    per_layer: list[dict[str, Any]] = field(default_factory=list)
    scores_summary: dict[str, Any] = field(default_factory=dict)

    @property
    def realised_reduction(self) -> float:
        return 1.0 - self.params_after / self.params_before if self.params_before else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["pruned_heads"] = {str(k): v for k, v in self.pruned_heads.items()}
        out["removed_heads"] = {str(k): v for k, v in self.removed_heads.items()}
        out["removed_channels"] = {str(k): v for k, v in self.removed_channels.items()}
        out["realised_reduction"] = self.realised_reduction
        return out


# ---------------------------------------------------------------------------------------------------------------------
# weight statistics (read the model, no forward)
# ---------------------------------------------------------------------------------------------------------------------
def _per_head(model: nn.Module, adapter: ModelAdapter, fn) -> torch.Tensor:
    """[layers, original heads] of fn(block, current position, kv position, head size), each layer by its own head
    layout (`removal.layer_geometries`); removed heads (and, where layers have different head counts, the positions
    past a layer's count) NaN."""
    geometries = layer_geometries(model, adapter)
    pruned = adapter.pruned_heads(model)
    out = torch.full((len(geometries), max(g.num_heads for g in geometries)), float("nan"))
    for i, block in enumerate(adapter.blocks(model)):
        geometry = geometries[i]
        current = kept_heads(geometry.num_heads, pruned.get(i, []))
        groups = sorted({h // geometry.group_size for h in current})
        for p, h in enumerate(current):
            out[i, h] = fn(block, p, groups.index(h // geometry.group_size), geometry.head_dim)
    return out


def o_column_norms(model: nn.Module, adapter: ModelAdapter | None = None) -> torch.Tensor:
    """‖W_o[:, cols(h)]‖_F per head: [layers, original heads] (removed heads NaN)."""
    adapter = adapter or get_adapter(model)

    def fn(block, p, _g, hd):
        w = adapter.projection(block, "o").weight.detach().float()
        return float(w[:, p * hd:(p + 1) * hd].norm())

    return _per_head(model, adapter, fn)


def head_weight_norms(model: nn.Module, adapter: ModelAdapter | None = None) -> torch.Tensor:
    """Magnitude baseline: ‖[W_q rows; W_k rows; W_v rows; W_oᵀ cols]‖_F per head (k/v: the head's kv head; a layer
    whose keys double as values has no v rows)."""
    adapter = adapter or get_adapter(model)

    def fn(block, p, g, hd):
        proj = adapter.projections(block)
        sq = proj["q"].weight.detach().float()[p * hd:(p + 1) * hd].square().sum()
        sq = sq + proj["o"].weight.detach().float()[:, p * hd:(p + 1) * hd].square().sum()
        for role in ("k", "v"):
            if role in proj:
                sq = sq + proj[role].weight.detach().float()[g * hd:(g + 1) * hd].square().sum()
        return float(sq.sqrt())

    return _per_head(model, adapter, fn)


def channel_weight_norms(model: nn.Module, adapter: ModelAdapter | None = None) -> tuple[list, list]:
    """Per layer: (‖W_down[:, c]‖₂, ‖[W_gate[c]; W_up[c]; W_down[:, c]]‖₂) for every current channel c."""
    adapter = adapter or get_adapter(model)
    down, full = [], []
    for block in adapter.blocks(model):
        proj = adapter.projections(block)
        d = proj["down"].weight.detach().float().square().sum(dim=0)
        full_sq = d
        for role in ("gate", "up"):  # an ungated MLP (BERT) has no gate: its channels are the up rows alone
            if role in proj:
                full_sq = full_sq + proj[role].weight.detach().float().square().sum(dim=1)
        down.append(d.sqrt())
        full.append(full_sq.sqrt())
    return down, full


def unit_costs(model: nn.Module, adapter: ModelAdapter | None = None) -> UnitCosts:
    """Parameters removed with one head unit (one head, or one kv group) and with one MLP channel (those of layer 0;
    `layer_unit_costs` gives every layer's)."""
    adapter = adapter or get_adapter(model)
    return _layer_costs(adapter, adapter.blocks(model)[0], head_geometry(model, adapter))


def layer_unit_costs(model: nn.Module, adapter: ModelAdapter | None = None) -> list[UnitCosts]:
    """`unit_costs` of every layer, each by its own head layout (`removal.layer_geometries`)."""
    adapter = adapter or get_adapter(model)
    return [_layer_costs(adapter, block, geometry)
            for block, geometry in zip(adapter.blocks(model), layer_geometries(model, adapter))]


def _layer_costs(adapter: ModelAdapter, block: nn.Module, geometry: HeadGeometry) -> UnitCosts:
    proj = adapter.projections(block)
    hd = geometry.head_dim

    def rows(role):  # weight row + its bias entry
        return proj[role].in_features + (1 if proj[role].bias is not None else 0)

    head = hd * rows("q") + hd * proj["o"].out_features
    kv = hd * sum(rows(r) for r in ("k", "v") if r in proj)  # keys doubling as values: no v rows
    channel = sum(rows(r) for r in ("gate", "up") if r in proj) + proj["down"].out_features
    return UnitCosts(head_unit=geometry.group_size * head + kv, channel=channel)


# ---------------------------------------------------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------------------------------------------------
def _check_config(config) -> MethodSpec:
    """The spec of `config.method` after checking the structured fields of `config` (any object carrying the
    attributes of `SinkAwarePruningConfig` that structured pruning reads; a `SinkAwarePruningConfig` has already
    checked them, other objects have not)."""
    method = config.method
    if method not in method_names("structured"):
        raise ValueError(f"method={method!r} is not a structured method; use one of {method_names('structured')}")
    validate_budget_args(config.target_param_reduction, config.head_ratio, config.mlp_ratio)
    check_choice("allocation", config.allocation, ALLOCATIONS)
    check_choice("structured_mode", config.structured_mode, STRUCTURED_MODES)
    mh = config.min_heads_per_layer
    if isinstance(mh, bool) or not isinstance(mh, int) or mh < 1:
        raise ValueError(f"min_heads_per_layer={mh!r} is not allowed; it must be an integer >= 1")
    w = config.instability_weight
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
        raise ValueError(f"instability_weight={w!r} is not allowed; it must be a finite number >= 0")
    return get_method(method)


class StructuredScoringInputs:
    """What a structured method's scorer (`MethodSpec.scorer`) reads: weight norms of the model (each computed on
    first use), the calibration statistics (None for weight-only methods), the seed and the instability weight.

    Head tensors are [layers, original heads] with NaN for removed heads; channel lists hold one [width] per layer.
    """

    def __init__(self, model: nn.Module, adapter: ModelAdapter, *, stats: StructuredStatistics | None, seed: int,
                 instability_weight: float):
        self.model, self.adapter = model, adapter
        self.stats = stats
        self.seed = seed
        self.instability_weight = instability_weight

    @cached_property
    def o_column_norms(self) -> torch.Tensor:
        """‖W_o[:, cols(h)]‖_F per head."""
        return o_column_norms(self.model, self.adapter)

    @cached_property
    def present(self) -> torch.Tensor:
        """bool [layers, original heads]: the heads still in the model."""
        return torch.isfinite(self.o_column_norms)

    @cached_property
    def head_weight_norms(self) -> torch.Tensor:
        """‖[W_q rows; W_k rows; W_v rows; W_oᵀ cols]‖_F per head."""
        return head_weight_norms(self.model, self.adapter)

    @cached_property
    def _channel_norms(self) -> tuple[list, list]:
        return channel_weight_norms(self.model, self.adapter)

    @property
    def down_column_norms(self) -> list[torch.Tensor]:
        """‖W_down[:, c]‖₂ per channel."""
        return self._channel_norms[0]

    @property
    def channel_weight_norms(self) -> list[torch.Tensor]:
        """‖[W_gate[c]; W_up[c]; W_down[:, c]]‖₂ per channel."""
        return self._channel_norms[1]

    def activation_scores(self, *, sink_weighted: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Head importance ‖X_h‖₂·‖W_o[:, cols(h)]‖_F and structured-Wanda channel scores ‖W_down[:, c]‖₂·‖a_c‖₂
        from the calibration statistics ((1 − σ)-weighted norms when `sink_weighted`)."""
        if self.stats is None:
            raise ValueError("activation scores need calibration statistics")
        importance = scoring.head_importance(self.stats.head_norms(sink_weighted=sink_weighted), self.o_column_norms)
        channels = [scoring.channel_wanda_scores(d, a)
                    for d, a in zip(self.down_column_norms, self.stats.channel_norms(sink_weighted=sink_weighted))]
        return importance, channels


@dataclass
class StructuredBudgetPlan:
    """What `plan_structured_budget` read and decided: the model's head geometry (layer 0's, and every layer's),
    current widths and pruned heads, the unit costs (layer 0's, and every layer's), the per-layer capacities and the
    budget: a `planner.Budget` when every layer has the same head layout, else a `planner.LayeredBudget`."""

    adapter: ModelAdapter
    geometry: Any
    widths: list[int]
    pruned: dict[int, list[int]]
    costs: UnitCosts
    params_before: int
    present_units: list[int]
    head_capacity: list[int]
    channel_capacity: list[int]
    budget: Any
    geometries: list[HeadGeometry] = field(default_factory=list)
    layer_costs: list[UnitCosts] = field(default_factory=list)

    @property
    def layered(self) -> bool:
        """True when head units differ in size between layers (the budget is a `planner.LayeredBudget`)."""
        return len(set(self.geometries)) > 1 or len(set(self.layer_costs)) > 1


def plan_structured_budget(model: nn.Module, config) -> StructuredBudgetPlan:
    """The budget of a structured run on `model` (weights only, no calibration): how many head units and MLP channels
    go, within capacities that keep `min_heads_per_layer` heads (whole kv groups) and one channel per layer.

    Raises:
        `ValueError`: a target the model cannot meet, or a budget that rounds to nothing on this model (it would
            calibrate and remove nothing; the message gives the smallest value that removes something), a bad
            structured field of `config`, or blocks that accelerate offloads (named: removal changes their shapes).
    """
    _check_config(config)
    adapter = get_adapter(model)
    adapter.check_structured_support(model)
    check_not_offloaded(block_names(model, adapter), what=f"method={config.method!r}")
    geometry = head_geometry(model, adapter)
    geometries = layer_geometries(model, adapter)
    widths = current_widths(model, adapter)
    costs = unit_costs(model, adapter)
    layer_costs = layer_unit_costs(model, adapter)
    params_before = block_parameter_count(model, adapter)
    # capacities: keep min_heads_per_layer heads (rounded up to whole kv groups) and one channel per layer
    pruned = adapter.pruned_heads(model)
    present_units = [len({h // g.group_size for h in kept_heads(g.num_heads, pruned.get(i, []))})
                     for i, g in enumerate(geometries)]
    head_capacity = [max(0, u - math.ceil(config.min_heads_per_layer / g.group_size))
                     for u, g in zip(present_units, geometries)]
    channel_capacity = [w - 1 for w in widths]
    plan = StructuredBudgetPlan(adapter=adapter, geometry=geometry, widths=widths, pruned=pruned, costs=costs,
                                params_before=params_before, present_units=present_units,
                                head_capacity=head_capacity, channel_capacity=channel_capacity, budget=None,
                                geometries=geometries, layer_costs=layer_costs)
    if plan.layered:  # head units differ in size between layers: the attention share is a parameter count
        return _plan_layered(plan, config)
    budget = solve_budget(
        block_params=params_before,
        head_units_present=sum(present_units),
        head_units_capacity=sum(head_capacity),
        channels_present=sum(widths),
        channels_capacity=sum(channel_capacity),
        costs=costs,
        target_param_reduction=config.target_param_reduction,
        head_ratio=config.head_ratio,
        mlp_ratio=config.mlp_ratio,
    )
    _refuse_empty_budget(budget, config, costs=costs, block_params=params_before,
                         head_units=sum(present_units), channels=sum(widths))
    plan.budget = budget
    return plan


def _plan_layered(plan: StructuredBudgetPlan, config) -> StructuredBudgetPlan:
    """`plan_structured_budget` for layers whose head units differ in size (`planner.solve_layered_budget`)."""
    channel_costs = {c.channel for c in plan.layer_costs}
    if len(channel_costs) != 1:  # the dense MLPs of every layer read and write the same hidden size
        raise ValueError(f"MLP channels of this model differ in size between layers ({sorted(channel_costs)}); "
                         "structured pruning needs one MLP channel size")
    channel_cost = channel_costs.pop()
    unit_sizes = [c.head_unit for c in plan.layer_costs]
    budget = solve_layered_budget(
        block_params=plan.params_before,
        unit_costs=unit_sizes,
        head_units_present=plan.present_units,
        head_units_capacity=plan.head_capacity,
        channels_present=sum(plan.widths),
        channels_capacity=sum(plan.channel_capacity),
        channel_cost=channel_cost,
        target_param_reduction=config.target_param_reduction,
        head_ratio=config.head_ratio,
        mlp_ratio=config.mlp_ratio,
    )
    if budget.head_units is not None:  # head_ratio / mlp_ratio: counts, as with one head layout
        head_units = budget.head_units
        channels = budget.channels
    else:  # some unit is taken when the attention share exceeds half the smallest removable unit
        removable = [size for size, capacity in zip(unit_sizes, plan.head_capacity) if capacity > 0]
        head_units = int(bool(removable) and budget.attention_params > min(removable) / 2)
        channels = budget.channels_for(0)
    _refuse_empty_budget(Budget(head_units, channels, budget.target_params), config,
                         costs=UnitCosts(min(unit_sizes), channel_cost), block_params=plan.params_before,
                         head_units=sum(plan.present_units), channels=sum(plan.widths))
    plan.budget = budget
    return plan


def _refuse_empty_budget(budget, config, *, costs: UnitCosts, block_params: int, head_units: int,
                         channels: int) -> None:
    """A positive budget that rounds to no head unit and no channel on this model is refused before calibration
    (it would calibrate and remove nothing); the message gives the smallest value that removes something."""
    if budget.head_units or budget.channels:
        return
    if config.target_param_reduction is not None:
        smallest = costs.channel / max(block_params, 1)
        raise ValueError(
            f"target_param_reduction={config.target_param_reduction!r} removes nothing from this model: it asks for "
            f"{budget.target_params} of {block_params} block parameters, fewer than one MLP channel "
            f"({costs.channel} parameters); use target_param_reduction >= {smallest:.3g} (and < 1)"
        )
    raise ValueError(
        f"head_ratio={config.head_ratio!r} and mlp_ratio={config.mlp_ratio!r} remove nothing from this model: they "
        f"round to 0 of {head_units} head units and 0 of {channels} MLP channels; use head_ratio >= "
        f"{1 / max(head_units, 1):.3g} or mlp_ratio >= {1 / max(channels, 1):.3g} (each < 1)"
    )


def score_heads_and_channels(
    model: nn.Module, method: str, *, stats: StructuredStatistics | None, instability_weight: float, seed: int
) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, Any]]:
    """Head scores [layers, original heads] (NaN = removed) and channel scores (one [width] per layer); lower = pruned
    first. Also returns a summary for the report. The method's registered scorer computes them.

    Raises:
        `ValueError`: `method` is not a structured method, or it needs calibration statistics and `stats` is None.
    """
    spec = get_method(method)
    if spec.family != "structured":
        raise ValueError(f"method={method!r} is not one of {method_names('structured')}")
    if spec.needs_data and stats is None:
        raise ValueError(f"method={method!r} needs calibration statistics")
    inputs = StructuredScoringInputs(model, get_adapter(model), stats=stats, seed=seed,
                                     instability_weight=instability_weight)
    heads, channels, summary = spec.scorer(inputs)
    present = inputs.present
    heads = torch.where(present, heads.float(), torch.full_like(heads.float(), float("nan")))
    summary["head_scores"] = heads.tolist()
    return heads, channels, summary


def prune_structured(
    model: nn.Module,
    *,
    config,
    calibration_ids: torch.Tensor | None,
    attention_mask: torch.Tensor | None = None,
    mask_token_id: int | None = None,
    progress: bool = True,
    check_weights: bool = True,
) -> StructuredPruningResult:
    """Structured sink-aware pruning: remove (or mask) attention heads and MLP channels to a parameter budget.

    Args:
        model (`nn.Module`): a supported model (LLaDA, Dream, MMaDA backbone, Llama, Qwen2); modified in place.
        config: a `SinkAwarePruningConfig` or any object with all of its structured fields (`method`,
            `target_param_reduction`, `head_ratio`, `mlp_ratio`, `allocation`, `structured_mode`,
            `instability_weight`, `min_heads_per_layer`, `seed`, `batch_size`, `diffusion_steps`, `sample_interval`,
            `noise_eps`, `sink_std`, `sink_alpha`).
        calibration_ids (`torch.Tensor`): [samples, seq] token ids; needed by the methods whose registered spec
            says `needs_data` (those scoring calibration statistics).
        attention_mask (`torch.Tensor`, *optional*): [samples, seq] padding mask.
        mask_token_id (`int`, *optional*): the [MASK] id used to noise a diffusion model's calibration inputs, as
            resolved by the caller (model config or tokenizer); default: the model config's.
        check_weights (`bool`): check every parameter for NaN/inf first (`validation.check_finite_parameters`);
            False only when the caller has just done so.

    Returns:
        `StructuredPruningResult`.

    Raises:
        `ValueError`: bad config values, a budget the model cannot meet, missing calibration data, NaN/inf in a
            parameter (`validation.NonFiniteWeightsError`); always before any weight changes.
    """
    from ..validation import check_finite_parameters

    spec = _check_config(config)
    method = spec.name
    if spec.needs_data and calibration_ids is None:
        raise ValueError(f"method={method!r} needs calibration_ids ([samples, seq] token ids)")
    if check_weights:
        check_finite_parameters(model)
    plan = plan_structured_budget(model, config)
    adapter, geometry, widths, budget = plan.adapter, plan.geometry, plan.widths, plan.budget
    group, num_layers, pruned, params_before = geometry.group_size, len(widths), plan.pruned, plan.params_before
    head_capacity, channel_capacity = plan.head_capacity, plan.channel_capacity

    stats = None
    if spec.needs_data:
        stats = collect_structured_statistics(
            model, calibration_ids, attention_mask=attention_mask,
            diffusion_steps=config.diffusion_steps, sample_interval=config.sample_interval,
            noise_eps=config.noise_eps, sink_alpha=config.sink_alpha, sink_std=config.sink_std,
            seed=config.seed, batch_size=config.batch_size, mask_token_id=mask_token_id, progress=progress,
            # the config's noise_schedule / protected_positions (None: the family's defaults, as before)
            noise=NoiseSchedule.from_config(config, adapter),
        )
    head_scores, channel_scores, summary = score_heads_and_channels(
        model, method, stats=stats, instability_weight=config.instability_weight, seed=config.seed
    )
    if plan.layered:
        heads, channels = _allocate_layered(plan, head_scores, channel_scores, config.allocation)
    else:
        unit_scores = scoring.group_scores(head_scores, group)
        units = allocate(list(unit_scores), budget.head_units, capacity=head_capacity, allocation=config.allocation)
        heads = units_to_heads(units, group)
        channels = allocate(channel_scores, budget.channels, capacity=channel_capacity, allocation=config.allocation)

    mode = config.structured_mode
    prune_structure(model, heads=heads, channels=channels, mode=mode,
                    min_heads_per_layer=config.min_heads_per_layer, adapter=adapter)

    if mode == "remove":
        params_after = block_parameter_count(model, adapter)
        all_heads = adapter.pruned_heads(model)
        new_widths = current_widths(model, adapter)
    else:
        params_after = nonzero_block_parameter_count(model, adapter)
        all_heads = {i: sorted(set(pruned.get(i, [])) | set(heads.get(i, []))) for i in range(num_layers)}
        all_heads = {i: v for i, v in all_heads.items() if v}
        new_widths = [w - len(channels.get(i, [])) for i, w in enumerate(widths)]
    per_layer = [
        {
            "layer": i,
            "heads_removed": heads.get(i, []),
            "heads_left": plan.geometries[i].num_heads - len(all_heads.get(i, [])),
            "mlp_channels_removed": len(channels.get(i, [])),
            "mlp_width": new_widths[i],
        }
        for i in range(num_layers)
    ]
    result = StructuredPruningResult(
        method=method, mode=mode, pruned_heads=all_heads, mlp_widths=new_widths, removed_heads=heads,
        removed_channels=channels, params_before=params_before, params_after=params_after,
        target_params=budget.target_params, per_layer=per_layer, scores_summary=summary,
    )
    logger.info("%s (%s): block parameters %d -> %d (%.1f%% removed)", method, mode, params_before, params_after,
                100 * result.realised_reduction)
    return result


def _allocate_layered(plan: StructuredBudgetPlan, head_scores: torch.Tensor, channel_scores: list[torch.Tensor],
                      allocation: str) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Heads (original indices) and channels to remove when head units differ in size between layers: the units in
    the `allocation`'s removal order, each one that brings the removed attention parameters closer to the budget's
    attention share (`planner.take_to_params`), then the channels that bring the total closest to the target
    (`head_ratio` / `mlp_ratio`: counts, as with one head layout)."""
    budget = plan.budget
    unit_scores = [scoring.group_scores(head_scores[i, :g.num_heads], g.group_size)
                   for i, g in enumerate(plan.geometries)]
    if budget.head_units is not None:
        units = allocate(unit_scores, budget.head_units, capacity=plan.head_capacity, allocation=allocation)
        channel_count = budget.channels
    else:
        order = removal_order(unit_scores, capacity=plan.head_capacity, allocation=allocation)
        sizes = [c.head_unit for c in plan.layer_costs]
        units = take_to_params(order, sizes, budget.attention_params)
        channel_count = budget.channels_for(sum(len(u) * sizes[i] for i, u in units.items()))
    heads = units_to_heads(units, [g.group_size for g in plan.geometries])
    channels = allocate(channel_scores, channel_count, capacity=plan.channel_capacity, allocation=allocation)
    if not heads and not channels:
        raise ValueError(
            f"the budget of {budget.target_params} block parameters removes nothing from this model: no head unit "
            "brings the removal closer to it and it is below half an MLP channel; use a larger "
            "target_param_reduction")
    return heads, channels


__all__ = [
    "StructuredBudgetPlan",
    "StructuredPruningResult",
    "StructuredScoringInputs",
    "channel_weight_norms",
    "head_weight_norms",
    "layer_unit_costs",
    "o_column_norms",
    "plan_structured_budget",
    "prune_structured",
    "score_heads_and_channels",
    "unit_costs",
]
