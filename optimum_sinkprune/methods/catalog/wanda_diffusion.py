# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`wanda_diffusion` (ablation): sink_wanda's noised statistics without the sink weighting."""

from ..spec import CardText, MethodSpec

SPEC = MethodSpec(
    name="wanda_diffusion", order="dense", statistic="token_norm_sum", noised=True, per_row=True,
    card=CardText(
        name="Wanda on diffusion-noised inputs (ablation)",
        summary="Wanda statistics on the same noised inputs as Sink-Aware Wanda, without sink weighting",
        equation=r"S_{ij} = |W_{ij}| \cdot \sum_{(x, t)} \lVert X_j \rVert_2",
    ),
)
