# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`random_heads` (structured baseline): seeded uniform scores for heads (seed) and MLP channels (seed + 1)."""

from __future__ import annotations

from typing import Any

import torch

from ..spec import CardText, MethodSpec


def score(inputs) -> tuple[Any, list, dict[str, Any]]:
    """Scorer of `random_heads` (see `MethodSpec.scorer`)."""
    from ...structured import scoring  # the structured package imports the configuration, which imports the registry

    heads = scoring.random_scores(tuple(inputs.present.shape), inputs.seed)
    generator = torch.Generator().manual_seed(int(inputs.seed) + 1)
    channels = [torch.rand(c.shape, generator=generator) for c in inputs.channel_weight_norms]
    return heads, channels, {}


SPEC = MethodSpec(
    name="random_heads", scorer=score,
    card=CardText(name="Random head and channel pruning (structured baseline)",
                  summary="heads and MLP channels removed at random (seeded)"),
)
