# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sink_sparsegpt`: SparseGPT whose Hessian comes from clean inputs weighted by 1 − mean σ, with σ measured on
noised inputs (so it needs a mask token); blocks in order."""

from ..spec import CardText, MethodSpec
from ._texts import SINK_SYMBOLS

SPEC = MethodSpec(
    name="sink_sparsegpt", order="sequential", statistic="hessian", noised=True, sink=True, reconstruct=True,
    card=CardText(
        name="Sink-Aware SparseGPT (Myrzakhan et al., 2026)",
        summary="SparseGPT with the Hessian built from sink-down-weighted inputs",
        equation=r"H = \tfrac{2}{n} \tilde X^\top \tilde X + \lambda I, \quad \tilde X = (1 - \bar\sigma) \odot X",
        symbols=SINK_SYMBOLS,
    ),
)
