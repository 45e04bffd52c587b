# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Registers our LLaDA, MMaDA and Dream classes with the transformers Auto classes (called once on package import)."""

from __future__ import annotations

import logging

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM

from .configuration_dream import DreamConfig
from .configuration_llada import LLaDAConfig
from .configuration_mmada import MMaDAConfig
from .modeling_dream import DreamModel
from .modeling_llada import LLaDAModelLM
from .modeling_mmada import MMaDAModelLM

logger = logging.getLogger(__name__)


def register_auto_classes() -> None:
    """Make `AutoConfig`/`AutoModel`/`AutoModelForCausalLM`/`AutoModelForMaskedLM` resolve `model_type` "llada",
    "mmada" and "Dream" to our implementations. Idempotent. Checkpoints whose config has an `auto_map` still load our
    classes unless the user enables `trust_remote_code` themselves (we never switch it on)."""
    for model_type, config_cls, model_cls in (
        ("llada", LLaDAConfig, LLaDAModelLM),
        ("mmada", MMaDAConfig, MMaDAModelLM),
        ("Dream", DreamConfig, DreamModel),
    ):
        try:
            AutoConfig.register(model_type, config_cls, exist_ok=True)
        except TypeError:  # older signature without exist_ok
            AutoConfig.register(model_type, config_cls)
        for auto in (AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM):
            try:
                auto.register(config_cls, model_cls, exist_ok=True)
            except TypeError:
                auto.register(config_cls, model_cls)
        # saving copies the modeling code next to the weights (self-contained checkpoints)
        config_cls.register_for_auto_class()
        model_cls.register_for_auto_class("AutoModel")
    logger.debug("registered llada, mmada and Dream with the transformers Auto classes")
