# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The architecture adapter interface: the only place in optimum-sinkprune that knows module paths."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from .surgery import linear_like, sliced_linear, zero_linear_

# Projection roles every adapter maps to module attributes.
ATTENTION_ROLES = ("q", "k", "v", "o")
MLP_ROLES = ("gate", "up", "down")
ALL_ROLES = ATTENTION_ROLES + MLP_ROLES


class UnsupportedModelError(ValueError):
    """Raised for a model no adapter recognises; the message lists the supported model types."""


class MissingMaskTokenError(ValueError):
    """Raised when neither the config nor the tokenizer defines a mask token."""


@dataclass(frozen=True)
class BlockLayout:
    """Attribute paths inside one transformer block (relative to the block module)."""

    attention: str  # the module that owns q/k/v/o ("" when they sit on the block itself)
    mlp: str  # the module that owns gate/up/down ("" when on the block)
    input_norm: str  # pre-attention norm
    post_norm: str  # pre-MLP norm
    projections: dict[str, str]  # role -> attribute path relative to the block


@dataclass(frozen=True)
class NoiseDefaults:
    """A family's default calibration noise: the step schedule ("ladder": t = s/K, or "uniform") and the positions
    never masked ("none", "first", "first_last"). `calibration.noise.NoiseSchedule` validates and applies them."""

    schedule: str = "ladder"
    protected: str = "none"


class ModelAdapter:
    """Knows one architecture family: blocks, projections by role, heads, rotary, mask token, causality, logit shift,
    and every module path and attribute name that surgery touches.

    Adapters are stateless apart from the model type they serve; every method takes the model (or a block, or a
    config). Subclasses set the class attributes and implement `blocks_path`, `layout`, `rotary_cos_sin`.
    """

    name: str = ""
    model_types: tuple[str, ...] = ()
    # the transformers Auto class that loads this family with the head the methods need (the loader asks for it)
    auto_model_class: str = "AutoModelForCausalLM"
    is_diffusion: bool = True
    is_causal: bool = False
    shifts_logits: bool = False
    # the family's own lm-eval likelihood protocol ("llada": exact-count masking; "dream": stratified Bernoulli)
    likelihood_protocol: str = "llada"
    # True when the model class samples with its own generate() (DiffusionGemma), so optimum_sinkprune's
    # masked-diffusion sampler (and its sampler_config.json) does not serve it
    own_sampler: bool = False

    # ---- recognition -------------------------------------------------------------------------
    @classmethod
    def matches(cls, model: nn.Module) -> bool:
        """True when `model` (config + module tree) belongs to this family."""
        config = getattr(model, "config", None)
        return getattr(config, "model_type", None) in cls.model_types and cls._tree_matches(model)

    @classmethod
    def _tree_matches(cls, model: nn.Module) -> bool:
        try:
            module = model.get_submodule(cls.blocks_path)
        except AttributeError:
            return False
        return isinstance(module, nn.ModuleList)

    # ---- module tree ---------------------------------------------------------------------------
    blocks_path: str = ""
    layout: BlockLayout
    # Attributes of the attention module that follow its head counts ("heads", "kv_heads" or "groups"), and of the
    # MLP module that follow its width; `set_head_count` / `set_mlp_width` update those a module has.
    head_count_attributes: tuple[tuple[str, str], ...] = (
        ("num_heads", "heads"),
        ("num_kv_heads", "kv_heads"),
        ("num_key_value_heads", "kv_heads"),
        ("num_key_value_groups", "groups"),
    )
    mlp_width_attributes: tuple[str, ...] = ("intermediate_size",)
    # The attention module's score scale attribute (1/sqrt(head_dim) when a module has none).
    scaling_attribute: str = "scaling"
    # Post-projection query/key norms on the block and the config key that clips q/k (LLaDA's Hub code), if any.
    qk_norm_attributes: tuple[str, str] | None = None
    qk_clip_config_key: str | None = None
    # Config key that `record_structure` writes the per-layer MLP widths to.
    mlp_widths_key: str = ""
    # True when the family's native classes build a recorded pruned structure on reload only through the module
    # replacements of `models.pruned_loading`: the structured removal registers them once it records a structure.
    needs_pruned_loading: bool = False

    def blocks(self, model: nn.Module) -> nn.ModuleList:
        """The transformer blocks, in order."""
        return model.get_submodule(self.blocks_path)

    def num_layers(self, model: nn.Module) -> int:
        return len(self.blocks(model))

    def block_name(self, index: int) -> str:
        """Fully qualified module name of block `index` (as in `model.named_modules()`)."""
        return f"{self.blocks_path}.{index}"

    def projection(self, block: nn.Module, role: str) -> nn.Linear:
        """The linear layer playing `role` (one of q, k, v, o, gate, up, down) in `block`."""
        if role not in self.layout.projections:
            raise ValueError(f"role={role!r} is not one of {list(self.layout.projections)}")
        return block.get_submodule(self.layout.projections[role])

    def projections(self, block: nn.Module) -> dict[str, nn.Linear]:
        return {role: self.projection(block, role) for role in self.layout.projections}

    def projection_name(self, index: int, role: str) -> str:
        """Fully qualified module name of the `role` projection in block `index`."""
        return f"{self.block_name(index)}.{self.layout.projections[role]}"

    def linear_layers(self, model: nn.Module) -> dict[str, nn.Linear]:
        """Every prunable linear layer inside the blocks, by fully qualified name, in forward order.

        Embeddings and the LM head are never included."""
        out: dict[str, nn.Linear] = {}
        for i, block in enumerate(self.blocks(model)):
            for role in ALL_ROLES:
                out[self.projection_name(i, role)] = self.projection(block, role)
        return out

    def role_of(self, name: str) -> str:
        """The role of a fully qualified projection name (inverse of `projection_name`)."""
        for role, path in self.layout.projections.items():
            if name.endswith("." + path):
                return role
        raise ValueError(f"{name!r} is not a block projection of a {self.name} model")

    def locate(self, name: str) -> tuple[int, str]:
        """(block index, role) of a fully qualified projection module name or one of its parameter names.

        Args:
            name (`str`): e.g. `projection_name(3, "q")` or that name followed by `.weight` / `.bias`.

        Returns:
            `tuple[int, str]`: the block index and the projection role (q, k, v, o, gate, up, down).

        Raises:
            `ValueError`: `name` is not a projection (or projection parameter) inside the blocks.
        """
        prefix = self.blocks_path + "."
        index, _, rest = name[len(prefix):].partition(".") if name.startswith(prefix) else ("", "", "")
        if index.isdigit():
            for role, path in self.layout.projections.items():
                if rest == path or (rest.startswith(path + ".") and "." not in rest[len(path) + 1:]):
                    return int(index), role
        raise ValueError(
            f"name={name!r} is not a block projection (or its parameter) of a {self.name} model; projection names "
            f"look like {self.projection_name(0, 'q')!r}"
        )

    def input_group(self, role: str) -> str:
        """Label shared by the roles of one block that read the same input tensor (q/k/v, o, gate/up, down)."""
        if role not in self.layout.projections:
            raise ValueError(f"role={role!r} is not one of {list(self.layout.projections)}")
        return {"q": "attention input", "k": "attention input", "v": "attention input", "o": "attention output",
                "gate": "mlp input", "up": "mlp input", "down": "mlp hidden"}[role]

    # ---- surgery ---------------------------------------------------------------------------------------------
    def replace_projection(self, block: nn.Module, role: str, new_linear: nn.Module) -> None:
        """Put `new_linear` in place of the `role` projection of `block`."""
        if role not in self.layout.projections:
            raise ValueError(f"role={role!r} is not one of {list(self.layout.projections)}")
        if not isinstance(new_linear, nn.Module):
            raise ValueError(f"new_linear must be an nn.Module, got {type(new_linear).__name__}")
        parent_path, _, attr = self.layout.projections[role].rpartition(".")
        parent = block.get_submodule(parent_path) if parent_path else block
        setattr(parent, attr, new_linear)

    def slice_projection(
        self, block: nn.Module, role: str, *, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None
    ) -> nn.Linear:
        """Replace the `role` projection by a copy keeping output `rows` / input `cols` only; returns the new layer."""
        new = sliced_linear(self.projection(block, role), rows=rows, cols=cols)
        self.replace_projection(block, role, new)
        return new

    def zero_projection(
        self, block: nn.Module, role: str, *, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None
    ) -> None:
        """Zero output `rows` (weight and bias) / input `cols` of the `role` projection in place; shapes stay."""
        zero_linear_(self.projection(block, role), rows=rows, cols=cols)

    def set_head_count(self, block: nn.Module, n_heads: int, n_kv_heads: int) -> None:
        """Update the attention module's head-count attributes after its projections changed shape.

        Whole-group removal keeps the group size, so the kv-group count is unchanged by construction."""
        attention = self.attention_module(block)
        values = {"heads": n_heads, "kv_heads": n_kv_heads}
        if n_kv_heads:
            values["groups"] = n_heads // n_kv_heads
        for attr, kind in self.head_count_attributes:
            if kind in values and hasattr(attention, attr):
                setattr(attention, attr, values[kind])

    def set_mlp_width(self, block: nn.Module, width: int) -> None:
        """Update the MLP module's width attributes after its projections changed shape."""
        mlp = self.mlp_module(block)
        for attr in self.mlp_width_attributes:
            if hasattr(mlp, attr):
                setattr(mlp, attr, int(width))

    def resize_block(
        self, block: nn.Module, *, hidden_size: int, head_dim: int, num_heads: int, num_kv_heads: int, mlp_width: int
    ) -> None:
        """Give `block` freshly initialised projections of the given shapes where its current ones differ (reload of
        a structurally pruned checkpoint: the weights are loaded afterwards). Matching projections are kept."""
        if self.projection(block, "q").out_features != num_heads * head_dim:
            shapes = {"q": (hidden_size, num_heads * head_dim), "k": (hidden_size, num_kv_heads * head_dim),
                      "v": (hidden_size, num_kv_heads * head_dim), "o": (num_heads * head_dim, hidden_size)}
            for role, (fan_in, fan_out) in shapes.items():
                self.replace_projection(block, role, linear_like(self.projection(block, role), fan_in, fan_out))
            self.set_head_count(block, num_heads, num_kv_heads)
        if self.projection(block, "down").in_features != mlp_width:
            shapes = {"gate": (hidden_size, mlp_width), "up": (hidden_size, mlp_width),
                      "down": (mlp_width, hidden_size)}
            for role, (fan_in, fan_out) in shapes.items():
                self.replace_projection(block, role, linear_like(self.projection(block, role), fan_in, fan_out))
            self.set_mlp_width(block, mlp_width)

    # ---- attention maths the probe recomputes --------------------------------------------------------------
    def qk_postprocess(
        self, block: nn.Module, q: torch.Tensor, k: torch.Tensor, *, config=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """What the family's attention does to projected queries/keys before rotary: the block's q/k norms (when it
        has both) and clipping to ±`config.<qk_clip_config_key>` (when set).

        Args:
            block (`nn.Module`): the transformer block the projections belong to.
            q, k (`torch.Tensor`): the q/k projection outputs [batch, seq, width].
            config (*optional*): the model config (clipping is read from it; default: `block.config` if any).

        Returns:
            `tuple[torch.Tensor, torch.Tensor]`: the processed (q, k).
        """
        if self.qk_norm_attributes is not None:
            q_norm, k_norm = (getattr(block, name, None) for name in self.qk_norm_attributes)
            if q_norm is not None and k_norm is not None:
                q, k = q_norm(q), k_norm(k)
        if self.qk_clip_config_key is not None:
            config = config if config is not None else getattr(block, "config", None)
            clip = getattr(config, self.qk_clip_config_key, None)
            if clip is not None:
                q, k = q.clamp(-clip, clip), k.clamp(-clip, clip)
        return q, k

    def attention_scaling(self, block: nn.Module, head_dim: int) -> float:
        """The score scale of `block`'s attention (its own attribute, else 1/sqrt(head_dim))."""
        attention = self.attention_module(block)
        return float(getattr(attention, self.scaling_attribute, None) or head_dim**-0.5)

    def noise_defaults(self) -> NoiseDefaults:
        """The calibration noise this family uses unless the config says otherwise: the ladder schedule with nothing
        protected (LLaDA's, also MMaDA's); families whose paper code noises differently override it (Dream)."""
        return NoiseDefaults()

    def sequence_framing(self, model: nn.Module, tokenizer=None) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """The tokens that open and close every input of this family as it saw text in training (BERT family:
        ([CLS],), ([SEP],)), or None when the family has no framing of its own (the default): inputs cut from text
        then open with the BOS their builder's rule gives (`calibration.data.input_framing`), and the diffusion
        sampler adds nothing to its canvas.

        Args:
            model (`nn.Module`): a model of this family (its config may name the framing ids).
            tokenizer (*optional*): its tokenizer (asked first for the ids).

        Returns:
            `tuple[tuple[int, ...], tuple[int, ...]] | None`: (opening ids, closing ids), or None.
        """
        return None

    def check_loaded_head(self, model: nn.Module, missing_keys) -> None:
        """Raise when `from_pretrained` freshly initialised a head the family needs (its keys are among
        `missing_keys`, as `output_loading_info=True` lists them); by default nothing is checked."""

    def block_kwargs(self, model: nn.Module, index: int, kwargs: dict) -> dict:
        """The keyword inputs of block `index`, given those block 0 received (`kwargs`): the block-sequential
        calibration records block 0's inputs once and replays them to every block. Families whose layers differ
        (sliding-window vs full attention: their own mask and rotary table) rebuild what differs; by default every
        block takes block 0's inputs."""
        return kwargs

    def calibration_forward(self, model: nn.Module, input_ids: torch.Tensor, **kwargs):
        """The forward the calibration runs on token ids [b, seq] (its hooks stop it at or after the blocks); a
        family whose forward takes other inputs (an encoder context and a decoder canvas) overrides it."""
        return model(input_ids=input_ids, use_cache=False, **kwargs)

    def check_calibration_ids(self, model: nn.Module, input_ids: torch.Tensor) -> None:
        """Raise (before any calibration) when clean calibration windows [n, seq] do not suit the family; by default
        any token ids do."""

    def noise_token_id(self, model: nn.Module, tokenizer=None) -> int | None:
        """The id the calibration noise writes at noised positions: the mask token (`mask_token_id`); None for a
        family whose forward process draws its replacement tokens (it overrides `calibration_noise`).

        Raises:
            MissingMaskTokenError: the family noises with a mask token and neither config nor tokenizer has one.
        """
        return self.mask_token_id(model, tokenizer)

    def calibration_noise(self, model: nn.Module, samples: torch.Tensor, schedule, token_id: int | None, *,
                          batch_size: int = 1,
                          attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The noised calibration windows of clean `samples` [n, seq] at `schedule`'s steps: `(noisy [n, steps,
        seq], t [n, steps])` on CPU. By default the masked-diffusion forward process (`NoiseSchedule.noised`);
        families with another forward process (block diffusion: only the canvas is noised) override it.

        Args:
            schedule (`NoiseSchedule`): steps, t, protected positions and seed.
            token_id (`int`): what `noise_token_id` returned.
            batch_size (`int`): the forwards' batch size (the "uniform" schedule's stratification reads it).
            attention_mask (`torch.Tensor`, *optional*): [n, seq] padding mask of per-sample rows: padding is never
                noised and a padded row is noised as the sample alone (`calibration.noise`).

        Raises:
            ValueError: no mask token was given.
        """
        if token_id is None:
            raise ValueError(f"{self.name} calibration noise writes the mask token: give a noise schedule and "
                             "mask_token_id (got mask_token_id=None)")
        return schedule.noised(samples, token_id, batch_size=batch_size, attention_mask=attention_mask)

    def observation_context(self, model: nn.Module, modules) -> AbstractContextManager:
        """A context manager the calibration pipeline holds while observers' input hooks on `modules` are active:
        it makes the forward reach observed modules the model does not call itself (a MoE adapter replays each
        expert's routed tokens through its per-expert views). By default every observed module is called by the
        forward: nothing to do."""
        return nullcontext()

    def observed_positions(self, model: nn.Module, seq_len: int) -> slice:
        """The positions of a calibration window [seq_len] whose activations the blocks' hooks see (and which the
        sink weights σ weight): every one by default; a decoder that denoises only the window's last canvas sees
        those."""
        return slice(0, seq_len)

    def check_structured_support(self, model: nn.Module) -> None:
        """Raise (before any change) when structured pruning does not support this family; every family with
        `record_structure` does."""

    # ---- the names themselves --------------------------------------------------------------------------------
    @classmethod
    def known_names(cls) -> dict[str, str]:
        """Every module path and attribute name this adapter knows, mapped to the adapter method that replaces a
        direct use of it (read by the test that keeps these names out of the rest of the package)."""
        out: dict[str, str] = {}
        if cls.blocks_path:
            out[cls.blocks_path] = "blocks(model)"
        layout = getattr(cls, "layout", None)
        if layout is not None:
            for path in layout.projections.values():
                for part in path.split("."):
                    out.setdefault(part, "projection(block, role) / replace_projection(block, role, new_linear)")
            for part, method in ((layout.attention, "attention_module(block)"), (layout.mlp, "mlp_module(block)"),
                                 (layout.input_norm, "input_norm(block)"),
                                 (layout.post_norm, "post_attention_norm(block)")):
                if part:
                    out[part] = method
        for attr, _ in cls.head_count_attributes:
            out[attr] = "set_head_count(block, n_heads, n_kv_heads)"
        for attr in cls.mlp_width_attributes:
            out[attr] = "set_mlp_width(block, width)"
        out[cls.scaling_attribute] = "attention_scaling(block, head_dim)"
        for attr in (cls.qk_norm_attributes or ()) + ((cls.qk_clip_config_key,) if cls.qk_clip_config_key else ()):
            out[attr] = "qk_postprocess(block, q, k)"
        if cls.mlp_widths_key:
            out[cls.mlp_widths_key] = "record_structure(model, pruned_heads, mlp_widths)"
        return out

    def attention_module(self, block: nn.Module) -> nn.Module:
        return block.get_submodule(self.layout.attention) if self.layout.attention else block

    def mlp_module(self, block: nn.Module) -> nn.Module:
        return block.get_submodule(self.layout.mlp) if self.layout.mlp else block

    def input_norm(self, block: nn.Module) -> nn.Module:
        return block.get_submodule(self.layout.input_norm)

    def post_attention_norm(self, block: nn.Module) -> nn.Module:
        return block.get_submodule(self.layout.post_norm)

    # ---- heads ---------------------------------------------------------------------------------
    def config_head_dim(self, config) -> int:
        """Head size from a config of this family."""
        explicit = getattr(config, "head_dim", None)
        return int(explicit) if explicit else config.hidden_size // config.num_attention_heads

    def config_num_heads(self, config) -> int:
        """Query heads per layer of the unpruned model, from a config of this family."""
        return int(config.num_attention_heads)

    def config_num_kv_heads(self, config) -> int:
        """Key/value heads per layer of the unpruned model, from a config of this family."""
        return int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)

    def head_dim(self, model: nn.Module) -> int:
        return self.config_head_dim(model.config)

    def original_num_heads(self, model: nn.Module) -> int:
        return self.config_num_heads(model.config)

    def original_num_kv_heads(self, model: nn.Module) -> int:
        return self.config_num_kv_heads(model.config)

    def layer_head_geometry(self, model: nn.Module, layer: int) -> tuple[int, int, int]:
        """(query heads, kv heads, head size) of `layer` in the unpruned model: the same for every layer unless a
        family mixes layer kinds (DiffusionGemma's sliding and full-attention layers)."""
        return self.original_num_heads(model), self.original_num_kv_heads(model), self.head_dim(model)

    def num_heads(self, model: nn.Module, layer: int) -> int:
        """Query heads currently present in `layer` (after any structured pruning)."""
        block = self.blocks(model)[layer]
        return self.projection(block, "q").out_features // self.head_dim(model)

    def num_kv_heads(self, model: nn.Module, layer: int) -> int:
        block = self.blocks(model)[layer]
        return self.projection(block, "k").out_features // self.head_dim(model)

    def pruned_heads(self, model: nn.Module) -> dict[int, list[int]]:
        """Heads removed so far, per layer, as original indices."""
        raw = getattr(model.config, "pruned_heads", None) or {}
        return {int(k): sorted(int(i) for i in v) for k, v in raw.items()}

    # ---- positions and tokens -----------------------------------------------------------------
    def rotary_cos_sin(
        self, model: nn.Module, position_ids: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """cos/sin [batch, seq, head_dim] in the rotate-half convention, or None when the model has no rotary."""
        raise NotImplementedError

    def max_length(self, model: nn.Module) -> int:
        config = model.config
        return int(getattr(config, "max_sequence_length", None) or config.max_position_embeddings)

    def mask_token_id(self, model: nn.Module, tokenizer=None) -> int:
        """The [MASK] id, from the config (`mask_token_id`) or else the tokenizer's `mask_token_id`."""
        value = getattr(model.config, "mask_token_id", None)
        if value is None and tokenizer is not None:
            value = getattr(tokenizer, "mask_token_id", None)
        if value is None:
            raise MissingMaskTokenError(
                f"{self.name} model has no mask token: looked for `mask_token_id` in the model config "
                f"({type(model.config).__name__}) and `mask_token_id` on the tokenizer "
                f"({type(tokenizer).__name__ if tokenizer is not None else 'none given'}); set one of them"
            )
        return int(value)

    def shift_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-position predictions from raw logits [batch, seq, vocab] (Dream: logits of i come from i - 1)."""
        if not self.shifts_logits:
            return logits
        return torch.cat([logits[:, :1], logits[:, :-1]], dim=1)

    def logits(self, model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        """Run `model` and return per-position logits (shift applied)."""
        out = model(input_ids=input_ids, attention_mask=attention_mask)
        logits = out.logits if hasattr(out, "logits") else out[0]
        return self.shift_logits(logits)

    # ---- structured pruning support --------------------------------------------------------------
    def mlp_width(self, model: nn.Module, layer: int) -> int:
        block = self.blocks(model)[layer]
        return self.projection(block, "down").in_features

    def record_structure(self, model: nn.Module, pruned_heads: dict[int, list[int]], mlp_widths: list[int]) -> None:
        """Write the pruned structure into `model.config` (keys the model classes read before loading weights):
        `pruned_heads` and the per-layer widths under `mlp_widths_key`."""
        if not self.mlp_widths_key:
            raise NotImplementedError(f"{type(self).__name__} declares no mlp_widths_key")
        model.config.pruned_heads = {int(k): sorted(v) for k, v in pruned_heads.items() if v}
        setattr(model.config, self.mlp_widths_key, [int(w) for w in mlp_widths])


def describe(model: nn.Module) -> str:
    config = getattr(model, "config", None)
    return f"{type(model).__name__} (model_type={getattr(config, 'model_type', None)!r})"
