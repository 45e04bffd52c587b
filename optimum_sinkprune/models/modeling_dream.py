# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Dream for transformers 5.x: the Hub's Qwen2-layout module tree and weight names, bidirectional attention.

Dream was adapted from an autoregressive model: the logits at position i predict token i + 1. Consumers that want
"logits for position i" apply the shift (`optimum_sinkprune.adapters` does, for the sampler, likelihood and
calibration); this class returns the raw logits exactly as the Hub's remote code does.
"""

from __future__ import annotations

from torch import nn
from transformers import GenerationMixin

from .configuration_dream import DreamConfig
from .modeling_dlm_utils import (DLMAttentionBase, DLMPreTrainedModel, DLMRMSNorm, MaskedDiffusionLMMixin,
                                 attention_function, check_input_length, embed_inputs, run_blocks, sequence_cos_sin)


class DreamAttention(DLMAttentionBase):
    def __init__(self, config: DreamConfig, layer_idx: int):
        super().__init__(config, layer_idx, config.hidden_size // config.num_attention_heads)
        d = config.hidden_size
        self.q_proj = nn.Linear(d, self.num_heads * self.head_dim, bias=True)
        self.k_proj = nn.Linear(d, self.num_kv_heads * self.head_dim, bias=True)
        self.v_proj = nn.Linear(d, self.num_kv_heads * self.head_dim, bias=True)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, d, bias=False)

    def forward(self, x, cos_sin, attention_bias):
        attention = attention_function(self.config._attn_implementation)
        return self.o_proj(self.attend(x, cos_sin, attention_bias, attention))


class DreamMLP(nn.Module):
    def __init__(self, config: DreamConfig, layer_idx: int):
        super().__init__()
        if config.hidden_act != "silu":
            raise ValueError(f"hidden_act={config.hidden_act!r} is not supported; only 'silu'")
        width = config.layer_mlp_hidden_size(layer_idx)
        self.gate_proj = nn.Linear(config.hidden_size, width, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, width, bias=False)
        self.down_proj = nn.Linear(width, config.hidden_size, bias=False)
        self.act_fn = nn.SiLU()

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class DreamDecoderLayer(nn.Module):
    def __init__(self, config: DreamConfig, layer_idx: int):
        super().__init__()
        self.self_attn = DreamAttention(config, layer_idx)
        self.mlp = DreamMLP(config, layer_idx)
        self.input_layernorm = DLMRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = DLMRMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, x, cos_sin, attention_bias):
        x = x + self.self_attn(self.input_layernorm(x), cos_sin, attention_bias)
        return x + self.mlp(self.post_attention_layernorm(x))


class DreamPreTrainedModel(DLMPreTrainedModel):
    _remote_code_class = "modeling_dream.DreamModel"
    config_class = DreamConfig
    config: DreamConfig
    _no_split_modules = ["DreamDecoderLayer"]


class DreamBaseModel(DreamPreTrainedModel):
    def __init__(self, config: DreamConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.layers = nn.ModuleList(DreamDecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = DLMRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_init()

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None, output_hidden_states=False):
        x = embed_inputs(self.embed_tokens, input_ids, inputs_embeds)
        check_input_length(x, self.config.max_position_embeddings, "max_position_embeddings")
        cos_sin = sequence_cos_sin(x, self.config.head_dim, self.config.rope_theta)
        x, hidden = run_blocks(self.layers, x, cos_sin, attention_mask, output_hidden_states)
        return self.norm(x), hidden


class DreamModel(MaskedDiffusionLMMixin, DreamPreTrainedModel, GenerationMixin):
    """Dream masked-diffusion LM (`architectures: ["DreamModel"]`, the Hub's class name for the LM with its head).

    Raw logits at position i predict token i + 1; use `optimum_sinkprune.adapters.get_adapter(model).shift_logits`
    to get per-position predictions. Generation uses the diffusion sampler, not `generate()`."""

    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: DreamConfig):
        super().__init__(config)
        self.model = DreamBaseModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def output_logits(self, h):
        return self.lm_head(h)


__all__ = ["DreamModel", "DreamBaseModel", "DreamPreTrainedModel"]
