# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`magnitude`: |W_ij|, compared over the whole matrix (no calibration data)."""

from ..spec import CardText, MethodSpec

SPEC = MethodSpec(
    name="magnitude",
    card=CardText(name="Magnitude pruning", summary="weights are ranked by their absolute value",
                  equation=r"S_{ij} = |W_{ij}|"),
)
