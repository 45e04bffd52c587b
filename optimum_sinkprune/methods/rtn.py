# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Symmetric integer weight grids and round-to-nearest (RTN) quantization. Pure.

A weight `[out, in]` is split along its input columns into groups of `group_size` columns (None: one group per row,
the "channel" strategy). Each (row, group) has one scale s = max|w| / q_max with q_max = 2^(bits−1) − 1, so the
largest weight of a group lands exactly on ±q_max; the stored integers are round(w / s) clamped to
[−2^(bits−1), 2^(bits−1) − 1] and the weight the model computes with is q · s. Zero stays exactly zero, so pruned
weights keep their sparsity. The scale is rounded to the storage dtype (`scale_dtype`) before it is used, so the
in-memory fake-quantized weight equals what a loader dequantizes from the saved integers and scales.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

BITS = (4, 8)


@dataclass(frozen=True)
class QuantGrid:
    """A symmetric integer grid.

    Attributes:
        bits: 4 or 8.
        group_size: input columns sharing a scale; None: the whole row (per output channel).
        scale_dtype: the dtype scales are stored in (the model's dtype).
    """

    bits: int
    group_size: int | None = 128
    scale_dtype: torch.dtype = torch.float32

    def __post_init__(self) -> None:
        if self.bits not in BITS:
            raise ValueError(f"bits={self.bits!r} is not supported; use one of {BITS}")
        if self.group_size is not None and (not isinstance(self.group_size, int) or self.group_size < 1):
            raise ValueError(f"group_size={self.group_size!r} must be a positive int or None (one scale per row)")

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1))

    def columns_per_group(self, in_features: int) -> int:
        return in_features if self.group_size is None else self.group_size


def check_group_size(grid: QuantGrid, name: str, in_features: int) -> None:
    """Raise `ValueError` naming layer `name` when the grid's group size does not divide its `in_features`."""
    if grid.group_size is not None and in_features % grid.group_size:
        raise ValueError(f"group_size={grid.group_size} does not divide in_features={in_features} of layer "
                         f"{name!r}; use a divisor of every quantized layer's in_features or group_size=None")


def group_scale(weight: torch.Tensor, grid: QuantGrid) -> torch.Tensor:
    """Scales of the columns of `weight` `[rows, g]` taken as one group: float32 `[rows]`, rounded to
    `grid.scale_dtype`. An all-zero group gets scale 1 (its integers are all 0)."""
    amax = weight.detach().to(torch.float32).abs().amax(dim=1)
    scale = torch.where(amax > 0, amax / grid.qmax, torch.ones_like(amax))
    return scale.to(grid.scale_dtype).to(torch.float32)


def quantize_to_int(weight: torch.Tensor, scale: torch.Tensor, grid: QuantGrid) -> torch.Tensor:
    """The integers round(w / s), clamped to the grid: int8 with the shape of `weight` (`scale` broadcasts)."""
    q = torch.round(weight.to(torch.float32) / scale)
    return q.clamp_(grid.qmin, grid.qmax).to(torch.int8)


def fake_quantize(weight: torch.Tensor, scale: torch.Tensor, grid: QuantGrid) -> torch.Tensor:
    """q · s in float32: the weight on the grid (`scale` broadcasts against `weight`)."""
    return quantize_to_int(weight, scale, grid).to(torch.float32) * scale


def expand_scales(scales: torch.Tensor, in_features: int) -> torch.Tensor:
    """Per-weight scales `[rows, in]` from per-group scales `[rows, groups]`."""
    return scales.repeat_interleave(in_features // scales.shape[1], dim=1)


def rtn_quantize(weight: torch.Tensor, grid: QuantGrid) -> tuple[torch.Tensor, torch.Tensor]:
    """Round-to-nearest quantization of one linear weight.

    Args:
        weight: `[out, in]`; `grid.group_size` must divide `in`.

    Returns:
        `(dequantized, scales)`: the float32 weight on the grid `[out, in]` and float32 scales `[out, groups]`.
    """
    rows, cols = weight.shape
    g = grid.columns_per_group(cols)
    if cols % g:
        raise ValueError(f"group_size={g} does not divide in_features={cols}")
    groups = weight.detach().to(torch.float32).reshape(rows, cols // g, g)
    scales = torch.stack([group_scale(groups[:, k], grid) for k in range(cols // g)], dim=1)
    return fake_quantize(groups, scales[:, :, None], grid).reshape(rows, cols), scales


def integers_and_scales(dequantized: torch.Tensor, scales: torch.Tensor, grid: QuantGrid) -> torch.Tensor:
    """The stored integers (int8 `[out, in]`) of a weight already on the grid, given its scales `[out, groups]`."""
    return quantize_to_int(dequantized, expand_scales(scales, dequantized.shape[1]), grid)


__all__ = [
    "BITS",
    "QuantGrid",
    "check_group_size",
    "expand_scales",
    "fake_quantize",
    "group_scale",
    "integers_and_scales",
    "quantize_to_int",
    "rtn_quantize",
]
