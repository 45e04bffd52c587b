# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`wanda` (Sun et al., 2023): |W_ij| · sqrt(mean X_j²) on clean inputs, blocks in order, per output row."""

from ..spec import CardText, MethodSpec

SPEC = MethodSpec(
    name="wanda", order="sequential", statistic="sq_norm", per_row=True,
    card=CardText(name="Wanda (Sun et al., 2023)", equation=r"S_{ij} = |W_{ij}| \cdot \lVert X_j \rVert_2",
                  summary="weight magnitude times the L2 norm of the layer's input feature over clean calibration "
                          "tokens"),
)
