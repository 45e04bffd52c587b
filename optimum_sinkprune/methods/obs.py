# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Blockwise optimal-brain-surgeon (OBS) updates from a layer Hessian, the one piece SparseGPT, GPTQ and SparseGPT's
joint sparsify + quantize pass share. Pure: takes the weight and H = 2·XᵀX/n, returns new tensors.

`dampened_inverse_cholesky` gives the upper Cholesky factor of the dampened inverse Hessian; `obs_sweep` walks the
columns in blocks, zeroes the pruned weights of each column (a mask it chooses or one it is given), optionally rounds
the kept ones to an integer grid, and propagates each column's error to the later columns.
"""

from __future__ import annotations

import torch

from .masks import _lowest_k
from .rtn import QuantGrid, fake_quantize, group_scale


def dampened_inverse_cholesky(hessian: torch.Tensor, dampening: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Upper Cholesky factor of (H + λI)⁻¹ with λ = dampening · mean(diag H), after fixing dead inputs.

    Returns:
        `(hinv_chol, dead)`: the factor [in, in] and the bool mask of inputs never active (diag H == 0).
    """
    h = hessian.detach().to(torch.float32).clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1.0
    damp = dampening * torch.mean(torch.diag(h))
    idx = torch.arange(h.shape[0], device=h.device)
    h[idx, idx] += damp
    # each [in, in] temporary is dropped as soon as the next exists: at most two live here (plus the caller's H),
    # not four (0.6 GB each at an 8B model's down projection)
    chol = torch.linalg.cholesky(h)
    del h
    inv = torch.cholesky_inverse(chol)
    del chol
    return torch.linalg.cholesky(inv, upper=True), dead


def obs_sweep(weight: torch.Tensor, hessian: torch.Tensor, *, sparsity: float = 0.0, nm: tuple[int, int] | None = None,
              block_size: int = 128, dampening: float = 0.01, quant: QuantGrid | None = None,
              fixed_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The column sweep shared by SparseGPT, GPTQ and SparseGPT's joint sparsify + quantize pass.

    Each column's target value q is the column with its pruned weights zeroed (mask chosen as in
    `methods.sparsegpt.sparsegpt_prune`, or `fixed_mask` when given) and, with `quant`, the kept weights rounded to the
    grid — the scale of a group of columns is taken from the current (error-updated, masked) weights when the sweep
    reaches the group's first column. The error (w − q)/[H⁻¹]_jj is propagated to the later columns in every case.

    Args:
        weight: [out, in]; hessian: [in, in]; sparsity / nm: as `sparsegpt_prune` (ignored with `fixed_mask`).
        quant: the integer grid, or None (no quantization).
        fixed_mask: bool [out, in], True = pruned: keep this mask instead of choosing one (quantizing a model
            already pruned).

    Returns:
        `(new_weight, mask, scales)`: float32 weight, bool mask, and float32 scales [out, groups] (None without
        `quant`).
    """
    w = weight.detach().to(torch.float32).clone()
    rows, cols = w.shape
    hinv, dead = dampened_inverse_cholesky(hessian.to(w.device), dampening)
    w[:, dead] = 0
    mask = torch.zeros_like(w, dtype=torch.bool)
    g = quant.columns_per_group(cols) if quant is not None else cols
    scales = torch.ones(rows, cols // g, dtype=torch.float32, device=w.device) if quant is not None else None
    scale = None
    for i1 in range(0, cols, block_size):
        i2 = min(i1 + block_size, cols)
        w1 = w[:, i1:i2].clone()
        q1 = torch.zeros_like(w1)
        err1 = torch.zeros_like(w1)
        hinv1 = hinv[i1:i2, i1:i2]
        diag1 = torch.diag(hinv1)
        if fixed_mask is not None:
            mask1 = fixed_mask[:, i1:i2].to(w.device, torch.bool).clone()
        elif nm is None:
            metric = w1.square() / diag1[None, :].square()
            mask1 = _lowest_k(metric.reshape(-1), int(metric.numel() * sparsity), dim=0).reshape(metric.shape)
        else:
            mask1 = torch.zeros_like(w1, dtype=torch.bool)
        for i in range(i2 - i1):
            col = w1[:, i]
            d = hinv1[i, i]
            if fixed_mask is None and nm is not None and i % nm[1] == 0:
                n, m = nm
                group = w1[:, i:i + m].square() / diag1[i:i + m][None, :].square()
                mask1[:, i:i + m] = _lowest_k(group, group.shape[1] - n if group.shape[1] == m else 0, dim=1)
            q = col.clone()
            q[mask1[:, i]] = 0
            if quant is not None:
                j = i1 + i
                if j % g == 0:  # a new group: its scale from the current kept weights (this block, then later ones)
                    current = w1[:, i:i + g].masked_fill(mask1[:, i:i + g], 0)
                    if current.shape[1] < g:
                        current = torch.cat([current, w[:, i2:j + g]], dim=1)
                    scale = group_scale(current, quant)
                    scales[:, j // g] = scale
                q = fake_quantize(q, scale, quant)
            q1[:, i] = q
            err = (col - q) / d
            w1[:, i:] -= err[:, None] * hinv1[i, i:][None, :]
            err1[:, i] = err
        w[:, i1:i2] = q1
        mask[:, i1:i2] = mask1
        w[:, i2:] -= err1 @ hinv[i1:i2, i2:]
    return w, mask, scales


__all__ = ["dampened_inverse_cholesky", "obs_sweep"]
