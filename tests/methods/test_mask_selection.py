# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The selection-based maskers give exactly the stable sort's mask (ties, zeros, NaN, chunked rows)."""

from __future__ import annotations

import pytest
import torch

from optimum_sinkprune.methods import masks
from optimum_sinkprune.methods.masks import _lowest_k, unstructured_matrix_mask, unstructured_row_mask


def _sorted_reference(scores: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    mask = torch.zeros(scores.shape, dtype=torch.bool)
    if k <= 0:
        return mask
    order = torch.sort(scores, dim=dim, stable=True).indices
    return mask.scatter_(dim, order.narrow(dim, 0, min(k, scores.shape[dim])), True)


def _cases():
    g = torch.Generator().manual_seed(0)
    plain = torch.randn(9, 300, generator=g)
    ties = torch.randint(0, 4, (9, 300), generator=g).float()  # many exact ties at the threshold
    zeros = plain.clone()
    zeros[:, ::3] = 0.0
    zeros[2, 5] = -0.0  # -0 and +0 compare equal, as in the sort
    nan = plain.clone()
    nan[1, :250] = float("nan")  # fewer numbers than k in row 1
    nan[4, 7] = float("nan")
    return {"plain": plain, "ties": ties, "zeros": zeros, "nan": nan}


@pytest.mark.parametrize("case", ["plain", "ties", "zeros", "nan"])
@pytest.mark.parametrize("k", [0, 1, 77, 150, 299, 300])
def test_row_selection_equals_stable_sort(case, k):
    scores = _cases()[case]
    assert torch.equal(_lowest_k(scores, k, dim=1), _sorted_reference(scores, k, dim=1))


@pytest.mark.parametrize("case", ["plain", "ties", "zeros"])
def test_matrix_and_other_dims_equal_stable_sort(case):
    scores = _cases()[case]
    k = scores.numel() // 2
    assert torch.equal(_lowest_k(scores.reshape(-1), k, dim=0), _sorted_reference(scores.reshape(-1), k, dim=0))
    assert torch.equal(_lowest_k(scores.T.contiguous(), 4, dim=0), _sorted_reference(scores.T.contiguous(), 4, 0))
    assert torch.equal(unstructured_matrix_mask(scores, 0.5), _sorted_reference(scores.reshape(-1), k, 0).view(9, 300))


def test_chunked_rows_give_the_same_mask(monkeypatch):
    scores = _cases()["ties"]
    whole = unstructured_row_mask(scores, 0.4)
    monkeypatch.setattr(masks, "_SELECT_CHUNK_ELEMENTS", 301)  # one row per chunk
    assert torch.equal(unstructured_row_mask(scores, 0.4), whole)
    assert torch.equal(whole, _sorted_reference(scores, int(300 * 0.4), dim=1))
    assert (whole.sum(dim=1) == 120).all()


def test_short_rows_and_integers_use_the_sort():
    scores = torch.tensor([[3, 1, 1, 2], [0, 0, 0, 0]])
    assert _lowest_k(scores, 2, dim=1).tolist() == [[False, True, True, False], [True, True, False, False]]
