# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`magnitude_heads` (structured baseline): heads by ‖[W_q; W_k; W_v; W_oᵀ]‖_F of the head, MLP channels by
‖[W_gate[c]; W_up[c]; W_down[:, c]]‖₂; weights only."""

from __future__ import annotations

from typing import Any

from ..spec import CardText, MethodSpec


def score(inputs) -> tuple[Any, list, dict[str, Any]]:
    """Scorer of `magnitude_heads` (see `MethodSpec.scorer`)."""
    return inputs.head_weight_norms, inputs.channel_weight_norms, {}


SPEC = MethodSpec(
    name="magnitude_heads", scorer=score,
    card=CardText(
        name="Magnitude head and channel pruning (structured baseline)",
        summary="heads and MLP channels ranked by the norm of their weights",
        equation=r"\text{score}_h = \lVert W_{q,k,v,o}[h] \rVert_F, \quad \text{score}_c = \lVert W_{down}[:, c] "
                 r"\rVert_2",
    ),
)
