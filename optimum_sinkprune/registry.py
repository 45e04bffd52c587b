# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The method registry: every pruning method is described once, by a `MethodSpec` registered with `register_method`.

Config validation, the pruner, the structured code, the CLI choices and the model card all ask this module; no
other list of method names exists. The built-in methods live one per file in `optimum_sinkprune/methods/catalog/`
and are imported at the bottom of this module, so importing the registry fills it (their import order is the
listing order of `method_names`). See docs/methods.md, "Adding a method".

```python
>>> from optimum_sinkprune.registry import get_method, method_names
>>> get_method("sink_wanda").order
'dense'
>>> method_names("structured")
('sink_heads', 'magnitude_heads', 'random_heads', 'activation_heads')
```
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

FAMILIES = ("unstructured", "structured")
ORDERS = ("none", "dense", "sequential")
# What the calibration collects for a method (see docs/methods.md and docs/structured.md):
#   none            weights only
#   sq_norm         sqrt(mean over tokens of X_j²) per input feature (Wanda)
#   token_norm_sum  Σ over (sample, step) of the token-L2-norm of the (optionally sink-weighted) input
#   hessian         H = 2·XᵀX/n per layer (SparseGPT)
#   head_norms      per head: o-projection input norms and dominant sink positions; per MLP channel: down-projection
#                   input norms (structured methods)
STATISTICS = {
    "unstructured": ("none", "sq_norm", "token_norm_sum", "hessian"),
    "structured": ("none", "head_norms"),
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
        family: "unstructured" (weights zeroed, unstructured or N:M) or "structured" (heads and MLP channels removed);
            default: "structured" when a `scorer` is given, else "unstructured".
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
    elif spec.scorer is not None:
        _fail(spec.name, "scorer", spec.scorer, "unstructured methods are scored from statistic/reconstruct/per_row")


class _MethodRegistry:
    """The registered specs by name, in registration order (the single registry of the package)."""

    def __init__(self) -> None:
        self._specs: dict[str, MethodSpec] = {}

    def add(self, spec: MethodSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"method {spec.name!r} is already registered (family {self._specs[spec.name].family!r}); "
                             "choose another name or unregister_method() the old one first")
        self._specs[spec.name] = spec

    def remove(self, name: str) -> MethodSpec:
        if name not in self._specs:
            raise ValueError(f"method={name!r} is not registered; known methods: {', '.join(self._specs)}")
        return self._specs.pop(name)

    def get(self, name: str) -> MethodSpec:
        spec = self._specs.get(name) if isinstance(name, str) else None
        if spec is None:
            raise ValueError(f"method={name!r} is unknown; known methods: {', '.join(self._specs)}")
        return spec

    def names(self, family: str | None) -> tuple[str, ...]:
        if family is not None and family not in FAMILIES:
            raise ValueError(f"family={family!r} is not allowed; use one of {FAMILIES} or None (every method)")
        return tuple(n for n, s in self._specs.items() if family is None or s.family == family)


_REGISTRY = _MethodRegistry()


def register_method(spec: MethodSpec) -> MethodSpec:
    """Register a pruning method (PEFT's `register_peft_method` is the model).

    Args:
        spec (`MethodSpec`): the method; its fields are validated when the spec is built.

    Returns:
        the spec (so a module can keep `SPEC = register_method(MethodSpec(...))`).

    Raises:
        `ValueError`: `spec` is not a `MethodSpec`, or a method of that name is already registered.
    """
    if not isinstance(spec, MethodSpec):
        raise ValueError(f"register_method needs a MethodSpec, got {type(spec).__name__}")
    _REGISTRY.add(spec)
    return spec


def unregister_method(name: str) -> MethodSpec:
    """Remove a registered method (for plugins and tests that register their own); returns its spec.

    Raises:
        `ValueError`: naming `name` and the known methods when it is not registered.
    """
    return _REGISTRY.remove(name)


def get_method(name: str) -> MethodSpec:
    """The spec of method `name`.

    Raises:
        `ValueError`: naming the value and the known methods when `name` is not registered.
    """
    return _REGISTRY.get(name)


def method_names(family: str | None = None) -> tuple[str, ...]:
    """Registered method names in registration order, all of them or those of one `family`.

    Raises:
        `ValueError`: `family` is neither None nor one of `FAMILIES`.
    """
    return _REGISTRY.names(family)


def is_method(name: Any, family: str | None = None) -> bool:
    """Whether `name` is a registered method (of `family`, when given); never raises for unknown names."""
    return isinstance(name, str) and name in _REGISTRY.names(family)


__all__ = [
    "FAMILIES",
    "ORDERS",
    "STATISTICS",
    "CardText",
    "MethodSpec",
    "get_method",
    "is_method",
    "method_names",
    "register_method",
    "unregister_method",
]

# The built-in methods: importing each module registers it (this order is the listing order).
from .methods.catalog import (  # noqa: E402, F401
    magnitude,
    wanda,
    sparsegpt,
    sink_wanda,
    sink_sparsegpt,
    wanda_diffusion,
    sink_heads,
    magnitude_heads,
    random_heads,
    activation_heads,
)
