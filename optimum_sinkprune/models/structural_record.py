# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The structural record of a structurally pruned checkpoint, checked against the model's original sizes.

A pruned `config.json` records which attention heads every layer lost (`pruned_heads`: original head indices per
layer) and every layer's MLP width (`mlp_hidden_sizes` for LLaDA / MMaDA, `intermediate_sizes` for Dream and the
native Llama / Qwen2 classes). The same rules check a removal request before surgery (`structured.removal`) and the
record when a config is loaded, so a checkpoint that could not have been written by a pruning run never builds:

* layer keys are integers (JSON writes them as strings: "0", "1", ...) in [0, number of layers);
* head indices are integers in [0, original heads), none repeated, at least one head left in each layer;
* with grouped-query attention only whole kv groups (a group's query heads together) are removed;
* the per-layer widths are a list with one integer per layer, each in [1, original MLP width].

Self-contained (standard library only): a saved LLaDA / Dream checkpoint carries this file beside its configuration
code, so that plain transformers loads it without optimum-sinkprune installed.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping


def _integer(value) -> int | None:
    """`value` as an int when it is an integer (Python, numpy or 0-d integer tensor; not a bool), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _layer_index(field: str, layer, num_layers: int) -> int:
    """The integer layer of a record key (an int, or its decimal string as JSON writes it)."""
    index = None
    if isinstance(layer, str) and layer.strip().lstrip("-").isdigit():
        index = int(layer)
    elif not isinstance(layer, str):
        index = _integer(layer)
    if index is None:
        raise ValueError(f"{field} has layer key {layer!r}; layer keys must be integers in [0, {num_layers})")
    if not 0 <= index < num_layers:
        raise ValueError(f"{field} has layer {layer!r}, out of range: the model has {num_layers} layers, valid layer "
                         f"indices [0, {num_layers})")
    return index


def _index_list(field: str, layer, value) -> list[int]:
    """The integer indices of one layer's entry: a list/tuple of integers (or a single integer, or a tensor)."""
    if hasattr(value, "reshape") and hasattr(value, "tolist"):  # a tensor or an array: its entries, flattened
        value = value.reshape(-1).tolist()
    if _integer(value) is not None:
        value = [value]
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise ValueError(f"{field}[{layer!r}]={value!r} is not allowed; give a list of integer indices")
    items = list(value)
    out = [_integer(v) for v in items]
    if any(v is None for v in out):
        raise ValueError(f"{field}[{layer!r}]={items!r} is not allowed; give a list of integer indices")
    return out


def validate_head_request(
    heads: Mapping,
    *,
    num_heads: int,
    num_kv_heads: int,
    num_layers: int,
    already: Mapping[int, list[int]] | None = None,
    min_heads: int = 1,
    field: str = "heads",
) -> dict[int, list[int]]:
    """Check heads to remove (or recorded as removed) per layer, as ORIGINAL head indices; return them normalised.

    Args:
        heads: `{layer: [original head indices]}` (layer keys may be decimal strings, as in JSON).
        num_heads, num_kv_heads: the model's original query / key-value head counts (group size = their ratio).
        num_layers: layers of the model.
        already: heads removed before, per layer (a second pruning composes with the first).
        min_heads: heads that must remain in every layer; 0 for a recorded structure, where a layer may have lost
            every head (our classes and the native reload build such a layer, which then adds nothing).
        field: the name of what is checked, for the messages (`"heads"`, `"LLaDAConfig.pruned_heads"`, ...).

    Returns:
        `dict[int, list[int]]`: `{layer: sorted head indices}` for the layers with a non-empty entry.

    Raises:
        `ValueError`: not a mapping, a layer key that is not an integer or out of range, a head index that is not an
            integer, out of range, repeated or already removed, fewer than `min_heads` heads left in a layer, or
            (grouped-query attention) an entry that splits a kv group. The message names `field`, the layer and the
            allowed range.
    """
    if not isinstance(heads, Mapping):
        raise ValueError(f"{field}={heads!r} is not allowed; give a dict {{layer index: [original head indices]}}")
    already = already or {}
    group = num_heads // num_kv_heads if num_kv_heads else 1
    out: dict[int, list[int]] = {}
    for layer, value in heads.items():
        index = _layer_index(field, layer, num_layers)
        request = _index_list(field, layer, value)
        if not request:
            continue
        if index in out:
            raise ValueError(f"{field} names layer {index} twice (keys {list(heads)!r}); give each layer once")
        bad = [h for h in request if not 0 <= h < num_heads]
        if bad:
            raise ValueError(f"{field}[{index}] has head indices {bad} out of range: original head indices lie in "
                             f"[0, {num_heads})")
        if len(set(request)) != len(request):
            raise ValueError(f"{field}[{index}]={request} repeats a head index; each head is listed once")
        previous = set(already.get(index, []))
        twice = sorted(previous & set(request))
        if twice:
            raise ValueError(
                f"{field}[{index}] asks for heads {twice} that were already removed from layer {index} "
                f"(config.pruned_heads[{index}]={sorted(previous)}); indices refer to the original heads"
            )
        left = num_heads - len(previous | set(request))
        if left < min_heads:
            raise ValueError(
                f"{field}[{index}]={sorted(request)} would leave {left} of {num_heads} heads in layer {index}; "
                f"at least {min_heads} must remain (pruning every head of a layer is not allowed)"
            )
        if group > 1:
            for g in sorted({h // group for h in request}):
                members = set(range(g * group, (g + 1) * group))
                if not members <= set(request):
                    raise ValueError(
                        f"{field}[{index}]={sorted(request)} splits kv group {g} (query heads {sorted(members)}): "
                        f"this model uses grouped-query attention ({num_heads} query heads, {num_kv_heads} kv heads), "
                        "so only whole kv groups can be removed"
                    )
        out[index] = sorted(request)
    return out


def validate_channel_request(channels: Mapping, *, widths: list[int], field: str = "channels") -> dict[int, list[int]]:
    """Check MLP channels to remove per layer (CURRENT positions) and return them normalised; at least one channel of
    every layer must remain.

    Raises:
        `ValueError`: not a mapping, a bad layer key, a channel index that is not an integer, out of range
            [0, width) or repeated, or every channel of a layer; the message names `field`, the layer and the range.
    """
    if not isinstance(channels, Mapping):
        raise ValueError(f"{field}={channels!r} is not allowed; give a dict {{layer index: [channel indices]}}")
    out: dict[int, list[int]] = {}
    for layer, value in channels.items():
        index = _layer_index(field, layer, len(widths))
        request = _index_list(field, layer, value)
        if not request:
            continue
        width = widths[index]
        bad = [c for c in request if not 0 <= c < width]
        if bad:
            raise ValueError(
                f"{field}[{index}] has channel indices {bad[:8]}{'…' if len(bad) > 8 else ''} out of range: layer "
                f"{index} has MLP width {width}, valid indices [0, {width})"
            )
        if len(set(request)) != len(request):
            raise ValueError(f"{field}[{index}] repeats a channel index")
        if len(request) >= width:
            raise ValueError(f"{field}[{index}] removes all {width} MLP channels of layer {index}; at least one must "
                             "remain")
        out[index] = sorted(request)
    return out


def validate_mlp_widths(widths, *, num_layers: int, original_width: int, field: str) -> list[int]:
    """Check recorded per-layer MLP widths: one integer per layer, each in [1, `original_width`].

    Raises:
        `ValueError`: naming `field`, the layer and the allowed range.
    """
    if isinstance(widths, (str, bytes, Mapping)) or not isinstance(widths, (list, tuple)):
        raise ValueError(f"{field}={widths!r} is not allowed; give a list of {num_layers} integer MLP widths, one per "
                         "layer")
    if len(widths) != num_layers:
        raise ValueError(f"{field} has {len(widths)} entries; the model has {num_layers} layers, so it needs exactly "
                         f"{num_layers} (one MLP width per layer)")
    out = []
    for layer, width in enumerate(widths):
        value = _integer(width)
        if value is None or not 1 <= value <= original_width:
            raise ValueError(f"{field}[{layer}]={width!r} is not allowed: layer {layer}'s MLP width must be an integer "
                             f"in [1, {original_width}] (the original MLP width is {original_width})")
        out.append(value)
    return out


def validate_structural_record(
    pruned_heads,
    mlp_widths,
    *,
    num_layers: int,
    num_heads: int,
    num_kv_heads: int,
    original_width: int,
    heads_field: str = "pruned_heads",
    widths_field: str = "mlp_widths",
) -> tuple[dict[int, list[int]], list[int] | None]:
    """Check a whole structural record (heads, kv groups, MLP widths) against the original sizes.

    Args:
        pruned_heads: `{layer: [original head indices]}` removed, or None.
        mlp_widths: per-layer MLP widths, or None (every layer has `original_width`).
        num_layers, num_heads, num_kv_heads, original_width: the original sizes of the model.
        heads_field, widths_field: the names used in the messages (e.g. `"LLaDAConfig.pruned_heads"`).

    Returns:
        `(pruned_heads, mlp_widths)` normalised: integer layer keys, sorted head lists (empty entries dropped), a list
        of ints (or None).

    Raises:
        `ValueError`: the first problem found, naming the field, the layer and the allowed range.
    """
    no_heads = pruned_heads is None or (isinstance(pruned_heads, Mapping) and not pruned_heads)
    if no_heads and mlp_widths is None:  # an unpruned config: nothing to check against its sizes
        return {}, None
    for name, value in (("number of layers", num_layers), ("number of attention heads", num_heads),
                        ("number of key/value heads", num_kv_heads), ("MLP width", original_width)):
        if _integer(value) is None or value < 1:
            raise ValueError(f"the config's {name} is {value!r}; it must be a positive integer to check "
                             f"{heads_field} / {widths_field}")
    if num_heads % num_kv_heads:
        raise ValueError(f"the config's {num_heads} attention heads are not a multiple of its {num_kv_heads} "
                         f"key/value heads; {heads_field} cannot be checked")
    heads = {} if no_heads else validate_head_request(
        pruned_heads, num_heads=num_heads, num_kv_heads=num_kv_heads, num_layers=num_layers, field=heads_field,
        min_heads=0)
    widths = None if mlp_widths is None else validate_mlp_widths(
        mlp_widths, num_layers=num_layers, original_width=original_width, field=widths_field)
    return heads, widths


class StructuralRecordConfigMixin:
    """Per-layer sizes read from a configuration's structural record, for the config classes of our models.

    The config holds `num_attention_heads` / `num_key_value_heads` (directly or through its `attribute_map`), the
    normalised `pruned_heads` (int layer -> original head indices, as `validate_structural_record` returns it), the
    per-layer widths in the field named by `_mlp_widths_field` (None: unpruned) and the original MLP width in the one
    named by `_mlp_width_field`."""

    _mlp_widths_field: str = ""
    _mlp_width_field: str = ""

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def layer_mlp_hidden_size(self, layer_idx: int) -> int:
        """MLP width of one layer, after any channel pruning recorded in the per-layer widths."""
        widths = getattr(self, self._mlp_widths_field)
        if widths is not None:
            return int(widths[layer_idx])
        return getattr(self, self._mlp_width_field)

    def layer_num_heads(self, layer_idx: int) -> int:
        return self.num_attention_heads - len(self.pruned_heads.get(layer_idx, ()))

    def layer_num_kv_heads(self, layer_idx: int) -> int:
        group = self.num_attention_heads // self.num_key_value_heads
        return self.num_key_value_heads - len(self.pruned_heads.get(layer_idx, ())) // group

    def to_dict(self):
        # JSON object keys are strings; `head_dim` is derived, not a key
        out = super().to_dict()
        out["pruned_heads"] = {str(k): list(v) for k, v in self.pruned_heads.items()}
        out.pop("head_dim", None)
        return out


__all__ = [
    "StructuralRecordConfigMixin",
    "validate_channel_request",
    "validate_head_request",
    "validate_mlp_widths",
    "validate_structural_record",
]
