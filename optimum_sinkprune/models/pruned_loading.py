# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The native-class reload patch: structurally pruned native transformers checkpoints (Llama, Qwen2) reload at their
smaller shapes.

Our own LLaDA/Dream classes read `pruned_heads` and per-layer MLP widths in `__init__` and need none of this. The
native transformers 5.x classes have no pruned-heads support: `LlamaDecoderLayer(config, layer_idx)` always builds
`num_attention_heads` heads and `intermediate_size` channels, and the config's strict validation rejects per-layer
shapes in the global fields. (`PreTrainedConfig.per_layer_config` exists in 5.24, but no modeling code reads it yet.)

The mechanism used here is transformers' own module patch registry (`transformers.monkey_patching.
register_patch_mapping`, "class replacements applied when loading any model ... structural optimizations"): while a
model is being built by `from_pretrained` / `from_config`, `LlamaDecoderLayer` and `Qwen2DecoderLayer` resolve to
subclasses that build the parent layer and then, only when the config carries `pruned_heads` / per-layer MLP widths
for that layer, have the family's adapter replace its attention and MLP projections with the pruned shapes (the
adapter knows the submodules and attributes; nothing here spells them). This happens on the meta
device, before weights load, for every entry point (`AutoModelForCausalLM`, `AutoModel`, `LlamaForCausalLM`, ...).
Unpruned configs build exactly the parent layer. The whole record is checked against the config's original sizes
(`native_structural_record`: layers, head indices, whole kv groups, widths in [1, `intermediate_size`]) when the
config is built (the `__post_init__` watch below, i.e. at config load) and again before a layer is resized (a record
assigned to a config object later), so a malformed `config.json` fails with a message naming the field and the layer
before any module is built.

Why not the alternatives:
* a registered quantizer (`register_quantizer`) also runs before weights load, but it is triggered only by a
  `quantization_config` entry in config.json and marks the model as quantized (`is_quantized`, `hf_quantizer`, no
  `.to(dtype)`), which a pruned model is not;
* re-registering the Auto classes with subclasses would change the class name written to `architectures`.

Cost: while any replacement is registered, transformers' `apply_patches` scans every loaded transformers module at
each `from_pretrained` / `from_config`; `_LazyModule.__dir__` is quadratic in the number of exported names, so that
scan costs about 3 s per load on a 2-core machine. So the replacements are not registered on import: importing the
plugin only wraps `LlamaConfig` / `Qwen2Config.__post_init__` (`watch_native_configs`), and the first native config
that records a pruned structure registers them (`register_pruned_loading`, also callable directly). Processes that
never meet a pruned native checkpoint pay nothing; `unregister_pruned_loading()` removes the replacements again.

transformers also re-points the `_can_record_outputs` recorders (`output_hidden_states`, `output_attentions`) of a
loaded model class to the replacement class; the replacement's metaclass makes every instance of the parent class
count as an instance, so models built outside `from_pretrained` keep recording their hidden states.
"""

from __future__ import annotations

import logging

from torch import nn
from transformers.models.bert import modeling_bert
from transformers.models.diffusion_gemma import modeling_diffusion_gemma
from transformers.models.llama import modeling_llama
from transformers.models.modernbert import modeling_modernbert
from transformers.models.qwen2 import modeling_qwen2
from transformers.models.roberta import modeling_roberta

from ..adapters.bert import BertAdapter, ModernBertAdapter, RobertaAdapter
from ..adapters.diffusion_gemma import DiffusionGemmaAdapter
from ..adapters.llama import LlamaAdapter, Qwen2Adapter
from .structural_record import validate_structural_record

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------------------------
# pure helpers
# ---------------------------------------------------------------------------------------------------------------------
# The adapter that reads and resizes each native family the patch serves (BERT-family masked LMs included).
NATIVE_ADAPTERS = {cls.model_types[0]: cls for cls in (LlamaAdapter, Qwen2Adapter, BertAdapter, RobertaAdapter,
                                                       ModernBertAdapter)}
# DiffusionGemma's text layers are built from its text config; each layer kind has its own head layout, which the
# adapter reads (`pruned_layer_shape`, `resize_pruned_layer`)
NATIVE_ADAPTERS["diffusion_gemma_text"] = DiffusionGemmaAdapter


def _native_adapter(config) -> LlamaAdapter:
    # Qwen2 shares Llama's layout; any other config is read the Llama way (the patch serves only these families).
    return NATIVE_ADAPTERS.get(getattr(config, "model_type", None), LlamaAdapter)()


def native_structural_record(
    config, adapter: LlamaAdapter | None = None
) -> tuple[dict[int, list[int]], list[int] | None]:
    """The structural record of a native Llama/Qwen2 config (`pruned_heads` and the per-layer MLP widths), checked
    against the config's original sizes (`num_hidden_layers`, the head counts, `intermediate_size`) by the rules of
    `structural_record.validate_structural_record`.

    Returns:
        `(pruned_heads, widths)`: `{layer: sorted original head indices}` and the per-layer widths (None when the
        config records none).

    Raises:
        `ValueError`: a malformed record; the message names the field (e.g. `LlamaConfig.pruned_heads[1]`), the
            layer and the allowed range.
    """
    adapter = adapter or _native_adapter(config)
    name = type(config).__name__
    key = adapter.mlp_widths_key
    return validate_structural_record(
        getattr(config, "pruned_heads", None), getattr(config, key, None),
        num_layers=config.num_hidden_layers, num_heads=adapter.config_num_heads(config),
        num_kv_heads=adapter.config_num_kv_heads(config), original_width=config.intermediate_size,
        heads_field=f"{name}.pruned_heads", widths_field=f"{name}.{key}",
    )


def layer_pruned_heads(config, layer_idx: int) -> list[int]:
    """Original head indices removed from `layer_idx` according to `config.pruned_heads` (JSON keys are strings),
    after checking the whole record (`native_structural_record`)."""
    return native_structural_record(config)[0].get(layer_idx, [])


def layer_intermediate_size(config, layer_idx: int, adapter: LlamaAdapter | None = None) -> int:
    """MLP width of `layer_idx`: the per-layer width recorded in `config` when present, else the global width."""
    widths = native_structural_record(config, adapter)[1]
    return widths[layer_idx] if widths is not None else int(config.intermediate_size)


def pruned_layer_shape(config, layer_idx: int, adapter: LlamaAdapter | None = None) -> tuple[int, int, int]:
    """(query heads, kv heads, MLP width) of one layer of a native config after structured pruning.

    Raises:
        `ValueError`: a malformed structural record (`native_structural_record`), e.g. recorded heads that split
            a grouped-query group (a checkpoint we never write) or a layer the model does not have.
    """
    adapter = adapter or _native_adapter(config)
    heads, widths = native_structural_record(config, adapter)
    n_heads = adapter.config_num_heads(config)
    n_kv = adapter.config_num_kv_heads(config)
    pruned = heads.get(layer_idx, [])
    width = widths[layer_idx] if widths is not None else int(config.intermediate_size)
    return n_heads - len(pruned), n_kv - len(pruned) // (n_heads // n_kv), width


def resize_native_layer(layer: nn.Module, config, layer_idx: int, adapter: LlamaAdapter | None = None) -> None:
    """Rebuild the projections of a native Llama/Qwen2 decoder layer at the pruned shapes recorded in `config`.

    Weights of resized projections are fresh (they are about to be loaded); untouched projections are kept.
    """
    adapter = adapter or _native_adapter(config)
    n_heads, n_kv, width = pruned_layer_shape(config, layer_idx, adapter)
    adapter.resize_block(
        layer, hidden_size=int(config.hidden_size), head_dim=adapter.config_head_dim(config), num_heads=n_heads,
        num_kv_heads=n_kv, mlp_width=width,
    )


def _records_structure(config, adapter: LlamaAdapter) -> bool:
    if hasattr(adapter, "records_structure"):  # a family that records more than heads and widths (DiffusionGemma)
        return adapter.records_structure(config)
    return bool(getattr(config, "pruned_heads", None)) or getattr(config, adapter.mlp_widths_key, None) is not None


# ---------------------------------------------------------------------------------------------------------------------
# the replacement classes
# ---------------------------------------------------------------------------------------------------------------------
class _CountsParentInstances(type):
    """Metaclass: `isinstance(x, Replacement)` is `isinstance(x, Parent)` (see the module docstring)."""

    def __instancecheck__(cls, instance) -> bool:
        return isinstance(instance, cls.__bases__[0])

    def __subclasscheck__(cls, subclass) -> bool:
        return issubclass(subclass, cls.__bases__[0])


def _restore_parent_classes() -> None:
    """Put the native decoder-layer classes back wherever a replacement is still installed in a transformers
    module (what `apply_patches` does on success)."""
    import sys

    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith("transformers"):
            continue
        for replacement in REPLACEMENTS:
            if module.__dict__.get(replacement.__name__) is replacement:
                setattr(module, replacement.__name__, replacement.__bases__[0])


def make_pruned_layer_class(
    parent: type[nn.Module], adapter_cls: type[LlamaAdapter] = LlamaAdapter
) -> type[nn.Module]:
    """A subclass of the native decoder layer `parent` that builds the pruned shapes recorded in its config; the
    surgery goes through `adapter_cls` (the family's adapter)."""

    def __init__(self, config, layer_idx, *args, **kwargs):
        parent.__init__(self, config, layer_idx, *args, **kwargs)
        adapter = adapter_cls()
        if _records_structure(config, adapter):
            try:
                if hasattr(adapter, "resize_pruned_layer"):  # layers of different kinds (DiffusionGemma)
                    adapter.resize_pruned_layer(self, config, layer_idx)
                else:
                    resize_native_layer(self, config, layer_idx, adapter)
            except Exception:
                # transformers' `apply_patches` restores the original classes only when the build succeeds; a
                # malformed record raised here would leave the replacements in its modules for the whole process
                _restore_parent_classes()
                raise

    # Same name as the parent so name-based tooling (`_no_split_modules`, device maps, recorders) is unaffected.
    cls = _CountsParentInstances(parent.__name__, (parent,), {"__init__": __init__, "__module__": __name__})
    cls.__qualname__ = parent.__name__
    cls.__doc__ = f"{parent.__name__} that honours `pruned_heads` / per-layer MLP widths (optimum-sinkprune)."
    return cls


# The replacements are module-level constants named like their parents, so pickling a loaded model finds them.
LlamaDecoderLayer = make_pruned_layer_class(modeling_llama.LlamaDecoderLayer, LlamaAdapter)
Qwen2DecoderLayer = make_pruned_layer_class(modeling_qwen2.Qwen2DecoderLayer, Qwen2Adapter)
BertLayer = make_pruned_layer_class(modeling_bert.BertLayer, BertAdapter)
RobertaLayer = make_pruned_layer_class(modeling_roberta.RobertaLayer, RobertaAdapter)
ModernBertEncoderLayer = make_pruned_layer_class(modeling_modernbert.ModernBertEncoderLayer, ModernBertAdapter)
DiffusionGemmaEncoderTextLayer = make_pruned_layer_class(modeling_diffusion_gemma.DiffusionGemmaEncoderTextLayer,
                                                         DiffusionGemmaAdapter)
DiffusionGemmaDecoderTextLayer = make_pruned_layer_class(modeling_diffusion_gemma.DiffusionGemmaDecoderTextLayer,
                                                         DiffusionGemmaAdapter)
REPLACEMENTS = (LlamaDecoderLayer, Qwen2DecoderLayer, BertLayer, RobertaLayer, ModernBertEncoderLayer,
                DiffusionGemmaEncoderTextLayer, DiffusionGemmaDecoderTextLayer)


def _patch_key(class_name: str) -> str:
    # Anchored: a bare name would also match e.g. `DiffLlamaDecoderLayer` (patterns are searched).
    return f"^{class_name}$"


def register_pruned_loading() -> None:
    """Make `from_pretrained` / `from_config` of native Llama and Qwen2 build structurally pruned shapes.

    Idempotent; called once on `import optimum_sinkprune`. A replacement someone else registered for the same classes
    is kept (and a warning logged), since transformers applies one replacement per class.
    """
    from transformers.monkey_patching import get_patch_mapping, register_patch_mapping

    existing = get_patch_mapping()
    for replacement in REPLACEMENTS:
        class_name = replacement.__name__
        key = _patch_key(class_name)
        current = existing.get(key) or existing.get(class_name)
        if current is not None:
            if getattr(current, "__module__", None) != __name__:
                logger.warning(
                    "a module replacement for %s is already registered (%r); pruned %s checkpoints will not reload "
                    "at their pruned shapes", class_name, current, class_name,
                )
            continue
        register_patch_mapping({key: replacement})
    logger.debug("registered pruned-shape loading for %s", [cls.__name__ for cls in REPLACEMENTS])


def _watching_post_init(original):
    def __post_init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        adapter = _native_adapter(self)
        if _records_structure(self, adapter):
            # a malformed record fails at config load, naming the field
            if hasattr(adapter, "pruned_layer_shape"):
                for layer in range(int(self.num_hidden_layers)):
                    adapter.pruned_layer_shape(self, layer)
            else:
                native_structural_record(self, adapter)
            register_pruned_loading()

    __post_init__.__wrapped__ = original
    __post_init__._sinkprune_watch = True
    return __post_init__


def watch_native_configs() -> None:
    """Register the pruned-shape replacements as soon as a native Llama/Qwen2 config recording `pruned_heads` or
    per-layer MLP widths is built (config loading runs before the model is built, so the reload sees them).

    Idempotent; called once on `import optimum_sinkprune`. Wraps only `__post_init__` of the two config classes,
    which costs nothing per load.
    """
    from transformers.models.bert.configuration_bert import BertConfig
    from transformers.models.diffusion_gemma.configuration_diffusion_gemma import DiffusionGemmaTextConfig
    from transformers.models.llama.configuration_llama import LlamaConfig
    from transformers.models.modernbert.configuration_modernbert import ModernBertConfig
    from transformers.models.qwen2.configuration_qwen2 import Qwen2Config
    from transformers.models.roberta.configuration_roberta import RobertaConfig

    for config_cls in (LlamaConfig, Qwen2Config, BertConfig, RobertaConfig, ModernBertConfig, DiffusionGemmaTextConfig):
        # BertConfig / RobertaConfig inherit PreTrainedConfig's: the wrapper goes on the class itself
        current = config_cls.__dict__.get("__post_init__") or getattr(config_cls, "__post_init__", None)
        if current is None or getattr(current, "_sinkprune_watch", False):
            continue
        config_cls.__post_init__ = _watching_post_init(current)


def unregister_pruned_loading() -> None:
    """Undo `register_pruned_loading` (only the replacements it registered)."""
    from transformers.monkey_patching import get_patch_mapping, unregister_patch_mapping

    mapping = get_patch_mapping()
    ours = [key for key, cls in mapping.items() if getattr(cls, "__module__", None) == __name__]
    if ours:
        unregister_patch_mapping(ours)


__all__ = [
    "BertLayer",
    "DiffusionGemmaDecoderTextLayer",
    "DiffusionGemmaEncoderTextLayer",
    "LlamaDecoderLayer",
    "ModernBertEncoderLayer",
    "RobertaLayer",
    "Qwen2DecoderLayer",
    "layer_intermediate_size",
    "layer_pruned_heads",
    "make_pruned_layer_class",
    "native_structural_record",
    "pruned_layer_shape",
    "register_pruned_loading",
    "resize_native_layer",
    "unregister_pruned_loading",
    "watch_native_configs",
]
