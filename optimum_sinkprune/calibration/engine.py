# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The calibration engine: picks the order of a pruning method from its spec and runs it on the one pipeline.

A method's spec (`MethodSpec.order`, `.statistic`, `.noised`, `.sink`) decides everything:

* order **none**: the weights alone are scored (`magnitude`).
* order **dense** (`sink_wanda`, `wanda_diffusion`): the unpruned model runs on noised samples — one forward per
  (sample, sampled step) — and an `InputNormObserver` returns, per linear layer, Σ over (sample, step) of
  ‖w ⊙ X_j‖₂ over tokens, with w = 1 − σ from the attention mass captured *during the same forward* (sink) or
  w = 1. Inputs shared by several layers (q/k/v, gate/up) are captured once. Every statistic is checked finite
  before any weight changes.
* order **sequential** (`wanda`, `sparsegpt`, `sink_sparsegpt`): when the method is sink-weighted, a dense pass over
  noised samples first gives σ per sample averaged over the sampled steps; then blocks in order on clean samples,
  each block's sum of squares or (token-weighted, 1 − σ̄) Hessians gathered, the block pruned, its outputs
  recomputed with the pruned weights as the next block's inputs.

`run_method` is that decision; the functions below it (`collect_dense_norms`, `collect_sink_weights`,
`run_sequential`, `noised_samples`) are the single steps, kept for callers that need one of them. The memory
estimate lives in `calibration.memory` (re-exported here).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..adapters.base import ModelAdapter
from .hooks import BlockInputs
from .memory import MemoryEstimate, available_host_memory, available_memory, check_memory, estimate_memory
from .noise import NoiseSchedule, noise_inputs, sample_seeds
from .observers import AttentionMassObserver, BlockStatisticObserver, InputNormObserver, SinkStatistics
from .pipeline import (
    INPUT_GROUPS,
    PROBE_CHUNK_BYTES,
    CalibrationPipeline,
    clean_inputs,
    groups_by_block,
    input_groups,
)

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------------------------
# inputs
# ------------------------------------------------------------------------------------------------------------------
def noised_samples(
    samples: torch.Tensor, steps: list[int], *, diffusion_steps: int, mask_token_id: int, noise_eps: float, seed: int
) -> torch.Tensor:
    """All noised inputs [n, len(steps), seq] on the "ladder" schedule with nothing protected: sample i at step s is
    `forward_process(x_i, t=s/diffusion_steps)`, its noise drawn from a CPU generator seeded with
    `sample_seeds(seed, n)[i]`, steps in increasing order (see `calibration.noise`)."""
    noisy, _ = noise_inputs(samples, steps, diffusion_steps=diffusion_steps, mask_token_id=mask_token_id,
                            noise_eps=noise_eps, seed=seed)
    return noisy


# ------------------------------------------------------------------------------------------------------------------
# single steps
# ------------------------------------------------------------------------------------------------------------------
def _modules(targets: dict[str, nn.Linear], groups: dict[str, list[str]]) -> dict[str, nn.Module]:
    return {name: targets[name] for name in groups}


@torch.no_grad()
def collect_dense_norms(
    model: nn.Module,
    adapter: ModelAdapter,
    targets: dict[str, nn.Linear],
    noisy: torch.Tensor,
    *,
    sink: bool,
    sink_alpha: float,
    sink_std: float,
    batch_size: int = 1,
    attention_mask: torch.Tensor | None = None,
    progress: bool = True,
) -> tuple[dict[str, torch.Tensor], SinkStatistics | None]:
    """Per target layer: Σ over (sample, step) of the L2 norm over tokens of (1 − σ) ⊙ X_j (σ ≡ 0 when not `sink`).

    Args:
        noisy: [n, steps, seq] noised calibration ids (`NoiseSchedule.noised`).
        attention_mask: optional [n, seq] padding mask: padded positions are no attention key or query, take no
            part in σ and get weight 0 in the norms.

    Returns:
        `({name: float32 [in]}, SinkStatistics or None)`.
    """
    groups = input_groups(adapter, targets)
    norms = InputNormObserver(groups, _modules(targets, groups), sink_weighted=sink,
                              padded=attention_mask is not None)
    observers = [norms]
    mass = AttentionMassObserver() if sink else None
    if mass is not None:
        observers.insert(0, mass)
    pipeline = CalibrationPipeline(model, adapter, batch_size=batch_size, sink_alpha=sink_alpha, sink_std=sink_std,
                                   progress=progress)
    pipeline.dense(noisy, observers, attention_mask=attention_mask,
                   desc="sink calibration" if sink else "noised calibration")
    return norms.result(), (mass.stats if mass is not None else None)


@torch.no_grad()
def collect_sink_weights(
    model: nn.Module,
    adapter: ModelAdapter,
    noisy: torch.Tensor,
    *,
    sink_alpha: float,
    sink_std: float,
    batch_size: int = 1,
    attention_mask: torch.Tensor | None = None,
    progress: bool = True,
) -> tuple[torch.Tensor, SinkStatistics]:
    """σ per calibration sample averaged over the sampled steps: float32 [n, seq] (`sink_sparsegpt`); 0 at the
    padding of an optional [n, seq] `attention_mask`."""
    n, num_steps, seq = noisy.shape
    # σ of the positions the blocks see (a block-diffusion decoder: the canvas), the ones the token weights scale
    mass = AttentionMassObserver(n, len(range(seq)[adapter.observed_positions(model, seq)]))
    pipeline = CalibrationPipeline(model, adapter, batch_size=batch_size, sink_alpha=sink_alpha, sink_std=sink_std,
                                   progress=progress)
    pipeline.dense(noisy, [mass], attention_mask=attention_mask, desc="sink detection")
    return mass.mean_sigma(num_steps), mass.stats


@torch.no_grad()
def capture_first_block_inputs(
    model: nn.Module, adapter: ModelAdapter, samples: torch.Tensor, *, batch_size: int,
    attention_mask: torch.Tensor | None = None,
) -> list[BlockInputs]:
    """Run the embedding on every batch and keep what block 0 receives (on CPU)."""
    pipeline = CalibrationPipeline(model, adapter, batch_size=batch_size, progress=False)
    return pipeline.capture_first_block_inputs(samples, attention_mask)


@torch.no_grad()
def run_sequential(
    model: nn.Module,
    adapter: ModelAdapter,
    samples: torch.Tensor,
    targets: dict[str, nn.Linear],
    *,
    statistic: str,
    prune_block: Callable[[int, dict[str, torch.Tensor]], None],
    token_weights: torch.Tensor | None = None,
    batch_size: int = 1,
    attention_mask: torch.Tensor | None = None,
    progress: bool = True,
) -> int:
    """Blocks in order: gather statistics of the block's target layers from the current (already pruned upstream)
    activations, call `prune_block(index, {name: statistic})`, recompute the block's outputs.

    Args:
        samples: [n, seq] clean calibration ids.
        statistic: "sq_norm" (Wanda: sqrt(mean X_j²), [in]) or "hessian" (H = 2·XᵀX/n, [in, in]).
        token_weights: optional [n, seq] per-token weights applied to inputs before the statistic (1 − σ̄).
        attention_mask: optional [n, seq] padding mask: padded positions are no attention key, get token weight 0
            and are not counted as tokens.

    Returns:
        the number of sequences run through the blocks.
    """
    per_block = groups_by_block(adapter, input_groups(adapter, targets))
    token_valid = None
    if attention_mask is not None:  # padding: weight 0 and not counted (the positions the blocks see)
        token_valid = attention_mask.cpu().to(torch.bool)[:, adapter.observed_positions(model, samples.shape[1])]
        valid = token_valid.to(torch.float32)
        token_weights = valid if token_weights is None else token_weights * valid

    def block_observer(index: int) -> BlockStatisticObserver | None:
        block_groups = per_block.get(index)
        if not block_groups:
            return None
        return BlockStatisticObserver(statistic, _modules(targets, block_groups), token_weights, token_valid)

    def on_block(index: int, observer: BlockStatisticObserver) -> None:
        per_layer = {}
        for rep, members in per_block[index].items():
            value = observer.finalize(rep)
            for name in members:
                per_layer[name] = value
        prune_block(index, per_layer)

    pipeline = CalibrationPipeline(model, adapter, batch_size=batch_size, progress=progress)
    return pipeline.sequential(samples, block_observer, on_block, attention_mask=attention_mask)


# ------------------------------------------------------------------------------------------------------------------
# the engine's decision
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class CalibrationResult:
    """What calibrating (and, on the sequential order, pruning block by block) did."""

    order: str
    forwards: int = 0
    sink: SinkStatistics | None = None


def run_method(
    model: nn.Module,
    adapter: ModelAdapter,
    spec,
    targets: dict[str, nn.Linear],
    samples: torch.Tensor | None,
    *,
    prune_layer: Callable[[str, torch.Tensor | None], None],
    check: Callable[[str, torch.Tensor], None],
    noise: NoiseSchedule | None = None,
    mask_token_id: int | None = None,
    sink_alpha: float = 5.0,
    sink_std: float = 2.0,
    batch_size: int = 1,
    attention_mask: torch.Tensor | None = None,
    progress: bool = True,
) -> CalibrationResult:
    """Calibrate for `spec` in its order and hand every layer's statistic to `prune_layer(name, statistic)`.

    Args:
        spec: the method's spec (order, statistic, noised, sink).
        targets: {name: layer} to prune, in forward order.
        samples: [n, seq] clean calibration ids (None for order "none").
        prune_layer: scores and applies one layer's mask (statistic None on order "none").
        check: raises on a non-finite statistic (called on every statistic before the layers it feeds change).
        noise: the noise schedule of noised methods; mask_token_id: what `adapter.noise_token_id` gave (the [MASK]
            id, or None for a family whose forward process draws its own tokens), resolved once by the caller.
        attention_mask: optional [n, seq] padding mask of `samples` (per-sample rows, `CalibrationBatch`): padding
            is never noised, is no attention key or query, takes no part in σ and no part in any statistic. None
            (packed windows) runs exactly as without it.

    Raises:
        ValueError: a noised method without a noise schedule or mask token, or missing samples.
    """
    if spec.order == "none":
        for name in targets:
            prune_layer(name, None)
        return CalibrationResult("none")
    if samples is None:
        raise ValueError(f"method={spec.name!r} needs calibration samples")
    noisy = None
    if spec.noised:
        if noise is None:
            raise ValueError(f"method={spec.name!r} noises its inputs: give a noise schedule and mask_token_id "
                             f"(got noise={noise!r}, mask_token_id={mask_token_id!r})")
        # the family's own forward process (masked diffusion by default; block diffusion noises the canvas only)
        noisy, _ = adapter.calibration_noise(model, samples, noise, mask_token_id, batch_size=batch_size,
                                             attention_mask=attention_mask)
    common = dict(sink_alpha=sink_alpha, sink_std=sink_std, batch_size=batch_size, attention_mask=attention_mask,
                  progress=progress)
    result = CalibrationResult(spec.order)
    if spec.order == "dense":
        inputs = noisy if noisy is not None else clean_inputs(samples)
        stats, result.sink = collect_dense_norms(model, adapter, targets, inputs, sink=spec.sink, **common)
        result.forwards = inputs.shape[0] * inputs.shape[1]
        for name, value in stats.items():  # every statistic checked before any weight changes
            check(name, value)
        for name in targets:
            prune_layer(name, stats[name])
        return result
    if spec.order != "sequential":
        raise ValueError(f"order={spec.order!r} of method {spec.name!r} is not 'none', 'dense' or 'sequential'")
    token_weights = None
    if spec.sink:
        sigma, result.sink = collect_sink_weights(model, adapter, noisy, **common)
        result.forwards += noisy.shape[0] * noisy.shape[1]
        token_weights = 1.0 - sigma

    def prune_block(_index: int, stats: dict[str, torch.Tensor]) -> None:
        for name, value in stats.items():
            check(name, value)
        for name, value in stats.items():
            prune_layer(name, value)

    result.forwards += run_sequential(model, adapter, samples, targets, statistic=spec.statistic,
                                      prune_block=prune_block, token_weights=token_weights, batch_size=batch_size,
                                      attention_mask=attention_mask, progress=progress)
    return result


__all__ = [
    "INPUT_GROUPS",
    "PROBE_CHUNK_BYTES",
    "CalibrationResult",
    "MemoryEstimate",
    "SinkStatistics",
    "available_host_memory",
    "available_memory",
    "capture_first_block_inputs",
    "check_memory",
    "collect_dense_norms",
    "collect_sink_weights",
    "estimate_memory",
    "input_groups",
    "noised_samples",
    "run_method",
    "run_sequential",
    "sample_seeds",
]
