# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""optimum-sinkprune: Sink-Aware Pruning for diffusion language models.

Importing the package registers our LLaDA, MMaDA and Dream implementations with the transformers Auto classes and the
loading hook that rebuilds structurally pruned native (Llama/Qwen2) checkpoints at their pruned shapes.
"""

from importlib import import_module

from .models import (
    DreamConfig,
    DreamModel,
    LLaDAConfig,
    LLaDAModelLM,
    MMaDAConfig,
    MMaDAModelLM,
    register_auto_classes,
)

from .version import __version__

register_auto_classes()

from .models.pruned_loading import (  # noqa: E402,F401 - after Auto
    register_pruned_loading,
    unregister_pruned_loading,
    watch_native_configs,
)

# native Llama/Qwen2 checkpoints with `pruned_heads` / `intermediate_sizes` load at their pruned shapes: the (costly)
# module replacements are registered when the first such config is built, not on import
watch_native_configs()

# Heavier public objects load on first use, so `import optimum_sinkprune` stays cheap.
_LAZY = {
    "SinkAwarePruningConfig": "optimum_sinkprune.configuration",
    "SinkAwarePruner": "optimum_sinkprune.pruner",
    "PruningReport": "optimum_sinkprune.pruner",
    "QuantizationConfig": "optimum_sinkprune.quantization",
    "SinkAwareQuantizer": "optimum_sinkprune.quantization",
    "get_calibration_dataset": "optimum_sinkprune.calibration.data",
    "get_adapter": "optimum_sinkprune.adapters",
    "generate": "optimum_sinkprune.diffusion",
    "elbo_log_likelihood": "optimum_sinkprune.diffusion",
    "attention_mass": "optimum_sinkprune.calibration.attention",
    "SinkReport": "optimum_sinkprune.analysis",
    "build_sink_report": "optimum_sinkprune.analysis",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'optimum_sinkprune' has no attribute {name!r}")


__all__ = [
    "DreamConfig",
    "DreamModel",
    "LLaDAConfig",
    "LLaDAModelLM",
    "MMaDAConfig",
    "MMaDAModelLM",
    "__version__",
    "register_pruned_loading",
    *_LAZY,
]
