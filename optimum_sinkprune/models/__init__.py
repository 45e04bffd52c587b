# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Hub-compatible LLaDA and Dream implementations, registered with the transformers Auto classes on import."""

from .configuration_dream import DreamConfig
from .configuration_llada import LLaDAConfig
from .modeling_dream import DreamModel, DreamPreTrainedModel
from .modeling_llada import LLaDAModelLM, LLaDAPreTrainedModel
from .registration import register_auto_classes

__all__ = [
    "DreamConfig",
    "DreamModel",
    "DreamPreTrainedModel",
    "LLaDAConfig",
    "LLaDAModelLM",
    "LLaDAPreTrainedModel",
    "register_auto_classes",
]
