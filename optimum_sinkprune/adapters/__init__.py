# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Architecture adapters: the only place that knows module paths. `get_adapter(model)` picks one."""

from .base import ALL_ROLES, ATTENTION_ROLES, MLP_ROLES, MissingMaskTokenError, ModelAdapter, UnsupportedModelError
from .dream import DreamAdapter
from .llada import LLaDAAdapter
from .llama import LlamaAdapter, Qwen2Adapter
from .registry import get_adapter, register_adapter, supported_model_types

for _cls in (LLaDAAdapter, DreamAdapter, LlamaAdapter, Qwen2Adapter):
    register_adapter(_cls)
del _cls

__all__ = [
    "ALL_ROLES",
    "ATTENTION_ROLES",
    "MLP_ROLES",
    "DreamAdapter",
    "LLaDAAdapter",
    "LlamaAdapter",
    "MissingMaskTokenError",
    "ModelAdapter",
    "Qwen2Adapter",
    "UnsupportedModelError",
    "get_adapter",
    "register_adapter",
    "supported_model_types",
]
