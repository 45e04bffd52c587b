# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""optimum-sinkprune: Sink-Aware Pruning for diffusion language models."""

from .models import DreamConfig, DreamModel, LLaDAConfig, LLaDAModelLM, register_auto_classes

__version__ = "0.1.0"

register_auto_classes()

__all__ = ["DreamConfig", "DreamModel", "LLaDAConfig", "LLaDAModelLM", "__version__"]
