# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Building blocks shared by the LLaDA and Dream implementations.

Self-contained (torch + transformers only): a saved checkpoint carries this file next to its modeling file, so plain
transformers (with `trust_remote_code` enabled by the user) loads it without optimum-sinkprune installed.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .modeling_sparse_storage import sparse_checkpoint


class DLMRMSNorm(nn.Module):
    """RMS norm computed in float32 (as LLaDA's and Qwen2's reference code do), weight-only unless `bias`."""

    def __init__(self, hidden_size: int, eps: float = 1e-5, bias: bool = False):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.bias = nn.Parameter(torch.zeros(hidden_size)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        out = self.weight * h.to(dtype)
        if self.bias is not None:
            out = out + self.bias
        return out


def rotary_cos_sin(
    position_ids: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype, full_precision: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables of the rotate-half rotary embedding, shape [batch, seq, head_dim]."""
    device = position_ids.device
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    freqs = position_ids.to(torch.float32)[..., None] * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    if not full_precision:
        cos, sin = cos.to(dtype), sin.to(dtype)
    return cos, sin


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Apply rotary to `x` [batch, heads, seq, head_dim] with cos/sin [batch, seq, head_dim] (float32 math)."""
    dtype = x.dtype
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    xf = x.to(cos.dtype)
    return (xf * cos + rotate_half(xf) * sin).to(dtype)


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """[batch, kv_heads, seq, dim] -> [batch, kv_heads * n_rep, seq, dim] (each kv head serves n_rep query heads)."""
    if n_rep == 1:
        return x
    b, h, s, d = x.shape
    return x[:, :, None].expand(b, h, n_rep, s, d).reshape(b, h * n_rep, s, d)


def bidirectional_mask(
    attention_mask: torch.Tensor | None, dtype: torch.dtype, query_len: int
) -> torch.Tensor | None:
    """Additive [batch, 1, query_len, key_len] mask from a [batch, key_len] padding mask (keys only; no causality).

    A 4D mask passes through: additive as it is, boolean (True = attend) converted to additive."""
    if attention_mask is None:
        return None
    if attention_mask.dim() == 4:
        # a prepared 4D mask is additive; a boolean one (True = attend, SDPA's convention) would otherwise be *added*
        # as 0/1 by the eager path, so convert it
        if attention_mask.dtype == torch.bool:
            bias = torch.zeros(attention_mask.shape, dtype=dtype, device=attention_mask.device)
            return bias.masked_fill(~attention_mask, torch.finfo(dtype).min)
        return attention_mask
    keep = attention_mask[:, None, None, :].to(torch.bool)
    bias = torch.zeros(keep.shape, dtype=dtype, device=attention_mask.device)
    bias = bias.masked_fill(~keep, torch.finfo(dtype).min)
    return bias.expand(-1, 1, query_len, -1)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain softmax attention with the transformers attention-interface signature; returns [b, s, h, d], probs."""
    key = repeat_kv(key, module.num_key_value_groups)
    value = repeat_kv(value, module.num_key_value_groups)
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    probs = nn.functional.dropout(probs, p=dropout, training=module.training)
    out = torch.matmul(probs, value).transpose(1, 2).contiguous()
    return out, probs


def attention_function(implementation: str | None):
    """The attention callable registered under `implementation` in transformers' attention interface."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if implementation in (None, "eager"):
        return eager_attention_forward
    return ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)


class DLMAttentionBase(nn.Module):
    """Bidirectional multi-head attention over the module's own `q_proj`, `k_proj` and `v_proj` (set by the subclass,
    which also owns the output projection): the head geometry of one layer, after any head pruning recorded in the
    config (`layer_num_heads` / `layer_num_kv_heads`), and the attention computation up to the output projection.

    The attributes are those transformers' attention interface reads (`num_key_value_groups`, `scaling`,
    `is_causal`, `training`), plus `num_heads` / `num_kv_heads`, which structural pruning rewrites in place."""

    def __init__(self, config, layer_idx: int, head_dim: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.head_dim = head_dim
        self.num_heads = config.layer_num_heads(layer_idx)
        self.num_kv_heads = config.layer_num_kv_heads(layer_idx)
        self.num_key_value_groups = (self.num_heads // self.num_kv_heads) if self.num_kv_heads else 1
        self.scaling = self.head_dim**-0.5
        self.is_causal = False

    def attend(
        self,
        h: torch.Tensor,
        cos_sin: tuple[torch.Tensor, torch.Tensor] | None,
        attention_bias: torch.Tensor | None,
        attention,
    ) -> torch.Tensor:
        """Attention of the (normed) input `h` [batch, seq, hidden], rotary applied when `cos_sin` is given, computed
        by `attention` (an attention-interface callable; the model file looks it up with its own
        `attention_function`, so patching that module's dispatch reaches every layer); returns
        [batch, seq, num_heads * head_dim], the input of the output projection (width 0 when every head is pruned)."""
        bsz, seq, _ = h.shape
        q = self.q_proj(h).view(bsz, seq, -1, self.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(bsz, seq, -1, self.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(bsz, seq, -1, self.head_dim).transpose(1, 2)
        if cos_sin is not None:
            q, k = apply_rotary(q, *cos_sin), apply_rotary(k, *cos_sin)
        if self.num_heads == 0:
            return h.new_zeros(bsz, seq, 0)
        out, _ = attention(self, q, k, v, attention_bias, scaling=self.scaling, dropout=0.0, is_causal=False)
        return out.reshape(bsz, seq, -1)


def embed_inputs(
    embedding: nn.Embedding, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None
) -> torch.Tensor:
    """The token embeddings of `input_ids`, or `inputs_embeds` as given; exactly one of the two must be passed."""
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("pass exactly one of input_ids or inputs_embeds")
    return embedding(input_ids) if inputs_embeds is None else inputs_embeds


def check_input_length(x: torch.Tensor, limit: int, key: str) -> None:
    """Raise `ValueError` when the sequence of `x` [batch, seq, ...] is longer than the config's `key` (= `limit`)."""
    seq = x.shape[1]
    if seq > limit:
        raise ValueError(f"input length {seq} exceeds the model's {key} {limit}")


def sequence_cos_sin(
    x: torch.Tensor, head_dim: int, theta: float, full_precision: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary cos/sin tables for positions 0 … seq − 1 of every sequence of `x` [batch, seq, hidden]."""
    bsz, seq = x.shape[:2]
    positions = torch.arange(seq, device=x.device)[None].expand(bsz, -1)
    return rotary_cos_sin(positions, head_dim, theta, x.dtype, full_precision)


def run_blocks(
    blocks: nn.ModuleList,
    x: torch.Tensor,
    cos_sin: tuple[torch.Tensor, torch.Tensor] | None,
    attention_mask: torch.Tensor | None,
    output_hidden_states: bool,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
    """Run the blocks in order under the bidirectional mask of `attention_mask`; returns the last hidden state and,
    with `output_hidden_states`, the embeddings followed by every block's output."""
    bias = bidirectional_mask(attention_mask, x.dtype, x.shape[1])
    hidden = (x,) if output_hidden_states else None
    for block in blocks:
        x = block(x, cos_sin, bias)
        if output_hidden_states:
            hidden = hidden + (x,)
    return x, hidden


def init_dlm_weights(module: nn.Module, std: float) -> None:
    """`PreTrainedModel._init_weights` of both models: linears and embeddings N(0, std²), zero biases, unit norms."""
    from transformers import initialization as init

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


class MaskedDiffusionLMMixin:
    """`forward` of the LM classes: the trunk `self.model` (returning its last hidden state and the hidden states),
    then `output_logits` (identity where the trunk ends in the output layer, as LLaDA's does). Logits come back
    exactly as the trunk and head compute them; no shift is applied."""

    def output_logits(self, h: torch.Tensor) -> torch.Tensor:
        return h

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast | tuple:
        h, hidden = self.model(
            input_ids=input_ids,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            output_hidden_states=bool(output_hidden_states),
        )
        out = CausalLMOutputWithPast(logits=self.output_logits(h), hidden_states=hidden)
        return out if return_dict is not False else out.to_tuple()


def kept_heads(num_heads: int, pruned: list[int] | tuple[int, ...]) -> list[int]:
    """Original indices of the heads that remain after pruning `pruned`."""
    removed = set(pruned)
    return [h for h in range(num_heads) if h not in removed]


class SelfContainedSaveMixin:
    """Saving also writes an `auto_map` to the modeling code that transformers copies beside the weights, so the
    checkpoint loads without optimum-sinkprune (plain transformers, with `trust_remote_code` enabled by the user).

    Subclasses set `_remote_code_class` ("modeling_x.ClassName") and optionally `_remote_config_class`."""

    _remote_code_class: str = ""
    _remote_config_class: str | None = None

    def save_pretrained(self, save_directory, *args, **kwargs):
        auto_map = dict(getattr(self.config, "auto_map", None) or {})
        if self._remote_config_class:
            auto_map["AutoConfig"] = self._remote_config_class
        for auto in ("AutoModel", "AutoModelForCausalLM", "AutoModelForMaskedLM"):
            auto_map[auto] = self._remote_code_class
        self.config.auto_map = auto_map
        return super().save_pretrained(save_directory, *args, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        # checkpoints stored sparse (compressed-tensors bitmask / 2:4 layout) are decompressed here: transformers no
        # longer does it for sparsity-only configs
        sparse = sparse_checkpoint(cls, pretrained_model_name_or_path, kwargs)
        if sparse is None:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        config, state_dict, rest = sparse
        model = super().from_pretrained(None, *args, config=config, state_dict=state_dict, **rest)
        model.config._name_or_path = str(pretrained_model_name_or_path)
        return model


class DLMPreTrainedModel(SelfContainedSaveMixin, PreTrainedModel):
    """What the pretrained bases of the DLM families share: the self-contained save, sdpa and the attention
    interface, the trunk under `model`, and `init_dlm_weights` with the std the config names.

    Subclasses set `config_class`, `_no_split_modules`, `_remote_code_class` and `_init_std_attribute` (the config
    attribute holding the initialisation std: `initializer_range` in transformers' configs, `init_std` in LLaDA's)."""

    base_model_prefix = "model"
    _supports_sdpa = True
    _supports_attention_backend = True
    _init_std_attribute: str = "initializer_range"

    def _init_weights(self, module: nn.Module) -> None:
        init_dlm_weights(module, getattr(self.config, self._init_std_attribute))
