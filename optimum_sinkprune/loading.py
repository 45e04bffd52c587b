# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Reload structurally pruned native transformers checkpoints (Llama, Qwen2) at their smaller shapes.

Our own LLaDA/Dream classes read `pruned_heads` and per-layer MLP widths in `__init__` and need none of this. The
native transformers 5.x classes have no pruned-heads support: `LlamaDecoderLayer(config, layer_idx)` always builds
`num_attention_heads` heads and `intermediate_size` channels, and the config's strict validation rejects per-layer
shapes in the global fields. (`PreTrainedConfig.per_layer_config` exists in 5.24, but no modeling code reads it yet.)

The mechanism used here is transformers' own module patch registry (`transformers.monkey_patching.
register_patch_mapping`, "class replacements applied when loading any model ... structural optimizations"): while a
model is being built by `from_pretrained` / `from_config`, `LlamaDecoderLayer` and `Qwen2DecoderLayer` resolve to
subclasses that build the parent layer and then, only when the config carries `pruned_heads` / `intermediate_sizes`
for that layer, replace its q/k/v/o and gate/up/down projections with the pruned shapes. This happens on the meta
device, before weights load, for every entry point (`AutoModelForCausalLM`, `AutoModel`, `LlamaForCausalLM`, ...).
Unpruned configs build exactly the parent layer.

Why not the alternatives:
* a registered quantizer (`register_quantizer`) also runs before weights load, but it is triggered only by a
  `quantization_config` entry in config.json and marks the model as quantized (`is_quantized`, `hf_quantizer`, no
  `.to(dtype)`), which a pruned model is not;
* re-registering the Auto classes with subclasses would change the class name written to `architectures`.

Cost: while any replacement is registered, transformers' `apply_patches` scans every loaded transformers module at
each `from_pretrained` / `from_config` (most of it in `_LazyModule.__dir__`): measured 11 ms -> 0.3 s per load of a
tiny model on a 2-core machine (0.7 s when busy). `unregister_pruned_loading()` removes it.

transformers also re-points the `_can_record_outputs` recorders (`output_hidden_states`, `output_attentions`) of a
loaded model class to the replacement class; the replacement's metaclass makes every instance of the parent class
count as an instance, so models built outside `from_pretrained` keep recording their hidden states.
"""

from __future__ import annotations

import logging

from torch import nn
from transformers.models.llama import modeling_llama
from transformers.models.qwen2 import modeling_qwen2

logger = logging.getLogger(__name__)



# ---------------------------------------------------------------------------------------------------------------------
# pure helpers
# ---------------------------------------------------------------------------------------------------------------------
def layer_pruned_heads(config, layer_idx: int) -> list[int]:
    """Original head indices removed from `layer_idx` according to `config.pruned_heads` (JSON keys are strings)."""
    raw = getattr(config, "pruned_heads", None) or {}
    value = raw.get(layer_idx, raw.get(str(layer_idx), []))
    return sorted(int(h) for h in value)


def layer_intermediate_size(config, layer_idx: int) -> int:
    """MLP width of `layer_idx`: `config.intermediate_sizes[layer_idx]` when recorded, else `intermediate_size`."""
    sizes = getattr(config, "intermediate_sizes", None)
    return int(sizes[layer_idx]) if sizes is not None else int(config.intermediate_size)


def pruned_layer_shape(config, layer_idx: int) -> tuple[int, int, int]:
    """(query heads, kv heads, MLP width) of one layer of a native config after structured pruning.

    Raises `ValueError` when the recorded heads split a grouped-query group (a checkpoint we never write).
    """
    n_heads = int(config.num_attention_heads)
    n_kv = int(getattr(config, "num_key_value_heads", None) or n_heads)
    group = n_heads // n_kv
    pruned = layer_pruned_heads(config, layer_idx)
    if group > 1 and (len(pruned) % group or any({g * group + i for i in range(group)} - set(pruned)
                                                 for g in {h // group for h in pruned})):
        raise ValueError(
            f"config.pruned_heads[{layer_idx}]={pruned} does not remove whole kv groups of size {group}; "
            "grouped-query checkpoints can only lose whole groups"
        )
    return n_heads - len(pruned), n_kv - len(pruned) // group, layer_intermediate_size(config, layer_idx)


def _linear_like(old: nn.Linear, in_features: int, out_features: int) -> nn.Linear:
    return nn.Linear(
        in_features, out_features, bias=old.bias is not None, device=old.weight.device, dtype=old.weight.dtype
    )


def resize_native_layer(layer: nn.Module, config, layer_idx: int) -> None:
    """Rebuild the projections of a native Llama/Qwen2 decoder layer at the pruned shapes recorded in `config`.

    Weights of resized projections are fresh (they are about to be loaded); untouched projections are kept.
    """
    n_heads, n_kv, width = pruned_layer_shape(config, layer_idx)
    attn, mlp = layer.self_attn, layer.mlp
    hd = attn.head_dim
    hidden = config.hidden_size
    if attn.q_proj.out_features != n_heads * hd:
        attn.q_proj = _linear_like(attn.q_proj, hidden, n_heads * hd)
        attn.k_proj = _linear_like(attn.k_proj, hidden, n_kv * hd)
        attn.v_proj = _linear_like(attn.v_proj, hidden, n_kv * hd)
        attn.o_proj = _linear_like(attn.o_proj, n_heads * hd, hidden)
        attn.num_key_value_groups = n_heads // n_kv  # unchanged by whole-group removal
    if mlp.down_proj.in_features != width:
        mlp.gate_proj = _linear_like(mlp.gate_proj, hidden, width)
        mlp.up_proj = _linear_like(mlp.up_proj, hidden, width)
        mlp.down_proj = _linear_like(mlp.down_proj, width, hidden)
        mlp.intermediate_size = width


# ---------------------------------------------------------------------------------------------------------------------
# the replacement classes
# ---------------------------------------------------------------------------------------------------------------------
class _CountsParentInstances(type):
    """Metaclass: `isinstance(x, Replacement)` is `isinstance(x, Parent)` (see the module docstring)."""

    def __instancecheck__(cls, instance) -> bool:
        return isinstance(instance, cls.__bases__[0])

    def __subclasscheck__(cls, subclass) -> bool:
        return issubclass(subclass, cls.__bases__[0])


def make_pruned_layer_class(parent: type[nn.Module]) -> type[nn.Module]:
    """A subclass of the native decoder layer `parent` that builds the pruned shapes recorded in its config."""

    def __init__(self, config, layer_idx, *args, **kwargs):
        parent.__init__(self, config, layer_idx, *args, **kwargs)
        if getattr(config, "pruned_heads", None) or getattr(config, "intermediate_sizes", None) is not None:
            resize_native_layer(self, config, layer_idx)

    # Same name as the parent so name-based tooling (`_no_split_modules`, device maps, recorders) is unaffected.
    cls = _CountsParentInstances(parent.__name__, (parent,), {"__init__": __init__, "__module__": __name__})
    cls.__qualname__ = parent.__name__
    cls.__doc__ = f"{parent.__name__} that honours `pruned_heads` / `intermediate_sizes` (optimum-sinkprune)."
    return cls


# The replacements are module-level constants named like their parents, so pickling a loaded model finds them.
LlamaDecoderLayer = make_pruned_layer_class(modeling_llama.LlamaDecoderLayer)
Qwen2DecoderLayer = make_pruned_layer_class(modeling_qwen2.Qwen2DecoderLayer)
REPLACEMENTS = (LlamaDecoderLayer, Qwen2DecoderLayer)


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


def unregister_pruned_loading() -> None:
    """Undo `register_pruned_loading` (only the replacements it registered)."""
    from transformers.monkey_patching import get_patch_mapping, unregister_patch_mapping

    mapping = get_patch_mapping()
    ours = [key for key, cls in mapping.items() if getattr(cls, "__module__", None) == __name__]
    if ours:
        unregister_patch_mapping(ours)


__all__ = [
    "LlamaDecoderLayer",
    "Qwen2DecoderLayer",
    "layer_intermediate_size",
    "layer_pruned_heads",
    "make_pruned_layer_class",
    "pruned_layer_shape",
    "register_pruned_loading",
    "resize_native_layer",
    "unregister_pruned_loading",
]
