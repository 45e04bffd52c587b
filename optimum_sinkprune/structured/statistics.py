# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Calibration statistics for structured pruning, gathered with ONE forward per (sample, sampled step).

Inside each forward: the attention-mass probe (`AttentionMassProbe(per_head=True)`) gives the per-head mass (for the
dominant sink position of every head) and the total mass (for the per-token sink weight σ); input hooks on the
o-projection and down-projection of every block keep that forward's inputs, which are reduced once σ is known:

    head_sq[l, h]          = Σ_tokens ‖X^{l,h}_t‖²            head_sq_weighted[l, h]    = Σ_t (1 − σ_t)² ‖X^{l,h}_t‖²
    channel_sq[l][c]       = Σ_tokens a_{t,c}²                channel_sq_weighted[l][c] = Σ_t (1 − σ_t)² a_{t,c}²

Noised inputs come from the calibration engine's `noised_samples` (same noise as the weight-pruning methods: steps
interval, 2·interval, …, diffusion_steps; t = step / diffusion_steps). Autoregressive models are calibrated on the
clean samples (one "step").
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from ..adapters import get_adapter
from ..configuration import calibration_steps
from .removal import head_geometry, kept_heads

logger = logging.getLogger(__name__)


@dataclass
class StructuredStatistics:
    """Per-head (original indexing; removed heads NaN) and per-channel calibration sums."""

    dominant_positions: torch.Tensor  # long [samples, steps, layers, heads]
    head_sq: torch.Tensor  # float64 [layers, heads]
    head_sq_weighted: torch.Tensor  # float64 [layers, heads]
    channel_sq: list[torch.Tensor]  # float64 [width] per layer
    channel_sq_weighted: list[torch.Tensor]
    forwards: int
    mean_sink_weight: float

    def head_norms(self, *, sink_weighted: bool) -> torch.Tensor:
        return (self.head_sq_weighted if sink_weighted else self.head_sq).sqrt().float()

    def channel_norms(self, *, sink_weighted: bool) -> list[torch.Tensor]:
        source = self.channel_sq_weighted if sink_weighted else self.channel_sq
        return [c.sqrt().float() for c in source]


def token_head_sq_norms(x: torch.Tensor, head_dim: int) -> torch.Tensor:
    """‖x_{t,h}‖² per token and head: [b, s, heads·hd] -> float32 [b, s, heads]."""
    b, s, width = x.shape
    return x.float().reshape(b, s, width // head_dim, head_dim).square().sum(dim=-1)


def _head_sq_norms(sq: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Σ over batch and tokens of w_t² ‖x_{t,h}‖² per head from per-token norms [b, s, heads] -> float64 [heads]."""
    if weight is not None:
        sq = sq * weight.float().square()[..., None]
    return sq.sum(dim=(0, 1)).double()


def _channel_sq_norms(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    sq = x.float().square()
    if weight is not None:
        sq = sq * weight.float().square()[..., None]
    return sq.sum(dim=(0, 1)).double()


@torch.no_grad()
def collect_structured_statistics(
    model: nn.Module,
    calibration_ids: torch.Tensor,
    *,
    attention_mask: torch.Tensor | None = None,
    diffusion_steps: int = 50,
    sample_interval: int = 5,
    noise_eps: float = 1e-3,
    sink_alpha: float = 5.0,
    sink_std: float = 2.0,
    seed: int = 0,
    batch_size: int = 1,
    progress: bool = True,
) -> StructuredStatistics:
    """Run the calibration forwards and return the statistics (see the module docstring).

    Args:
        model (`nn.Module`): a supported model.
        calibration_ids (`torch.Tensor`): [samples, seq] clean token ids.
        attention_mask (`torch.Tensor`, *optional*): [samples, seq] padding mask (1 = token).
        diffusion_steps, sample_interval, noise_eps: the noised calibration of diffusion models.
        sink_alpha, sink_std: σ = sigmoid(alpha · (m − (mean + sink_std · std))) from the total attention mass.
        seed (`int`): noise seed (per sample, independent of `batch_size`).
        batch_size (`int`): sequences per forward.
    """
    from ..calibration.attention import AttentionMassProbe
    from ..calibration.engine import input_device, noised_samples
    from ..calibration.hooks import input_hooks
    from ..calibration.sink_weights import sink_weights

    adapter = get_adapter(model)
    if not isinstance(calibration_ids, torch.Tensor) or calibration_ids.dim() != 2 or calibration_ids.numel() == 0:
        shape = tuple(calibration_ids.shape) if isinstance(calibration_ids, torch.Tensor) else type(calibration_ids)
        raise ValueError(f"calibration_ids must be a non-empty [samples, seq] tensor of token ids, got {shape}")
    if attention_mask is not None and tuple(attention_mask.shape) != tuple(calibration_ids.shape):
        raise ValueError(f"attention_mask must have the shape of calibration_ids {tuple(calibration_ids.shape)}, "
                         f"got {tuple(attention_mask.shape)}")
    geometry = head_geometry(model, adapter)
    pruned = adapter.pruned_heads(model)
    num_layers = adapter.num_layers(model)
    blocks = adapter.blocks(model)
    kept = [kept_heads(geometry.num_heads, pruned.get(i, [])) for i in range(num_layers)]

    samples = calibration_ids.cpu()
    if adapter.is_diffusion:
        steps = calibration_steps(diffusion_steps, sample_interval)
        noisy = noised_samples(samples, steps, diffusion_steps=diffusion_steps,
                               mask_token_id=adapter.mask_token_id(model), noise_eps=noise_eps, seed=seed)
        if attention_mask is not None:  # padding stays padding
            keep = ~attention_mask.cpu().to(torch.bool)[:, None, :].expand_as(noisy)
            noisy = torch.where(keep, samples[:, None, :].expand_as(noisy), noisy)
    else:
        noisy = samples[:, None, :]
    n, num_steps, _ = noisy.shape

    head_sq = torch.zeros(num_layers, geometry.num_heads, dtype=torch.float64)
    head_sq_w = torch.zeros_like(head_sq)
    widths = [adapter.mlp_width(model, i) for i in range(num_layers)]
    ch_sq = [torch.zeros(w, dtype=torch.float64) for w in widths]
    ch_sq_w = [torch.zeros(w, dtype=torch.float64) for w in widths]
    dominant = torch.zeros(n, num_steps, num_layers, geometry.num_heads, dtype=torch.long)
    sigma_sum, tokens = 0.0, 0

    modules = {}
    for i, block in enumerate(blocks):
        modules[f"o.{i}"] = adapter.projection(block, "o")
        modules[f"down.{i}"] = adapter.projection(block, "down")
    captured: dict[str, torch.Tensor] = {}

    def on_input(name: str, x: torch.Tensor) -> None:
        # o-projection inputs are reduced to per-token head norms at once; MLP inputs wait for σ (end of forward)
        captured[name] = token_head_sq_norms(x, geometry.head_dim) if name.startswith("o.") else x

    device = input_device(model, adapter)
    pairs = [(range(s, min(s + batch_size, n)), k) for s in range(0, n, batch_size) for k in range(num_steps)]
    bar = tqdm(pairs, desc="structured calibration", unit="fwd", disable=not progress)
    with ExitStack() as stack:
        stack.enter_context(input_hooks(modules, on_input))
        probe = stack.enter_context(AttentionMassProbe(model, per_head=True))
        for rows, k in bar:
            ids = noisy[rows.start:rows.stop, k].to(device)
            mask = attention_mask[rows.start:rows.stop].to(device) if attention_mask is not None else None
            model(input_ids=ids, attention_mask=mask)
            per_head = probe.per_head_mass  # [b, layers, heads, seq]
            valid = mask.to(torch.bool) if mask is not None else None
            sigma = sink_weights(probe.mass, alpha=sink_alpha, k_std=sink_std, valid=valid)
            token_weight = 1.0 - sigma
            token_valid = valid.float() if valid is not None else torch.ones_like(sigma)
            token_weight = token_weight * token_valid
            sigma_sum += float((sigma * token_valid).sum())
            tokens += int(token_valid.sum())
            dominant[rows.start:rows.stop, k] = per_head.argmax(dim=-1).cpu()
            for i in range(num_layers):
                sq_o = captured.pop(f"o.{i}")
                idx = torch.tensor(kept[i], dtype=torch.long)
                head_sq[i, idx] += _head_sq_norms(sq_o, token_valid.to(sq_o.device)).cpu()
                head_sq_w[i, idx] += _head_sq_norms(sq_o, token_weight.to(sq_o.device)).cpu()
                x_d = captured.pop(f"down.{i}")
                ch_sq[i] += _channel_sq_norms(x_d, token_valid.to(x_d.device)).cpu()
                ch_sq_w[i] += _channel_sq_norms(x_d, token_weight.to(x_d.device)).cpu()
    for i in range(num_layers):  # removed heads: NaN, never chosen again
        removed = torch.tensor(pruned.get(i, []), dtype=torch.long)
        if removed.numel():
            head_sq[i, removed] = float("nan")
            head_sq_w[i, removed] = float("nan")
    return StructuredStatistics(
        dominant_positions=dominant,
        head_sq=head_sq,
        head_sq_weighted=head_sq_w,
        channel_sq=ch_sq,
        channel_sq_weighted=ch_sq_w,
        forwards=len(pairs),
        mean_sink_weight=sigma_sum / tokens if tokens else 0.0,
    )


__all__ = ["StructuredStatistics", "calibration_steps", "collect_structured_statistics"]
