# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The architecture adapter interface: the only place in optimum-sinkprune that knows module paths."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

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


class ModelAdapter:
    """Knows one architecture family: blocks, projections by role, heads, rotary, mask token, causality, logit shift.

    Adapters are stateless apart from the model type they serve; every method takes the model (or a block).
    Subclasses set the class attributes and implement `blocks_path`, `layout`, `rotary_cos_sin` and `matches`.
    """

    name: str = ""
    model_types: tuple[str, ...] = ()
    is_diffusion: bool = True
    is_causal: bool = False
    shifts_logits: bool = False

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

    def attention_module(self, block: nn.Module) -> nn.Module:
        return block.get_submodule(self.layout.attention) if self.layout.attention else block

    def mlp_module(self, block: nn.Module) -> nn.Module:
        return block.get_submodule(self.layout.mlp) if self.layout.mlp else block

    def input_norm(self, block: nn.Module) -> nn.Module:
        return block.get_submodule(self.layout.input_norm)

    def post_attention_norm(self, block: nn.Module) -> nn.Module:
        return block.get_submodule(self.layout.post_norm)

    # ---- heads ---------------------------------------------------------------------------------
    def head_dim(self, model: nn.Module) -> int:
        config = model.config
        explicit = getattr(config, "head_dim", None)
        return int(explicit) if explicit else config.hidden_size // config.num_attention_heads

    def original_num_heads(self, model: nn.Module) -> int:
        return int(model.config.num_attention_heads)

    def original_num_kv_heads(self, model: nn.Module) -> int:
        return int(getattr(model.config, "num_key_value_heads", None) or model.config.num_attention_heads)

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
        """Write the pruned structure into `model.config` (keys the model classes read before loading weights)."""
        raise NotImplementedError


def describe(model: nn.Module) -> str:
    config = getattr(model, "config", None)
    return f"{type(model).__name__} (model_type={getattr(config, 'model_type', None)!r})"
