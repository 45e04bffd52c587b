# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""How a model quantized by `SinkAwareQuantizer` looks in memory, for the quantizer and the checkpoint writer alike:
float weights that lie on the integer grid, each quantized linear with a non-persistent `weight_scale` buffer
(`SCALE_BUFFER`), and the quantization settings in the model config under `QUANT_CONFIG_KEY`."""

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
    return any(hasattr(module, SCALE_BUFFER) for module in model.modules())


def quantized_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The linears `SinkAwareQuantizer` quantized ({name: module}, forward order)."""
    return {name: module for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and isinstance(getattr(module, SCALE_BUFFER, None), torch.Tensor)
            and name}


__all__ = ["QUANT_CONFIG_KEY", "SCALE_BUFFER", "is_quantized", "quantized_layers"]
