# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sink_experts`: sink-aware expert pruning. The REAP-style score of `reap_experts` with every routed token weighted
by 1 − σ (σ its sink weight from the decoder's attention on the same noised forward), so that experts kept busy only
by attention-sink tokens rank low; the lowest-scored experts of every layer are removed and the router shrinks with
them. The maths is in `optimum_sinkprune.structured.experts` (see docs/diffusion_gemma.md)."""

from ..spec import CardText, MethodSpec
from ._texts import EXPERT_SYMBOLS

SPEC = MethodSpec(
    name="sink_experts", family="experts", order="dense", statistic="router_norms", noised=True, sink=True,
    card=CardText(
        name="Sink-aware expert pruning",
        summary="the experts of every mixture-of-experts layer ranked by the sink-down-weighted mean, over the "
                "calibration tokens routed to them, of their gate weight times their output norm; the lowest-ranked "
                "experts are removed and the router's rows and scales shrink with them",
        equation=r"S_e = \frac{\sum_{t \to e} (1 - \sigma_t)\, g_e(t)\, \lVert E_e(x_t) \rVert_2}"
                 r"{\sum_{t \to e} (1 - \sigma_t)}",
        symbols=EXPERT_SYMBOLS + r", and $\sigma_t$ the sink weight of token $t$ (`sink_alpha`, `sink_std`)",
    ),
)
