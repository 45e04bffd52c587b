# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""sink_weights / sink_threshold_set against a numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from optimum_sinkprune.calibration import sink_threshold_set, sink_weights


def numpy_reference(mass: np.ndarray, valid: np.ndarray, alpha: float, k: float):
    weights = np.zeros_like(mass, dtype=np.float64)
    sets = np.zeros_like(mass, dtype=bool)
    for b in range(mass.shape[0]):
        m = mass[b][valid[b]].astype(np.float64)
        tau = m.mean() + k * m.std()  # numpy std is the population std (ddof=0)
        w = 1.0 / (1.0 + np.exp(-alpha * (mass[b] - tau)))
        weights[b] = np.where(valid[b], w, 0.0)
        sets[b] = (mass[b] > tau) & valid[b]
    return weights, sets


def test_matches_numpy_reference_with_padding():
    g = torch.Generator().manual_seed(0)
    mass = torch.rand(3, 20, generator=g) * 4
    mass[0, 3] = 40.0  # a clear sink
    mass[2, 0] = 25.0
    valid = torch.ones(3, 20, dtype=torch.bool)
    valid[1, 15:] = False
    mass[1, 15:] = 100.0  # huge values at padding must not count
    ref_w, ref_s = numpy_reference(mass.numpy(), valid.numpy(), 5.0, 2.0)
    w = sink_weights(mass, alpha=5.0, k_std=2.0, valid=valid)
    np.testing.assert_allclose(w.numpy(), ref_w, atol=1e-5)
    assert torch.all(w[1, 15:] == 0)
    s = sink_threshold_set(mass, 2.0, valid)
    np.testing.assert_array_equal(s.numpy(), ref_s)
    assert s[0, 3] and s[2, 0] and s.sum() >= 2
    assert w[0, 3] > 0.99


def test_no_valid_mask_uses_every_position_and_other_params():
    g = torch.Generator().manual_seed(1)
    mass = torch.rand(2, 9, generator=g)
    ref_w, ref_s = numpy_reference(mass.numpy(), np.ones((2, 9), bool), 1.5, 0.5)
    np.testing.assert_allclose(sink_weights(mass, alpha=1.5, k_std=0.5).numpy(), ref_w, atol=1e-6)
    np.testing.assert_array_equal(sink_threshold_set(mass, 0.5).numpy(), ref_s)


def test_bad_input():
    with pytest.raises(ValueError, match="mass must be a \\[batch, seq\\]"):
        sink_weights(torch.rand(5))
    with pytest.raises(ValueError, match="alpha"):
        sink_weights(torch.rand(1, 5), alpha=0)
    with pytest.raises(ValueError, match="valid must have the shape"):
        sink_weights(torch.rand(1, 5), valid=torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="no valid position"):
        sink_threshold_set(torch.rand(1, 5), valid=torch.zeros(1, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="k_std"):
        sink_threshold_set(torch.rand(1, 5), k_std="2")
    with pytest.raises(ValueError, match="empty"):
        sink_weights(torch.rand(1, 0))
