# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Pure helpers on single linear layers that adapter surgery is built from (no module paths here)."""

from __future__ import annotations

import torch
from torch import nn


def linear_like(old: nn.Linear, in_features: int, out_features: int) -> nn.Linear:
    """A freshly initialised nn.Linear of the given shape with `old`'s bias presence, device and dtype."""
    return nn.Linear(
        in_features, out_features, bias=old.bias is not None, device=old.weight.device, dtype=old.weight.dtype
    )


def sliced_linear(
    linear: nn.Linear, *, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None
) -> nn.Linear:
    """A new nn.Linear holding the selected output `rows` / input `cols` of `linear` (same dtype, device and
    `requires_grad`); the bias follows the rows."""
    weight = linear.weight.detach()
    bias = linear.bias.detach() if linear.bias is not None else None
    if rows is not None:
        rows = rows.to(weight.device)
        weight = weight.index_select(0, rows)
        bias = bias.index_select(0, rows) if bias is not None else None
    if cols is not None:
        weight = weight.index_select(1, cols.to(weight.device))
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    new.weight.requires_grad_(linear.weight.requires_grad)
    return new


def zero_linear_(linear: nn.Linear, *, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> None:
    """Zero output `rows` (weight and bias) and input `cols` of `linear` in place."""
    with torch.no_grad():
        if rows is not None and rows.numel():
            rows = rows.to(linear.weight.device)
            linear.weight.index_fill_(0, rows, 0.0)
            if linear.bias is not None:
                linear.bias.index_fill_(0, rows, 0.0)
        if cols is not None and cols.numel():
            linear.weight.index_fill_(1, cols.to(linear.weight.device), 0.0)


__all__ = ["linear_like", "sliced_linear", "zero_linear_"]
