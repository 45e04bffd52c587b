# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""SparseGPT (Frantar & Alistarh 2023): OBS mask selection and weight reconstruction from a layer Hessian.

Pure: takes the weight and H = 2·XᵀX/n, returns the reconstructed weight and the mask; `apply_mask` writes them. The
column sweep is `methods.obs.obs_sweep` (shared with GPTQ).
"""

from __future__ import annotations

import torch

from .obs import dampened_inverse_cholesky, obs_sweep


def sparsegpt_prune(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    *,
    sparsity: float,
    nm: tuple[int, int] | None = None,
    block_size: int = 128,
    dampening: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prune and reconstruct one linear layer (`obs_sweep` without quantization).

    Columns are processed in blocks of `block_size`. Unstructured: per block, the `floor(numel · sparsity)` weights
    with the lowest w² / [H⁻¹]²_jj (over all rows of the block) are pruned. N:M: in each group of M columns, per row,
    the M − N lowest are pruned. After each column the error (w − q)/[H⁻¹]_jj is propagated to the later columns.

    Args:
        weight: [out, in].
        hessian: [in, in], H = 2·XᵀX / n.

    Returns:
        `(new_weight, mask)`: float32 reconstructed weight with zeros at the mask, and bool [out, in] (True = pruned).
    """
    new_weight, mask, _ = obs_sweep(weight, hessian, sparsity=sparsity, nm=nm, block_size=block_size,
                                    dampening=dampening)
    return new_weight, mask


__all__ = ["dampened_inverse_cholesky", "obs_sweep", "sparsegpt_prune"]
