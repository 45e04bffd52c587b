# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The forward process of block diffusion with uniform-token noise (DiffusionGemma).

DiffusionGemma has no mask token. Its decoder denoises one canvas (block) of `canvas_length` tokens given the clean
context the encoder read; `generate()` starts each canvas from tokens drawn uniformly from the vocabulary and renoises
every token it did not accept the same way. The forward process that matches it corrupts a clean canvas x₀ at noise
level t by replacing each position independently, with probability p = (1 − eps)·t + eps, by a token drawn uniformly
from the vocabulary (the draw may hit the clean token, as in `generate()`); the context stays clean.

Seeding follows `calibration.noise`: sample i draws from its own CPU generator seeded with `sample_seeds(seed, n)[i]`,
steps in increasing order, so a sample's noise does not depend on the batch size or on the other samples. The steps
and t come from a `NoiseSchedule`: "ladder" gives t = s / K; "uniform" draws t ~ U(0, 1] per (sample, step) from the
sample's generator (no stratification across a batch: canvases are noised independently of how they are batched).
"""

from __future__ import annotations

import torch

from ..calibration.noise import NoiseSchedule, sample_seeds


def uniform_replace(
    tokens: torch.Tensor,
    p: float,
    vocab_size: int,
    *,
    generator: torch.Generator | None = None,
    maskable: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace each position of `tokens` with probability `p` by a token drawn uniformly from [0, vocab_size).

    Args:
        tokens (`torch.Tensor`): clean token ids [batch, length] (CPU).
        p (`float`): replacement probability in [0, 1].
        vocab_size (`int`): the vocabulary the replacements are drawn from.
        generator (`torch.Generator`, *optional*): CPU generator; the Bernoulli draws come before the tokens.
        maskable (`torch.Tensor`, *optional*): bool [batch, length]; False positions are never replaced.

    Returns:
        `(noisy, replaced)`: the noised ids and the bool mask of the positions that were redrawn.

    Raises:
        ValueError: `p` outside [0, 1], a non-positive `vocab_size`, a `maskable` of another shape.
    """
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"p={p!r} is not allowed; it must lie in [0, 1]")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
        raise ValueError(f"vocab_size={vocab_size!r} is not allowed; it must be a positive int")
    if maskable is not None and tuple(maskable.shape) != tuple(tokens.shape):
        raise ValueError(f"maskable must have the shape of tokens {tuple(tokens.shape)}, got {tuple(maskable.shape)}")
    replaced = torch.rand(tokens.shape, generator=generator) < float(p)
    if maskable is not None:
        replaced &= maskable.to(torch.bool)
    draws = torch.randint(0, vocab_size, tokens.shape, generator=generator, dtype=tokens.dtype)
    return torch.where(replaced, draws, tokens), replaced


def noise_canvases(
    canvases: torch.Tensor, schedule: NoiseSchedule, vocab_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every noised version of clean `canvases` [n, canvas] at the schedule's steps.

    Args:
        canvases (`torch.Tensor`): clean canvas ids [n, canvas].
        schedule (`NoiseSchedule`): steps, "ladder" or "uniform" t, noise_eps and seed; its protected positions must
            be "none" (the context is what stays clean in block diffusion).
        vocab_size (`int`): the vocabulary the replacements are drawn from.

    Returns:
        `(noisy [n, steps, canvas], t [n, steps])` on CPU.

    Raises:
        ValueError: `canvases` not [n, canvas], or protected positions other than "none".
    """
    if not isinstance(canvases, torch.Tensor) or canvases.dim() != 2:
        shape = tuple(canvases.shape) if isinstance(canvases, torch.Tensor) else type(canvases).__name__
        raise ValueError(f"canvases must be a [n, canvas] tensor of token ids, got {shape}")
    if schedule.protected != "none":
        raise ValueError(f"protected={schedule.protected!r} is not allowed for block diffusion: the context is never "
                         "noised and every canvas position is; use protected='none'")
    canvases = canvases.cpu()
    n, length = canvases.shape
    steps = schedule.steps
    gens = [torch.Generator(device="cpu").manual_seed(s) for s in sample_seeds(schedule.seed, n)]
    noisy = torch.empty((n, len(steps), length), dtype=canvases.dtype)
    times = torch.empty((n, len(steps)), dtype=torch.float32)
    for k, step in enumerate(steps):
        for i in range(n):
            if schedule.schedule == "ladder":
                t = step / schedule.diffusion_steps
            else:
                t = 1.0 - float(torch.rand((), generator=gens[i]))  # in (0, 1]
            p = (1.0 - schedule.noise_eps) * t + schedule.noise_eps
            noisy[i, k] = uniform_replace(canvases[i:i + 1], p, vocab_size, generator=gens[i])[0][0]
            times[i, k] = t
    return noisy, times


__all__ = ["noise_canvases", "uniform_replace"]
