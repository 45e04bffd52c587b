# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`layer_mask`: the mask (and, for reconstructing methods, the new weight) of one layer, as the method's
`MethodSpec` (optimum_sinkprune.registry) asks. Pure."""

from __future__ import annotations

import torch

from .masks import select_mask
from .scoring import magnitude_scores, wanda_scores
from .sparsegpt import sparsegpt_prune

# Weights scored at once by `layer_mask` for per-row masks (a chunk of whole rows; bounds the float32 scores).
_ROW_CHUNK_ELEMENTS = 1 << 20


def layer_mask(
    spec,
    weight: torch.Tensor,
    statistic: torch.Tensor | None,
    *,
    sparsity: float,
    nm: tuple[int, int] | None,
    block_size: int = 128,
    dampening: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mask (True = prune) and, for reconstructing methods, the new weight of one layer. Pure.

    Args:
        spec (`MethodSpec`): an unstructured method's spec: `reconstruct` → SparseGPT on the Hessian `statistic`;
            `statistic == "none"` → |W|; otherwise the Wanda product |W|·statistic; `per_row` picks the comparison
            group of unstructured masks.
        weight (`torch.Tensor`): [out, in].
        statistic (`torch.Tensor`, *optional*): the calibration statistic of the layer ([in], or the Hessian).
        sparsity (`float`), nm (`tuple`, *optional*), block_size (`int`), dampening (`float`): from the config.

    Returns:
        `(mask, new_weight)`; `new_weight` is None unless the method reconstructs.
    """
    if spec.reconstruct:
        new_weight, mask = sparsegpt_prune(weight, statistic, sparsity=sparsity, nm=nm, block_size=block_size,
                                           dampening=dampening)
        return mask, new_weight
    if nm is None and not spec.per_row:  # one comparison group: the whole matrix
        return select_mask(_scores(spec, weight, statistic), sparsity, nm, per_row=False), None
    # rows are independent comparison groups: score and select a chunk of rows at a time, so no full-layer float32
    # score matrix (or its selection temporaries) exists at once
    mask = torch.empty(weight.shape, dtype=torch.bool, device=weight.device)
    step = max(1, _ROW_CHUNK_ELEMENTS // max(weight.shape[1], 1))
    for start in range(0, weight.shape[0], step):
        rows = slice(start, start + step)
        mask[rows] = select_mask(_scores(spec, weight[rows], statistic), sparsity, nm, per_row=True)
    return mask, None


def _scores(spec, weight: torch.Tensor, statistic: torch.Tensor | None) -> torch.Tensor:
    return magnitude_scores(weight) if spec.statistic == "none" else wanda_scores(weight, statistic)


__all__ = ["layer_mask"]
