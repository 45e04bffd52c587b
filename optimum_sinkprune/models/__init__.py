# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Hub-compatible LLaDA, MMaDA (language backbone) and Dream implementations, registered with the transformers Auto
classes on import.

Importing this package (which `import optimum_sinkprune` does as soon as transformers is imported) registers the Auto
classes and starts watching native Llama/Qwen2/BERT-family configs for structurally pruned shapes. Both steps are
idempotent and run at the end of this module's body, so an import of this package that re-enters while it is being
initialised (transformers imported from inside one of its modules) still registers once the body completes."""

from .configuration_dream import DreamConfig
from .configuration_llada import LLaDAConfig
from .configuration_mmada import MMaDAConfig
from .modeling_dream import DreamModel, DreamPreTrainedModel
from .modeling_llada import LLaDAModelLM, LLaDAPreTrainedModel
from .modeling_mmada import MMaDAModelLM
from .registration import register_auto_classes
from .pruned_loading import register_pruned_loading, unregister_pruned_loading, watch_native_configs

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
    "register_pruned_loading",
    "unregister_pruned_loading",
    "watch_native_configs",
]

register_auto_classes()
# native checkpoints with `pruned_heads` / `intermediate_sizes` load at their pruned shapes: the (costly) module
# replacements are registered when the first such config is built, not on import
watch_native_configs()
