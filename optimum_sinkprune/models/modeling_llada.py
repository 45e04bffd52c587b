# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""LLaDA for transformers 5.x: the `llama` block type of the Hub's remote code, same module tree and weight names.

State-dict keys: `model.transformer.wte.weight`, `model.transformer.blocks.{i}.{attn_norm,ff_norm}.weight`,
`model.transformer.blocks.{i}.{q_proj,k_proj,v_proj,attn_out,ff_proj,up_proj,ff_out}.weight`,
`model.transformer.ln_f.weight`, `model.transformer.ff_out.weight` (absent with `weight_tying`).

Structurally pruned checkpoints (`config.pruned_heads`, `config.mlp_hidden_sizes`) are built at their smaller shapes.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration_llada import LLaDAConfig
from .modeling_dlm_utils import (
    DLMRMSNorm,
    SelfContainedSaveMixin,
    apply_rotary,
    attention_function,
    bidirectional_mask,
    rotary_cos_sin,
)


class LLaDALlamaBlock(nn.Module):
    """One LLaDA block: x + attn_out(Attn(attn_norm(x))), then + ff_out(silu(ff_proj(h)) * up_proj(h))."""

    def __init__(self, config: LLaDAConfig, layer_idx: int):
        super().__init__()
        if config.block_type != "llama":
            raise ValueError(f"block_type={config.block_type!r} is not supported; only 'llama' (all LLaDA checkpoints)")
        if config.attention_layer_norm:
            raise ValueError("attention_layer_norm=True is not supported by this LLaDA implementation")
        self.config = config
        self.layer_idx = layer_idx
        self.head_dim = config.d_model // config.n_heads
        self.num_heads = config.layer_num_heads(layer_idx)
        self.num_kv_heads = config.layer_num_kv_heads(layer_idx)
        self.num_key_value_groups = (self.num_heads // self.num_kv_heads) if self.num_kv_heads else 1
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        d, hidden = config.d_model, config.layer_mlp_hidden_size(layer_idx)
        qkv_bias = config.include_bias or config.include_qkv_bias
        norm_bias = bool(getattr(config, "bias_for_layer_norm", None) or False)
        self.attn_norm = DLMRMSNorm(d, config.rms_norm_eps, bias=norm_bias)
        self.ff_norm = DLMRMSNorm(d, config.rms_norm_eps, bias=norm_bias)
        self.q_proj = nn.Linear(d, self.num_heads * self.head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(d, self.num_kv_heads * self.head_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(d, self.num_kv_heads * self.head_dim, bias=qkv_bias)
        self.attn_out = nn.Linear(self.num_heads * self.head_dim, d, bias=config.include_bias)
        self.ff_proj = nn.Linear(d, hidden, bias=config.include_bias)
        self.up_proj = nn.Linear(d, hidden, bias=config.include_bias)
        self.ff_out = nn.Linear(hidden, d, bias=config.include_bias)
        self.act = nn.SiLU()

    def forward(
        self,
        x: torch.Tensor,
        cos_sin: tuple[torch.Tensor, torch.Tensor] | None,
        attention_bias: torch.Tensor | None,
    ) -> torch.Tensor:
        bsz, seq, _ = x.shape
        h = self.attn_norm(x)
        q = self.q_proj(h).view(bsz, seq, -1, self.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(bsz, seq, -1, self.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(bsz, seq, -1, self.head_dim).transpose(1, 2)
        if cos_sin is not None:
            q, k = apply_rotary(q, *cos_sin), apply_rotary(k, *cos_sin)
        if self.num_heads == 0:
            att = x.new_zeros(bsz, seq, 0)
        else:
            attn = attention_function(self.config._attn_implementation)
            att, _ = attn(self, q, k, v, attention_bias, scaling=self.scaling, dropout=0.0, is_causal=False)
            att = att.reshape(bsz, seq, -1)
        x = x + self.attn_out(att)
        h = self.ff_norm(x)
        return x + self.ff_out(self.act(self.ff_proj(h)) * self.up_proj(h))


class LLaDAModel(nn.Module):
    """The LLaDA trunk; keeps the Hub's `transformer` ModuleDict so weight names match."""

    def __init__(self, config: LLaDAConfig):
        super().__init__()
        self.config = config
        rows = config.embedding_size or config.vocab_size
        norm_bias = bool(getattr(config, "bias_for_layer_norm", None) or False)
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(rows, config.d_model),
                emb_drop=nn.Dropout(0.0),
                ln_f=DLMRMSNorm(config.d_model, config.rms_norm_eps, bias=norm_bias),
            )
        )
        self.transformer.update({"blocks": nn.ModuleList(LLaDALlamaBlock(config, i) for i in range(config.n_layers))})
        if not config.weight_tying:
            self.transformer.update({"ff_out": nn.Linear(config.d_model, rows, bias=config.include_bias)})

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        x = self.transformer.wte(input_ids) if inputs_embeds is None else inputs_embeds
        if self.config.input_emb_norm:
            x = x * (self.config.d_model**0.5)
        x = self.transformer.emb_drop(x)
        bsz, seq = x.shape[:2]
        if seq > self.config.max_sequence_length:
            raise ValueError(
                f"input length {seq} exceeds the model's max_sequence_length {self.config.max_sequence_length}"
            )
        cos_sin = None
        if self.config.rope:
            positions = torch.arange(seq, device=x.device)[None].expand(bsz, -1)
            cos_sin = rotary_cos_sin(
                positions, self.config.d_model // self.config.n_heads, self.config.rope_theta, x.dtype,
                self.config.rope_full_precision,
            )
        bias = bidirectional_mask(attention_mask, x.dtype, seq)
        hidden = (x,) if output_hidden_states else None
        for block in self.transformer.blocks:
            x = block(x, cos_sin, bias)
            if output_hidden_states:
                hidden = hidden + (x,)
        x = self.transformer.ln_f(x)
        if self.config.weight_tying:
            logits = nn.functional.linear(x, self.transformer.wte.weight)
        else:
            logits = self.transformer.ff_out(x)
        if self.config.scale_logits:
            logits = logits * (1 / math.sqrt(self.config.d_model))
        return logits, hidden


class LLaDAPreTrainedModel(SelfContainedSaveMixin, PreTrainedModel):
    _remote_code_class = "modeling_llada.LLaDAModelLM"
    config_class = LLaDAConfig
    config: LLaDAConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = False
    _no_split_modules = ["LLaDALlamaBlock"]
    _supports_sdpa = True
    _supports_attention_backend = True

    def _init_weights(self, module: nn.Module) -> None:
        from transformers import initialization as init

        std = self.config.init_std
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, DLMRMSNorm):
            init.ones_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)


class LLaDAModelLM(LLaDAPreTrainedModel, GenerationMixin):
    """LLaDA masked-diffusion LM (`architectures: ["LLaDAModelLM"]`). Logits are not shifted: position i predicts
    token i. Generation uses the diffusion sampler (`optimum_sinkprune.diffusion.generate`), not `generate()`."""

    def __init__(self, config: LLaDAConfig):
        super().__init__(config)
        self.model = LLaDAModel(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.transformer.wte

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.transformer.wte = value

    def get_output_embeddings(self):
        return None if self.config.weight_tying else self.model.transformer.ff_out

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        # needed by `resize_token_embeddings` (the base class looks for an `lm_head` attribute otherwise)
        self.model.transformer.ff_out = new_embeddings

    def resize_token_embeddings(self, *args, **kwargs) -> nn.Embedding:
        """As in transformers, and keep `config.embedding_size` (the rows this class builds) equal to the new table,
        so that the resized model saves and reloads."""
        embeddings = super().resize_token_embeddings(*args, **kwargs)
        self.config.embedding_size = embeddings.num_embeddings
        return embeddings

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        logits, hidden = self.model(
            input_ids=input_ids,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            output_hidden_states=bool(output_hidden_states),
        )
        out = CausalLMOutputWithPast(logits=logits, hidden_states=hidden)
        return out if return_dict is not False else out.to_tuple()


__all__ = ["LLaDAModelLM", "LLaDAModel", "LLaDAPreTrainedModel", "LLaDALlamaBlock"]
