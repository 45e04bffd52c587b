# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""What a pruning method is: `MethodSpec` (with its `CardText`) and the allowed values of its fields.

Pure data, validated when built; the built-in specs are in `methods/catalog/`, and `optimum_sinkprune.registry`
holds the registered ones (it imports this module and the catalog, never the other way round).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

FAMILIES = ("unstructured", "structured", "experts")
ORDERS = ("none", "dense", "sequential")
# What the calibration collects for a method (see docs/methods.md and docs/structured.md):
#   none            weights only
#   sq_norm         sqrt(mean over tokens of X_j²) per input feature (Wanda)
#   token_norm_sum  Σ over (sample, step) of the token-L2-norm of the (optionally sink-weighted) input
#   hessian         H = 2·XᵀX/n per layer (SparseGPT)
#   head_norms      per head: o-projection input norms and dominant sink positions; per MLP channel: down-projection
#                   input norms (structured methods)
#   router_norms    per layer and expert: Σ over the tokens routed to it of g_e(t)·‖E_e(x_t)‖₂ (optionally
#                   (1 − σ)-weighted) and the routed tokens' weight (expert methods; see structured/experts.py)
STATISTICS = {
    "unstructured": ("none", "sq_norm", "token_norm_sum", "hessian"),
    "structured": ("none", "head_norms"),
    "experts": ("router_norms",),
}
_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class CardText:
    """What the model card says about a method.

    Attributes:
        name: display name, e.g. "Sink-Aware Wanda (Myrzakhan et al., 2026)".
        summary: one sentence on what the method scores (the card adds the full stop).
        equation: the score in LaTeX (without `$$`), or None when there is none (the random baseline).
        symbols: the sentence after "where" explaining the equation's symbols, or None.
    """

    name: str
    summary: str
    equation: str | None = None
    symbols: str | None = None


@dataclass(frozen=True, kw_only=True)
class MethodSpec:
    """Everything the package needs to know about one pruning method.

    Attributes:
        name: the method name (`SinkAwarePruningConfig.method`, `--method`): lowercase letters, digits, `_`.
        family: "unstructured" (weights zeroed, unstructured or N:M), "structured" (heads and MLP channels removed)
            or "experts" (whole experts of every mixture-of-experts layer removed, the router shrinking with them,
            scored from routed calibration tokens: `statistic="router_norms"`, `order="dense"`, `noised=True`; `sink`
            weights the tokens by 1 − σ); default: "structured" when a `scorer` is given, else "unstructured".
        order: "none" (weights only), "dense" (statistics of the unpruned model, then every layer at once) or
            "sequential" (blocks in order, each block's outputs recomputed after pruning it); default "none", which
            only a weights-only method (`statistic="none"`) may leave unset.
        statistic: what calibration collects, one of `STATISTICS[family]` (default "none": weights only).
        noised: statistics come from masked-diffusion-noised inputs (on diffusion models).
        sink: tokens are weighted by 1 − σ (σ from the attention mass).
        reconstruct: the weights are updated (SparseGPT), not only masked.
        per_row: the unstructured comparison group is the output row (else the whole matrix).
        needs_data: calibration data is needed (default: `order != "none"`).
        needs_mask_token: a diffusion model must define a mask token (default: `noised`).
        card: the model-card text.
        scorer: structured methods only: `scorer(inputs) -> (head_scores, channel_scores, summary)` where `inputs`
            is a `optimum_sinkprune.structured.pruner.StructuredScoringInputs`; head scores are
            [layers, original heads] (lower = pruned first), channel scores one [width] tensor per layer, summary a
            JSON-able dict for the report.
    """

    name: str
    family: str | None = None
    order: str | None = None
    statistic: str = "none"
    noised: bool = False
    sink: bool = False
    reconstruct: bool = False
    per_row: bool = False
    needs_data: bool | None = None
    needs_mask_token: bool | None = None
    card: CardText
    scorer: Callable[[Any], tuple[Any, list, dict]] | None = None

    def __post_init__(self) -> None:
        if self.family is None:
            object.__setattr__(self, "family", "unstructured" if self.scorer is None else "structured")
        if self.order is None:
            if self.statistic != "none":
                _fail(self.name, "order", None, f"statistic={self.statistic!r} needs order 'dense' or 'sequential'")
            object.__setattr__(self, "order", "none")
        if self.needs_data is None:
            object.__setattr__(self, "needs_data", self.order != "none")
        if self.needs_mask_token is None:
            object.__setattr__(self, "needs_mask_token", self.noised)
        _validate_spec(self)


def _fail(spec_name: Any, field_name: str, value: Any, allowed: str) -> NoReturn:
    raise ValueError(f"MethodSpec(name={spec_name!r}): {field_name}={value!r} is not allowed; {allowed}")


def _validate_spec(spec: MethodSpec) -> None:
    """Raise `ValueError` naming the field, its value and what is allowed."""
    if not isinstance(spec.name, str) or not _NAME.fullmatch(spec.name):
        _fail(spec.name, "name", spec.name, "use lowercase letters, digits and '_', starting with a letter")
    if spec.family not in FAMILIES:
        _fail(spec.name, "family", spec.family, f"use one of {FAMILIES}")
    if spec.order not in ORDERS:
        _fail(spec.name, "order", spec.order, f"use one of {ORDERS}")
    if spec.statistic not in STATISTICS[spec.family]:
        _fail(spec.name, "statistic", spec.statistic, f"family={spec.family!r} uses one of {STATISTICS[spec.family]}")
    for flag in ("noised", "sink", "reconstruct", "per_row", "needs_data", "needs_mask_token"):
        if not isinstance(getattr(spec, flag), bool):
            _fail(spec.name, flag, getattr(spec, flag), "use True or False")
    if (spec.order == "none") != (spec.statistic == "none"):
        _fail(spec.name, "order", spec.order, f"order 'none' goes with statistic 'none' (statistic={spec.statistic!r})")
    if spec.order != "none" and not spec.needs_data:
        _fail(spec.name, "needs_data", spec.needs_data, f"order={spec.order!r} runs the model on calibration data")
    if spec.noised and not spec.needs_mask_token:
        _fail(spec.name, "needs_mask_token", spec.needs_mask_token, "noising the inputs needs a mask token")
    if (spec.noised or spec.sink) and not spec.needs_data:
        _fail(spec.name, "needs_data", spec.needs_data, "noised or sink-weighted statistics need calibration data")
    if spec.reconstruct and spec.statistic != "hessian":
        _fail(spec.name, "reconstruct", spec.reconstruct, "reconstruction needs statistic='hessian'")
    if not isinstance(spec.card, CardText):
        _fail(spec.name, "card", spec.card, "give a CardText(name, summary, equation, symbols)")
    if not spec.card.name or not spec.card.summary:
        _fail(spec.name, "card", spec.card, "the card needs a display name and a summary")
    if spec.family == "structured":
        if not callable(spec.scorer):
            _fail(spec.name, "scorer", spec.scorer, "a structured method needs a scorer(inputs) function")
        if spec.reconstruct or spec.per_row:
            _fail(spec.name, "reconstruct/per_row", (spec.reconstruct, spec.per_row),
                  "these apply to unstructured methods only")
    elif spec.family == "experts":
        if spec.scorer is not None:
            _fail(spec.name, "scorer", spec.scorer, "expert methods are scored from statistic='router_norms' and sink")
        if spec.reconstruct or spec.per_row:
            _fail(spec.name, "reconstruct/per_row", (spec.reconstruct, spec.per_row),
                  "these apply to unstructured methods only")
        if spec.order != "dense":
            _fail(spec.name, "order", spec.order, "expert methods score every layer on the dense model: use 'dense'")
        if not spec.noised:
            _fail(spec.name, "noised", spec.noised, "expert methods read the routing of the forward process's noised "
                  "windows: use True")
    elif spec.scorer is not None:
        _fail(spec.name, "scorer", spec.scorer, "unstructured methods are scored from statistic/reconstruct/per_row")


__all__ = ["FAMILIES", "ORDERS", "STATISTICS", "CardText", "MethodSpec"]
