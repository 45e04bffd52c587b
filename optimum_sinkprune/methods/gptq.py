# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""GPTQ (Frantar et al., 2023) and SparseGPT's joint sparsify + quantize pass, from a layer Hessian. Pure.

Both are the column sweep of `methods.obs.obs_sweep` (one inverse-Hessian Cholesky factor, shared with
SparseGPT) with an integer grid: GPTQ rounds every column to the grid and propagates the rounding error to the later
columns; the joint pass zeroes the pruned weights of a column and rounds the kept ones in the same sweep. Given the
sink-weighted Hessian of `sink_sparsegpt` (inputs weighted by 1 − σ̄), GPTQ is sink-aware.
"""

from __future__ import annotations

import torch

from .rtn import QuantGrid
from .obs import obs_sweep


def gptq_quantize(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    grid: QuantGrid,
    *,
    keep_zeros: bool = True,
    block_size: int = 128,
    dampening: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GPTQ-quantize one linear layer.

    Args:
        weight: `[out, in]`; hessian: `[in, in]`, H = 2·XᵀX / n (optionally token-weighted).
        grid: bits, group size (must divide `in`), scale dtype.
        keep_zeros: weights that are exactly zero stay zero (quantizing a pruned layer keeps its mask); their share
            of the error is compensated by the other weights.

    Returns:
        `(dequantized, scales)`: the float32 weight on the grid and float32 scales `[out, groups]`.
    """
    _check_columns(weight, grid)
    fixed = (weight == 0) if keep_zeros else torch.zeros(weight.shape, dtype=torch.bool, device=weight.device)
    new_weight, _, scales = obs_sweep(weight, hessian, block_size=block_size, dampening=dampening, quant=grid,
                                      fixed_mask=fixed)
    return new_weight, scales


def sparsegpt_quantize(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    grid: QuantGrid,
    *,
    sparsity: float,
    nm: tuple[int, int] | None = None,
    block_size: int = 128,
    dampening: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SparseGPT's joint pass: choose the mask as SparseGPT does and quantize the kept weights in the same sweep.

    Returns:
        `(dequantized, mask, scales)`: float32 weight (zeros at the mask, the rest on the grid), bool mask
        (True = pruned) and float32 scales `[out, groups]`.
    """
    _check_columns(weight, grid)
    return obs_sweep(weight, hessian, sparsity=sparsity, nm=nm, block_size=block_size, dampening=dampening,
                     quant=grid)


def _check_columns(weight: torch.Tensor, grid: QuantGrid) -> None:
    cols = weight.shape[1]
    if cols % grid.columns_per_group(cols):
        raise ValueError(f"group_size={grid.group_size} does not divide in_features={cols}")


__all__ = ["gptq_quantize", "sparsegpt_quantize"]
