# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The masked-diffusion forward process: masking rate (1 - eps) t + eps, `maskable`, determinism, validation."""

from __future__ import annotations

import math

import pytest
import torch

from optimum_sinkprune.diffusion import forward_process, mask_probability

MASK = 99


def _ids(shape=(200, 400)):
    return torch.randint(0, 90, shape, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("t,eps", [(0.1, 1e-3), (0.5, 1e-3), (1.0, 1e-3), (0.02, 0.05), (0.7, 0.2)])
def test_empirical_masking_rate(t, eps):
    ids = _ids()
    gen = torch.Generator().manual_seed(1)
    noisy, is_masked, p = forward_process(ids, t, MASK, eps=eps, generator=gen)
    expected = (1 - eps) * t + eps
    n = ids.numel()
    # binomial standard error over 80k independent draws; 5 sigma
    assert abs(is_masked.float().mean().item() - expected) <= 5 * math.sqrt(expected * (1 - expected) / n) + 1e-9
    torch.testing.assert_close(p, torch.full(ids.shape, expected), atol=1e-6, rtol=0)
    assert torch.equal(noisy[is_masked], torch.full_like(noisy[is_masked], MASK))
    assert torch.equal(noisy[~is_masked], ids[~is_masked])


def test_per_sequence_t():
    ids = _ids((4, 5000))
    t = torch.tensor([0.1, 0.4, 0.8, 1.0])
    _, is_masked, p = forward_process(ids, t, MASK, eps=0.0, generator=torch.Generator().manual_seed(2))
    rates = is_masked.float().mean(1)
    assert torch.all((rates - t).abs() < 5 * torch.sqrt(t * (1 - t) / 5000) + 1e-9)
    torch.testing.assert_close(p[:, 0], t)


def test_mask_probability_formula():
    torch.testing.assert_close(mask_probability(torch.tensor([0.0, 0.5, 1.0]), eps=0.1), torch.tensor([0.1, 0.55, 1.0]))


def test_maskable_is_respected():
    ids = _ids((50, 64))
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, :10] = False  # e.g. BOS and prompt
    maskable[::2, -5:] = False  # e.g. padding
    noisy, is_masked, _ = forward_process(ids, 1.0, MASK, generator=torch.Generator().manual_seed(3), maskable=maskable)
    assert not is_masked[~maskable].any()
    assert torch.equal(noisy[~maskable], ids[~maskable])
    assert is_masked[maskable].all()  # t = 1 masks every maskable token


def test_same_generator_seed_same_masks():
    ids = _ids((8, 32))
    a = forward_process(ids, 0.5, MASK, generator=torch.Generator().manual_seed(7))
    b = forward_process(ids, 0.5, MASK, generator=torch.Generator().manual_seed(7))
    c = forward_process(ids, 0.5, MASK, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


@pytest.mark.parametrize("t", [0.0, -0.1, 1.5, float("nan"), torch.tensor([0.5, 0.0])])
def test_t_outside_unit_interval_is_rejected(t):
    with pytest.raises(ValueError, match=r"t must lie in \(0, 1\]"):
        forward_process(torch.zeros(2, 4, dtype=torch.long), t, MASK)


def test_bad_shapes_and_eps_are_rejected():
    ids = torch.zeros(2, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="shape \\[batch\\]=2"):
        forward_process(ids, torch.tensor([0.5, 0.5, 0.5]), MASK)
    with pytest.raises(ValueError, match="input_ids must be"):
        forward_process(torch.zeros(4, dtype=torch.long), 0.5, MASK)
    with pytest.raises(ValueError, match="maskable must have the shape"):
        forward_process(ids, 0.5, MASK, maskable=torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="eps must lie in"):
        forward_process(ids, 0.5, MASK, eps=1.0)
