# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`activation_heads` (structured baseline): heads by output contribution ‖X_h‖₂·‖W_o[:, h]‖_F, MLP channels by
structured Wanda, from the same (noised, on diffusion models) calibration forwards as `sink_heads`, without sink
weighting. Noising needs a mask token, so a diffusion model without one is refused up front."""

from __future__ import annotations

from typing import Any

from ..spec import CardText, MethodSpec
from ._texts import activation_summary


def score(inputs) -> tuple[Any, list, dict[str, Any]]:
    """Scorer of `activation_heads` (see `MethodSpec.scorer`)."""
    importance, channels = inputs.activation_scores(sink_weighted=False)
    return importance, channels, activation_summary(importance, inputs.stats)


SPEC = MethodSpec(
    name="activation_heads", order="dense", statistic="head_norms", noised=True, scorer=score,
    card=CardText(
        name="Activation-importance head and channel pruning (structured baseline)",
        summary="heads ranked by output contribution, channels by structured Wanda, without sink weighting",
        equation=r"\text{score}_h = \lVert X_h \rVert_2 \, \lVert W_o[:, h] \rVert_F, \quad "
                 r"\text{score}_c = \lVert W_{down}[:, c] \rVert_2 \, \lVert a_c \rVert_2",
    ),
)
