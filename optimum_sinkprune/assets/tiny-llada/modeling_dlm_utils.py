# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Building blocks shared by the LLaDA and Dream implementations.

Self-contained (torch + transformers only): a saved checkpoint carries this file next to its modeling file, so plain
transformers (with `trust_remote_code` enabled by the user) loads it without optimum-sinkprune installed.
"""

from __future__ import annotations

import torch
from torch import nn


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
