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
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import torch
from torch import nn

from ..models.modeling_sparse_storage import (
    QUANT_METHOD,
    SPARSE_24_BITMASK,
    SPARSE_BITMASK,
    bitmask_compress,
    is_two_four,
    two_four_compress,
)

logger = logging.getLogger(__name__)

DENSE = "dense"
COMPRESSED = "compressed"
QUANTIZED = "quantized"
PACK_QUANTIZED = "pack-quantized"
# save_format -> what it stores; a quantized format adds a row here and a branch in `compressed_state_dict`
SAVE_FORMATS = MappingProxyType({
    DENSE: "every tensor stored densely (plain safetensors)",
    COMPRESSED: "pruned linears stored sparse in the compressed-tensors layout (bitmask, or 2:4 for 2:4 models)",
    QUANTIZED: "quantized linears stored as int4/int8 values and scales (compressed-tensors pack-quantized); the "
               "zeros of pruned layers are kept as integer zeros",
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
    return {name: layer.weight.detach() for name, layer in layers.items()
            if layer.weight.dim() == 2 and bitmask_saves_space(layer.weight.detach())}


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
    """

    bits: int
    group_size: int | None
    targets: tuple[str, ...]
    sparsity: float
    format: str = PACK_QUANTIZED

    @property
    def structure(self) -> str:
        return f"int{self.bits}, " + (f"group size {self.group_size}" if self.group_size else "one scale per row")


def plan_quantized_storage(model: nn.Module) -> QuantPlan | None:
    """The quantized storage of `model` (quantized by `SinkAwareQuantizer`), or None when nothing is quantized."""
    from ..quantized import QUANT_CONFIG_KEY, quantized_layers

    layers = quantized_layers(model)
    settings = getattr(getattr(model, "config", None), QUANT_CONFIG_KEY, None)
    if not layers or not isinstance(settings, Mapping):
        return None
    zeros = sum(int((layer.weight == 0).sum()) for layer in layers.values())
    total = sum(layer.weight.numel() for layer in layers.values())
    return QuantPlan(bits=int(settings["bits"]), group_size=settings.get("group_size"), targets=tuple(layers),
                     sparsity=zeros / total)


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
    for name, tensor in model.state_dict().items():
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
    for name, tensor in model.state_dict().items():
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
    if isinstance(plan, QuantPlan):
        state_dict, qconfig = quantized_state_dict(model, plan), quantization_config(plan)
    else:
        state_dict, qconfig = compressed_state_dict(model, plan), sparsity_config(plan)
    model.save_pretrained(folder, max_shard_size=max_shard_size, state_dict=state_dict)
    config_path = Path(folder) / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["quantization_config"] = qconfig
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    logger.info("stored %d linears as %s (%.1f%% zeros)", len(plan.targets), plan.format, 100 * plan.sparsity)


def strip_sparsity_config(config: Mapping) -> dict:
    """A config.json dict without a sparsity-only compressed-tensors `quantization_config` (left over when a model
    loaded from a compressed checkpoint is saved dense)."""
    out = dict(config)
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
        return {"format": QUANTIZED, "layout": plan.format, "structure": plan.structure, "layers": len(plan.targets),
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
    "SPARSE_24_BITMASK",
    "SPARSE_BITMASK",
    "SparsePlan",
    "check_compressed_tensors",
    "compressed_state_dict",
    "plan_quantized_storage",
    "plan_sparse_storage",
    "quantization_config",
    "quantized_state_dict",
    "resolve_save_format",
    "sparsity_config",
    "storage_description",
    "strip_sparsity_config",
    "write_compressed_checkpoint",
]
