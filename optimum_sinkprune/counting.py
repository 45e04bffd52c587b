# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The one parameter counter: parameters, zeros and bytes of a module (the pruning report, the saved checkpoint's
card, the evaluation table and the structured budget all count with it, so their numbers agree)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class ParameterCount(NamedTuple):
    """Counts over a module's parameters, each tensor once (tied weights are shared tensors).

    Attributes:
        params: elements.
        zeros: elements equal to zero.
        nbytes: bytes of the tensors in their dtype.
    """

    params: int
    zeros: int
    nbytes: int

    @property
    def nonzero(self) -> int:
        return self.params - self.zeros


def count_zeros(tensor: torch.Tensor) -> int:
    """Elements of `tensor` equal to zero (count_nonzero reduces in place; `(t == 0).sum()` would widen a full-size
    bool copy to int64)."""
    return tensor.numel() - int(torch.count_nonzero(tensor))


def count_parameters(module: nn.Module) -> ParameterCount:
    """Parameters, zeros and bytes of `module` (a model, a block list, one layer).

    Tied weights count once. A parameter offloaded by accelerate (a `meta` tensor on the module) is read through its
    offloaded copy (CPU offload map or disk offload folder); a meta parameter with no offloaded copy is not counted,
    as its values are nowhere.

    Args:
        module: what to count.

    Returns:
        `ParameterCount` (a named tuple `(params, zeros, nbytes)` with a `nonzero` property).
    """
    from .offload import parameter_values

    params = zeros = nbytes = 0
    for _, tensor in parameter_values(module):
        if tensor.is_meta:  # offloaded with no value anywhere
            continue
        params += tensor.numel()
        zeros += count_zeros(tensor)
        nbytes += tensor.numel() * tensor.element_size()
    return ParameterCount(params, zeros, nbytes)


__all__ = ["ParameterCount", "count_parameters", "count_zeros"]
