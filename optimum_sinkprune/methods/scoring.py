# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Scorers: pure functions from a weight and its calibration statistic to per-weight importance (higher = keep)."""

from __future__ import annotations

import torch


def check_finite(name: str, stat: torch.Tensor, what: str = "calibration statistic") -> None:
    """Raise `FloatingPointError` naming the layer when `stat` holds NaN or inf."""
    if not torch.isfinite(stat).all():
        bad = int((~torch.isfinite(stat)).sum())
        raise FloatingPointError(
            f"{what} of layer {name!r} has {bad} non-finite value(s) (NaN/inf); the model's activations overflow on "
            "the calibration data (try float32, other calibration data, or ignore this layer)"
        )


def magnitude_scores(weight: torch.Tensor) -> torch.Tensor:
    """|W_ij|."""
    return weight.abs().float()


def wanda_scores(weight: torch.Tensor, input_norm: torch.Tensor) -> torch.Tensor:
    """|W_ij| · ‖X_j‖ where `input_norm` [in] is already the per-input-feature norm (Wanda: sqrt(mean X_j²)).

    `sink_wanda` and `wanda_diffusion` use the same product with their own statistic: Σ over (sample, step) of the
    token-L2-norm of the (1 − σ)-weighted input."""
    if input_norm.shape != (weight.shape[1],):
        raise ValueError(f"input_norm must have shape [{weight.shape[1]}], got {tuple(input_norm.shape)}")
    return weight.abs().float() * input_norm.to(device=weight.device, dtype=torch.float32)[None, :]


def wanda_input_norm(sum_sq: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """sqrt(mean over tokens of X_j²) from the running sum of squares."""
    return torch.sqrt(sum_sq / max(num_tokens, 1))


def weighted_token_norms(x: torch.Tensor, token_weight: torch.Tensor | None) -> torch.Tensor:
    """Per sample and input feature, the L2 norm over tokens of w_t · X_tj: [batch, seq, in], [batch, seq] -> [batch, in].

    Computed as sqrt(Σ_t w_t² X_tj²) in float32."""
    x = x.float()
    if token_weight is None:
        return torch.sqrt((x * x).sum(dim=1))
    w2 = token_weight.float().square()
    return torch.sqrt(torch.einsum("bs,bsi->bi", w2, x * x))
