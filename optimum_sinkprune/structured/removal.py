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

logger = logging.getLogger(__name__)

MODES = ("remove", "mask")


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
    adapter = adapter or get_adapter(model)
    return HeadGeometry(
        num_heads=adapter.original_num_heads(model),
        num_kv_heads=adapter.original_num_kv_heads(model),
        head_dim=adapter.head_dim(model),
    )


def _as_index_list(name: str, layer, value) -> list[int]:
    if isinstance(value, torch.Tensor):
        value = value.reshape(-1).tolist()
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    try:
        out = [int(v) for v in value]
    except (TypeError, ValueError):
        raise ValueError(f"{name}[{layer!r}]={value!r} is not allowed; give a list of integer indices") from None
    if any(isinstance(v, bool) for v in value):
        raise ValueError(f"{name}[{layer!r}]={value!r} is not allowed; give a list of integer indices")
    return out


def _check_layer(name: str, layer, num_layers: int) -> int:
    try:
        index = int(layer)
    except (TypeError, ValueError):
        raise ValueError(f"{name} has layer key {layer!r}; layer keys must be integers in [0, {num_layers})") from None
    if not 0 <= index < num_layers or isinstance(layer, bool):
        raise ValueError(f"{name} has layer {layer!r}, out of range: the model has {num_layers} layers [0, {num_layers})")
    return index


def validate_head_request(
    heads: dict, *, geometry: HeadGeometry, already: dict[int, list[int]], num_layers: int, min_heads: int = 1
) -> dict[int, list[int]]:
    """Check a head-removal request (original indices) and return it normalised ({layer: sorted new heads}).

    Raises `ValueError` for: layer or head out of range, a head removed twice, fewer than `min_heads` heads left in a
    layer, or (grouped-query attention) a request that does not cover whole kv groups.
    """
    if not isinstance(heads, dict):
        raise ValueError(f"heads={heads!r} is not allowed; give a dict {{layer index: [original head indices]}}")
    out: dict[int, list[int]] = {}
    for layer, value in heads.items():
        index = _check_layer("heads", layer, num_layers)
        request = _as_index_list("heads", layer, value)
        if not request:
            continue
        bad = [h for h in request if not 0 <= h < geometry.num_heads]
        if bad:
            raise ValueError(
                f"heads[{index}] has head indices {bad} out of range: original head indices lie in "
                f"[0, {geometry.num_heads})"
            )
        if len(set(request)) != len(request):
            raise ValueError(f"heads[{index}]={request} repeats a head index")
        previous = set(already.get(index, []))
        twice = sorted(previous & set(request))
        if twice:
            raise ValueError(
                f"heads[{index}] asks for heads {twice} that were already removed from layer {index} "
                f"(config.pruned_heads[{index}]={sorted(previous)}); indices refer to the original heads"
            )
        total = previous | set(request)
        left = geometry.num_heads - len(total)
        if left < max(1, min_heads):
            raise ValueError(
                f"heads[{index}]={sorted(request)} would leave {left} of {geometry.num_heads} heads in layer {index}; "
                f"at least {max(1, min_heads)} must remain (pruning every head of a layer is not allowed)"
            )
        group = geometry.group_size
        if group > 1:
            for g in kv_groups_of(request, group):
                members = set(range(g * group, (g + 1) * group))
                if not members <= set(request):
                    raise ValueError(
                        f"heads[{index}]={sorted(request)} splits kv group {g} (query heads {sorted(members)}): this "
                        f"model uses grouped-query attention ({geometry.num_heads} query heads, "
                        f"{geometry.num_kv_heads} kv heads), so only whole groups can be removed"
                    )
        out[index] = sorted(request)
    return out


def validate_channel_request(channels: dict, *, widths: list[int]) -> dict[int, list[int]]:
    """Check an MLP-channel removal request (current positions) and return it normalised; at least one channel of
    every layer must remain."""
    if not isinstance(channels, dict):
        raise ValueError(f"channels={channels!r} is not allowed; give a dict {{layer index: [channel indices]}}")
    out: dict[int, list[int]] = {}
    for layer, value in channels.items():
        index = _check_layer("channels", layer, len(widths))
        request = _as_index_list("channels", layer, value)
        if not request:
            continue
        width = widths[index]
        bad = [c for c in request if not 0 <= c < width]
        if bad:
            shown = bad[:8]
            raise ValueError(
                f"channels[{index}] has channel indices {shown}{'…' if len(bad) > 8 else ''} out of range: layer "
                f"{index} has MLP width {width}, valid indices [0, {width})"
            )
        if len(set(request)) != len(request):
            raise ValueError(f"channels[{index}] repeats a channel index")
        if len(request) >= width:
            raise ValueError(
                f"channels[{index}] removes all {width} MLP channels of layer {index}; at least one must remain"
            )
        out[index] = sorted(request)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# in-place module surgery
# ---------------------------------------------------------------------------------------------------------------------
def _sliced_linear(linear: nn.Linear, *, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> nn.Linear:
    """A new nn.Linear holding the selected output rows / input columns of `linear` (same dtype and device)."""
    weight = linear.weight.detach()
    bias = linear.bias.detach() if linear.bias is not None else None
    if rows is not None:
        rows = rows.to(weight.device)
        weight = weight.index_select(0, rows)
        bias = bias.index_select(0, rows) if bias is not None else None
    if cols is not None:
        weight = weight.index_select(1, cols.to(weight.device))
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    new.weight.requires_grad_(linear.weight.requires_grad)
    return new


def _zero_(linear: nn.Linear, *, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> None:
    with torch.no_grad():
        if rows is not None and rows.numel():
            rows = rows.to(linear.weight.device)
            linear.weight.index_fill_(0, rows, 0.0)
            if linear.bias is not None:
                linear.bias.index_fill_(0, rows, 0.0)
        if cols is not None and cols.numel():
            linear.weight.index_fill_(1, cols.to(linear.weight.device), 0.0)


def _set_projection(adapter: ModelAdapter, block: nn.Module, role: str, linear: nn.Linear) -> None:
    path = adapter.layout.projections[role]
    parent_path, _, attr = path.rpartition(".")
    parent = block.get_submodule(parent_path) if parent_path else block
    setattr(parent, attr, linear)


def _update_attention_attributes(attention: nn.Module, num_heads: int, num_kv_heads: int) -> None:
    # Our LLaDA/Dream modules keep num_heads / num_kv_heads; every module reads num_key_value_groups for repeat_kv.
    # Whole-group removal keeps the group size, so num_key_value_groups is unchanged by construction.
    for name, value in (("num_heads", num_heads), ("num_kv_heads", num_kv_heads), ("num_key_value_heads", num_kv_heads)):
        if hasattr(attention, name):
            setattr(attention, name, value)
    if hasattr(attention, "num_key_value_groups") and num_kv_heads:
        attention.num_key_value_groups = num_heads // num_kv_heads


def current_widths(model: nn.Module, adapter: ModelAdapter | None = None) -> list[int]:
    adapter = adapter or get_adapter(model)
    return [adapter.mlp_width(model, i) for i in range(adapter.num_layers(model))]


def remove_heads(
    model: nn.Module, heads: dict[int, list[int]], *, mode: str = "remove", min_heads_per_layer: int = 1
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

    Returns:
        `dict[int, list[int]]`: every head now removed (remove mode) or zeroed by this call (mask mode), per layer.

    Raises:
        `ValueError`: bad mode, layer or head out of range, a head removed twice, too few heads left, a split kv group
            (grouped-query attention); raised before any weight changes.
    """
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not one of {MODES}")
    adapter = get_adapter(model)
    geometry = head_geometry(model, adapter)
    already = adapter.pruned_heads(model)
    request = validate_head_request(
        heads, geometry=geometry, already=already, num_layers=adapter.num_layers(model), min_heads=min_heads_per_layer
    )
    group, hd = geometry.group_size, geometry.head_dim
    blocks = adapter.blocks(model)
    for layer, new in request.items():
        block = blocks[layer]
        current = kept_heads(geometry.num_heads, already.get(layer, []))  # original index of each current position
        position = {h: p for p, h in enumerate(current)}
        drop_q = [position[h] for h in new]
        # kv positions: the current kv heads are the kept groups, in order
        current_groups = sorted({h // group for h in current})
        kv_position = {g: p for p, g in enumerate(current_groups)}
        drop_kv = [kv_position[g] for g in kv_groups_of(new, group)] if group > 1 else drop_q
        q_rows, kv_rows = head_rows(drop_q, hd), head_rows(drop_kv, hd)
        projections = adapter.projections(block)
        if mode == "mask":
            for role, rows in (("q", q_rows), ("k", kv_rows), ("v", kv_rows)):
                _zero_(projections[role], rows=rows)
            _zero_(projections["o"], cols=q_rows)
            continue
        keep_q = head_rows([p for p in range(len(current)) if p not in set(drop_q)], hd)
        keep_kv = head_rows([p for p in range(len(current_groups) if group > 1 else len(current))
                             if p not in set(drop_kv)], hd)
        for role, rows in (("q", keep_q), ("k", keep_kv), ("v", keep_kv)):
            _set_projection(adapter, block, role, _sliced_linear(projections[role], rows=rows))
        _set_projection(adapter, block, "o", _sliced_linear(projections["o"], cols=keep_q))
        n_heads = len(current) - len(drop_q)
        _update_attention_attributes(adapter.attention_module(block), n_heads, n_heads // group)
    if mode == "mask":
        return request
    union = {i: sorted(set(already.get(i, [])) | set(request.get(i, []))) for i in set(already) | set(request)}
    adapter.record_structure(model, union, current_widths(model, adapter))
    logger.info("removed heads %s", request)
    return {i: v for i, v in sorted(union.items()) if v}


def remove_mlp_channels(model: nn.Module, channels: dict[int, list[int]], *, mode: str = "remove") -> list[int]:
    """Remove (or zero) MLP channels, given as CURRENT channel positions per layer.

    `"remove"` slices the gate/up rows (and biases) and down-projection columns and records the per-layer widths in
    the config; `"mask"` zeroes the same weights and keeps shapes.

    Returns:
        `list[int]`: the per-layer MLP widths after the call (mask mode: the widths counting only non-masked channels
        of this call).

    Raises:
        `ValueError`: bad mode, layer or channel out of range, every channel of a layer; before any weight changes.
    """
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not one of {MODES}")
    adapter = get_adapter(model)
    widths = current_widths(model, adapter)
    request = validate_channel_request(channels, widths=widths)
    blocks = adapter.blocks(model)
    for layer, drop in request.items():
        block = blocks[layer]
        projections = adapter.projections(block)
        drop_t = torch.tensor(drop, dtype=torch.long)
        if mode == "mask":
            _zero_(projections["gate"], rows=drop_t)
            _zero_(projections["up"], rows=drop_t)
            _zero_(projections["down"], cols=drop_t)
            continue
        dropped = set(drop)
        keep = torch.tensor([c for c in range(widths[layer]) if c not in dropped], dtype=torch.long)
        _set_projection(adapter, block, "gate", _sliced_linear(projections["gate"], rows=keep))
        _set_projection(adapter, block, "up", _sliced_linear(projections["up"], rows=keep))
        _set_projection(adapter, block, "down", _sliced_linear(projections["down"], cols=keep))
        mlp = adapter.mlp_module(block)
        if hasattr(mlp, "intermediate_size"):
            mlp.intermediate_size = len(keep)
    new_widths = [w - len(request.get(i, [])) for i, w in enumerate(widths)]
    if mode == "remove":
        adapter.record_structure(model, adapter.pruned_heads(model), new_widths)
        logger.info("removed MLP channels: widths %s -> %s", widths, new_widths)
    return new_widths


def prune_structure(
    model: nn.Module,
    *,
    heads: dict[int, list[int]] | None = None,
    channels: dict[int, list[int]] | None = None,
    mode: str = "remove",
    min_heads_per_layer: int = 1,
) -> None:
    """Remove heads and MLP channels together, validating BOTH requests before touching any weight."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not one of {MODES}")
    adapter = get_adapter(model)
    validate_head_request(
        heads or {}, geometry=head_geometry(model, adapter), already=adapter.pruned_heads(model),
        num_layers=adapter.num_layers(model), min_heads=min_heads_per_layer,
    )
    validate_channel_request(channels or {}, widths=current_widths(model, adapter))
    if heads:
        remove_heads(model, heads, mode=mode, min_heads_per_layer=min_heads_per_layer)
    if channels:
        remove_mlp_channels(model, channels, mode=mode)


# ---------------------------------------------------------------------------------------------------------------------
# parameter accounting
# ---------------------------------------------------------------------------------------------------------------------
def block_parameter_count(model: nn.Module, adapter: ModelAdapter | None = None) -> int:
    """Parameters inside the transformer blocks (attention, MLP, norms); embeddings and the LM head excluded."""
    adapter = adapter or get_adapter(model)
    return sum(p.numel() for p in adapter.blocks(model).parameters())


def nonzero_block_parameter_count(model: nn.Module, adapter: ModelAdapter | None = None) -> int:
    """Non-zero parameters inside the blocks (what remains after mask mode)."""
    adapter = adapter or get_adapter(model)
    return sum(int(torch.count_nonzero(p)) for p in adapter.blocks(model).parameters())


__all__ = [
    "MODES",
    "HeadGeometry",
    "block_parameter_count",
    "current_widths",
    "head_geometry",
    "head_rows",
    "kept_heads",
    "kv_groups_of",
    "nonzero_block_parameter_count",
    "prune_structure",
    "remove_heads",
    "remove_mlp_channels",
    "validate_channel_request",
    "validate_head_request",
]
