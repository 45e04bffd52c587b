# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Sink statistics of one forward pass (per layer and head) and over a trajectory of steps. Pure tensor functions.

Notation: m^{l,h}_j is the attention mass head h of layer l puts on key position j (see
`optimum_sinkprune.calibration.attention`).

* dominant sink: j* = argmax_j m^{l,h}_j
* top-k sinks: the k positions of largest mass; sink share: Σ_{j ∈ top-k} m_j / Σ_j m_j
* thresholded sink set: { j : m_j > mean(m) + k·std(m) } over valid positions (population std)
* over steps s = 1..S: per-head variance Var_s(j*_s) and range max_s j*_s − min_s j*_s of the dominant position;
  a head "moves" when its range exceeds a threshold (3 positions, as in the paper)
"""

from __future__ import annotations

import torch

# Where a dominant sink sits: the first valid position, a [MASK] token, or any other (real) token.
TOKEN_KINDS = ("first", "mask", "real")


def dominant_positions(per_head_mass: torch.Tensor) -> torch.LongTensor:
    """argmax over positions: [..., seq] -> [...] (ties resolve to the first position)."""
    return per_head_mass.argmax(dim=-1)


def topk_positions(per_head_mass: torch.Tensor, k: int) -> torch.LongTensor:
    """The `k` positions of largest mass, largest first: [..., seq] -> [..., k]."""
    k = min(int(k), per_head_mass.shape[-1])
    return per_head_mass.topk(k, dim=-1).indices


def sink_share(per_head_mass: torch.Tensor, k: int) -> torch.Tensor:
    """Mass on the top-`k` positions divided by the total mass: [..., seq] -> [...] (0 where the total is 0)."""
    k = min(int(k), per_head_mass.shape[-1])
    total = per_head_mass.sum(dim=-1)
    top = per_head_mass.topk(k, dim=-1).values.sum(dim=-1)
    return torch.where(total > 0, top / total.clamp_min(torch.finfo(total.dtype).tiny), torch.zeros_like(total))


def threshold_set_size(per_head_mass: torch.Tensor, valid: torch.Tensor, k_std: float) -> torch.LongTensor:
    """Size of the thresholded sink set per head: per_head_mass [b, L, H, seq], valid bool [b, seq] -> [b, L, H]."""
    m = per_head_mass.to(torch.float32)
    w = valid[:, None, None, :].to(torch.float32)
    n = w.sum(dim=-1, keepdim=True).clamp_min(1.0)
    mean = (m * w).sum(dim=-1, keepdim=True) / n
    std = ((((m - mean) ** 2) * w).sum(dim=-1, keepdim=True) / n).sqrt()
    return ((m > mean + float(k_std) * std) & valid[:, None, None, :]).sum(dim=-1)


def first_valid_position(valid: torch.Tensor) -> torch.LongTensor:
    """Index of the first True in each row of a bool [b, seq] mask: [b]."""
    return valid.to(torch.int64).argmax(dim=-1)


def classify_positions(
    positions: torch.LongTensor, tokens: torch.LongTensor, valid: torch.Tensor, mask_token_id: int | None
) -> torch.LongTensor:
    """Kind (index into `TOKEN_KINDS`) of each sink position.

    Args:
        positions: [b, ...] positions (e.g. [b, L, H] dominant sinks).
        tokens: [b, seq] the input of that forward pass.
        valid: bool [b, seq] padding mask.
        mask_token_id: the [MASK] id, or None for an autoregressive model (no mask tokens).

    The first valid position wins over "mask" (a masked position 0 counts as "first"), then [MASK], then "real".
    """
    b = positions.shape[0]
    flat = positions.reshape(b, -1)
    first = first_valid_position(valid)[:, None]
    tok = torch.gather(tokens, 1, flat)
    kind = torch.full_like(flat, TOKEN_KINDS.index("real"))
    if mask_token_id is not None:
        kind = torch.where(tok == mask_token_id, torch.full_like(kind, TOKEN_KINDS.index("mask")), kind)
    kind = torch.where(flat == first, torch.full_like(kind, TOKEN_KINDS.index("first")), kind)
    return kind.reshape(positions.shape)


def position_variance(dominant: torch.LongTensor) -> torch.Tensor:
    """Population variance over steps (dim 0) of the dominant position: [S, ...] -> [...] float32."""
    return dominant.to(torch.float32).var(dim=0, unbiased=False)


def position_range(dominant: torch.LongTensor) -> torch.Tensor:
    """max − min over steps (dim 0) of the dominant position: [S, ...] -> [...] float32."""
    return (dominant.max(dim=0).values - dominant.min(dim=0).values).to(torch.float32)


__all__ = [
    "TOKEN_KINDS",
    "classify_positions",
    "dominant_positions",
    "first_valid_position",
    "position_range",
    "position_variance",
    "sink_share",
    "threshold_set_size",
    "topk_positions",
]
