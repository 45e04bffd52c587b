# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
import pytest
import torch

from structured_models import FACTORIES


@pytest.fixture(params=sorted(FACTORIES))
def family(request) -> str:
    return request.param


@pytest.fixture
def ids() -> torch.Tensor:
    return torch.randint(2, 120, (2, 12), generator=torch.Generator().manual_seed(1))
