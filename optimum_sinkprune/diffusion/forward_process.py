# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The masked-diffusion forward process (LLaDA): mask each token independently with p = (1 - eps) * t + eps."""

from __future__ import annotations

import torch


def mask_probability(t: torch.Tensor | float, eps: float = 1e-3) -> torch.Tensor:
    """Masking probability at diffusion time `t` in (0, 1]: p = (1 - eps) * t + eps."""
    t = torch.as_tensor(t, dtype=torch.float32)
    return (1.0 - eps) * t + eps


def forward_process(
    input_ids: torch.LongTensor,
    t: torch.Tensor | float,
    mask_token_id: int,
    eps: float = 1e-3,
    generator: torch.Generator | None = None,
    maskable: torch.Tensor | None = None,
) -> tuple[torch.LongTensor, torch.BoolTensor, torch.Tensor]:
    """Noise `input_ids` [batch, seq] to diffusion time `t` (a float, or one value per sequence).

    Args:
        input_ids: clean token ids.
        t: diffusion time in (0, 1]; a scalar or a tensor of shape [batch].
        mask_token_id: id written at masked positions.
        eps: the minimum masking probability.
        generator: random generator (pass a seeded one for reproducible masks); its device must match `input_ids`.
        maskable: optional bool [batch, seq]; positions that are False are never masked (prompt, padding, BOS).

    Returns:
        `(noisy_ids, is_masked, p_mask)` where `p_mask` [batch, seq] is the masking probability per position.
    """
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be [batch, seq], got shape {tuple(input_ids.shape)}")
    t = torch.as_tensor(t, dtype=torch.float32, device=input_ids.device)
    if t.numel() == 1:
        t = t.reshape(1).expand(input_ids.shape[0])
    if t.shape != (input_ids.shape[0],):
        raise ValueError(f"t must be a scalar or have shape [batch]={input_ids.shape[0]}, got {tuple(t.shape)}")
    if not bool(torch.all((t > 0) & (t <= 1))):  # written so that NaN fails too
        raise ValueError(f"t must lie in (0, 1], got {t.tolist()}")
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"eps must lie in [0, 1), got {eps}")
    if maskable is not None and maskable.shape != input_ids.shape:
        raise ValueError(
            f"maskable must have the shape of input_ids {tuple(input_ids.shape)}, got {tuple(maskable.shape)}"
        )
    p = mask_probability(t, eps)[:, None].expand(input_ids.shape)
    draw = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    is_masked = draw < p
    if maskable is not None:
        is_masked = is_masked & maskable.to(torch.bool)
    noisy = torch.where(is_masked, torch.full_like(input_ids, mask_token_id), input_ids)
    return noisy, is_masked, p
