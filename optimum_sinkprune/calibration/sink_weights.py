# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Soft sink weights from attention mass (Sink-Aware Pruning).

For one sequence with attention mass m_j over its valid positions V (see `attention.attention_mass`):

    μ = mean_{j∈V} m_j,    σ_m = sqrt(mean_{j∈V} (m_j − μ)²)            (population std)
    τ = μ + k_std · σ_m                                                   (the sink threshold)
    w_j = sigmoid(α · (m_j − τ))   for j ∈ V,    w_j = 0 otherwise         (soft sink weight)
    S = { j ∈ V : m_j > τ }                                               (the thresholded sink set)
"""

from __future__ import annotations

import torch


def _check(mass: torch.Tensor, valid: torch.Tensor | None, k_std: float) -> torch.Tensor:
    if not isinstance(mass, torch.Tensor) or mass.dim() != 2:
        shape = tuple(mass.shape) if isinstance(mass, torch.Tensor) else type(mass).__name__
        raise ValueError(f"mass must be a [batch, seq] tensor, got {shape}")
    if mass.shape[1] == 0:
        raise ValueError(f"mass is empty along seq (shape {tuple(mass.shape)})")
    if not isinstance(k_std, (int, float)) or isinstance(k_std, bool) or k_std != k_std:
        raise ValueError(f"k_std must be a real number, got {k_std!r}")
    if valid is None:
        return torch.ones(mass.shape, dtype=torch.bool, device=mass.device)
    if tuple(valid.shape) != tuple(mass.shape):
        raise ValueError(f"valid must have the shape of mass {tuple(mass.shape)}, got {tuple(valid.shape)}")
    valid = valid.to(device=mass.device, dtype=torch.bool)
    if not bool(valid.any(dim=1).all()):
        raise ValueError("valid has a sequence with no valid position")
    return valid


def sink_threshold(mass: torch.Tensor, k_std: float = 2.0, valid: torch.Tensor | None = None) -> torch.Tensor:
    """τ = mean + k_std · population std of `mass` [batch, seq] over each sequence's valid positions: [batch, 1]."""
    valid = _check(mass, valid, k_std)
    m = mass.to(torch.float32)
    w = valid.to(torch.float32)
    n = w.sum(dim=1, keepdim=True)
    mean = (m * w).sum(dim=1, keepdim=True) / n
    var = (((m - mean) ** 2) * w).sum(dim=1, keepdim=True) / n
    return mean + float(k_std) * var.sqrt()


def sink_weights(
    mass: torch.Tensor, *, alpha: float = 5.0, k_std: float = 2.0, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Soft sink weights σ_j = sigmoid(alpha · (m_j − (mean(m) + k_std · std(m)))) per sequence.

    Args:
        mass (`torch.Tensor`): [batch, seq] attention mass.
        alpha (`float`): sigmoid sharpness (> 0).
        k_std (`float`): threshold in population standard deviations above the mean.
        valid (`torch.Tensor`, *optional*): bool [batch, seq]; statistics use valid positions only and invalid
            positions get weight 0.

    Returns:
        `torch.Tensor`: float32 [batch, seq] in [0, 1].
    """
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not alpha > 0:
        raise ValueError(f"alpha must be a positive number, got {alpha!r}")
    valid_b = _check(mass, valid, k_std)
    tau = sink_threshold(mass, k_std, valid_b)
    w = torch.sigmoid(float(alpha) * (mass.to(torch.float32) - tau))
    return torch.where(valid_b, w, torch.zeros_like(w))


def sink_threshold_set(mass: torch.Tensor, k_std: float = 2.0, valid: torch.Tensor | None = None) -> torch.Tensor:
    """The paper's thresholded sink set: bool [batch, seq], True where mass > mean + k_std · std (valid positions)."""
    valid_b = _check(mass, valid, k_std)
    tau = sink_threshold(mass, k_std, valid_b)
    return (mass.to(torch.float32) > tau) & valid_b


__all__ = ["sink_threshold", "sink_threshold_set", "sink_weights"]
