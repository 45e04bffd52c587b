# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Dream (Qwen2 layout, bidirectional, logits shifted by one position)."""

from __future__ import annotations

from ..models.modeling_dlm_utils import rotary_cos_sin
from .base import BlockLayout, ModelAdapter

QWEN2_LAYOUT = BlockLayout(
    attention="self_attn",
    mlp="mlp",
    input_norm="input_layernorm",
    post_norm="post_attention_layernorm",
    projections={
        "q": "self_attn.q_proj",
        "k": "self_attn.k_proj",
        "v": "self_attn.v_proj",
        "o": "self_attn.o_proj",
        "gate": "mlp.gate_proj",
        "up": "mlp.up_proj",
        "down": "mlp.down_proj",
    },
)


class DreamAdapter(ModelAdapter):
    name = "Dream"
    model_types = ("Dream", "dream")
    is_diffusion = True
    is_causal = False
    shifts_logits = True  # adapted from an AR model: the output at i - 1 predicts token i
    blocks_path = "model.layers"
    layout = QWEN2_LAYOUT

    def rotary_cos_sin(self, model, position_ids, dtype):
        return rotary_cos_sin(position_ids, self.head_dim(model), float(model.config.rope_theta), dtype)

    def record_structure(self, model, pruned_heads, mlp_widths):
        model.config.pruned_heads = {int(k): sorted(v) for k, v in pruned_heads.items() if v}
        model.config.intermediate_sizes = [int(w) for w in mlp_widths]
