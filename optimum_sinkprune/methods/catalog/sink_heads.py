# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sink_heads`: structured sink-aware pruning. Heads: z(sink-down-weighted output contribution) minus
λ·z(variance over denoising steps of the head's dominant sink position); MLP channels: structured Wanda on
sink-down-weighted activations. The maths is in `optimum_sinkprune.structured.scoring` (see docs/structured.md)."""

from __future__ import annotations

from typing import Any

from ..spec import CardText, MethodSpec
from ._texts import STRUCTURED_SYMBOLS, activation_summary


def score(inputs) -> tuple[Any, list, dict[str, Any]]:
    """Scorer of `sink_heads` (see `MethodSpec.scorer`)."""
    from ...structured import scoring  # the structured package imports the configuration, which imports the registry

    importance, channels = inputs.activation_scores(sink_weighted=True)
    stats, present = inputs.stats, inputs.present
    instability = scoring.sink_instability(stats.dominant_positions)
    heads = scoring.sink_head_scores(importance, instability, inputs.instability_weight)
    summary = {"instability_mean": float(instability[present].mean()),
               "instability_max": float(instability[present].max()),
               "instability": instability.tolist(),
               **activation_summary(importance, stats)}
    return heads, channels, summary


SPEC = MethodSpec(
    name="sink_heads", order="dense", statistic="head_norms", noised=True, sink=True, scorer=score,
    card=CardText(
        name="Sink-aware head and channel pruning (structured)",
        summary="attention heads ranked by their output contribution and by how much their dominant sink position "
                "moves across the denoising trajectory (variance over steps); MLP channels by a structured Wanda "
                "score with sink-down-weighted activations; the lowest-scored heads and channels are removed",
        equation=r"\text{score}_h = z(\lVert X_h \rVert_2 \, \lVert W_o[:, h] \rVert_F) "
                 r"- \lambda\, z(\operatorname{Var}_t[p_h(t)]), "
                 r"\quad \text{score}_c = \lVert W_{down}[:, c] \rVert_2 \, \lVert (1 - \sigma) \odot a_c \rVert_2",
        symbols=STRUCTURED_SYMBOLS,
    ),
)
