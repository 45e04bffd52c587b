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
from transformers import GenerationMixin

from .configuration_llada import LLaDAConfig
from .modeling_dlm_utils import (DLMAttentionBase, DLMPreTrainedModel, DLMRMSNorm, MaskedDiffusionLMMixin,
                                 attention_function, check_input_length, embed_inputs, run_blocks, sequence_cos_sin)


class LLaDALlamaBlock(DLMAttentionBase):
    """One LLaDA block: x + attn_out(Attn(attn_norm(x))), then + ff_out(silu(ff_proj(h)) * up_proj(h))."""

    def __init__(self, config: LLaDAConfig, layer_idx: int):
        if config.block_type != "llama":
            raise ValueError(f"block_type={config.block_type!r} is not supported; only 'llama' (all LLaDA checkpoints)")
        if config.attention_layer_norm:
            raise ValueError("attention_layer_norm=True is not supported by this LLaDA implementation")
        super().__init__(config, layer_idx, config.d_model // config.n_heads)
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
        attention = attention_function(self.config._attn_implementation)
        x = x + self.attn_out(self.attend(self.attn_norm(x), cos_sin, attention_bias, attention))
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
        x = embed_inputs(self.transformer.wte, input_ids, inputs_embeds)
        if self.config.input_emb_norm:
            x = x * (self.config.d_model**0.5)
        x = self.transformer.emb_drop(x)
        check_input_length(x, self.config.max_sequence_length, "max_sequence_length")
        cos_sin = None
        if self.config.rope:
            cos_sin = sequence_cos_sin(
                x, self.config.d_model // self.config.n_heads, self.config.rope_theta, self.config.rope_full_precision
            )
        x, hidden = run_blocks(self.transformer.blocks, x, cos_sin, attention_mask, output_hidden_states)
        x = self.transformer.ln_f(x)
        if self.config.weight_tying:
            logits = nn.functional.linear(x, self.transformer.wte.weight)
        else:
            logits = self.transformer.ff_out(x)
        if self.config.scale_logits:
            logits = logits * (1 / math.sqrt(self.config.d_model))
        return logits, hidden


class LLaDAPreTrainedModel(DLMPreTrainedModel):
    _remote_code_class = "modeling_llada.LLaDAModelLM"
    config_class = LLaDAConfig
    config: LLaDAConfig
    supports_gradient_checkpointing = False
    _no_split_modules = ["LLaDALlamaBlock"]
    _init_std_attribute = "init_std"


class LLaDAModelLM(MaskedDiffusionLMMixin, LLaDAPreTrainedModel, GenerationMixin):
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


__all__ = ["LLaDAModelLM", "LLaDAModel", "LLaDAPreTrainedModel", "LLaDALlamaBlock"]
