# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Maskers, scorers, SparseGPT and apply_mask as pure functions."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optimum_sinkprune.methods import (
    apply_mask, check_finite, magnitude_scores, nm_mask, sparsegpt_prune, unstructured_matrix_mask,
    unstructured_row_mask, wanda_scores, weighted_token_norms,
)


@pytest.mark.parametrize("sparsity", [0.0, 0.25, 0.5, 0.7, 0.99])
def test_row_mask_exact_per_row(sparsity):
    scores = torch.randn(7, 40, generator=torch.Generator().manual_seed(0))
    mask = unstructured_row_mask(scores, sparsity)
    k = int(40 * sparsity)
    assert (mask.sum(dim=1) == k).all()
    # pruned entries are never larger than kept ones in the same row
    for r in range(7):
        if 0 < k < 40:
            assert scores[r][mask[r]].max() <= scores[r][~mask[r]].min()


def test_matrix_mask_exact_and_ties_are_stable():
    scores = torch.ones(4, 6)
    mask = unstructured_matrix_mask(scores, 0.5)
    assert int(mask.sum()) == 12
    assert mask.reshape(-1)[:12].all()  # ties: earliest positions first
    assert torch.equal(unstructured_row_mask(scores, 0.5)[:, :3], torch.ones(4, 3, dtype=torch.bool))


@pytest.mark.parametrize("n,m", [(2, 4), (4, 8), (1, 4), (3, 8)])
def test_nm_structure(n, m):
    scores = torch.randn(5, 32, generator=torch.Generator().manual_seed(1))
    mask = nm_mask(scores, n, m)
    kept = (~mask).reshape(5, 32 // m, m).sum(-1)
    assert (kept == n).all()
    groups = scores.reshape(5, -1, m)
    gm = mask.reshape(5, -1, m)
    assert (torch.where(gm, groups, -torch.inf).amax(-1) <= torch.where(gm, torch.inf, groups).amin(-1)).all()


def test_nm_rejects_partial_groups():
    with pytest.raises(ValueError, match="multiple of M=4"):
        nm_mask(torch.randn(2, 6), 2, 4)


def test_scorers():
    w = torch.tensor([[1.0, -2.0], [-3.0, 0.5]])
    assert torch.equal(magnitude_scores(w), w.abs())
    assert torch.equal(wanda_scores(w, torch.tensor([2.0, 1.0])), torch.tensor([[2.0, 2.0], [6.0, 0.5]]))
    with pytest.raises(ValueError, match="shape"):
        wanda_scores(w, torch.ones(3))
    x = torch.randn(2, 5, 3)
    wt = torch.rand(2, 5)
    expected = torch.stack([torch.linalg.vector_norm(x[b] * wt[b][:, None], dim=0) for b in range(2)])
    torch.testing.assert_close(weighted_token_norms(x, wt), expected)
    with pytest.raises(FloatingPointError, match="layer 'blocks.0.q'"):
        check_finite("blocks.0.q", torch.tensor([1.0, float("nan")]))


def test_apply_mask_is_the_writer():
    layer = nn.Linear(4, 3)
    before = layer.weight.detach().clone()
    mask = torch.zeros(3, 4, dtype=torch.bool)
    mask[0, 1] = mask[2, 3] = True
    assert apply_mask(layer, mask) == 2
    assert layer.weight[0, 1] == 0 and layer.weight[2, 3] == 0
    assert torch.equal(layer.weight[~mask], before[~mask])
    new = torch.full((3, 4), 5.0)
    apply_mask(layer, mask, new)
    assert torch.equal(layer.weight.detach(), torch.where(mask, torch.zeros(()), new))
    with pytest.raises(ValueError, match="does not match"):
        apply_mask(layer, torch.zeros(4, 3, dtype=torch.bool))


def test_sparsegpt_identity_hessian_is_magnitude_per_block():
    """With H = I there is no error propagation (off-diagonal H⁻¹ is 0): SparseGPT = magnitude within each block."""
    w = torch.randn(6, 16, generator=torch.Generator().manual_seed(2))
    new, mask = sparsegpt_prune(w, torch.eye(16), sparsity=0.5, block_size=8, dampening=0.01)
    for b in range(2):
        block = w[:, 8 * b:8 * b + 8].abs()
        assert torch.equal(mask[:, 8 * b:8 * b + 8], unstructured_matrix_mask(block, 0.5))
    torch.testing.assert_close(new, torch.where(mask, torch.zeros(()), w))


def test_sparsegpt_reduces_reconstruction_error():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(256, 24, generator=g) @ torch.randn(24, 24, generator=g)  # correlated inputs
    w = torch.randn(8, 24, generator=g)
    h = 2 * x.T @ x / 256
    new, mask = sparsegpt_prune(w, h, sparsity=0.5, block_size=24)
    assert (mask.sum() == 96)
    plain = torch.where(mask, torch.zeros(()), w)
    assert ((x @ (new - w).T) ** 2).mean() < ((x @ (plain - w).T) ** 2).mean()


def test_sparsegpt_dead_inputs():
    w = torch.randn(4, 8)
    h = torch.eye(8)
    h[3, 3] = 0
    new, _ = sparsegpt_prune(w, h, sparsity=0.25, block_size=8)
    assert (new[:, 3] == 0).all() and torch.isfinite(new).all()
