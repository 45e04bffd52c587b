# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Head and MLP-channel scores for structured pruning: pure tensor functions, lower score = pruned first.

Heads are scored per ORIGINAL head index: tensors are [layers, original heads]; heads already removed hold NaN and
are never chosen again. Channels are scored per current MLP position: one [width] tensor per layer.

`sink_heads` (see docs/structured.md for the derivation):

    instability[l, h] = mean over samples of Var_steps( argmax_j m^{l,h}_j )       (dominant sink position drift)
    importance[l, h]  = ‖(1 − σ) ⊙ X^{l,h}‖₂ · ‖W_o[:, cols(h)]‖_F                  (sink-down-weighted output share)
    score[l, h]       = z(importance) − instability_weight · z(instability)         (z over every present head)

where X^{l,h} is the o-projection input slice of head h over all calibration tokens and σ the per-token sink weight.
MLP channels (structured Wanda): score[l, c] = ‖W_down[:, c]‖₂ · ‖(1 − σ) ⊙ a_c‖₂ with a_c the down-projection input.
"""

from __future__ import annotations

import torch


def zscore(values: torch.Tensor) -> torch.Tensor:
    """(x − mean) / std over the finite entries; NaN entries stay NaN; a constant tensor maps to 0."""
    finite = torch.isfinite(values)
    out = torch.full_like(values, float("nan"), dtype=torch.float64)
    if not finite.any():
        return out.to(values.dtype)
    x = values[finite].to(torch.float64)
    std = x.std(unbiased=False)
    out[finite] = (x - x.mean()) / std if std > 0 else torch.zeros_like(x)
    return out.to(torch.float32)


def sink_instability(dominant_positions: torch.Tensor) -> torch.Tensor:
    """Variance over denoising steps of each head's dominant sink position, averaged over samples.

    Args:
        dominant_positions: [samples, steps, layers, heads] integer key positions (argmax of the per-head mass).

    Returns:
        float32 [layers, heads] (0 when only one step was observed).
    """
    if dominant_positions.dim() != 4:
        raise ValueError(f"dominant_positions must be [samples, steps, layers, heads], got {tuple(dominant_positions.shape)}")
    pos = dominant_positions.to(torch.float64)
    if pos.shape[1] < 2:
        return torch.zeros(pos.shape[2:], dtype=torch.float32)
    return pos.var(dim=1, unbiased=False).mean(dim=0).to(torch.float32)


def dominant_sink_positions(per_head_mass: torch.Tensor) -> torch.Tensor:
    """argmax over key positions of the per-head mass [batch, layers, heads, seq] -> [batch, layers, heads]."""
    return per_head_mass.argmax(dim=-1)


def head_importance(activation_norm: torch.Tensor, o_column_norm: torch.Tensor) -> torch.Tensor:
    """Output contribution of each head: ‖X_h‖₂ · ‖W_o[:, cols(h)]‖_F (both [layers, heads])."""
    return activation_norm * o_column_norm


def sink_head_scores(importance: torch.Tensor, instability: torch.Tensor, instability_weight: float) -> torch.Tensor:
    """score = z(importance) − instability_weight · z(instability); z over the present heads (finite importance)."""
    present = torch.isfinite(importance)
    nan = torch.full_like(importance, float("nan"), dtype=torch.float32)
    instability = torch.where(present, instability.float(), nan)  # removed heads do not shift the z statistics
    score = zscore(importance) - instability_weight * zscore(instability)
    return torch.where(present, score, nan)


def random_scores(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Seeded uniform scores (the random baseline)."""
    generator = torch.Generator().manual_seed(int(seed))
    return torch.rand(shape, generator=generator)


def channel_wanda_scores(down_column_norm: torch.Tensor, activation_norm: torch.Tensor) -> torch.Tensor:
    """Structured Wanda: ‖W_down[:, c]‖₂ · ‖a_c‖₂ per channel c (the activation norm may be sink-weighted)."""
    return down_column_norm * activation_norm


def group_scores(head_scores: torch.Tensor, group_size: int) -> torch.Tensor:
    """Scores of kv groups [..., heads / group_size]: the mean of their query heads (NaN when the group is gone)."""
    if group_size == 1:
        return head_scores
    shape = head_scores.shape[:-1] + (head_scores.shape[-1] // group_size, group_size)
    return head_scores.reshape(shape).mean(dim=-1)


__all__ = [
    "channel_wanda_scores",
    "dominant_sink_positions",
    "group_scores",
    "head_importance",
    "random_scores",
    "sink_head_scores",
    "sink_instability",
    "zscore",
]
