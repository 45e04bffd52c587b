# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Compressed checkpoints: the pruned linears of an unstructured or 2:4 model stored sparse, in the compressed-tensors
layout (`sparse-bitmask`, `sparse-24-bitmask`), with the `quantization_config` (a sparsity config) in config.json.

Everything else (embeddings, norms, the LM head, linears without sparsity) stays dense. The tensor layout and the
decoder live in `models/modeling_sparse_storage.py`, which saved LLaDA / MMaDA / Dream checkpoints carry next to
their modeling code, so `from_pretrained` restores the exact pruned weights with or without this package.

Save formats are a table (`SAVE_FORMATS`). The quantized format stores the linears `SinkAwareQuantizer` quantized as
integers plus scales: compressed-tensors' `pack-quantized` layout (int4 and int8 values packed into int32 words),
with a `quantization_config` of quantization groups that transformers' compressed-tensors integration reads itself,
so those checkpoints load without this package (and without remote code for native architectures). Pruned *and*
quantized models are stored quantized with their zeros kept as integer zeros: compressed-tensors >= 0.15 has no
sparse compressors, so no sparse + quantized layout loads in transformers 5.x.

Models that compressed-tensors cannot describe are stored in our own layout, `sinkprune-pack-quantized`
(`SINK_PACK_QUANTIZED`): quantized slices of packed 3-D parameters (a mixture of experts' `experts.gate_up_proj`
`[experts, out, in]`, quantized expert by expert) — compressed-tensors quantizes `nn.Linear` modules only — and
quantized linears whose weight is shared by two modules (DiffusionGemma's encoder and decoder stacks share every
weight; transformers' compressed-tensors loader replaces the weight of one and then cannot tie the other). The
layout is compressed-tensors' `pack-quantized` one, applied to parameters instead of modules: each quantized
parameter `<key>` (`<module>.weight`, or `<module>.gate_up_proj`) is stored once, as `<key>_packed` (int32, the
integers of each row packed into 32-bit words along the input columns, `pack_to_int32`), `<key>_scale` (the model
dtype, `[..., out, groups]`) and `<key>_shape` (int64, the parameter's shape); a shared parameter is stored under the
name transformers' own save keeps. config.json names it in `sink_quantized_storage` (`STORAGE_KEY`: format, bits,
group size, the quantized keys) and carries no `quantization_config`, so `optimum_sinkprune.hub.load.load_model`
(`load_sink_quantized`) restores the exact quantized weights and their scales; plain transformers cannot read it.
The same models, pruned and not quantized, are stored dense by default (so plain `from_pretrained` loads them);
`save_format="compressed"` stores them in `sinkprune-sparse-bitmask` (`SINK_SPARSE_BITMASK`): each sparse parameter
`<key>` once, as `<key>_values` (its non-zeros, row-major), `<key>_bitmask` (one bit per entry, packed into uint8 along
the rows) and `<key>_shape`, named in `sink_quantized_storage` too, read by `load_model` only.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import torch
from torch import nn

from ..counting import count_zeros
from ..models.modeling_sparse_storage import (
    _HUB_KWARGS,
    QUANT_METHOD,
    SPARSE_24_BITMASK,
    SPARSE_BITMASK,
    bitmask_compress,
    is_two_four,
    read_weight_files,
    two_four_compress,
)
from ..offload import named_value

logger = logging.getLogger(__name__)

DENSE = "dense"
COMPRESSED = "compressed"
QUANTIZED = "quantized"
PACK_QUANTIZED = "pack-quantized"
SINK_PACK_QUANTIZED = "sinkprune-pack-quantized"  # our layout for what compressed-tensors cannot describe
SINK_SPARSE_BITMASK = "sinkprune-sparse-bitmask"  # our sparse layout for packed expert tensors and shared weights
STORAGE_KEY = "sink_quantized_storage"  # config.json entry of a checkpoint in one of our layouts
# save_format -> what it stores; a quantized format adds a row here and a branch in `compressed_state_dict`
SAVE_FORMATS = MappingProxyType({
    DENSE: "every tensor stored densely (plain safetensors)",
    COMPRESSED: "pruned linears stored sparse in the compressed-tensors layout (bitmask, or 2:4 for 2:4 models)",
    QUANTIZED: "quantized linears stored as int4/int8 values and scales (compressed-tensors pack-quantized, or "
               "sinkprune-pack-quantized for packed expert tensors and shared weights); the zeros of pruned layers "
               "are kept as integer zeros",
})
INSTALL_HINT = "pip install compressed-tensors"  # or the `compressed` extra of optimum-sinkprune


@dataclass(frozen=True)
class SparsePlan:
    """Which linears a compressed save stores sparse, and how.

    Attributes:
        format: `sparse-bitmask` or `sparse-24-bitmask`.
        targets: fully qualified module names of the linears stored sparse.
        sparsity: the fraction of zeros over the targets' weights.
    """

    format: str
    targets: tuple[str, ...]
    sparsity: float

    @property
    def structure(self) -> str:
        return "2:4" if self.format == SPARSE_24_BITMASK else "unstructured"


def bitmask_saves_space(weight: torch.Tensor) -> bool:
    """Whether the bitmask layout of `weight` (non-zero values + one bit per entry) is smaller than dense storage."""
    nonzero = int((weight != 0).sum())
    return nonzero * weight.element_size() + weight.numel() / 8 < weight.numel() * weight.element_size()


def sparse_linears(model: nn.Module) -> dict[str, torch.Tensor]:
    """The prunable block linears of `model` (from its adapter) whose weights are sparse enough to store sparse."""
    from ..adapters import UnsupportedModelError, get_adapter

    try:
        layers = get_adapter(model).linear_layers(model)
    except UnsupportedModelError:
        return {}
    from ..methods import read_weight

    weights = {name: read_weight(layer).detach() for name, layer in layers.items()}  # offloaded: the real values
    return {name: w for name, w in weights.items() if w.dim() == 2 and bitmask_saves_space(w)}


def plan_sparse_storage(model: nn.Module) -> SparsePlan | None:
    """The sparse storage of `model`'s pruned linears: 2:4 when every one of them is 2:4 along its input columns,
    bitmask otherwise; None when no prunable linear is sparse."""
    weights = sparse_linears(model)
    if not weights:
        return None
    fmt = SPARSE_24_BITMASK if all(is_two_four(w) for w in weights.values()) else SPARSE_BITMASK
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    total = sum(w.numel() for w in weights.values())
    return SparsePlan(format=fmt, targets=tuple(weights), sparsity=zeros / total)


def supports_sparse_loading(model: nn.Module) -> bool:
    """Whether `model`'s class decompresses sparse checkpoints in `from_pretrained` (our LLaDA / MMaDA / Dream
    classes). transformers 5.x does not for other classes: they would load random weights in place of the sparse
    ones, so they are saved dense."""
    from ..models.modeling_dlm_utils import SelfContainedSaveMixin

    return isinstance(model, SelfContainedSaveMixin)


def resolve_save_format(model: nn.Module, save_format: str | None) -> tuple[str, SparsePlan | QuantPlan | None]:
    """The format a save uses, and the sparse (or quantized) plan for a compressed (or quantized) save.

    Args:
        model: the model to save.
        save_format: `"compressed"`, `"quantized"`, `"dense"`, or None (quantized for a quantized model; else
            compressed for a sparse model whose class loads it back; dense otherwise).

    Returns:
        `(format, plan)`: plan is None for a dense save.

    Raises:
        `ValueError`: an unknown `save_format`, `"quantized"` for a model that is not quantized, `"compressed"` for a
        quantized model, or `"compressed"` for a model without sparse linears or whose class
        cannot load a compressed checkpoint.
    """
    if save_format is not None and save_format not in SAVE_FORMATS:
        raise ValueError(f"save_format={save_format!r} is not a save format; use one of {sorted(SAVE_FORMATS)} "
                         "(or None: compressed for sparse models, dense otherwise)")
    if save_format == DENSE:
        return DENSE, None
    quant_plan = plan_quantized_storage(model)
    if quant_plan is not None:
        if save_format == COMPRESSED:
            raise ValueError("save_format='compressed' stores sparsity only, but this model is quantized: no sparse + "
                             "quantized layout loads in transformers 5.x; use save_format='quantized' (the zeros are "
                             "kept as integer zeros) or 'dense'")
        _compressed_tensors("saving a quantized checkpoint")  # before anything is written
        return QUANTIZED, quant_plan
    if save_format == QUANTIZED:
        raise ValueError(f"save_format='quantized' needs a quantized model, but no linear of this "
                         f"{type(model).__name__} is quantized; quantize it first (SinkAwareQuantizer) or use "
                         "save_format='dense' / 'compressed'")
    plan = plan_sparse_storage(model)
    if save_format == COMPRESSED:
        if plan is None:
            raise ValueError("save_format='compressed' needs a model with sparsity, but no prunable linear of this "
                             f"{type(model).__name__} has enough zeros to store sparse; prune it first or use "
                             "save_format='dense'")
        if not supports_sparse_loading(model):
            own = plan_sink_sparse_storage(model)
            if own is not None:  # packed experts / shared weights: our layout, which load_model reads
                return COMPRESSED, own
            raise ValueError(f"save_format='compressed' is not available for {type(model).__name__}: transformers "
                             "does not decompress sparse compressed-tensors checkpoints of this class (it would load "
                             "random weights); use save_format='dense'")
    if plan is None:
        return DENSE, None
    if not supports_sparse_loading(model):
        logger.info("saving %s densely: transformers would not decompress a sparse checkpoint of this class",
                    type(model).__name__)
        return DENSE, None
    return COMPRESSED, plan


@dataclass(frozen=True)
class QuantPlan:
    """Which linears a quantized save stores as integers, and how.

    Attributes:
        bits: 4 or 8; group_size: columns per scale (None: one scale per row).
        targets: fully qualified module names of the quantized linears.
        sparsity: the fraction of zeros over the targets' weights (kept as integer zeros).
        format: `pack-quantized` (compressed-tensors) or `sinkprune-pack-quantized` (our layout).
        packed_targets: names of the packed 3-D parameters whose every slice is quantized (our layout only);
        packed_shapes: their shapes.
    """

    bits: int
    group_size: int | None
    targets: tuple[str, ...]
    sparsity: float
    format: str = PACK_QUANTIZED
    packed_targets: tuple[str, ...] = ()
    packed_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def structure(self) -> str:
        return f"int{self.bits}, " + (f"group size {self.group_size}" if self.group_size else "one scale per row")

    @property
    def layers(self) -> int:
        """Quantized weight matrices: the linears plus every expert slice of the packed tensors."""
        return len(self.targets) + sum(self.packed_shapes.get(name, (1,))[0] for name in self.packed_targets)


def _parameter_aliases(model: nn.Module) -> dict[int, list[str]]:
    """id(parameter) -> every name it has in `model` (a shared parameter has several)."""
    aliases: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        aliases.setdefault(id(param), []).append(name)
    return aliases


def _stored_name(names: list[str], tied_targets) -> str:
    """The name a shared parameter is stored under: the one transformers' save keeps (not a tie target)."""
    return next((n for n in names if n not in tied_targets), names[0])


def _state_dict_values(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """`model.state_dict()` entry by entry, offloaded ones read where they live (one at a time, so a disk-offloaded
    model is never in memory whole)."""
    for name, tensor in model.state_dict().items():
        yield name, named_value(model, name, tensor)


def plan_quantized_storage(model: nn.Module) -> QuantPlan | None:
    """The quantized storage of `model` (quantized by `SinkAwareQuantizer`), or None when nothing is quantized.

    compressed-tensors' `pack-quantized` when every quantized weight is an `nn.Linear` weight of its own;
    `sinkprune-pack-quantized` when quantized slices of packed 3-D parameters (experts) or shared linear weights
    are involved. A packed parameter with only some slices quantized is stored densely (logged)."""
    from ..quantized import QUANT_CONFIG_KEY, quantized_layers, quantized_packed_tensors

    layers = quantized_layers(model)
    settings = getattr(getattr(model, "config", None), QUANT_CONFIG_KEY, None)
    packed = {}
    for name, (_, _, scales) in quantized_packed_tensors(model).items():
        if bool(torch.isnan(scales.to(torch.float32)).any()):
            logger.info("storing %s densely: only some of its slices are quantized", name)
        else:
            packed[name] = scales
    if not (layers or packed) or not isinstance(settings, Mapping):
        return None
    aliases = _parameter_aliases(model)
    shared = any(len(aliases.get(id(layer.weight), ())) > 1 for layer in layers.values())
    params = dict(model.named_parameters(remove_duplicate=False))
    zeros = total = 0
    for name in [f"{layer}.weight" for layer in layers] + list(packed):
        values = named_value(model, name, params[name])  # one at a time (offloaded: read from where it lives)
        zeros += count_zeros(values)
        total += values.numel()
    layout = SINK_PACK_QUANTIZED if packed or shared else PACK_QUANTIZED
    return QuantPlan(bits=int(settings["bits"]), group_size=settings.get("group_size"), targets=tuple(layers),
                     sparsity=zeros / total, format=layout, packed_targets=tuple(packed),
                     packed_shapes={name: tuple(params[name].shape) for name in packed})


def _compressed_tensors(what: str):
    try:
        import compressed_tensors.quantization as quantization
        from compressed_tensors.compressors.pack_quantized.helpers import pack_to_int32
    except ImportError as err:
        raise ImportError(f"{what} needs the compressed-tensors package: {INSTALL_HINT}") from err
    return quantization, pack_to_int32


def check_compressed_tensors(what: str) -> None:
    """Raise `ImportError` naming the package and its install command unless compressed-tensors can be imported;
    `what` says what needs it (e.g. "saving a quantized checkpoint")."""
    _compressed_tensors(what)


def quantization_config(plan: QuantPlan) -> dict:
    """The `quantization_config` entry of config.json for a weight-only quantized checkpoint: one quantization group
    (symmetric int weights, group or channel strategy, static) targeting the quantized linears by exact name, in
    `pack-quantized` format, status `compressed` — built with compressed-tensors' own config classes."""
    quantization, _ = _compressed_tensors("saving a quantized checkpoint")
    args = quantization.QuantizationArgs(
        num_bits=plan.bits, type="int", symmetric=True, dynamic=False,
        strategy="group" if plan.group_size else "channel", group_size=plan.group_size)
    scheme = quantization.QuantizationScheme(targets=list(plan.targets), weights=args)
    config = quantization.QuantizationConfig(config_groups={"group_0": scheme}, format=plan.format,
                                             quantization_status="compressed", ignore=[])
    return {**config.model_dump(), "quant_method": QUANT_METHOD}


def quantized_state_dict(model: nn.Module, plan: QuantPlan) -> dict[str, torch.Tensor]:
    """`model`'s state dict with each target's `<name>.weight` replaced by `<name>.weight_packed` (int32),
    `<name>.weight_scale` (the model dtype, [out, groups]) and `<name>.weight_shape` (int64 [out, in])."""
    from ..methods.rtn import QuantGrid, integers_and_scales
    from ..quantized import SCALE_BUFFER

    _, pack_to_int32 = _compressed_tensors("saving a quantized checkpoint")
    modules = dict(model.named_modules())
    targets = set(plan.targets)
    out = {}
    for name, tensor in _state_dict_values(model):
        prefix, _, param = name.rpartition(".")
        if param == "weight" and prefix in targets:
            scale = getattr(modules[prefix], SCALE_BUFFER).detach().cpu()
            grid = QuantGrid(plan.bits, plan.group_size, scale.dtype)
            ints = integers_and_scales(tensor.detach().cpu().to(torch.float32), scale.to(torch.float32), grid)
            out[f"{prefix}.weight_packed"] = pack_to_int32(ints, plan.bits)
            out[f"{prefix}.weight_scale"] = scale.contiguous()
            out[f"{prefix}.weight_shape"] = torch.tensor(list(tensor.shape), dtype=torch.int64)
        else:
            out[name] = tensor
    return out


def pack_parameter(weight: torch.Tensor, scales: torch.Tensor, bits: int, group_size: int | None) -> dict:
    """One quantized parameter (2-D `[out, in]` or packed 3-D `[experts, out, in]`, on the grid of `scales`
    `[..., out, groups]`) as the `_packed` (int32), `_scale` and `_shape` (int64) tensors of our layout."""
    from ..methods.rtn import QuantGrid, integers_and_scales

    _, pack_to_int32 = _compressed_tensors("saving a quantized checkpoint")
    shape = tuple(weight.shape)
    rows = weight.detach().cpu().to(torch.float32).reshape(-1, shape[-1])
    flat_scales = scales.detach().cpu().to(torch.float32).reshape(rows.shape[0], -1)
    ints = integers_and_scales(rows, flat_scales, QuantGrid(bits, group_size, scales.dtype))
    packed = pack_to_int32(ints, bits)
    return {"_packed": packed.reshape(*shape[:-1], packed.shape[-1]).contiguous(),
            "_scale": scales.detach().cpu().contiguous(),
            "_shape": torch.tensor(list(shape), dtype=torch.int64)}


def unpack_parameter(packed: torch.Tensor, scales: torch.Tensor, shape: torch.Tensor, bits: int) -> torch.Tensor:
    """The quantized parameter (in the dtype of `scales`) from its `_packed`, `_scale` and `_shape` tensors: exactly
    the weight the quantized model computed with."""
    from ..methods.rtn import expand_scales

    try:
        from compressed_tensors.compressors.pack_quantized.helpers import unpack_from_int32
    except ImportError as err:
        raise ImportError(f"loading a quantized checkpoint needs the compressed-tensors package: {INSTALL_HINT}") \
            from err
    dims = [int(d) for d in shape.tolist()]
    rows = packed.reshape(-1, packed.shape[-1])
    ints = unpack_from_int32(rows, bits, torch.Size([rows.shape[0], dims[-1]]))
    flat_scales = scales.to(torch.float32).reshape(rows.shape[0], -1)
    weight = ints.to(torch.float32) * expand_scales(flat_scales, dims[-1])
    return weight.to(scales.dtype).reshape(dims)


def sink_quantized_state_dict(model: nn.Module, plan: QuantPlan) -> tuple[dict[str, torch.Tensor], list[str]]:
    """`model`'s state dict in the `sinkprune-pack-quantized` layout, and the stored keys of the quantized
    parameters: each quantized parameter stored once (under the name transformers' save keeps) as
    `<key>_packed` / `<key>_scale` / `<key>_shape`, its other names left out; every other tensor as is."""
    from ..quantized import SCALE_BUFFER, quantized_packed_tensors

    modules = dict(model.named_modules())
    params = dict(model.named_parameters(remove_duplicate=False))
    aliases = _parameter_aliases(model)
    tied_targets = set(getattr(model, "all_tied_weights_keys", None) or {})
    quantized: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id(parameter) -> (parameter, scales)
    for name in plan.targets:
        layer = modules[name]
        quantized[id(layer.weight)] = (layer.weight, getattr(layer, SCALE_BUFFER))
    packed = quantized_packed_tensors(model)
    for name in plan.packed_targets:
        quantized[id(params[name])] = (params[name], packed[name][2])
    dropped = {n for key in quantized for n in aliases[key]}
    out, keys = {}, []
    for key, (param, scales) in quantized.items():
        stored = _stored_name(aliases[key], tied_targets)
        keys.append(stored)
        values = named_value(model, aliases[key][0], param)
        out.update({f"{stored}{suffix}": t
                    for suffix, t in pack_parameter(values, scales, plan.bits, plan.group_size).items()})
    out.update((name, tensor) for name, tensor in _state_dict_values(model) if name not in dropped)
    return out, keys


def sink_storage_config(plan: QuantPlan, keys: list[str]) -> dict:
    """The `sink_quantized_storage` entry of config.json for a `sinkprune-pack-quantized` checkpoint."""
    return {"format": SINK_PACK_QUANTIZED, "bits": plan.bits, "group_size": plan.group_size, "symmetric": True,
            "tensors": sorted(keys)}


def sink_quantized_storage(path: str | os.PathLike, **hub_kwargs) -> dict | None:
    """The `sink_quantized_storage` entry of a checkpoint's config.json (a local folder or a Hub repo), or None for
    any other checkpoint (no config.json, or another storage)."""
    from transformers.utils import cached_file

    kwargs = {k: v for k, v in hub_kwargs.items() if k in _HUB_KWARGS and v is not None}
    config_file = None
    if not os.path.isdir(path):  # a Hub id: the cached config first, so no request is made for a cached repo
        from huggingface_hub import try_to_load_from_cache

        try:
            cached = try_to_load_from_cache(os.fspath(path), "config.json", cache_dir=kwargs.get("cache_dir"),
                                            revision=kwargs.get("revision"))
        except ValueError:  # not a valid repo id: from_pretrained reports on it
            return None
        config_file = cached if isinstance(cached, str) else None
    try:
        config_file = config_file or cached_file(os.fspath(path), "config.json",
                                                 _raise_exceptions_for_missing_entries=False, **kwargs)
    except (OSError, ValueError):  # not reachable / not a repo: from_pretrained reports on it
        return None
    if config_file is None:
        return None
    try:
        with open(config_file, encoding="utf-8") as f:
            storage = json.load(f).get(STORAGE_KEY)
    except (OSError, ValueError, AttributeError):
        return None
    return storage if isinstance(storage, Mapping) else None


def _check_storage(storage: Mapping) -> tuple[int | None, list[str]]:
    if storage.get("format") not in (SINK_PACK_QUANTIZED, SINK_SPARSE_BITMASK):
        raise ValueError(f"{STORAGE_KEY}.format={storage.get('format')!r} is not a known storage; this version of "
                         f"optimum-sinkprune reads {SINK_PACK_QUANTIZED!r} and {SINK_SPARSE_BITMASK!r}")
    bits, keys = storage.get("bits"), storage.get("tensors")
    if storage["format"] == SINK_SPARSE_BITMASK:
        bits = None
    elif bits not in (4, 8):
        keys = None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ValueError(f"{STORAGE_KEY} must name bits (4 or 8) and its quantized tensors (a list of names), got "
                         f"bits={bits!r}, tensors={type(keys).__name__}")
    return (None if bits is None else int(bits)), keys


def read_sink_quantized(path: str | os.PathLike, storage: Mapping, **hub_kwargs):
    """The dense state dict of a checkpoint in one of our layouts (`sinkprune-pack-quantized`,
    `sinkprune-sparse-bitmask`) and the scales of its quantized parameters ({key: scales}; empty for the sparse one).

    Raises:
        `ImportError`: compressed-tensors is not installed (names the install command).
        `ValueError`: a malformed `sink_quantized_storage` entry, or a quantized key without its tensors.
    """
    bits, keys = _check_storage(storage)
    tensors = read_weight_files(path, **hub_kwargs)
    scales = {}
    suffixes = ("_packed", "_scale", "_shape") if bits is not None else ("_values", "_bitmask", "_shape")
    for key in keys:
        parts = [f"{key}{suffix}" for suffix in suffixes]
        missing = [p for p in parts if p not in tensors]
        if missing:
            raise ValueError(f"stored tensor {key!r} lacks {missing} in the weight files of {path}")
        first, second, shape = (tensors.pop(p) for p in parts)
        if bits is None:
            tensors[key] = unpack_sparse_parameter(first, second, shape)
        else:
            tensors[key] = unpack_parameter(first, second, shape, bits)
            scales[key] = second
    return tensors, scales


def restore_scales(model: nn.Module, scales: Mapping[str, torch.Tensor]) -> None:
    """Give a model loaded from a `sinkprune-pack-quantized` checkpoint the scale buffers of the quantized model, so
    it reports as quantized and saves quantized again (scales in the dtype of the loaded weights)."""
    from ..quantized import SCALE_BUFFER, packed_scale_name

    params = dict(model.named_parameters(remove_duplicate=False))
    for key, scale in scales.items():
        prefix, _, attr = key.rpartition(".")
        owner = model.get_submodule(prefix) if prefix else model
        scale = scale.to(device=params[key].device, dtype=params[key].dtype)
        owner.register_buffer(SCALE_BUFFER if attr == "weight" and isinstance(owner, nn.Linear)
                              else packed_scale_name(attr), scale, persistent=False)


def load_sink_quantized(auto_class, path: str | os.PathLike, storage: Mapping, kwargs: Mapping) -> nn.Module:
    """`auto_class.from_pretrained` of a `sinkprune-pack-quantized` checkpoint: the dequantized weights (exactly those
    the quantized model computed with) loaded as a dense state dict, then the scales restored (`restore_scales`)."""
    from transformers import AutoConfig

    hub_kwargs = {k: kwargs[k] for k in _HUB_KWARGS if kwargs.get(k) is not None}
    state_dict, scales = read_sink_quantized(path, storage, **hub_kwargs)
    config = kwargs.get("config") or AutoConfig.from_pretrained(
        path, trust_remote_code=bool(kwargs.get("trust_remote_code", False)), **hub_kwargs)
    rest = {k: v for k, v in kwargs.items() if k not in _HUB_KWARGS and k not in ("config", "trust_remote_code")}
    from transformers.models.auto.auto_factory import _get_model_class

    # the concrete class: an Auto class needs a path to resolve remote code, and there is none to read here
    model_class = _get_model_class(config, auto_class._model_mapping)
    model = model_class.from_pretrained(None, config=config, state_dict=state_dict, **rest)
    if hasattr(model.config, STORAGE_KEY):  # describes the files read, not the model in memory
        delattr(model.config, STORAGE_KEY)
    restore_scales(model, scales)
    return model


def _needs_own_layout(model: nn.Module, layers: dict[str, nn.Module]) -> bool:
    """Whether some of `layers` are views of packed parameters (experts) or share their weight with another module."""
    aliases = _parameter_aliases(model)
    return any(hasattr(layer, "packed") and hasattr(layer, "expert") or len(aliases.get(id(layer.weight), ())) > 1
               for layer in layers.values())


def plan_sink_sparse_storage(model: nn.Module) -> SparsePlan | None:
    """The `sinkprune-sparse-bitmask` storage of a model whose pruned weights compressed-tensors cannot describe
    (slices of packed expert tensors, weights shared by two modules): every block-linear weight or packed parameter
    (by the name transformers' save keeps) whose bitmask layout is smaller than dense. None for other models, or
    when nothing is sparse enough."""
    from ..adapters import UnsupportedModelError, get_adapter

    try:
        layers = get_adapter(model).linear_layers(model)
    except UnsupportedModelError:
        return None
    if not _needs_own_layout(model, layers):
        return None
    aliases = _parameter_aliases(model)
    tied_targets = set(getattr(model, "all_tied_weights_keys", None) or {})
    params: dict[str, torch.Tensor] = {}
    for layer in layers.values():
        param = layer.packed if hasattr(layer, "packed") and hasattr(layer, "expert") else layer.weight
        names = aliases.get(id(param))
        if not names:
            continue
        name = _stored_name(names, tied_targets)
        if name not in params and bitmask_saves_space(param.detach().reshape(-1, param.shape[-1])):
            params[name] = param
    if not params:
        return None
    zeros = sum(int((p == 0).sum()) for p in params.values())
    total = sum(p.numel() for p in params.values())
    return SparsePlan(format=SINK_SPARSE_BITMASK, targets=tuple(params), sparsity=zeros / total)


def sink_sparse_state_dict(model: nn.Module, plan: SparsePlan) -> dict[str, torch.Tensor]:
    """`model`'s state dict in the `sinkprune-sparse-bitmask` layout: each target parameter `<key>` stored once as
    `<key>_values` (its non-zeros, row-major), `<key>_bitmask` (uint8, one bit per entry of its rows, least
    significant bit first) and `<key>_shape` (int64), its other names left out; every other tensor as is."""
    from ..models.modeling_sparse_storage import pack_bitmask

    params = dict(model.named_parameters(remove_duplicate=False))
    aliases = _parameter_aliases(model)
    out, dropped = {}, set()
    for key in plan.targets:
        param = params[key]
        dropped.update(aliases[id(param)])
        rows = named_value(model, key, param).detach().cpu().reshape(-1, param.shape[-1])
        mask = rows != 0
        out[f"{key}_values"] = rows[mask].contiguous()
        out[f"{key}_bitmask"] = pack_bitmask(mask)
        out[f"{key}_shape"] = torch.tensor(list(param.shape), dtype=torch.int64)
    out.update((name, tensor) for name, tensor in _state_dict_values(model) if name not in dropped)
    return out


def unpack_sparse_parameter(values: torch.Tensor, bitmask: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """The dense parameter from its `_values`, `_bitmask` and `_shape` tensors (`sinkprune-sparse-bitmask`)."""
    from ..models.modeling_sparse_storage import unpack_bitmask

    dims = [int(d) for d in shape.tolist()]
    rows = 1
    for d in dims[:-1]:
        rows *= d
    mask = unpack_bitmask(bitmask, (rows, dims[-1]))
    dense = torch.zeros(rows, dims[-1], dtype=values.dtype)
    dense[mask] = values
    return dense.reshape(dims)


def sparsity_config(plan: SparsePlan) -> dict:
    """The `quantization_config` entry of config.json for a sparsity-only compressed-tensors checkpoint (the layout
    compressed-tensors' sparse compressors wrote: `sparsity_config` with the format, exact module-name targets,
    the global sparsity and the sparsity structure)."""
    return {
        "quant_method": QUANT_METHOD,
        "sparsity_config": {
            "format": plan.format,
            "targets": list(plan.targets),
            "ignore": [],
            "global_sparsity": round(plan.sparsity, 6),
            "sparsity_structure": plan.structure,
            "registry_requires_subclass": False,
        },
        "transform_config": {},
    }


def compressed_state_dict(model: nn.Module, plan: SparsePlan) -> dict[str, torch.Tensor]:
    """`model`'s state dict with each target's `<name>.weight` replaced by its sparse tensors (`<name>.shape`,
    `<name>.compressed`, `<name>.bitmask`[, `<name>.row_offsets`]); every other tensor as is."""
    compress = two_four_compress if plan.format == SPARSE_24_BITMASK else bitmask_compress
    targets = set(plan.targets)
    out = {}
    for name, tensor in _state_dict_values(model):
        prefix, _, param = name.rpartition(".")
        if param == "weight" and prefix in targets:
            out.update({f"{prefix}.{k}": v for k, v in compress(tensor).items()})
        else:
            out[name] = tensor
    return out


def write_compressed_checkpoint(model: nn.Module, folder: str | Path, plan: SparsePlan | QuantPlan, *,
                                max_shard_size: str | int = "2GB") -> None:
    """Write `model` into `folder` with its target linears stored sparse (a `SparsePlan`) or quantized (a
    `QuantPlan`) (safetensors, sharded above `max_shard_size`) and the matching `quantization_config` in
    config.json. `model` itself is not changed."""
    entry = "quantization_config"
    if isinstance(plan, QuantPlan) and plan.format == SINK_PACK_QUANTIZED:
        state_dict, keys = sink_quantized_state_dict(model, plan)
        entry, qconfig = STORAGE_KEY, sink_storage_config(plan, keys)
    elif plan.format == SINK_SPARSE_BITMASK:
        state_dict = sink_sparse_state_dict(model, plan)
        entry, qconfig = STORAGE_KEY, {"format": SINK_SPARSE_BITMASK, "tensors": sorted(plan.targets),
                                       "global_sparsity": round(plan.sparsity, 6)}
    elif isinstance(plan, QuantPlan):
        state_dict, qconfig = quantized_state_dict(model, plan), quantization_config(plan)
    else:
        state_dict, qconfig = compressed_state_dict(model, plan), sparsity_config(plan)
    with warnings.catch_warnings():
        # every offloaded tensor was read above: transformers' advice on saving offloaded modules does not apply
        warnings.filterwarnings("ignore", message="Attempting to save a model with offloaded modules")
        model.save_pretrained(folder, max_shard_size=max_shard_size, state_dict=state_dict)
    config_path = Path(folder) / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.pop(STORAGE_KEY, None)
    config[entry] = qconfig
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    count = plan.layers if isinstance(plan, QuantPlan) else len(plan.targets)
    logger.info("stored %d weight matrices as %s (%.1f%% zeros)", count, plan.format, 100 * plan.sparsity)


def strip_sparsity_config(config: Mapping) -> dict:
    """A config.json dict without a sparsity-only compressed-tensors `quantization_config` (left over when a model
    loaded from a compressed checkpoint is saved dense)."""
    out = dict(config)
    out.pop(STORAGE_KEY, None)  # our layouts' entry describes files a dense save does not write
    qconfig = out.get("quantization_config")
    if isinstance(qconfig, Mapping) and qconfig.get("quant_method") == QUANT_METHOD and not qconfig.get(
            "config_groups"):
        out.pop("quantization_config")
    return out


def storage_description(save_format: str, plan: SparsePlan | None) -> dict:
    """What the model card says about storage: the format, the sparse layout and the packages loading needs."""
    if save_format == DENSE or plan is None:
        return {"format": DENSE}
    if isinstance(plan, QuantPlan):
        return {"format": QUANTIZED, "layout": plan.format, "structure": plan.structure, "layers": plan.layers,
                "install": INSTALL_HINT}
    return {"format": COMPRESSED, "layout": plan.format, "structure": plan.structure, "layers": len(plan.targets),
            "install": INSTALL_HINT}


__all__ = [
    "COMPRESSED",
    "DENSE",
    "PACK_QUANTIZED",
    "QUANTIZED",
    "QuantPlan",
    "SAVE_FORMATS",
    "SINK_PACK_QUANTIZED",
    "SINK_SPARSE_BITMASK",
    "STORAGE_KEY",
    "SPARSE_24_BITMASK",
    "SPARSE_BITMASK",
    "SparsePlan",
    "check_compressed_tensors",
    "compressed_state_dict",
    "load_sink_quantized",
    "pack_parameter",
    "plan_quantized_storage",
    "plan_sink_sparse_storage",
    "plan_sparse_storage",
    "quantization_config",
    "quantized_state_dict",
    "read_sink_quantized",
    "restore_scales",
    "resolve_save_format",
    "sink_quantized_state_dict",
    "sink_sparse_state_dict",
    "sink_quantized_storage",
    "sink_storage_config",
    "sparsity_config",
    "storage_description",
    "strip_sparsity_config",
    "unpack_parameter",
    "unpack_sparse_parameter",
    "write_compressed_checkpoint",
]
