# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Maskers (pure: scores -> bool mask, True = prune) and `apply_mask`, the one place that zeroes weights.

Ties are broken by position (stable sorts), so the same scores always give the same mask.
"""

from __future__ import annotations

import torch
from torch import nn

from ..offload import offload_slot, read_tensor, write_tensor


# Rows shorter than this are sorted (cheap at that size; also the N:M groups); longer ones use a selection.
_SELECT_MIN_LENGTH = 64
# Elements of one chunk of rows handled at once by the selection, bounding its temporaries (~13 bytes per element).
_SELECT_CHUNK_ELEMENTS = 1 << 20


def _lowest_k_sorted(rows: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask of the k lowest entries of each row of `rows` [r, n] by a stable sort (NaN sorts last)."""
    order = torch.sort(rows, dim=1, stable=True).indices
    return torch.zeros(rows.shape, dtype=torch.bool, device=rows.device).scatter_(1, order[:, :k], True)


def _lowest_k_selected(rows: torch.Tensor, k: int) -> torch.Tensor:
    """The same mask as `_lowest_k_sorted` without sorting: t = the k-th smallest value of each row (the largest of
    a partial `topk`), then every entry <= t; in the rare rows where more than k entries are <= t (ties at t), every
    entry < t and the earliest entries == t until the row has k (the stable sort's tie order)."""
    kth = rows.topk(k, dim=1, largest=False, sorted=False).values.amax(dim=1, keepdim=True)
    if torch.isnan(kth).any():  # fewer than k numbers in a row: the sort's NaN order decides
        return _lowest_k_sorted(rows, k)
    mask = rows <= kth
    if rows.shape[0] == 1:
        counts = torch.count_nonzero(mask).reshape(1)
    else:  # a float32 matrix-vector count is exact here (rows of a multi-row chunk are < 2**24 long) and avoids
        # the int64 copy a bool sum makes
        counts = mask.to(torch.float32) @ torch.ones(rows.shape[1], dtype=torch.float32, device=rows.device)
    excess = (counts > k).nonzero().squeeze(1)
    if excess.numel():
        sub, t = rows[excess], kth[excess]
        below = sub < t
        equal = sub == t
        need = k - below.sum(dim=1, keepdim=True)
        equal &= equal.cumsum(dim=1) <= need
        mask[excess] = below | equal
    return mask


def _lowest_k(scores: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """Bool mask marking the k lowest entries of `scores` along `dim` (stable: earlier index wins a tie).

    Equal to a stable sort's first k indices, but found with a per-row selection (`kthvalue`) in chunks of rows, so
    long rows cost O(n) each and the temporaries stay bounded by `_SELECT_CHUNK_ELEMENTS`."""
    length = scores.shape[dim] if scores.dim() else 1
    if k <= 0 or length == 0:
        return torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
    moved = scores.movedim(dim, -1)
    rows = moved.reshape(-1, length)
    out = torch.empty(rows.shape, dtype=torch.bool, device=scores.device)
    if k >= length:
        out.fill_(True)
    else:
        select = length >= _SELECT_MIN_LENGTH and rows.is_floating_point()
        step = max(1, _SELECT_CHUNK_ELEMENTS // length)
        for start in range(0, rows.shape[0], step):
            chunk = rows[start:start + step]
            out[start:start + step] = _lowest_k_selected(chunk, k) if select else _lowest_k_sorted(chunk, k)
    return out.reshape(moved.shape).movedim(-1, dim).contiguous()


def unstructured_row_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Prune the `floor(in_features · sparsity)` lowest-scoring weights of every output row (Wanda's comparison group).

    Args:
        scores: [out, in] importance scores.
        sparsity: fraction in [0, 1).

    Returns:
        bool [out, in], True where the weight is pruned; every row has exactly the same count.
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be [out, in], got shape {tuple(scores.shape)}")
    return _lowest_k(scores, int(scores.shape[1] * sparsity), dim=1)


def unstructured_matrix_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Prune the `floor(numel · sparsity)` lowest-scoring weights of the whole matrix (magnitude pruning's group)."""
    flat = scores.reshape(-1)
    return _lowest_k(flat, int(flat.numel() * sparsity), dim=0).reshape(scores.shape)


def nm_mask(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """N:M: in every group of `m` consecutive input columns of a row keep the `n` highest scores, prune the rest.

    Raises:
        ValueError: when `in_features` is not a multiple of `m` or not 0 < n < m.
    """
    if not 0 < n < m:
        raise ValueError(f"N:M needs 0 < n < m, got n={n}, m={m}")
    rows, cols = scores.shape
    if cols % m:
        raise ValueError(f"in_features={cols} is not a multiple of M={m}; an N:M pattern needs whole groups")
    groups = scores.reshape(rows, cols // m, m)
    return _lowest_k(groups, m - n, dim=2).reshape(rows, cols)


def select_mask(scores: torch.Tensor, sparsity: float, nm: tuple[int, int] | None, *, per_row: bool = True):
    """The mask of the configured pattern: N:M when `nm` is set, else per-row (or whole-matrix) unstructured."""
    if nm is not None:
        return nm_mask(scores, *nm)
    return unstructured_row_mask(scores, sparsity) if per_row else unstructured_matrix_mask(scores, sparsity)


@torch.no_grad()
def apply_mask(layer: nn.Linear, mask: torch.Tensor, new_weight: torch.Tensor | None = None) -> int:
    """Zero `layer.weight` where `mask` is True (after writing `new_weight`, e.g. SparseGPT's reconstruction).

    The only function in optimum-sinkprune that writes pruned weights. Works in place on the parameter's own device
    and dtype; for accelerate-offloaded modules (weights on the meta device) the offloaded copy is updated: in place
    in the CPU offload map, or, offloaded to disk, written back to the offload folder (`optimum_sinkprune.offload`),
    so the next forward and `save_pretrained` see the pruned values.

    Returns:
        the number of zeros written by the mask.
    """
    weight = layer.weight
    if tuple(mask.shape) != tuple(weight.shape):
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match weight shape {tuple(weight.shape)}")
    if new_weight is not None and tuple(new_weight.shape) != tuple(weight.shape):
        raise ValueError(f"new_weight shape {tuple(new_weight.shape)} does not match weight {tuple(weight.shape)}")
    on_disk = weight.device.type == "meta" and _on_disk(layer)
    target = read_weight(layer)  # the parameter's data, the CPU offload map's tensor, or a copy read from disk
    if new_weight is not None:
        target.copy_(new_weight.to(device=target.device, dtype=target.dtype))
    target.masked_fill_(mask.to(target.device), 0)
    if on_disk:
        write_weight(layer, target)
    return int(torch.count_nonzero(mask))  # no int64 copy of the mask, as mask.sum() would make


def _on_disk(layer: nn.Module) -> bool:
    slot = offload_slot(layer, "weight")
    return slot is not None and slot.on_disk


def read_weight(layer: nn.Module) -> torch.Tensor:
    """`layer.weight` as a real tensor: the parameter's data, the offloaded copy for accelerate CPU offload (changed
    in place), or a fresh copy read from disk for disk offload (write changes back with `write_weight`)."""
    return read_tensor(layer, "weight")


def write_weight(layer: nn.Module, value: torch.Tensor) -> None:
    """Write `value` as `layer.weight` wherever it lives (the parameter, the CPU offload map, or the disk offload
    folder; `optimum_sinkprune.offload.write_tensor`), cast to its dtype."""
    write_tensor(layer, "weight", value)
