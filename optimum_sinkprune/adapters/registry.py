# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The adapter registry: filled by `register_adapter`, queried by `get_adapter`."""

from __future__ import annotations

from torch import nn

from .base import ModelAdapter, UnsupportedModelError, describe


class AdapterRegistry:
    """Ordered set of adapter classes; the first whose `matches(model)` is true serves the model."""

    def __init__(self) -> None:
        self._adapters: list[type[ModelAdapter]] = []

    def register(self, adapter_cls: type[ModelAdapter]) -> type[ModelAdapter]:
        if not adapter_cls.model_types:
            raise ValueError(f"{adapter_cls.__name__} declares no model_types")
        if adapter_cls not in self._adapters:
            self._adapters.append(adapter_cls)
        return adapter_cls

    @property
    def supported_model_types(self) -> list[str]:
        return [t for cls in self._adapters for t in cls.model_types]

    def for_model_type(self, model_type: str) -> ModelAdapter:
        """The adapter that serves models of `model_type` (case-insensitive), without a model at hand."""
        for cls in self._adapters:
            if model_type.lower() in (t.lower() for t in cls.model_types):
                return cls()
        raise UnsupportedModelError(
            f"no optimum-sinkprune adapter for model_type={model_type!r}; supported model types: "
            f"{', '.join(self.supported_model_types)}"
        )

    def get(self, model: nn.Module) -> ModelAdapter:
        for cls in self._adapters:
            if cls.matches(model):
                return cls()
        raise UnsupportedModelError(
            f"no optimum-sinkprune adapter for {describe(model)}; supported model types: "
            f"{', '.join(self.supported_model_types)}"
        )


REGISTRY = AdapterRegistry()


def register_adapter(adapter_cls: type[ModelAdapter]) -> type[ModelAdapter]:
    """Register an adapter class (usable as a decorator)."""
    return REGISTRY.register(adapter_cls)


def get_adapter(model: nn.Module) -> ModelAdapter:
    """The adapter that serves `model`; raises `UnsupportedModelError` listing supported model types."""
    return REGISTRY.get(model)


def adapter_for_model_type(model_type: str) -> ModelAdapter:
    """The adapter of a `config.model_type` (case-insensitive); raises `UnsupportedModelError` listing the supported
    model types."""
    return REGISTRY.for_model_type(model_type)


def supported_model_types() -> list[str]:
    return REGISTRY.supported_model_types
