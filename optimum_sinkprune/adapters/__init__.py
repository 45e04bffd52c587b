# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Architecture adapters: the only place (with our model classes) that knows module paths and attribute names, surgery
included. `get_adapter(model)` picks one; one instance serves a whole run."""

from .base import (
    ALL_ROLES,
    ATTENTION_ROLES,
    MLP_ROLES,
    MissingMaskTokenError,
    ModelAdapter,
    NoiseDefaults,
    UnsupportedModelError,
)
from .bert import BertAdapter, MissingMLMHeadError, ModernBertAdapter, RobertaAdapter
from .diffusion_gemma import DiffusionGemmaAdapter
from .dream import DreamAdapter
from .llada import LLaDAAdapter
from .llama import LlamaAdapter, Qwen2Adapter
from .registry import adapter_for_model_type, get_adapter, register_adapter, supported_model_types

for _cls in (LLaDAAdapter, DreamAdapter, LlamaAdapter, Qwen2Adapter, DiffusionGemmaAdapter, BertAdapter, RobertaAdapter,
             ModernBertAdapter):
    register_adapter(_cls)
del _cls

__all__ = [
    "adapter_for_model_type",
    "ALL_ROLES",
    "ATTENTION_ROLES",
    "MLP_ROLES",
    "BertAdapter",
    "DiffusionGemmaAdapter",
    "DreamAdapter",
    "LLaDAAdapter",
    "LlamaAdapter",
    "MissingMLMHeadError",
    "MissingMaskTokenError",
    "ModernBertAdapter",
    "ModelAdapter",
    "NoiseDefaults",
    "Qwen2Adapter",
    "RobertaAdapter",
    "UnsupportedModelError",
    "get_adapter",
    "register_adapter",
    "supported_model_types",
]
