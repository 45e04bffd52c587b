# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""What each weight-pruning method asks of the calibration engine, and its scorer (see docs/methods.md)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..configuration import KNOWN_METHODS, UNSTRUCTURED_METHODS
from .masks import select_mask
from .scoring import magnitude_scores, wanda_scores
from .sparsegpt import sparsegpt_prune


@dataclass(frozen=True)
class MethodSpec:
    """The statistics a method requests and how it turns them into a mask.

    Attributes:
        name: method name.
        order: "none" (weights only), "dense" (statistics of the unpruned model, then every layer at once) or
            "sequential" (blocks in order, each block's outputs recomputed after pruning it).
        statistic: "none", "token_norm_sum" (Σ over (sample, step) of ‖w ⊙ X_j‖₂), "sq_norm" (sqrt(mean X_j²)) or
            "hessian" (H = 2·XᵀX/n).
        noised: statistics come from masked-diffusion-noised inputs.
        sink: tokens are weighted by 1 − σ (σ from the attention mass).
        reconstruct: the weights are updated (SparseGPT), not only masked.
        per_row: unstructured comparison group is the output row (else the whole matrix).
    """

    name: str
    order: str
    statistic: str
    noised: bool
    sink: bool
    reconstruct: bool
    per_row: bool


METHOD_SPECS: dict[str, MethodSpec] = {
    "magnitude": MethodSpec("magnitude", "none", "none", False, False, False, per_row=False),
    "wanda": MethodSpec("wanda", "sequential", "sq_norm", False, False, False, per_row=True),
    "sparsegpt": MethodSpec("sparsegpt", "sequential", "hessian", False, False, True, per_row=False),
    "sink_wanda": MethodSpec("sink_wanda", "dense", "token_norm_sum", True, True, False, per_row=True),
    "wanda_diffusion": MethodSpec("wanda_diffusion", "dense", "token_norm_sum", True, False, False, per_row=True),
    # noised inputs only for σ; the Hessian comes from clean inputs weighted by 1 − mean σ
    "sink_sparsegpt": MethodSpec("sink_sparsegpt", "sequential", "hessian", True, True, True, per_row=False),
}
assert set(METHOD_SPECS) == set(UNSTRUCTURED_METHODS)


def method_spec(name: str) -> MethodSpec:
    """The spec of a weight-pruning method; raises naming the known methods otherwise."""
    if name not in METHOD_SPECS:
        raise ValueError(f"method={name!r} is not a weight-pruning method; known: {', '.join(METHOD_SPECS)} "
                         f"(all methods: {', '.join(KNOWN_METHODS)})")
    return METHOD_SPECS[name]


def layer_mask(
    spec: MethodSpec,
    weight: torch.Tensor,
    statistic: torch.Tensor | None,
    *,
    sparsity: float,
    nm: tuple[int, int] | None,
    block_size: int = 128,
    dampening: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mask (True = prune) and, for reconstructing methods, the new weight of one layer. Pure."""
    if spec.reconstruct:
        new_weight, mask = sparsegpt_prune(weight, statistic, sparsity=sparsity, nm=nm, block_size=block_size,
                                           dampening=dampening)
        return mask, new_weight
    scores = magnitude_scores(weight) if spec.statistic == "none" else wanda_scores(weight, statistic)
    return select_mask(scores, sparsity, nm, per_row=spec.per_row), None
