# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""BERT-family masked LMs used as masked-diffusion LMs: transformers' native `BertForMaskedLM`, `RobertaForMaskedLM`
and `ModernBertForMaskedLM`.

A masked LM with a [MASK] token is a masked-diffusion denoiser as it stands: bidirectional attention, one prediction
per position, no logit shift. The family differs from LLaDA/Dream in ways the adapters below absorb:

* **BERT / RoBERTa** (`{bert,roberta}.encoder.layer.{i}`): post-LN blocks (`LayerNorm(x + sublayer(x))` after the
  attention and after the MLP), so q/k/v read the previous block's *normalised output* and the MLP reads the
  normalised attention output; the calibration hooks sit on the projections' inputs, which are exactly those
  tensors. Separate `attention.self.{query,key,value}` and `attention.output.dense`, an **ungated** MLP
  `intermediate.dense` (up) / `output.dense` (down) — there is no gate projection (`has_projection(block, "gate")`
  is False) — biases everywhere, learned absolute positions (added before block 0, so no rotary here) and
  `token_type_ids` (every diffusion input is one segment: `logits` passes zeros explicitly).
* **ModernBERT** (`model.layers.{i}`): pre-LN blocks, rotary positions whose base differs between
  "full_attention" and "sliding_attention" layers, a **packed** `attn.Wqkv` (rows: q | k | v) and a packed gated MLP
  `mlp.Wi` (rows: the activated half | the linear half, `act(Wi_a x) * Wi_b x`), `attn.Wo`, `mlp.Wo`. The roles
  q/k/v and gate/up are row blocks of the packed layers (`PackedRows` views); weight pruning treats each packed
  layer as one linear layer (its rows read one input), structured surgery slices the row blocks.

Sequences are framed as the tokenizer frames them ([CLS] … [SEP], RoBERTa's <s> … </s>); the family's calibration
noise keeps both ends clean (`noise_defaults`: t ~ U(0, 1), "first_last" protected), as these models never saw a
masked [CLS]/[SEP] in pretraining.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .base import ALL_ROLES, BlockLayout, ModelAdapter, NoiseDefaults, UnsupportedModelError
from .surgery import linear_like, sliced_linear, zero_linear_


class MissingMLMHeadError(UnsupportedModelError):
    """Raised for a BERT-family model (or checkpoint) without its masked-LM head."""


@dataclass(frozen=True)
class MaskedLMHead:
    """Where a family keeps its masked-LM head, and how to add one that is missing.

    Args:
        path (`str`): the head's module path in the masked-LM model; its presence tells a masked LM from an encoder
            without one.
        description (`str`): what the head is, for the error that names a missing one.
        base_model_attribute (`str`): the encoder's attribute on the masked-LM model.
        model_class (`str`): the transformers class to load the checkpoint with.
    """

    path: str
    description: str
    base_model_attribute: str
    model_class: str


# ---------------------------------------------------------------------------------------------------------------------
# pure helpers
# ---------------------------------------------------------------------------------------------------------------------
def single_segment_token_type_ids(input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                                  type_vocab_size: int = 2) -> torch.Tensor:
    """The `token_type_ids` of a diffusion input: one segment (all zeros) unless given, then validated.

    A masked-diffusion sequence is one text, never a sentence pair, so every position is segment 0. Relying on the
    model's buffer would give the same zeros; passing them explicitly keeps a tokenizer's pair encoding (segment 1
    after the first [SEP]; out of range for RoBERTa, whose `type_vocab_size` is 1) from leaking in.

    Args:
        input_ids (`torch.Tensor`): [batch, seq] token ids.
        token_type_ids (`torch.Tensor`, *optional*): [batch, seq] segment ids to use instead.
        type_vocab_size (`int`): segments the model's embedding has (`config.type_vocab_size`).

    Returns:
        `torch.LongTensor`: [batch, seq] segment ids on `input_ids`' device.

    Raises:
        `ValueError`: `token_type_ids` of another shape than `input_ids`, or with values outside
            [0, type_vocab_size).
    """
    if token_type_ids is None:
        return torch.zeros_like(input_ids, dtype=torch.long)
    if not isinstance(token_type_ids, torch.Tensor) or tuple(token_type_ids.shape) != tuple(input_ids.shape):
        shape = tuple(token_type_ids.shape) if isinstance(token_type_ids, torch.Tensor) else type(token_type_ids)
        raise ValueError(f"token_type_ids must have the shape of input_ids {tuple(input_ids.shape)}, got {shape}")
    if token_type_ids.numel() and (int(token_type_ids.min()) < 0 or int(token_type_ids.max()) >= type_vocab_size):
        raise ValueError(
            f"token_type_ids must lie in [0, {type_vocab_size}) (config.type_vocab_size), got "
            f"[{int(token_type_ids.min())}, {int(token_type_ids.max())}]; a diffusion input is one segment (zeros)"
        )
    return token_type_ids.to(device=input_ids.device, dtype=torch.long)


def padding_from_mask(mask) -> torch.Tensor | None:
    """The [batch, seq] key padding mask (True = token) behind a bidirectional 4D attention mask, or None.

    transformers' bidirectional masks are the key padding pattern repeated over the query rows: a boolean mask
    (True = attend, sdpa) or an additive float mask (0 = attend, eager); None means no padding.

    Raises:
        `ValueError`: a mask that is neither None nor a [batch, 1, query, key] tensor (e.g. flex attention's
            BlockMask).
    """
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor) or mask.dim() != 4:
        raise ValueError(f"attention_mask must be None or a [batch, 1, query, key] tensor, got {type(mask).__name__}"
                         f"{tuple(mask.shape) if isinstance(mask, torch.Tensor) else ''}")
    row = mask[:, 0, 0, :]
    return row if row.dtype == torch.bool else row == 0


def part_bounds(widths: tuple[int, ...], index: int) -> tuple[int, int]:
    """[start, stop) rows of part `index` of a packed projection whose parts have `widths` rows."""
    start = sum(widths[:index])
    return start, start + widths[index]


class PackedRows:
    """One role's row block of a packed linear layer (ModernBERT's q | k | v and gate | up): reads like the role's
    own `nn.Linear` (`weight`, `bias`, `in_features`, `out_features` are views of the packed parameters) and forwards
    `register_forward_hook` to the packed layer with the output cut to the role's rows.

    Not a module: it is never put into the model; surgery goes through the adapter (`slice_projection`,
    `zero_projection`), which changes the packed layer itself.
    """

    def __init__(self, packed: nn.Linear, start: int, stop: int):
        self.packed = packed
        self.start = int(start)
        self.stop = int(stop)

    @property
    def weight(self) -> torch.Tensor:
        return self.packed.weight[self.start:self.stop]

    @property
    def bias(self) -> torch.Tensor | None:
        return None if self.packed.bias is None else self.packed.bias[self.start:self.stop]

    @property
    def in_features(self) -> int:
        return self.packed.in_features

    @property
    def out_features(self) -> int:
        return self.stop - self.start

    def register_forward_hook(self, hook: Callable) -> torch.utils.hooks.RemovableHandle:
        """`hook(self, args, output_rows)` after every forward of the packed layer (a removable handle)."""
        start, stop = self.start, self.stop

        def packed_hook(_module, args, output):
            return hook(self, args, output[..., start:stop])

        return self.packed.register_forward_hook(packed_hook)

    def __repr__(self) -> str:
        return f"PackedRows(rows {self.start}:{self.stop} of {self.packed!r})"


# ---------------------------------------------------------------------------------------------------------------------
# shared behaviour of the family
# ---------------------------------------------------------------------------------------------------------------------
class _MaskedLMAdapter(ModelAdapter):
    """What every BERT-family masked LM shares: recognition with a clear error for a missing MLM head, per-layer MLP
    widths in an extra config key, the family's noise defaults."""

    is_diffusion = True
    is_causal = False
    shifts_logits = False
    auto_model_class = "AutoModelForMaskedLM"
    # the MLP modules keep no width attribute: their width is their projections' shape
    mlp_width_attributes = ()
    # Norm placement: "post" (LayerNorm(x + sublayer(x)), BERT/RoBERTa) or "pre" (ModernBERT).
    norm_placement = "pre"
    # Native config classes validate their global shape fields, so per-layer MLP widths go into this extra key,
    # read by the native-class reload patch (optimum_sinkprune.models.pruned_loading).
    mlp_widths_key = "intermediate_sizes"
    # the native classes read that record only through the module replacements (see `ModelAdapter`)
    needs_pruned_loading = True
    mlm_head: MaskedLMHead

    @property
    def mlp_gated(self) -> bool:
        """Whether the MLP is gated (`act(gate x) * up x`) rather than `act(up x)`."""
        return "gate" in self.layout.projections

    @classmethod
    def _tree_matches(cls, model: nn.Module) -> bool:
        if super()._tree_matches(model) and cls._has_mlm_head(model):
            if getattr(model.config, "is_decoder", False):
                raise UnsupportedModelError(
                    f"{type(model).__name__} has config.is_decoder=True (causal self-attention); a masked-diffusion "
                    f"LM attends both ways: load the checkpoint with AutoModelForMaskedLM (is_decoder=False)"
                )
            return True
        raise MissingMLMHeadError(cls.missing_head_message(type(model).__name__))

    @classmethod
    def _has_mlm_head(cls, model: nn.Module) -> bool:
        try:
            model.get_submodule(cls.mlm_head.path)
        except AttributeError:
            return False
        return True

    @classmethod
    def missing_head_message(cls, what: str) -> str:
        """The error text for `what` (a class name or checkpoint) lacking the masked-LM head."""
        head = cls.mlm_head
        return (
            f"{what} has no masked-LM head: `{head.path}` ({head.description}) is missing, and a "
            f"masked-diffusion LM needs it to predict the masked tokens. Add one: load the checkpoint with "
            f"AutoModelForMaskedLM (it builds {head.model_class} and initialises the missing head), or build "
            f"{head.model_class}(config) and load the encoder weights into its `{head.base_model_attribute}`; "
            f"then train the head (e.g. masked-token loss at t ~ U(0, 1)) before pruning or sampling"
        )

    def check_loaded_head(self, model: nn.Module, missing_keys) -> None:
        """Raise when `from_pretrained` initialised the masked-LM head from scratch (its weights were missing from the
        checkpoint: `output_loading_info=True` lists them in `missing_keys`).

        Raises:
            `MissingMLMHeadError`: a key of the head is among `missing_keys`.
        """
        prefix = self.mlm_head.path + "."
        missing = sorted(k for k in missing_keys or () if k.startswith(prefix))
        if missing:
            raise MissingMLMHeadError(
                self.missing_head_message(f"the checkpoint of {type(model).__name__}")
                + f" (freshly initialised, not in the checkpoint: {missing[:4]}{' ...' if len(missing) > 4 else ''})"
            )

    @classmethod
    def known_names(cls) -> dict[str, str]:
        out = super().known_names()
        out[cls.mlm_head.path] = "matches(model) / check_loaded_head(model, missing_keys)"
        return out

    def framing_token_ids(self, model: nn.Module, tokenizer=None) -> tuple[int, int]:
        """The ([CLS], [SEP]) ids that open and close a sequence (RoBERTa: <s>, </s>): the tokenizer's
        `cls_token_id` / `sep_token_id` (else its BOS / EOS), else the config's.

        Raises:
            `ValueError`: neither the tokenizer nor the config names one of them.
        """
        def first_of(*names):
            for source in (tokenizer, model.config):
                for name in names:
                    value = getattr(source, name, None) if source is not None else None
                    if value is not None:
                        return int(value)
            return None

        cls_id, sep_id = first_of("cls_token_id", "bos_token_id"), first_of("sep_token_id", "eos_token_id")
        if cls_id is None or sep_id is None:
            given = type(tokenizer).__name__ if tokenizer is not None else "none given"
            raise ValueError(
                f"{self.name} framing needs the [CLS] and [SEP] ids: looked for cls_token_id/bos_token_id and "
                f"sep_token_id/eos_token_id on the tokenizer ({given}) and the model config "
                f"({type(model.config).__name__}); pass the model's tokenizer, or set config.cls_token_id and "
                f"config.sep_token_id"
            )
        return cls_id, sep_id

    def sequence_framing(self, model: nn.Module, tokenizer=None) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(([CLS],), ([SEP],)): every input opens with [CLS] and closes with [SEP] (RoBERTa: <s> … </s>), as in
        pretraining; windows cut from text and the sampler's canvas are framed so (`framing_token_ids`).

        Raises:
            `ValueError`: neither the tokenizer nor the config names the [CLS] / [SEP] ids.
        """
        cls_id, sep_id = self.framing_token_ids(model, tokenizer)
        return (cls_id,), (sep_id,)

    def frame(self, model: nn.Module, input_ids: torch.Tensor, tokenizer=None) -> torch.Tensor:
        """Windows [n, seq] cut from a token stream, framed as the model saw text in pretraining: [CLS] at position 0
        and [SEP] at the last position (the window's first and last body tokens give way). Windows that already
        begin with [CLS] and end with [SEP] are returned unchanged.

        Raises:
            `ValueError`: `input_ids` is not [n, seq] with seq >= 3, or the framing ids are unknown.
        """
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.shape[1] < 3:
            shape = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
            raise ValueError(f"input_ids must be [n, seq] token ids with seq >= 3 to frame, got {shape}")
        (cls_id,), (sep_id,) = self.sequence_framing(model, tokenizer)
        out = input_ids.clone()
        out[:, 0] = cls_id
        out[:, -1] = sep_id
        return out

    def noise_defaults(self) -> NoiseDefaults:
        """t ~ U(0, 1) with both ends of each window ([CLS] / [SEP]) kept clean."""
        return NoiseDefaults(schedule="uniform", protected="first_last")

    def config_mlp_width(self, config, layer_idx: int) -> int:
        """MLP width of `layer_idx` in a config: the recorded per-layer width, else the global one."""
        sizes = getattr(config, self.mlp_widths_key, None)
        return int(sizes[layer_idx]) if sizes is not None else int(config.intermediate_size)

    def has_projection(self, block: nn.Module, role: str) -> bool:
        """Whether `block` has a `role` projection (the ungated MLPs of BERT/RoBERTa have no "gate")."""
        return role in self.layout.projections

    def mlp_input_roles(self) -> tuple[str, ...]:
        """The projections whose output rows are the MLP channels ("gate", "up" — or "up" alone when ungated)."""
        return tuple(r for r in ("gate", "up") if r in self.layout.projections)

    def linear_layers(self, model: nn.Module) -> dict[str, nn.Linear]:
        out: dict[str, nn.Linear] = {}
        for i, block in enumerate(self.blocks(model)):
            for role in ALL_ROLES:
                if self.has_projection(block, role):
                    out[self.projection_name(i, role)] = self.projection(block, role)
        return out

    def projections(self, block: nn.Module) -> dict[str, nn.Linear]:
        return {role: self.projection(block, role) for role in ALL_ROLES if self.has_projection(block, role)}

    def rotary_cos_sin(self, model, position_ids, dtype):
        return None  # learned absolute positions, added before the first block


# ---------------------------------------------------------------------------------------------------------------------
# BERT and RoBERTa: post-LN, ungated MLP, separate projections
# ---------------------------------------------------------------------------------------------------------------------
BERT_LAYOUT = BlockLayout(
    attention="attention.self",
    mlp="intermediate",
    # post-LN: the norm after the attention residual (it feeds the MLP) and the one after the MLP residual (it feeds
    # the next block's q/k/v); there is no norm in front of a sublayer
    input_norm="output.LayerNorm",
    post_norm="attention.output.LayerNorm",
    projections={
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "o": "attention.output.dense",
        "up": "intermediate.dense",
        "down": "output.dense",
    },
)


class BertAdapter(_MaskedLMAdapter):
    """`BertForMaskedLM` (also `BertForPreTraining`, whose first output is the MLM logits)."""

    name = "bert"
    model_types = ("bert",)
    blocks_path = "bert.encoder.layer"
    layout = BERT_LAYOUT
    norm_placement = "post"
    head_count_attributes = (("num_attention_heads", "heads"),)
    head_width_attribute = "all_head_size"  # heads · head size, kept in step with the head count
    mlm_head = MaskedLMHead(
        path="cls.predictions",
        description="BertOnlyMLMHead: dense + GELU + LayerNorm, decoder tied to the word embeddings",
        base_model_attribute="bert", model_class="BertForMaskedLM",
    )

    def set_head_count(self, block: nn.Module, n_heads: int, n_kv_heads: int) -> None:
        super().set_head_count(block, n_heads, n_kv_heads)
        attention = self.attention_module(block)
        if hasattr(attention, self.head_width_attribute):
            setattr(attention, self.head_width_attribute, int(n_heads) * self.config_head_dim(attention.config))

    def slice_projection(self, block, role, *, rows=None, cols=None):
        if not self.has_projection(block, role):
            return None  # an ungated MLP has no gate rows to remove: the up projection carries the channels
        return super().slice_projection(block, role, rows=rows, cols=cols)

    def zero_projection(self, block, role, *, rows=None, cols=None) -> None:
        if self.has_projection(block, role):
            super().zero_projection(block, role, rows=rows, cols=cols)

    def resize_block(self, block, *, hidden_size, head_dim, num_heads, num_kv_heads, mlp_width) -> None:
        """Fresh projections at the pruned shapes (reload of a structurally pruned checkpoint; weights load next)."""
        if self.projection(block, "q").out_features != num_heads * head_dim:
            width = num_heads * head_dim
            for role, (fan_in, fan_out) in {"q": (hidden_size, width), "k": (hidden_size, width),
                                            "v": (hidden_size, width), "o": (width, hidden_size)}.items():
                self.replace_projection(block, role, linear_like(self.projection(block, role), fan_in, fan_out))
            self.set_head_count(block, num_heads, num_kv_heads)
        if self.projection(block, "down").in_features != mlp_width:
            for role, (fan_in, fan_out) in {"up": (hidden_size, mlp_width), "down": (mlp_width, hidden_size)}.items():
                self.replace_projection(block, role, linear_like(self.projection(block, role), fan_in, fan_out))

    def logits(self, model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None):
        """Per-position logits; every input is one segment (`single_segment_token_type_ids`)."""
        token_type_ids = single_segment_token_type_ids(
            input_ids, token_type_ids, int(getattr(model.config, "type_vocab_size", 2) or 1)
        )
        out = model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return out.logits if hasattr(out, "logits") else out[0]

    def calibration_forward(self, model: nn.Module, input_ids: torch.Tensor, **kwargs):
        """The calibration forward: one segment, no cache."""
        return model(input_ids=input_ids, token_type_ids=single_segment_token_type_ids(input_ids), use_cache=False,
                     **kwargs)

    @classmethod
    def known_names(cls) -> dict[str, str]:
        out = super().known_names()
        out[cls.head_width_attribute] = "set_head_count(block, n_heads, n_kv_heads)"
        return out


class RobertaAdapter(BertAdapter):
    """`RobertaForMaskedLM`: BERT's blocks; positions start after the padding index."""

    name = "roberta"
    model_types = ("roberta",)
    blocks_path = "roberta.encoder.layer"
    mlm_head = MaskedLMHead(
        path="lm_head",
        description="RobertaLMHead: dense + GELU + LayerNorm, decoder tied to the word embeddings",
        base_model_attribute="roberta", model_class="RobertaForMaskedLM",
    )

    def max_length(self, model: nn.Module) -> int:
        # RoBERTa numbers positions from padding_idx + 1, so that many embeddings are never used
        config = model.config
        return int(config.max_position_embeddings) - int(config.pad_token_id if config.pad_token_id is not None
                                                         else 1) - 1


# ---------------------------------------------------------------------------------------------------------------------
# ModernBERT: pre-LN, packed projections, gated MLP, rotary
# ---------------------------------------------------------------------------------------------------------------------
MODERNBERT_LAYOUT = BlockLayout(
    attention="attn",
    mlp="mlp",
    input_norm="attn_norm",  # nn.Identity in layer 0 (the embedding norm precedes it)
    post_norm="mlp_norm",
    projections={
        "q": "attn.Wqkv",
        "k": "attn.Wqkv",
        "v": "attn.Wqkv",
        "o": "attn.Wo",
        "gate": "mlp.Wi",
        "up": "mlp.Wi",
        "down": "mlp.Wo",
    },
)
# The parts of each packed projection, in row order.
PACKED_PARTS = {"attn.Wqkv": ("q", "k", "v"), "mlp.Wi": ("gate", "up")}
# Row widths of a packed layer's parts while surgery has changed some parts but not yet the others (removal slices
# q, k and v in turn); an attribute of the layer object, never saved.
_PART_WIDTHS = "_sinkprune_part_widths"


class ModernBertAdapter(_MaskedLMAdapter):
    """`ModernBertForMaskedLM`."""

    name = "modernbert"
    model_types = ("modernbert",)
    blocks_path = "model.layers"
    layout = MODERNBERT_LAYOUT
    head_count_attributes = ()  # the attention infers its head count from Wqkv's shape
    mlm_head = MaskedLMHead(
        path="head",
        description="ModernBertPredictionHead (dense + activation + LayerNorm) followed by `decoder`",
        base_model_attribute="model", model_class="ModernBertForMaskedLM",
    )

    @classmethod
    def _has_mlm_head(cls, model: nn.Module) -> bool:
        return super()._has_mlm_head(model) and isinstance(getattr(model, "decoder", None), nn.Linear)

    # ---- packed projections --------------------------------------------------------------------------------------
    def _packed(self, block: nn.Module, role: str) -> tuple[str, nn.Linear, tuple[str, ...]]:
        if role not in self.layout.projections:
            raise ValueError(f"role={role!r} is not one of {list(self.layout.projections)}")
        path = self.layout.projections[role]
        return path, block.get_submodule(path), PACKED_PARTS.get(path, (role,))

    @staticmethod
    def _part_widths(linear: nn.Linear, parts: tuple[str, ...]) -> tuple[int, ...]:
        widths = getattr(linear, _PART_WIDTHS, None)
        if widths is not None:
            return widths
        return (linear.out_features // len(parts),) * len(parts)

    def projection(self, block: nn.Module, role: str):
        """The `role` projection: a real `nn.Linear` for o / down, a `PackedRows` view of the packed layer for
        q / k / v (rows of `attn.Wqkv`) and gate / up (rows of `mlp.Wi`)."""
        _, linear, parts = self._packed(block, role)
        if len(parts) == 1:
            return linear
        return PackedRows(linear, *part_bounds(self._part_widths(linear, parts), parts.index(role)))

    def linear_layers(self, model: nn.Module) -> dict[str, nn.Linear]:
        """The four real linear layers of each block (Wqkv, attention Wo, Wi, MLP Wo): weight pruning sees a packed
        layer whole (its rows read one input, and every method scores rows or the layer as a unit). `role_of` /
        `locate` answer a packed layer's first part: "q" for Wqkv, "gate" for Wi."""
        out: dict[str, nn.Linear] = {}
        for i, block in enumerate(self.blocks(model)):
            for path in dict.fromkeys(self.layout.projections.values()):
                out[f"{self.block_name(i)}.{path}"] = block.get_submodule(path)
        return out

    def slice_projection(self, block, role, *, rows=None, cols=None):
        """Keep output `rows` (positions within the role's row block) / input `cols` of the `role` projection."""
        path, linear, parts = self._packed(block, role)
        if len(parts) == 1:
            return super().slice_projection(block, role, rows=rows, cols=cols)
        if cols is not None:
            raise ValueError(f"role={role!r} is a row block of the packed {path}; its input columns are shared")
        widths = self._part_widths(linear, parts)
        index = parts.index(role)
        start, stop = part_bounds(widths, index)
        keep = torch.arange(stop - start) if rows is None else rows.to(torch.long).cpu()
        all_rows = torch.cat([torch.arange(*part_bounds(widths, j)) if j != index else keep + start
                              for j in range(len(parts))])
        new = sliced_linear(linear, rows=all_rows)
        new_widths = tuple(len(keep) if j == index else w for j, w in enumerate(widths))
        if len(set(new_widths)) > 1:  # mid-surgery: the other parts follow
            setattr(new, _PART_WIDTHS, new_widths)
        self.replace_packed(block, path, new)
        return PackedRows(new, *part_bounds(new_widths, index))

    def zero_projection(self, block, role, *, rows=None, cols=None) -> None:
        path, linear, parts = self._packed(block, role)
        if len(parts) == 1:
            return super().zero_projection(block, role, rows=rows, cols=cols)
        if cols is not None:
            raise ValueError(f"role={role!r} is a row block of the packed {path}; its input columns are shared")
        start, _ = part_bounds(self._part_widths(linear, parts), parts.index(role))
        if rows is not None:
            zero_linear_(linear, rows=rows.to(torch.long) + start)
        return None

    def replace_projection(self, block: nn.Module, role: str, new_linear: nn.Module) -> None:
        path, _, parts = self._packed(block, role)
        if len(parts) > 1:
            raise ValueError(
                f"role={role!r} is a row block of the packed {path}; replace the whole layer through "
                f"replace_packed(block, {path!r}, linear) or change its rows with slice_projection / zero_projection"
            )
        super().replace_projection(block, role, new_linear)

    def replace_packed(self, block: nn.Module, path: str, new_linear: nn.Linear) -> None:
        """Put `new_linear` in place of a packed layer (`"attn.Wqkv"` or `"mlp.Wi"`)."""
        if path not in PACKED_PARTS:
            raise ValueError(f"path={path!r} is not one of the packed layers {list(PACKED_PARTS)}")
        parent_path, _, attr = path.rpartition(".")
        setattr(block.get_submodule(parent_path), attr, new_linear)

    def resize_block(self, block, *, hidden_size, head_dim, num_heads, num_kv_heads, mlp_width) -> None:
        """Fresh layers at the pruned shapes (reload of a structurally pruned checkpoint; weights load next)."""
        width = num_heads * head_dim
        if self.projection(block, "q").out_features != width:
            wqkv = block.get_submodule("attn.Wqkv")
            self.replace_packed(block, "attn.Wqkv", linear_like(wqkv, hidden_size, 3 * width))
            wo = self.projection(block, "o")
            self.replace_projection(block, "o", linear_like(wo, width, hidden_size))
        if self.projection(block, "down").in_features != mlp_width:
            wi = block.get_submodule("mlp.Wi")
            self.replace_packed(block, "mlp.Wi", linear_like(wi, hidden_size, 2 * mlp_width))
            down = self.projection(block, "down")
            self.replace_projection(block, "down", linear_like(down, mlp_width, hidden_size))

    @staticmethod
    def _settle_part_widths(linear: nn.Linear) -> None:
        # a finished surgery leaves equal part widths behind: the even split of the rows holds again
        if hasattr(linear, _PART_WIDTHS) and len(set(getattr(linear, _PART_WIDTHS))) == 1:
            delattr(linear, _PART_WIDTHS)

    def set_head_count(self, block: nn.Module, n_heads: int, n_kv_heads: int) -> None:
        # shape-inferred head count: only the packed layer's part widths to settle
        self._settle_part_widths(block.get_submodule("attn.Wqkv"))

    def set_mlp_width(self, block: nn.Module, width: int) -> None:
        self._settle_part_widths(block.get_submodule("mlp.Wi"))

    # ---- positions -------------------------------------------------------------------------------------------------
    def layer_types(self, model: nn.Module) -> list[str]:
        """"full_attention" / "sliding_attention" per layer."""
        return list(model.config.layer_types)

    def _rotary(self, model: nn.Module) -> nn.Module:
        # one rotary module beside the layers, holding a table per attention kind
        return model.get_submodule(self.blocks_path.rpartition(".")[0] + ".rotary_emb")

    def rotary_cos_sin(self, model, position_ids, dtype):
        """cos/sin of the full-attention layers' rotary, when every layer is one (the projection-hook capture applies
        one table to all layers and no sliding window).

        Raises:
            `ValueError`: the model has sliding-attention layers (their rotary base and window differ): capture the
                attention mass through the attention interface (`method="interface"`, the default) instead.
        """
        kinds = set(self.layer_types(model))
        if kinds != {"full_attention"}:
            raise ValueError(
                f"{type(model).__name__} mixes layer types {sorted(kinds)} (sliding-window layers have their own "
                "rotary base and window); the projection-hook capture cannot reproduce them: use method='interface'"
            )
        dummy = torch.empty(0, dtype=dtype, device=position_ids.device)
        cos, sin = self._rotary(model)(dummy, position_ids, "full_attention")
        return cos.to(torch.float32), sin.to(torch.float32)

    def block_kwargs(self, model: nn.Module, index: int, kwargs: dict) -> dict:
        """The keyword inputs of block `index`, from those block 0 received (`kwargs`, as the block-sequential
        calibration replays them): a layer of another attention kind gets its own mask (sliding window) and rotary
        table (its own base), built with transformers' own functions.

        Args:
            model (`nn.Module`): the ModernBERT masked LM.
            index (`int`): the block about to run.
            kwargs (`dict`): what block 0 received (`attention_mask`, `position_embeddings`, ...).

        Returns:
            `dict`: `kwargs` itself when block `index` is of block 0's kind, else a copy with both entries rebuilt.
        """
        from transformers.masking_utils import create_bidirectional_mask, create_bidirectional_sliding_window_mask

        kinds = self.layer_types(model)
        cos_sin = kwargs.get("position_embeddings")
        if kinds[index] == kinds[0] or cos_sin is None:
            return kwargs
        cos = cos_sin[0]  # [batch or 1, seq, head_dim] in the hidden states' dtype, on their device
        mask = kwargs.get("attention_mask")
        padding = padding_from_mask(mask)
        # the mask builders read batch, length, dtype and device from their `inputs_embeds` only
        like = cos.new_empty((mask.shape[0] if mask is not None else cos.shape[0], cos.shape[1], 0))
        build = (create_bidirectional_sliding_window_mask if kinds[index] == "sliding_attention"
                 else create_bidirectional_mask)
        new_mask = build(config=model.config, inputs_embeds=like,
                         attention_mask=padding.to(cos.device) if padding is not None else None)
        positions = torch.arange(cos.shape[1], device=cos.device)[None]
        return {**kwargs, "attention_mask": new_mask,
                "position_embeddings": self._rotary(model)(cos, positions, kinds[index])}

    def attention_scaling(self, block: nn.Module, head_dim: int) -> float:
        return float(head_dim) ** -0.5

    def max_length(self, model: nn.Module) -> int:
        return int(model.config.max_position_embeddings)

    @classmethod
    def known_names(cls) -> dict[str, str]:
        out = super().known_names()
        out["rotary_emb"] = "rotary_cos_sin(model, position_ids, dtype)"
        out["layer_types"] = "layer_types(model)"
        return out


__all__ = [
    "BERT_LAYOUT",
    "MODERNBERT_LAYOUT",
    "BertAdapter",
    "MaskedLMHead",
    "MissingMLMHeadError",
    "ModernBertAdapter",
    "PackedRows",
    "RobertaAdapter",
    "part_bounds",
    "single_segment_token_type_ids",
]
