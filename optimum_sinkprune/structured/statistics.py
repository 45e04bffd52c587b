# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Calibration statistics for structured pruning, gathered with ONE forward per (sample, sampled step).

Inside each forward: the attention-mass probe (`AttentionMassProbe(per_head=True)`) gives the per-head mass (for the
dominant sink position of every head) and the total mass (for the per-token sink weight σ); input hooks on the
o-projection and down-projection of every block keep that forward's inputs, which are reduced once σ is known:

    head_sq[l, h]          = Σ_tokens ‖X^{l,h}_t‖²            head_sq_weighted[l, h]    = Σ_t (1 − σ_t)² ‖X^{l,h}_t‖²
    channel_sq[l][c]       = Σ_tokens a_{t,c}²                channel_sq_weighted[l][c] = Σ_t (1 − σ_t)² a_{t,c}²

The forwards run on the calibration pipeline (`calibration.pipeline`, dense order) with a `StructuredObserver`.
Noised inputs come from the noise module (`calibration.noise.NoiseSchedule`: the same noise as the weight-pruning
methods; by default steps interval, 2·interval, …, ≤ diffusion_steps and t = step / diffusion_steps), applied by the
family's forward process (`adapter.calibration_noise`: the mask token, or a block-diffusion model's noised canvas).
Each layer's heads are read with its own head size (`removal.layer_geometries`: DiffusionGemma's sliding and
full-attention layers differ).
Autoregressive models are calibrated on the clean samples (one "step").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from ..adapters import get_adapter
from ..calibration.noise import NoiseSchedule
from ..calibration.observers import StructuredObserver, token_head_sq_norms
from ..calibration.pipeline import CalibrationPipeline, batches, clean_inputs
from ..configuration import calibration_steps
from .removal import kept_heads, layer_geometries

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
    mask_token_id: int | None = None,
    noise: NoiseSchedule | None = None,
    progress: bool = True,
) -> StructuredStatistics:
    """Run the calibration forwards and return the statistics (see the module docstring).

    Args:
        model (`nn.Module`): a supported model.
        calibration_ids (`torch.Tensor`): [samples, seq] clean token ids.
        attention_mask (`torch.Tensor`, *optional*): [samples, seq] padding mask (1 = token).
        diffusion_steps, sample_interval, noise_eps: the noised calibration of diffusion models (with the
            family's schedule and protected positions, `adapter.noise_defaults()`); ignored when `noise` is given.
        sink_alpha, sink_std: σ = sigmoid(alpha · (m − (mean + sink_std · std))) from the total attention mass.
        seed (`int`): noise seed (per sample, independent of `batch_size`); ignored when `noise` is given.
        batch_size (`int`): sequences per forward.
        mask_token_id (`int`, *optional*): the [MASK] id of a diffusion model, as the caller resolved it (the pruner
            asks the model config and the tokenizer); default: the model config's (`adapter.noise_token_id`: None
            for a family whose forward process draws its replacement tokens).
        noise (`NoiseSchedule`, *optional*): the full noise schedule (schedule, protected positions, seed).

    Raises:
        `ValueError`: bad calibration ids or attention mask.
        `MissingMaskTokenError`: a diffusion model without a mask token (none given, none in its config).
    """
    adapter = get_adapter(model)
    if not isinstance(calibration_ids, torch.Tensor) or calibration_ids.dim() != 2 or calibration_ids.numel() == 0:
        shape = tuple(calibration_ids.shape) if isinstance(calibration_ids, torch.Tensor) else type(calibration_ids)
        raise ValueError(f"calibration_ids must be a non-empty [samples, seq] tensor of token ids, got {shape}")
    if attention_mask is not None and tuple(attention_mask.shape) != tuple(calibration_ids.shape):
        raise ValueError(f"attention_mask must have the shape of calibration_ids {tuple(calibration_ids.shape)}, "
                         f"got {tuple(attention_mask.shape)}")
    geometries = layer_geometries(model, adapter)
    num_heads = adapter.original_num_heads(model)
    if any(g.num_heads != num_heads for g in geometries):  # the attention probe reads one query-head count
        raise ValueError(f"structured statistics need the same number of query heads in every layer; this model has "
                         f"{[g.num_heads for g in geometries]}")
    pruned = adapter.pruned_heads(model)
    num_layers = adapter.num_layers(model)
    blocks = adapter.blocks(model)

    samples = calibration_ids.cpu()
    if adapter.is_diffusion:
        if noise is None:  # the family's schedule and protected positions, as on the weight-pruning path
            family = adapter.noise_defaults()
            noise = NoiseSchedule(diffusion_steps=diffusion_steps, sample_interval=sample_interval,
                                  noise_eps=noise_eps, seed=seed, schedule=family.schedule,
                                  protected=family.protected)
        if mask_token_id is None:
            mask_token_id = adapter.noise_token_id(model)
        if attention_mask is None or mask_token_id is None:  # the family's forward process
            inputs, _ = adapter.calibration_noise(model, samples, noise, mask_token_id, batch_size=batch_size)
        else:  # padding stays padding
            inputs, _ = noise.noised(samples, mask_token_id, attention_mask=attention_mask, batch_size=batch_size)
    else:
        inputs = clean_inputs(samples)
    n, num_steps, _ = inputs.shape

    observer = StructuredObserver(
        [adapter.projection(block, "o") for block in blocks],
        [adapter.projection(block, "down") for block in blocks],
        kept=[kept_heads(g.num_heads, pruned.get(i, [])) for i, g in enumerate(geometries)],
        num_heads=num_heads,
        head_dim=[g.head_dim for g in geometries],
        widths=[adapter.mlp_width(model, i) for i in range(num_layers)],
        num_samples=n,
        num_steps=num_steps,
    )
    pipeline = CalibrationPipeline(model, adapter, batch_size=batch_size, sink_alpha=sink_alpha, sink_std=sink_std,
                                   progress=progress)
    pipeline.dense(inputs, [observer], attention_mask=attention_mask, chunk_size=None,
                   desc="structured calibration")
    head_sq, head_sq_w = observer.head_sq, observer.head_sq_weighted
    for i in range(num_layers):  # removed heads: NaN, never chosen again
        removed = torch.tensor(pruned.get(i, []), dtype=torch.long)
        if removed.numel():
            head_sq[i, removed] = float("nan")
            head_sq_w[i, removed] = float("nan")
    return StructuredStatistics(
        dominant_positions=observer.dominant,
        head_sq=head_sq,
        head_sq_weighted=head_sq_w,
        channel_sq=observer.channel_sq,
        channel_sq_weighted=observer.channel_sq_weighted,
        forwards=len(batches(n, batch_size)) * num_steps,  # batched forwards
        mean_sink_weight=observer.sigma_sum / observer.tokens if observer.tokens else 0.0,
    )


__all__ = ["StructuredStatistics", "calibration_steps", "collect_structured_statistics", "token_head_sq_norms"]
