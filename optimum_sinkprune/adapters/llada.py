# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""LLaDA / LLaDA-1.5 / MMaDA language backbone: `model.transformer.blocks.{i}` with flat projections."""

from __future__ import annotations

from .base import BlockLayout, ModelAdapter


class LLaDAAdapter(ModelAdapter):
    name = "llada"
    # "mmada": MMaDA's language backbone uses the same tree and keys (see README: MMaDA support)
    model_types = ("llada", "mmada")
    is_diffusion = True
    is_causal = False
    shifts_logits = False
    blocks_path = "model.transformer.blocks"
    layout = BlockLayout(
        attention="",
        mlp="",
        input_norm="attn_norm",
        post_norm="ff_norm",
        projections={
            "q": "q_proj",
            "k": "k_proj",
            "v": "v_proj",
            "o": "attn_out",
            "gate": "ff_proj",
            "up": "up_proj",
            "down": "ff_out",
        },
    )

    mlp_widths_key = "mlp_hidden_sizes"
    # The Hub's LLaDA code (attention_layer_norm) normalises q/k after the projection and clamps them to ±clip_qkv.
    qk_norm_attributes = ("q_norm", "k_norm")
    qk_clip_config_key = "clip_qkv"

    def config_head_dim(self, config) -> int:
        return config.d_model // config.n_heads

    def config_num_heads(self, config) -> int:
        return int(config.n_heads)

    def config_num_kv_heads(self, config) -> int:
        return int(getattr(config, "n_kv_heads", None) or config.n_heads)

    def rotary_cos_sin(self, model, position_ids, dtype):
        # imported here: the model package imports transformers and registers it, which imports the adapters
        from ..models.modeling_dlm_utils import rotary_cos_sin

        config = model.config
        if not getattr(config, "rope", True):
            return None
        return rotary_cos_sin(
            position_ids, self.head_dim(model), float(config.rope_theta), dtype,
            bool(getattr(config, "rope_full_precision", True)),
        )
