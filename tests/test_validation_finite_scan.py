# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The finite-weights scan (`validation.first_non_finite`): its one min/max reduction per tensor must find exactly
what an element-wise `isnan` / `isfinite` finds, for every floating dtype, layout and position of the bad value."""

import pytest
import torch

from optimum_sinkprune.validation import _extremes_bad, first_non_finite


def _reference(tensor: torch.Tensor, allow_inf: bool) -> bool:
    return bool(torch.isnan(tensor).any()) if allow_inf else not bool(torch.isfinite(tensor).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.complex64])
@pytest.mark.parametrize("poison", [None, float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("allow_inf", [False, True])
def test_scan_agrees_with_elementwise_check(dtype, poison, allow_inf):
    generator = torch.Generator().manual_seed(0)
    for shape in [(1,), (7,), (70001,), (33, 129)]:
        base = torch.randn(shape, generator=generator).to(dtype)
        for position in (0, base.numel() // 2, base.numel() - 1):
            tensor = base.clone()
            if poison is not None:
                tensor.view(-1)[position] = poison
            views = [tensor, tensor.t()] if tensor.dim() == 2 else [tensor]
            for view in views:  # a transposed (non-contiguous) view is scanned without a copy
                found = first_non_finite([("w", view)], allow_inf=allow_inf)
                assert (found is not None) == _reference(view, allow_inf), (dtype, shape, position, poison)
                if found is not None:
                    assert found.nan == int(torch.isnan(view).sum())
                    assert found.inf == (0 if allow_inf else int(torch.isinf(view).sum()))


def test_nan_and_inf_together_are_both_counted():
    tensor = torch.zeros(10)
    tensor[2], tensor[3], tensor[9] = float("nan"), float("inf"), float("-inf")
    found = first_non_finite([("w", tensor)])
    assert (found.nan, found.inf) == (1, 2)


def test_large_finite_values_are_not_flagged():
    assert first_non_finite([("w", torch.full((5,), torch.finfo(torch.float64).max, dtype=torch.float64))]) is None
    assert first_non_finite([("w", torch.full((5,), 65504.0, dtype=torch.float16))]) is None


def test_float8_falls_back_to_the_elementwise_scan():
    dtype = getattr(torch, "float8_e5m2", None)
    if dtype is None:
        pytest.skip("this torch build has no float8_e5m2")
    tensor = torch.linspace(-2, 2, 50).to(dtype)
    assert first_non_finite([("w", tensor)]) is None
    tensor[4] = float("inf")
    found = first_non_finite([("w", tensor)])
    assert (found.nan, found.inf) == (0, 1)


def test_extremes_rule():
    inf, nan = float("inf"), float("nan")
    assert not _extremes_bad(-1.0, 1.0, allow_inf=False)
    assert _extremes_bad(-inf, 1.0, allow_inf=False) and not _extremes_bad(-inf, inf, allow_inf=True)
    assert _extremes_bad(nan, nan, allow_inf=True) and _extremes_bad(0.0, nan, allow_inf=False)
