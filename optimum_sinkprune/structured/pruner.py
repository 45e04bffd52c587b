# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`prune_structured`: score heads and MLP channels, plan to a budget, remove (or mask) them, report."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from ..adapters import get_adapter
from ..adapters.base import ModelAdapter
from . import scoring
from .planner import ALLOCATIONS, UnitCosts, allocate, solve_budget, units_to_heads, validate_budget_args
from .removal import (
    MODES,
    block_parameter_count,
    current_widths,
    head_geometry,
    kept_heads,
    nonzero_block_parameter_count,
    prune_structure,
)
from .statistics import StructuredStatistics, collect_structured_statistics

logger = logging.getLogger(__name__)

STRUCTURED_METHODS = ("sink_heads", "magnitude_heads", "random_heads", "activation_heads")
# Methods that need calibration forwards (the others read weights only).
CALIBRATED_METHODS = ("sink_heads", "activation_heads")

# Config fields read with getattr, and their defaults (any object carrying them works).
DEFAULTS: dict[str, Any] = {
    "target_param_reduction": None,
    "head_ratio": None,
    "mlp_ratio": None,
    "allocation": "uniform",
    "structured_mode": "remove",
    "instability_weight": 1.0,
    "min_heads_per_layer": 1,
    "seed": 0,
    "batch_size": 1,
    "diffusion_steps": 50,
    "sample_interval": 5,
    "noise_eps": 1e-3,
    "sink_std": 2.0,
    "sink_alpha": 5.0,
}


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
    """[layers, original heads] of fn(block, current position, kv position); removed heads NaN."""
    geometry = head_geometry(model, adapter)
    pruned = adapter.pruned_heads(model)
    out = torch.full((adapter.num_layers(model), geometry.num_heads), float("nan"))
    for i, block in enumerate(adapter.blocks(model)):
        current = kept_heads(geometry.num_heads, pruned.get(i, []))
        groups = sorted({h // geometry.group_size for h in current})
        for p, h in enumerate(current):
            out[i, h] = fn(block, p, groups.index(h // geometry.group_size))
    return out


def o_column_norms(model: nn.Module, adapter: ModelAdapter | None = None) -> torch.Tensor:
    """‖W_o[:, cols(h)]‖_F per head: [layers, original heads] (removed heads NaN)."""
    adapter = adapter or get_adapter(model)
    hd = adapter.head_dim(model)

    def fn(block, p, _g):
        w = adapter.projection(block, "o").weight.detach().float()
        return float(w[:, p * hd:(p + 1) * hd].norm())

    return _per_head(model, adapter, fn)


def head_weight_norms(model: nn.Module, adapter: ModelAdapter | None = None) -> torch.Tensor:
    """Magnitude baseline: ‖[W_q rows; W_k rows; W_v rows; W_oᵀ cols]‖_F per head (k/v: the head's kv head)."""
    adapter = adapter or get_adapter(model)
    hd = adapter.head_dim(model)

    def fn(block, p, g):
        proj = adapter.projections(block)
        sq = proj["q"].weight.detach().float()[p * hd:(p + 1) * hd].square().sum()
        sq = sq + proj["o"].weight.detach().float()[:, p * hd:(p + 1) * hd].square().sum()
        for role in ("k", "v"):
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
        g = proj["gate"].weight.detach().float().square().sum(dim=1)
        u = proj["up"].weight.detach().float().square().sum(dim=1)
        down.append(d.sqrt())
        full.append((d + g + u).sqrt())
    return down, full


def unit_costs(model: nn.Module, adapter: ModelAdapter | None = None) -> UnitCosts:
    """Parameters removed with one head unit (one head, or one kv group) and with one MLP channel."""
    adapter = adapter or get_adapter(model)
    geometry = head_geometry(model, adapter)
    proj = adapter.projections(adapter.blocks(model)[0])
    hd = geometry.head_dim

    def rows(role):  # weight row + its bias entry
        return proj[role].in_features + (1 if proj[role].bias is not None else 0)

    head = hd * rows("q") + hd * proj["o"].out_features
    kv = hd * (rows("k") + rows("v"))
    channel = rows("gate") + rows("up") + proj["down"].out_features
    return UnitCosts(head_unit=geometry.group_size * head + kv, channel=channel)


# ---------------------------------------------------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------------------------------------------------
def _read_config(config) -> dict[str, Any]:
    method = getattr(config, "method", None)
    if method not in STRUCTURED_METHODS:
        raise ValueError(f"method={method!r} is not a structured method; use one of {STRUCTURED_METHODS}")
    values = {"method": method}
    for name, default in DEFAULTS.items():
        values[name] = getattr(config, name, default)
    validate_budget_args(values["target_param_reduction"], values["head_ratio"], values["mlp_ratio"])
    if values["allocation"] not in ALLOCATIONS:
        raise ValueError(f"allocation={values['allocation']!r} is not one of {ALLOCATIONS}")
    if values["structured_mode"] not in MODES:
        raise ValueError(f"structured_mode={values['structured_mode']!r} is not one of {MODES}")
    mh = values["min_heads_per_layer"]
    if isinstance(mh, bool) or not isinstance(mh, int) or mh < 1:
        raise ValueError(f"min_heads_per_layer={mh!r} is not allowed; it must be an integer >= 1")
    w = values["instability_weight"]
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
        raise ValueError(f"instability_weight={w!r} is not allowed; it must be a finite number >= 0")
    return values


def score_heads_and_channels(
    model: nn.Module, method: str, *, stats: StructuredStatistics | None, instability_weight: float, seed: int
) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, Any]]:
    """Head scores [layers, original heads] (NaN = removed) and channel scores (one [width] per layer); lower = pruned
    first. Also returns a summary for the report."""
    adapter = get_adapter(model)
    present = torch.isfinite(o_column_norms(model, adapter))
    down_norms, channel_norms = channel_weight_norms(model, adapter)
    summary: dict[str, Any] = {}
    if method == "magnitude_heads":
        heads = head_weight_norms(model, adapter)
        channels = channel_norms
    elif method == "random_heads":
        heads = scoring.random_scores(tuple(present.shape), seed)
        gen = torch.Generator().manual_seed(int(seed) + 1)
        channels = [torch.rand(c.shape, generator=gen) for c in channel_norms]
    elif method in ("activation_heads", "sink_heads"):
        if stats is None:
            raise ValueError(f"method={method!r} needs calibration statistics")
        weighted = method == "sink_heads"
        importance = scoring.head_importance(stats.head_norms(sink_weighted=weighted), o_column_norms(model, adapter))
        channels = [
            scoring.channel_wanda_scores(d, a) for d, a in zip(down_norms, stats.channel_norms(sink_weighted=weighted))
        ]
        if weighted:
            instability = scoring.sink_instability(stats.dominant_positions)
            heads = scoring.sink_head_scores(importance, instability, instability_weight)
            summary["instability_mean"] = float(instability[present].mean())
            summary["instability_max"] = float(instability[present].max())
            summary["instability"] = instability.tolist()
        else:
            heads = importance
        summary["importance"] = importance.tolist()
        summary["mean_sink_weight"] = stats.mean_sink_weight
        summary["calibration_forwards"] = stats.forwards
    else:
        raise ValueError(f"method={method!r} is not one of {STRUCTURED_METHODS}")
    heads = torch.where(present, heads.float(), torch.full_like(heads.float(), float("nan")))
    summary["head_scores"] = heads.tolist()
    return heads, channels, summary


def prune_structured(
    model: nn.Module,
    *,
    config,
    calibration_ids: torch.Tensor | None,
    attention_mask: torch.Tensor | None = None,
    progress: bool = True,
) -> StructuredPruningResult:
    """Structured sink-aware pruning: remove (or mask) attention heads and MLP channels to a parameter budget.

    Args:
        model (`nn.Module`): a supported model (LLaDA, Dream, MMaDA backbone, Llama, Qwen2); modified in place.
        config: a `SinkAwarePruningConfig` or any object with its structured fields (`method`,
            `target_param_reduction` or `head_ratio`/`mlp_ratio`, `allocation`, `structured_mode`,
            `instability_weight`, `min_heads_per_layer`, `seed`, `batch_size`, `diffusion_steps`, `sample_interval`,
            `noise_eps`, `sink_std`, `sink_alpha`); missing fields take the documented defaults.
        calibration_ids (`torch.Tensor`): [samples, seq] token ids; needed by `sink_heads` and `activation_heads`.
        attention_mask (`torch.Tensor`, *optional*): [samples, seq] padding mask.

    Returns:
        `StructuredPruningResult`.

    Raises:
        `ValueError`: bad config values, a budget the model cannot meet, missing calibration data; always before any
            weight changes.
    """
    values = _read_config(config)
    method = values["method"]
    if method in CALIBRATED_METHODS and calibration_ids is None:
        raise ValueError(f"method={method!r} needs calibration_ids ([samples, seq] token ids)")
    adapter = get_adapter(model)
    geometry = head_geometry(model, adapter)
    group = geometry.group_size
    num_layers = adapter.num_layers(model)
    widths = current_widths(model, adapter)
    costs = unit_costs(model, adapter)
    params_before = block_parameter_count(model, adapter)

    # capacities: keep min_heads_per_layer heads (rounded up to whole kv groups) and one channel per layer
    pruned = adapter.pruned_heads(model)
    present_units = [len({h // group for h in kept_heads(geometry.num_heads, pruned.get(i, []))})
                     for i in range(num_layers)]
    keep_units = math.ceil(values["min_heads_per_layer"] / group)
    head_capacity = [max(0, u - keep_units) for u in present_units]
    channel_capacity = [w - 1 for w in widths]
    budget = solve_budget(
        block_params=params_before,
        head_units_present=sum(present_units),
        head_units_capacity=sum(head_capacity),
        channels_present=sum(widths),
        channels_capacity=sum(channel_capacity),
        costs=costs,
        target_param_reduction=values["target_param_reduction"],
        head_ratio=values["head_ratio"],
        mlp_ratio=values["mlp_ratio"],
    )

    stats = None
    if method in CALIBRATED_METHODS:
        stats = collect_structured_statistics(
            model, calibration_ids, attention_mask=attention_mask,
            diffusion_steps=values["diffusion_steps"], sample_interval=values["sample_interval"],
            noise_eps=values["noise_eps"], sink_alpha=values["sink_alpha"], sink_std=values["sink_std"],
            seed=values["seed"], batch_size=values["batch_size"], progress=progress,
        )
    head_scores, channel_scores, summary = score_heads_and_channels(
        model, method, stats=stats, instability_weight=values["instability_weight"], seed=values["seed"]
    )
    unit_scores = scoring.group_scores(head_scores, group)
    units = allocate(list(unit_scores), budget.head_units, capacity=head_capacity, allocation=values["allocation"])
    heads = units_to_heads(units, group)
    channels = allocate(channel_scores, budget.channels, capacity=channel_capacity, allocation=values["allocation"])

    mode = values["structured_mode"]
    prune_structure(model, heads=heads, channels=channels, mode=mode,
                    min_heads_per_layer=values["min_heads_per_layer"])

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
            "heads_left": geometry.num_heads - len(all_heads.get(i, [])),
            "mlp_channels_removed": len(channels.get(i, [])),
            "mlp_width": new_widths[i],
        }
        for i in range(num_layers)
    ]
    result = StructuredPruningResult(
        method=method,
        mode=mode,
        pruned_heads=all_heads,
        mlp_widths=new_widths,
        removed_heads=heads,
        removed_channels=channels,
        params_before=params_before,
        params_after=params_after,
        target_params=budget.target_params,
        per_layer=per_layer,
        scores_summary=summary,
    )
    logger.info("%s (%s): block parameters %d -> %d (%.1f%% removed)", method, mode, params_before, params_after,
                100 * result.realised_reduction)
    return result


__all__ = [
    "CALIBRATED_METHODS",
    "STRUCTURED_METHODS",
    "StructuredPruningResult",
    "channel_weight_norms",
    "head_weight_norms",
    "o_column_norms",
    "prune_structured",
    "score_heads_and_channels",
    "unit_costs",
]
