# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sink_wanda`, the paper's method: Wanda statistics of the dense model on noised inputs along the denoising
trajectory, with attention-sink tokens down-weighted by 1 − σ; every layer pruned at once."""

from ..spec import CardText, MethodSpec
from ._texts import SINK_SYMBOLS

SPEC = MethodSpec(
    name="sink_wanda", order="dense", statistic="token_norm_sum", noised=True, sink=True, per_row=True,
    card=CardText(
        name="Sink-Aware Wanda (Myrzakhan et al., 2026)",
        summary="Wanda statistics on noised inputs along the denoising trajectory, with attention-sink tokens "
                "down-weighted",
        equation=r"\sigma = \operatorname{sigmoid}\big(\alpha\,(m - (\bar m + k\,s_m))\big), \quad "
                 r"S_{ij} = |W_{ij}| \cdot \sum_{(x, t)} \lVert (1 - \sigma) \odot X_j \rVert_2",
        symbols=SINK_SYMBOLS,
    ),
)
