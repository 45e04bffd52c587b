# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Weight-pruning methods as pure pieces: scorers, maskers, SparseGPT, and `apply_mask` (the one writer).

What each method is: its `MethodSpec` (`spec.py`); the built-in specs are in `catalog/`, the registered ones in
`optimum_sinkprune.registry`. The blockwise OBS sweep shared by SparseGPT and GPTQ is `obs.py`.
"""

from .layer import layer_mask
from .masks import apply_mask, nm_mask, read_weight, select_mask, unstructured_matrix_mask, unstructured_row_mask
from .scoring import check_finite, magnitude_scores, wanda_input_norm, wanda_scores, weighted_token_norms
from .sparsegpt import dampened_inverse_cholesky, sparsegpt_prune

__all__ = [
    "apply_mask",
    "check_finite",
    "dampened_inverse_cholesky",
    "layer_mask",
    "magnitude_scores",
    "nm_mask",
    "read_weight",
    "select_mask",
    "sparsegpt_prune",
    "unstructured_matrix_mask",
    "unstructured_row_mask",
    "wanda_input_norm",
    "wanda_scores",
    "weighted_token_norms",
]
