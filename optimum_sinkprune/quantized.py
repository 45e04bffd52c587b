# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""How a model quantized by `SinkAwareQuantizer` looks in memory, for the quantizer and the checkpoint writer alike:
float weights that lie on the integer grid, each quantized linear with a non-persistent `weight_scale` buffer
(`SCALE_BUFFER`), and the quantization settings in the model config under `QUANT_CONFIG_KEY`.

Layers that are views of one slice of a packed 3-D parameter (a mixture of experts' `[experts, out, in]` tensors,
seen by the adapter as one linear per expert: objects with `packed` and `expert`) keep their scales on the module
that owns the packed parameter: a non-persistent buffer `<parameter>_weight_scale` `[experts, out, groups]`, NaN
for slices not quantized (`store_scales`, `quantized_packed_tensors`)."""

from __future__ import annotations

import torch
from torch import nn

QUANT_CONFIG_KEY = "sink_quantization_config"
SCALE_BUFFER = "weight_scale"  # compressed-tensors' name of a weight's scales


def is_quantized(model: nn.Module) -> bool:
    """Whether `model` already holds quantized weights: ours (`weight_scale` buffers), or loaded from a quantized
    checkpoint (a transformers quantizer, or a `quantization_config` with quantization groups)."""
    if getattr(model, "hf_quantizer", None) is not None:
        return True
    qconfig = getattr(getattr(model, "config", None), "quantization_config", None)
    groups = qconfig.get("config_groups") if isinstance(qconfig, dict) else getattr(qconfig, "config_groups", None)
    if groups:
        return True
    return any(hasattr(module, SCALE_BUFFER) for module in model.modules()) or bool(quantized_packed_tensors(model))


def packed_scale_name(attr: str) -> str:
    """The scale buffer of packed parameter `attr` (e.g. `gate_up_proj` -> `gate_up_proj_weight_scale`)."""
    return f"{attr}_{SCALE_BUFFER}"


def _owner_of(model: nn.Module, parameter: torch.Tensor) -> tuple[nn.Module, str]:
    """The module holding `parameter` and its attribute name there."""
    for name, param in model.named_parameters(remove_duplicate=True):
        if param is parameter:
            prefix, _, attr = name.rpartition(".")
            return (model.get_submodule(prefix) if prefix else model), attr
    raise ValueError("the packed parameter of a quantized view layer is not a parameter of the model")


def store_scales(model: nn.Module, layer: nn.Module, scales: torch.Tensor) -> None:
    """Keep the scales `[out, groups]` of quantized layer `layer` (non-persistent, so a dense save stays a plain
    checkpoint): a `weight_scale` buffer on a linear, or slice `layer.expert` of the owner's packed scale buffer for
    the view of a packed parameter's slice."""
    packed = getattr(layer, "packed", None)
    if not isinstance(packed, torch.Tensor) or not hasattr(layer, "expert"):
        layer.register_buffer(SCALE_BUFFER, scales, persistent=False)
        return
    owner, attr = _owner_of(model, packed)
    name = packed_scale_name(attr)
    buffer = getattr(owner, name, None)
    shape = (packed.shape[0], *scales.shape)
    if not isinstance(buffer, torch.Tensor) or tuple(buffer.shape) != shape or buffer.dtype != scales.dtype:
        buffer = torch.full(shape, float("nan"), dtype=scales.dtype, device=scales.device)
        owner.register_buffer(name, buffer, persistent=False)
    buffer[int(layer.expert)] = scales


def clear_scales(model: nn.Module) -> None:
    """Drop every scale buffer (`weight_scale` and packed `<parameter>_weight_scale`) from `model`."""
    for module in model.modules():
        for name in [n for n in module._buffers if n == SCALE_BUFFER or n.endswith(f"_{SCALE_BUFFER}")]:
            module._buffers.pop(name)


def quantized_packed_tensors(model: nn.Module) -> dict[str, tuple[nn.Module, str, torch.Tensor]]:
    """The packed 3-D parameters with quantized slices: {parameter name: (owner module, attribute, scales
    `[experts, out, groups]`)}; scales of slices that were not quantized are NaN."""
    out = {}
    for prefix, module in model.named_modules():
        for buffer_name, scales in module._buffers.items():
            attr = buffer_name[: -len(f"_{SCALE_BUFFER}")] if buffer_name.endswith(f"_{SCALE_BUFFER}") else None
            if attr and isinstance(module._parameters.get(attr), torch.Tensor) and isinstance(scales, torch.Tensor):
                out[f"{prefix}.{attr}" if prefix else attr] = (module, attr, scales)
    return out


def quantized_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The linears `SinkAwareQuantizer` quantized ({name: module}, forward order)."""
    return {name: module for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and isinstance(getattr(module, SCALE_BUFFER, None), torch.Tensor)
            and name}


__all__ = ["QUANT_CONFIG_KEY", "SCALE_BUFFER", "clear_scales", "is_quantized", "packed_scale_name",
           "quantized_layers", "quantized_packed_tensors", "store_scales"]
