# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`reap_experts` (expert-pruning baseline): REAP-style router-weighted expert activation norms. Per layer and expert,
the mean over the calibration tokens routed to the expert of its gate weight times its output norm, on the model's
own noised calibration windows; the lowest-scored experts of every layer are removed and the router shrinks with
them. The maths is in `optimum_sinkprune.structured.experts` (see docs/diffusion_gemma.md)."""

from ..spec import CardText, MethodSpec
from ._texts import EXPERT_SYMBOLS

SPEC = MethodSpec(
    name="reap_experts", family="experts", order="dense", statistic="router_norms", noised=True,
    card=CardText(
        name="Router-weighted expert activation pruning (REAP-style expert pruning baseline)",
        summary="the experts of every mixture-of-experts layer ranked by the mean, over the calibration tokens "
                "routed to them, of their gate weight times their output norm; the lowest-ranked experts are removed "
                "and the router's rows and scales shrink with them",
        equation=r"S_e = \frac{1}{|\{t \to e\}|} \sum_{t \to e} g_e(t)\, \lVert E_e(x_t) \rVert_2",
        symbols=EXPERT_SYMBOLS,
    ),
)
