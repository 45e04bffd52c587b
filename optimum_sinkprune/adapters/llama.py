# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Native transformers Llama and Qwen2 (autoregressive baselines for the AR-vs-diffusion sink comparison)."""

from __future__ import annotations

import torch

from .base import ModelAdapter
from .dream import QWEN2_LAYOUT


class LlamaAdapter(ModelAdapter):
    name = "llama"
    model_types = ("llama",)
    is_diffusion = False
    is_causal = True
    shifts_logits = False  # AR logits at i predict i + 1; AR consumers handle that themselves
    blocks_path = "model.layers"
    layout = QWEN2_LAYOUT
    # Native config classes validate their global shape fields strictly, so the pruned structure goes into extra
    # keys that the native-class reload patch reads (optimum_sinkprune.models.pruned_loading).
    mlp_widths_key = "intermediate_sizes"
    # the native classes read that record only through the module replacements (see `ModelAdapter`)
    needs_pruned_loading = True

    def rotary_cos_sin(self, model, position_ids, dtype):
        # Use the model's own rotary module so any rope scaling it was configured with is honoured.
        rotary = model.model.rotary_emb
        dummy = torch.empty(0, dtype=dtype, device=position_ids.device)
        cos, sin = rotary(dummy, position_ids)
        return cos.to(torch.float32), sin.to(torch.float32)

    def config_mlp_width(self, config, layer_idx: int) -> int:
        """MLP width of `layer_idx` in a native config: the recorded per-layer width, else the global one."""
        sizes = getattr(config, self.mlp_widths_key, None)
        return int(sizes[layer_idx]) if sizes is not None else int(config.intermediate_size)


class Qwen2Adapter(LlamaAdapter):
    name = "qwen2"
    model_types = ("qwen2",)
