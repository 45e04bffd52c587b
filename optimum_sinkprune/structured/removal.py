# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Physical removal (or masking) of attention heads and MLP channels, with the structure recorded in the config.

Index conventions (see docs/structured.md):

* heads are always ORIGINAL head indices (as in `config.pruned_heads`); a second pruning of a pruned model maps them
  to the current weight positions through the heads already removed, so prunings compose;
* MLP channels are CURRENT positions in the layer's MLP (only per-layer widths are recorded; a channel's original
  identity is not needed to load the checkpoint).

Grouped-query attention: a layer can only lose whole kv groups (the query heads of a group together with their key /
value head); multi-head attention (one kv head per query head) can lose any heads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from ..adapters import get_adapter
from ..adapters.base import ModelAdapter
from ..configuration import STRUCTURED_MODES as MODES  # the allowed values live with the config
from ..models import structural_record  # one set of rules for removal requests and saved records

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------------------------
# pure helpers
# ---------------------------------------------------------------------------------------------------------------------
def kept_heads(num_heads: int, pruned: list[int] | tuple[int, ...] | set[int]) -> list[int]:
    """Original indices of the heads that remain after removing `pruned` (in weight order)."""
    removed = set(pruned)
    return [h for h in range(num_heads) if h not in removed]


def head_rows(positions: list[int], head_dim: int) -> torch.Tensor:
    """Row indices (into a [heads * head_dim, ...] projection) of the heads at `positions`."""
    if not positions:
        return torch.zeros(0, dtype=torch.long)
    return torch.cat([torch.arange(p * head_dim, (p + 1) * head_dim) for p in positions])


def kv_groups_of(heads: list[int] | set[int], group_size: int) -> list[int]:
    """The kv groups touched by query heads `heads` (group g holds query heads g·size … (g+1)·size − 1)."""
    return sorted({h // group_size for h in heads})


@dataclass(frozen=True)
class HeadGeometry:
    """Head layout of a model: original query/kv head counts and head size."""

    num_heads: int
    num_kv_heads: int
    head_dim: int

    @property
    def group_size(self) -> int:
        return self.num_heads // self.num_kv_heads


def head_geometry(model: nn.Module, adapter: ModelAdapter | None = None) -> HeadGeometry:
    """Original head counts and head size of `model` (through `adapter`, default `get_adapter(model)`)."""
    adapter = adapter or get_adapter(model)
    return HeadGeometry(
        num_heads=adapter.original_num_heads(model),
        num_kv_heads=adapter.original_num_kv_heads(model),
        head_dim=adapter.head_dim(model),
    )


def layer_geometries(model: nn.Module, adapter: ModelAdapter | None = None) -> list[HeadGeometry]:
    """Original head layout of every layer (`adapter.layer_head_geometry`: the same for every layer unless the family
    mixes layer kinds, e.g. DiffusionGemma's sliding and full-attention layers)."""
    adapter = adapter or get_adapter(model)
    return [HeadGeometry(*adapter.layer_head_geometry(model, i)) for i in range(adapter.num_layers(model))]


def validate_head_request(
    heads: dict, *, geometry: HeadGeometry | list[HeadGeometry], already: dict[int, list[int]], num_layers: int,
    min_heads: int = 1
) -> dict[int, list[int]]:
    """Check a head-removal request (original indices) and return it normalised ({layer: sorted new heads}); the
    rules are those of a checkpoint's structural record (`models.structural_record.validate_head_request`).
    `geometry` is the model's head layout, or one per layer (`layer_geometries`).

    Raises `ValueError` for: layer or head out of range, a head removed twice, fewer than `min_heads` heads left in a
    layer, or (grouped-query attention) a request that does not cover whole kv groups.
    """
    if isinstance(geometry, list) and len(set(geometry)) == 1:
        geometry = geometry[0]
    if isinstance(geometry, HeadGeometry) or not isinstance(heads, dict):
        g = geometry if isinstance(geometry, HeadGeometry) else geometry[0]
        return structural_record.validate_head_request(
            heads, num_heads=g.num_heads, num_kv_heads=g.num_kv_heads, num_layers=num_layers,
            already=already, min_heads=max(1, min_heads), field="heads",  # a request never empties a layer
        )
    # layers of different kinds: each layer's entry by its own head layout (a bad layer key fails in the check)
    out: dict[int, list[int]] = {}
    for layer, value in heads.items():
        index = _layer_or_none(layer, num_layers)
        g = geometry[index] if index is not None else geometry[0]
        part = structural_record.validate_head_request(
            {layer: value}, num_heads=g.num_heads, num_kv_heads=g.num_kv_heads, num_layers=num_layers,
            already=already, min_heads=max(1, min_heads), field="heads")
        for key, entry in part.items():
            if key in out:
                raise ValueError(f"heads names layer {key} twice (keys {list(heads)!r}); give each layer once")
            out[key] = entry
    return out


def _layer_or_none(layer, num_layers: int) -> int | None:
    """The layer index a request key names, or None when it names none (the record check then says why)."""
    try:
        index = int(layer)
    except (TypeError, ValueError):
        return None
    return index if 0 <= index < num_layers and not isinstance(layer, bool) else None


def validate_channel_request(channels: dict, *, widths: list[int]) -> dict[int, list[int]]:
    """Check an MLP-channel removal request (current positions) and return it normalised; at least one channel of
    every layer must remain (`models.structural_record.validate_channel_request`)."""
    return structural_record.validate_channel_request(channels, widths=widths, field="channels")


# ---------------------------------------------------------------------------------------------------------------------
# in-place module surgery (through the adapter: it knows the module paths and attributes)
# ---------------------------------------------------------------------------------------------------------------------
def current_widths(model: nn.Module, adapter: ModelAdapter | None = None) -> list[int]:
    """Current MLP width of every layer."""
    adapter = adapter or get_adapter(model)
    return [adapter.mlp_width(model, i) for i in range(adapter.num_layers(model))]


def record_structure(model: nn.Module, adapter: ModelAdapter, pruned_heads: dict[int, list[int]],
                     mlp_widths: list[int]) -> None:
    """Write the pruned structure into `model.config` through the adapter (`ModelAdapter.record_structure`) and, for
    a family whose native classes build it on reload only through the module replacements
    (`adapter.needs_pruned_loading`), register them, so reloads in this process get the pruned shapes.

    Args:
        model (`nn.Module`): the pruned model.
        adapter (`ModelAdapter`): its adapter.
        pruned_heads (`dict[int, list[int]]`): original head indices removed, per layer.
        mlp_widths (`list[int]`): the MLP width of every layer.
    """
    adapter.record_structure(model, pruned_heads, mlp_widths)
    if adapter.needs_pruned_loading:
        # registered only once a structure exists: while registered, transformers scans every module on each load
        from ..models.pruned_loading import register_pruned_loading

        register_pruned_loading()


def remove_heads(
    model: nn.Module,
    heads: dict[int, list[int]],
    *,
    mode: str = "remove",
    min_heads_per_layer: int = 1,
    adapter: ModelAdapter | None = None,
) -> dict[int, list[int]]:
    """Remove (or zero) attention heads, given as ORIGINAL head indices per layer.

    In `"remove"` mode the q/k/v rows and o-projection columns of the heads (and their biases) are sliced out, the
    attention modules' head counts are updated, and the union with the heads removed before is recorded in the
    config (`pruned_heads`), so that `save_pretrained` / `from_pretrained` round-trip the smaller shapes. In `"mask"`
    mode the same weights are set to zero and shapes stay as they are (the config's structure is left unchanged).

    Args:
        model (`nn.Module`): a supported model (see `optimum_sinkprune.adapters`).
        heads (`dict[int, list[int]]`): original head indices to remove, per layer.
        mode (`str`): `"remove"` or `"mask"`.
        min_heads_per_layer (`int`): heads that must remain in every layer (at least 1).
        adapter (`ModelAdapter`, *optional*): the run's adapter (default: `get_adapter(model)`).

    Returns:
        `dict[int, list[int]]`: every head now removed (remove mode) or zeroed by this call (mask mode), per layer.

    Raises:
        `ValueError`: bad mode, layer or head out of range, a head removed twice, too few heads left, a split kv group
            (grouped-query attention); raised before any weight changes.
    """
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not one of {MODES}")
    adapter = adapter or get_adapter(model)
    geometries = layer_geometries(model, adapter)
    already = adapter.pruned_heads(model)
    request = validate_head_request(
        heads, geometry=geometries, already=already, num_layers=adapter.num_layers(model),
        min_heads=min_heads_per_layer,
    )
    blocks = adapter.blocks(model)
    for layer, new in request.items():
        geometry = geometries[layer]
        group, hd = geometry.group_size, geometry.head_dim
        block = blocks[layer]
        current = kept_heads(geometry.num_heads, already.get(layer, []))  # original index of each current position
        position = {h: p for p, h in enumerate(current)}
        drop_q = [position[h] for h in new]
        # kv positions: the current kv heads are the kept groups, in order
        current_groups = sorted({h // group for h in current})
        kv_position = {g: p for p, g in enumerate(current_groups)}
        drop_kv = [kv_position[g] for g in kv_groups_of(new, group)] if group > 1 else drop_q
        q_rows, kv_rows = head_rows(drop_q, hd), head_rows(drop_kv, hd)
        if mode == "mask":
            for role, rows in (("q", q_rows), ("k", kv_rows), ("v", kv_rows)):
                adapter.zero_projection(block, role, rows=rows)
            adapter.zero_projection(block, "o", cols=q_rows)
            continue
        keep_q = head_rows([p for p in range(len(current)) if p not in set(drop_q)], hd)
        keep_kv = head_rows([p for p in range(len(current_groups) if group > 1 else len(current))
                             if p not in set(drop_kv)], hd)
        for role, rows in (("q", keep_q), ("k", keep_kv), ("v", keep_kv)):
            adapter.slice_projection(block, role, rows=rows)
        adapter.slice_projection(block, "o", cols=keep_q)
        n_heads = len(current) - len(drop_q)
        adapter.set_head_count(block, n_heads, n_heads // group)
    if mode == "mask":
        return request
    union = {i: sorted(set(already.get(i, [])) | set(request.get(i, []))) for i in set(already) | set(request)}
    record_structure(model, adapter, union, current_widths(model, adapter))
    logger.info("removed heads %s", request)
    return {i: v for i, v in sorted(union.items()) if v}


def remove_mlp_channels(
    model: nn.Module, channels: dict[int, list[int]], *, mode: str = "remove", adapter: ModelAdapter | None = None
) -> list[int]:
    """Remove (or zero) MLP channels, given as CURRENT channel positions per layer.

    `"remove"` slices the gate/up rows (and biases) and down-projection columns and records the per-layer widths in
    the config; `"mask"` zeroes the same weights and keeps shapes.

    Args:
        model (`nn.Module`): a supported model (see `optimum_sinkprune.adapters`).
        channels (`dict[int, list[int]]`): current channel positions to remove, per layer.
        mode (`str`): `"remove"` or `"mask"`.
        adapter (`ModelAdapter`, *optional*): the run's adapter (default: `get_adapter(model)`).

    Returns:
        `list[int]`: the per-layer MLP widths after the call (mask mode: the widths counting only non-masked channels
        of this call).

    Raises:
        `ValueError`: bad mode, layer or channel out of range, every channel of a layer; before any weight changes.
    """
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not one of {MODES}")
    adapter = adapter or get_adapter(model)
    widths = current_widths(model, adapter)
    request = validate_channel_request(channels, widths=widths)
    blocks = adapter.blocks(model)
    for layer, drop in request.items():
        block = blocks[layer]
        drop_t = torch.tensor(drop, dtype=torch.long)
        if mode == "mask":
            adapter.zero_projection(block, "gate", rows=drop_t)
            adapter.zero_projection(block, "up", rows=drop_t)
            adapter.zero_projection(block, "down", cols=drop_t)
            continue
        dropped = set(drop)
        keep = torch.tensor([c for c in range(widths[layer]) if c not in dropped], dtype=torch.long)
        adapter.slice_projection(block, "gate", rows=keep)
        adapter.slice_projection(block, "up", rows=keep)
        adapter.slice_projection(block, "down", cols=keep)
        adapter.set_mlp_width(block, len(keep))
    new_widths = [w - len(request.get(i, [])) for i, w in enumerate(widths)]
    if mode == "remove":
        record_structure(model, adapter, adapter.pruned_heads(model), new_widths)
        logger.info("removed MLP channels: widths %s -> %s", widths, new_widths)
    return new_widths


def prune_structure(
    model: nn.Module,
    *,
    heads: dict[int, list[int]] | None = None,
    channels: dict[int, list[int]] | None = None,
    mode: str = "remove",
    min_heads_per_layer: int = 1,
    adapter: ModelAdapter | None = None,
) -> None:
    """Remove heads and MLP channels together, validating BOTH requests before touching any weight.

    Args:
        model (`nn.Module`): a supported model.
        heads (`dict[int, list[int]]`, *optional*): original head indices to remove, per layer.
        channels (`dict[int, list[int]]`, *optional*): current MLP channel positions to remove, per layer.
        mode (`str`): `"remove"` or `"mask"`.
        min_heads_per_layer (`int`): heads that must remain in every layer.
        adapter (`ModelAdapter`, *optional*): the run's adapter (default: `get_adapter(model)`).

    Raises:
        `ValueError`: as `remove_heads` / `remove_mlp_channels`, before any weight changes.
    """
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not one of {MODES}")
    adapter = adapter or get_adapter(model)
    validate_head_request(
        heads or {}, geometry=layer_geometries(model, adapter), already=adapter.pruned_heads(model),
        num_layers=adapter.num_layers(model), min_heads=min_heads_per_layer,
    )
    validate_channel_request(channels or {}, widths=current_widths(model, adapter))
    if heads:
        remove_heads(model, heads, mode=mode, min_heads_per_layer=min_heads_per_layer, adapter=adapter)
    if channels:
        remove_mlp_channels(model, channels, mode=mode, adapter=adapter)


# ---------------------------------------------------------------------------------------------------------------------
# parameter accounting
# ---------------------------------------------------------------------------------------------------------------------
def block_parameter_count(model: nn.Module, adapter: ModelAdapter | None = None) -> int:
    """Parameters inside the transformer blocks (attention, MLP, norms); embeddings and the LM head excluded."""
    from ..counting import count_parameters

    adapter = adapter or get_adapter(model)
    return count_parameters(adapter.blocks(model)).params


def nonzero_block_parameter_count(model: nn.Module, adapter: ModelAdapter | None = None) -> int:
    """Non-zero parameters inside the blocks (what remains after mask mode)."""
    from ..counting import count_parameters

    adapter = adapter or get_adapter(model)
    return count_parameters(adapter.blocks(model)).nonzero


__all__ = [
    "MODES",
    "HeadGeometry",
    "block_parameter_count",
    "current_widths",
    "head_geometry",
    "head_rows",
    "kept_heads",
    "kv_groups_of",
    "layer_geometries",
    "nonzero_block_parameter_count",
    "prune_structure",
    "remove_heads",
    "remove_mlp_channels",
    "validate_channel_request",
    "validate_head_request",
]
