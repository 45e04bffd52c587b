# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Hub-compatible LLaDA, MMaDA (language backbone) and Dream implementations, registered with the transformers Auto
classes on import."""

from .configuration_dream import DreamConfig
from .configuration_llada import LLaDAConfig
from .configuration_mmada import MMaDAConfig
from .modeling_dream import DreamModel, DreamPreTrainedModel
from .modeling_llada import LLaDAModelLM, LLaDAPreTrainedModel
from .modeling_mmada import MMaDAModelLM
from .registration import register_auto_classes

__all__ = [
    "DreamConfig",
    "DreamModel",
    "DreamPreTrainedModel",
    "LLaDAConfig",
    "LLaDAModelLM",
    "LLaDAPreTrainedModel",
    "MMaDAConfig",
    "MMaDAModelLM",
    "register_auto_classes",
]
