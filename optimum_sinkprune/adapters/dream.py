# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Dream (Qwen2 layout, bidirectional, logits shifted by one position)."""

from __future__ import annotations

from .base import BlockLayout, ModelAdapter, NoiseDefaults

# the Qwen2 / Llama decoder-layer projection paths, shared by the families built on that layout
QWEN2_STYLE_PROJECTIONS = {
    "q": "self_attn.q_proj",
    "k": "self_attn.k_proj",
    "v": "self_attn.v_proj",
    "o": "self_attn.o_proj",
    "gate": "mlp.gate_proj",
    "up": "mlp.up_proj",
    "down": "mlp.down_proj",
}


def qwen2_style_layout(post_norm: str = "post_attention_layernorm") -> BlockLayout:
    """The Qwen2 / Llama decoder-layer layout; `post_norm` names the norm in front of the MLP, where families built
    on that layout differ."""
    return BlockLayout(attention="self_attn", mlp="mlp", input_norm="input_layernorm", post_norm=post_norm,
                       projections=dict(QWEN2_STYLE_PROJECTIONS))


QWEN2_LAYOUT = qwen2_style_layout()


class DreamAdapter(ModelAdapter):
    name = "Dream"
    model_types = ("Dream", "dream")
    is_diffusion = True
    is_causal = False
    shifts_logits = True  # adapted from an AR model: the output at i - 1 predicts token i
    likelihood_protocol = "dream"  # Dream's own evaluation: stratified t, Bernoulli masks, EOS appended
    blocks_path = "model.layers"
    layout = QWEN2_LAYOUT
    mlp_widths_key = "intermediate_sizes"

    def noise_defaults(self) -> NoiseDefaults:
        """The paper's Dream calibration (lib/prune_dream.py): t ~ U(0, 1) per (sample, sampled step), stratified
        across a batch, with the first and last position of every window never masked."""
        return NoiseDefaults(schedule="uniform", protected="first_last")

    def rotary_cos_sin(self, model, position_ids, dtype):
        # imported here: the model package imports transformers and registers it, which imports the adapters
        from ..models.modeling_dlm_utils import rotary_cos_sin

        return rotary_cos_sin(position_ids, self.head_dim(model), float(model.config.rope_theta), dtype)
