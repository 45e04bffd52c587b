# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sparsegpt` (Frantar & Alistarh, 2023): OBS saliency from the layer Hessian with weight reconstruction, blocks in
order on clean inputs. The maths is `optimum_sinkprune.methods.sparsegpt`."""

from ..spec import CardText, MethodSpec

SPEC = MethodSpec(
    name="sparsegpt", order="sequential", statistic="hessian", reconstruct=True,
    card=CardText(name="SparseGPT (Frantar & Alistarh, 2023)",
                  summary="optimal-brain-surgeon saliency with the inverse Hessian of the layer inputs, and error "
                          "compensation",
                  equation=r"S_{ij} = \frac{W_{ij}^2}{[H^{-1}]_{jj}^2}, \quad H = \tfrac{2}{n} X^\top X + \lambda I"),
)
