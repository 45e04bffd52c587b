# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The method registry: every pruning method is described once, by a `MethodSpec` registered with `register_method`.

Config validation, the pruner, the structured code, the CLI choices and the model card all ask this module; no
other list of method names exists. The spec types live in `optimum_sinkprune.methods.spec`; the built-in
methods one per file in `optimum_sinkprune/methods/catalog/`, listed in order by its `BUILTIN_METHODS`, which this
module registers on import (that order is the listing order of `method_names`). See docs/methods.md, "Adding a method".

```python
>>> from optimum_sinkprune.registry import get_method, method_names
>>> get_method("sink_wanda").order
'dense'
>>> method_names("structured")
('sink_heads', 'magnitude_heads', 'random_heads', 'activation_heads')
>>> method_names("experts")
('reap_experts', 'sink_experts')
```
"""

from __future__ import annotations

from typing import Any

from .methods.catalog import BUILTIN_METHODS
from .methods.spec import FAMILIES, ORDERS, STATISTICS, CardText, MethodSpec


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



def _register_builtins() -> None:
    for spec in BUILTIN_METHODS:  # their listing order
        register_method(spec)


_register_builtins()
