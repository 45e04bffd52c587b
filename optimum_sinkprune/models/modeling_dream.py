# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Dream for transformers 5.x: the Hub's Qwen2-layout module tree and weight names, bidirectional attention.

Dream was adapted from an autoregressive model: the logits at position i predict token i + 1. Consumers that want
"logits for position i" apply the shift (`optimum_sinkprune.adapters` does, for the sampler, likelihood and
calibration); this class returns the raw logits exactly as the Hub's remote code does.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration_dream import DreamConfig
from .modeling_dlm_utils import (
    DLMRMSNorm,
    SelfContainedSaveMixin,
    apply_rotary,
    attention_function,
    bidirectional_mask,
    rotary_cos_sin,
)


class DreamAttention(nn.Module):
    def __init__(self, config: DreamConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.num_heads = config.layer_num_heads(layer_idx)
        self.num_kv_heads = config.layer_num_kv_heads(layer_idx)
        self.num_key_value_groups = (self.num_heads // self.num_kv_heads) if self.num_kv_heads else 1
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        d = config.hidden_size
        self.q_proj = nn.Linear(d, self.num_heads * self.head_dim, bias=True)
        self.k_proj = nn.Linear(d, self.num_kv_heads * self.head_dim, bias=True)
        self.v_proj = nn.Linear(d, self.num_kv_heads * self.head_dim, bias=True)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, d, bias=False)

    def forward(self, x, cos_sin, attention_bias):
        bsz, seq, _ = x.shape
        q = self.q_proj(x).view(bsz, seq, -1, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(bsz, seq, -1, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(bsz, seq, -1, self.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, *cos_sin), apply_rotary(k, *cos_sin)
        if self.num_heads == 0:
            return self.o_proj(x.new_zeros(bsz, seq, 0))
        attn = attention_function(self.config._attn_implementation)
        out, _ = attn(self, q, k, v, attention_bias, scaling=self.scaling, dropout=0.0, is_causal=False)
        return self.o_proj(out.reshape(bsz, seq, -1))


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


class DreamPreTrainedModel(SelfContainedSaveMixin, PreTrainedModel):
    _remote_code_class = "modeling_dream.DreamModel"
    config_class = DreamConfig
    config: DreamConfig
    base_model_prefix = "model"
    _no_split_modules = ["DreamDecoderLayer"]
    _supports_sdpa = True
    _supports_attention_backend = True

    def _init_weights(self, module: nn.Module) -> None:
        from transformers import initialization as init

        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, DLMRMSNorm):
            init.ones_(module.weight)


class DreamBaseModel(DreamPreTrainedModel):
    def __init__(self, config: DreamConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.layers = nn.ModuleList(DreamDecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = DLMRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_init()

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None, output_hidden_states=False):
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        bsz, seq = x.shape[:2]
        if seq > self.config.max_position_embeddings:
            raise ValueError(
                f"input length {seq} exceeds the model's max_position_embeddings {self.config.max_position_embeddings}"
            )
        positions = torch.arange(seq, device=x.device)[None].expand(bsz, -1)
        cos_sin = rotary_cos_sin(positions, self.config.head_dim, self.config.rope_theta, x.dtype)
        bias = bidirectional_mask(attention_mask, x.dtype, seq)
        hidden = (x,) if output_hidden_states else None
        for layer in self.layers:
            x = layer(x, cos_sin, bias)
            if output_hidden_states:
                hidden = hidden + (x,)
        return self.norm(x), hidden


class DreamModel(DreamPreTrainedModel, GenerationMixin):
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

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        inputs_embeds=None,
        output_hidden_states=None,
        return_dict=None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        h, hidden = self.model(
            input_ids=input_ids,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            output_hidden_states=bool(output_hidden_states),
        )
        out = CausalLMOutputWithPast(logits=self.lm_head(h), hidden_states=hidden)
        return out if return_dict is not False else out.to_tuple()


__all__ = ["DreamModel", "DreamBaseModel", "DreamPreTrainedModel"]
