# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""DiffusionGemma (transformers' `diffusion_gemma`, `DiffusionGemmaForBlockDiffusion`): block diffusion with an
encoder over the finished context and a bidirectional decoder that denoises one canvas at a time.

Module tree (text part): `model.encoder.language_model.layers.{i}` (the encoder stack: causal unless the text config
says `use_bidirectional_attention="all"`) and `model.decoder.layers.{i}` (the decoder stack: always bidirectional,
reading the encoder's keys/values from the cache). The two stacks **share every weight** (transformers ties them), so
pruning a projection of one stack prunes it in both; `blocks()` is the decoder, the denoiser that runs once per
denoising step. Each layer holds

* attention `self_attn.{q,k,v,o}_proj` with per-head `q_norm`/`k_norm` (and a scale-free `v_norm`); sliding layers
  use `head_dim`, full layers their own (larger) head size and kv-head count and reuse the keys as values (no `v_proj`);
* a dense MLP `mlp.{gate,up,down}_proj` beside a mixture of experts: `router.proj` (experts × hidden) and the packed
  expert weights `experts.gate_up_proj` [experts, 2·moe_width, hidden] and `experts.down_proj`
  [experts, hidden, moe_width].

There is no mask token: the forward process replaces canvas tokens by tokens drawn uniformly from the vocabulary
(`generate()` starts from a uniformly random canvas of `config.canvas_length` tokens and renoises what it did not
accept), see `optimum_sinkprune.diffusion.block_diffusion`. The vision tower is never a pruning target.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import ALL_ROLES, BlockLayout, MissingMaskTokenError, ModelAdapter
from .dream import QWEN2_STYLE_PROJECTIONS

STACKS = ("decoder", "encoder")

DIFFUSION_GEMMA_LAYOUT = BlockLayout(
    attention="self_attn",
    mlp="mlp",
    input_norm="input_layernorm",
    post_norm="pre_feedforward_layernorm",
    projections=dict(QWEN2_STYLE_PROJECTIONS),
)


class DiffusionGemmaAdapter(ModelAdapter):
    name = "diffusion_gemma"
    model_types = ("diffusion_gemma",)
    auto_model_class = "AutoModelForImageTextToText"
    is_diffusion = True
    is_causal = False  # the decoder stack (`blocks`); the encoder's causality: `stack_is_causal(model, "encoder")`
    shifts_logits = False
    # the model class brings its own generate() (block diffusion from uniform noise); the project's masked-diffusion
    # sampler (and its sampler_config.json) does not serve it
    own_sampler = True
    blocks_path = "model.decoder.layers"
    encoder_blocks_path = "model.encoder.language_model.layers"
    layout = DIFFUSION_GEMMA_LAYOUT
    # the router's linear layer and the packed expert tensors, relative to a block
    router_path = "router.proj"
    experts_path = "experts"
    expert_tensors = {"gate_up": "gate_up_proj", "down": "down_proj"}

    # ---- recognition -------------------------------------------------------------------------------------------
    @classmethod
    def _tree_matches(cls, model: nn.Module) -> bool:
        for path in (cls.blocks_path, cls.encoder_blocks_path):
            try:
                if not isinstance(model.get_submodule(path), nn.ModuleList):
                    return False
            except AttributeError:
                return False
        return True

    # ---- configs -----------------------------------------------------------------------------------------------
    @staticmethod
    def text_config(config):
        """The text config of a DiffusionGemma config (a text config is returned as is)."""
        return getattr(config, "text_config", None) or config

    def config_layer(self, config, layer: int):
        """The resolved config of text layer `layer` (head size and kv heads differ between layer types)."""
        return self.text_config(config).per_layer_config[layer]

    def _first_layer_of(self, config, layer_type: str) -> int:
        types = list(self.text_config(config).layer_types)
        return types.index(layer_type) if layer_type in types else 0

    def config_head_dim(self, config) -> int:
        """Head size of the sliding-attention layers (full-attention layers have their own: `layer_head_dim`)."""
        return int(self.config_layer(config, self._first_layer_of(config, "sliding_attention")).head_dim)

    def config_num_heads(self, config) -> int:
        return int(self.text_config(config).num_attention_heads)

    def config_num_kv_heads(self, config) -> int:
        """kv heads of the sliding-attention layers (full-attention layers: `num_kv_heads(model, layer)`)."""
        layer = self._first_layer_of(config, "sliding_attention")
        return int(self.config_layer(config, layer).num_key_value_heads)

    def max_length(self, model: nn.Module) -> int:
        return int(self.text_config(model.config).max_position_embeddings)

    def canvas_length(self, model: nn.Module) -> int:
        """Tokens per canvas (block) that the decoder denoises at once: `config.canvas_length`."""
        return int(model.config.canvas_length)

    def vocab_size(self, model: nn.Module) -> int:
        return int(self.text_config(model.config).vocab_size)

    def layer_types(self, model: nn.Module) -> list[str]:
        """"sliding_attention" / "full_attention" per layer, from the text config."""
        return list(self.text_config(model.config).layer_types)

    # ---- stacks ------------------------------------------------------------------------------------------------
    def stack_blocks(self, model: nn.Module, stack: str = "decoder") -> nn.ModuleList:
        """The layers of one stack: "decoder" (= `blocks(model)`) or "encoder"; they share their weights.

        Raises:
            ValueError: `stack` is not "decoder" or "encoder".
        """
        if stack not in STACKS:
            raise ValueError(f"stack={stack!r} is not one of {STACKS}")
        return model.get_submodule(self.blocks_path if stack == "decoder" else self.encoder_blocks_path)

    def stack_is_causal(self, model: nn.Module, stack: str) -> bool:
        """Whether a stack attends causally, as the config says: the encoder unless the text config sets
        `use_bidirectional_attention="all"`; the decoder never (it attends to the whole context and canvas)."""
        if stack not in STACKS:
            raise ValueError(f"stack={stack!r} is not one of {STACKS}")
        if stack == "decoder":
            return False
        return getattr(self.text_config(model.config), "use_bidirectional_attention", None) != "all"

    # ---- projections -------------------------------------------------------------------------------------------
    def has_projection(self, block: nn.Module, role: str) -> bool:
        """False for the v projection of full-attention layers (their keys double as values)."""
        if role == "router":
            return True
        if role not in self.layout.projections:
            raise ValueError(f"role={role!r} is not one of {list(self.layout.projections) + ['router']}")
        parent_path, _, attr = self.layout.projections[role].rpartition(".")
        return isinstance(getattr(block.get_submodule(parent_path), attr, None), nn.Module)

    def projection(self, block: nn.Module, role: str) -> nn.Linear:
        """The linear layer playing `role` (q, k, v, o, gate, up, down, or router) in `block`.

        Raises:
            ValueError: an unknown role, or "v" on a full-attention layer (keys double as values there).
        """
        if role == "router":
            return block.get_submodule(self.router_path)
        if not self.has_projection(block, role):
            raise ValueError(f"role={role!r}: this {self.name} layer has no such projection (full-attention layers "
                             "reuse their keys as values)")
        return super().projection(block, role)

    def projections(self, block: nn.Module) -> dict[str, nn.Linear]:
        return {role: self.projection(block, role) for role in self.layout.projections
                if self.has_projection(block, role)}

    def linear_layers(self, model: nn.Module) -> dict[str, nn.Linear]:
        """The dense linear layers of the text layers (q, k, v where present, o, gate, up, down), by decoder name, in
        forward order. The router, the packed experts, embeddings, self-conditioning, the LM head and the vision
        tower are not included (experts: `expert_weights`)."""
        out: dict[str, nn.Linear] = {}
        for i, block in enumerate(self.blocks(model)):
            for role in ALL_ROLES:
                if self.has_projection(block, role):
                    out[self.projection_name(i, role)] = self.projection(block, role)
        return out

    def projection_name(self, index: int, role: str) -> str:
        if role == "router":
            return f"{self.block_name(index)}.{self.router_path}"
        return super().projection_name(index, role)

    def role_of(self, name: str) -> str:
        if name.endswith("." + self.router_path):
            return "router"
        return super().role_of(name)

    def locate(self, name: str) -> tuple[int, str]:
        """(layer index, role) of a projection (or parameter) name of either stack (they share their weights).

        Raises:
            ValueError: `name` is not a projection, router or parameter of one inside the text layers.
        """
        for prefix in (self.blocks_path + ".", self.encoder_blocks_path + "."):
            if not name.startswith(prefix):
                continue
            index, _, rest = name[len(prefix):].partition(".")
            if not index.isdigit():
                break
            paths = dict(self.layout.projections, router=self.router_path)
            for role, path in paths.items():
                if rest == path or (rest.startswith(path + ".") and "." not in rest[len(path) + 1:]):
                    return int(index), role
            break
        raise ValueError(
            f"name={name!r} is not a projection (or its parameter) of a {self.name} text layer; names look like "
            f"{self.projection_name(0, 'q')!r} or {self.encoder_blocks_path + '.0.' + self.layout.projections['q']!r}"
        )

    def input_group(self, role: str) -> str:
        if role == "router":
            return "router input"  # the router reads the residual stream before the MLP norms
        return super().input_group(role)

    # ---- experts -----------------------------------------------------------------------------------------------
    def experts_module(self, block: nn.Module) -> nn.Module:
        return block.get_submodule(self.experts_path)

    def expert_weights(self, block: nn.Module) -> dict[str, nn.Parameter]:
        """The packed expert tensors of `block`: "gate_up" [experts, 2·moe_width, hidden] (rows: the gate then the up
        projection of each expert) and "down" [experts, hidden, moe_width]. `tensor[e]` is expert e's weight in
        nn.Linear layout [out, in]."""
        experts = self.experts_module(block)
        return {role: getattr(experts, attr) for role, attr in self.expert_tensors.items()}

    def expert_weight_name(self, index: int, role: str) -> str:
        """Fully qualified parameter name of a packed expert tensor ("gate_up" or "down") of layer `index`."""
        if role not in self.expert_tensors:
            raise ValueError(f"role={role!r} is not one of {list(self.expert_tensors)}")
        return f"{self.block_name(index)}.{self.experts_path}.{self.expert_tensors[role]}"

    def num_experts(self, model: nn.Module) -> int:
        return int(self.text_config(model.config).num_experts)

    def top_k_experts(self, model: nn.Module) -> int:
        return int(self.text_config(model.config).top_k_experts)

    # ---- heads -------------------------------------------------------------------------------------------------
    def layer_head_dim(self, model: nn.Module, layer: int) -> int:
        """Head size of `layer` (full-attention layers use the config's global head size)."""
        return int(self.attention_module(self.blocks(model)[layer]).head_dim)

    def num_heads(self, model: nn.Module, layer: int) -> int:
        block = self.blocks(model)[layer]
        return self.projection(block, "q").out_features // self.layer_head_dim(model, layer)

    def num_kv_heads(self, model: nn.Module, layer: int) -> int:
        block = self.blocks(model)[layer]
        return self.projection(block, "k").out_features // self.layer_head_dim(model, layer)

    def qk_postprocess(self, block, q, k, *, config=None):
        """The per-head RMS norms (`q_norm`, `k_norm`) the attention applies to projected queries/keys [b, s, width]
        before rotary."""
        attention = self.attention_module(block)
        d = int(attention.head_dim)
        q = attention.q_norm(q.reshape(*q.shape[:-1], -1, d)).reshape(q.shape)
        k = attention.k_norm(k.reshape(*k.shape[:-1], -1, d)).reshape(k.shape)
        return q, k

    def rotary_cos_sin(self, model, position_ids, dtype):
        raise NotImplementedError(
            f"{self.name} uses a different rotary table per layer type (and partial rotary on full-attention layers); "
            "capture its attention with AttentionMassProbe(method='interface'), which reads the model's own rotated "
            "queries and keys"
        )

    # ---- tokens, inputs and logits -----------------------------------------------------------------------------
    def mask_token_id(self, model: nn.Module, tokenizer=None) -> int:
        raise MissingMaskTokenError(
            f"{self.name} has no mask token: its forward process replaces canvas tokens by tokens drawn uniformly from "
            "the vocabulary (generate() starts from a uniformly random canvas), and it samples with its own "
            "generate(). Prune it with magnitude, wanda or sparsegpt; analyse its sinks with "
            "optimum_sinkprune.analysis.block_diffusion (forward_process_sink_profile, generation_sink_trajectory)"
        )

    def multimodal_token_ids(self, model: nn.Module) -> dict[str, int]:
        """The image placeholder and image delimiter ids of the config ({name: id}, unset ones left out)."""
        config = model.config
        out = {}
        for key in ("image_token_id", "boi_token_id", "eoi_token_id"):
            value = getattr(config, key, None)
            if value is not None:
                out[key] = int(value)
        return out

    def check_text_ids(self, model: nn.Module, input_ids: torch.Tensor, *, argument: str = "input_ids") -> None:
        """Raise when `input_ids` hold image tokens: pruning calibrates and analyses the text layers on text only.

        Raises:
            ValueError: names the argument, the image token ids found and how often, and what is supported.
        """
        found = {key: int((input_ids == value).sum()) for key, value in self.multimodal_token_ids(model).items()}
        found = {key: count for key, count in found.items() if count}
        if found:
            raise ValueError(
                f"{argument} holds image tokens ({', '.join(f'{k}: {c}' for k, c in found.items())}); {self.name} "
                "pruning and sink analysis support text-only inputs (token ids without image placeholders; no "
                "pixel_values): the vision tower is neither calibrated nor pruned"
            )

    def split_window(self, model: nn.Module, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(context [b, seq − canvas], canvas [b, canvas]) of calibration windows [b, seq]: the encoder reads the
        context, the decoder denoises the last `canvas_length` tokens, as in block-diffusion training.

        Raises:
            ValueError: a window not longer than the canvas (the encoder needs at least one context token).
        """
        canvas = self.canvas_length(model)
        if input_ids.dim() != 2 or input_ids.shape[1] <= canvas:
            raise ValueError(f"input_ids must be [batch, seq] with seq > canvas_length={canvas} (the context needs at "
                             f"least one token), got shape {tuple(input_ids.shape)}")
        return input_ids[:, :-canvas], input_ids[:, -canvas:]

    def encode_context(self, model: nn.Module, context_ids: torch.Tensor):
        """Run the encoder over `context_ids` [b, ctx]; returns the cache of keys/values the decoder reads."""
        return model.get_encoder()(input_ids=context_ids).cache

    def denoiser_logits(
        self,
        model: nn.Module,
        context_ids: torch.Tensor | None,
        canvas_ids: torch.Tensor,
        *,
        cache=None,
        self_conditioning_logits: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits [b, canvas, vocab] of the decoder for `canvas_ids` given the context (or an encoder `cache`)."""
        if cache is None:
            cache = self.encode_context(model, context_ids)
        out = model(cache=cache, decoder_input_ids=canvas_ids, self_conditioning_logits=self_conditioning_logits)
        return out.logits

    def calibration_forward(self, model: nn.Module, input_ids: torch.Tensor, attention_mask=None, **kwargs):
        """The calibration forward on windows [b, seq]: the encoder reads the clean context, the decoder (the stack
        `blocks` returns, whose layers the statistics observe) denoises the last `canvas_length` tokens.

        Raises:
            ValueError: padding in `attention_mask`, image tokens, or windows not longer than the canvas.
        """
        if attention_mask is not None and not bool(attention_mask.to(torch.bool).all()):
            raise ValueError(f"{self.name} calibration takes full windows without padding; attention_mask has "
                             f"{int((~attention_mask.to(torch.bool)).sum())} padded positions")
        self.check_text_ids(model, input_ids, argument="calibration input_ids")
        context, canvas = self.split_window(model, input_ids)
        return self.denoiser_logits(model, context, canvas)

    def block_kwargs(self, model: nn.Module, index: int, kwargs: dict) -> dict:
        """The keyword inputs of decoder layer `index`, from those layer 0 received: the rotary table follows the
        layer type (sliding and full-attention layers rotate with different tables)."""
        out = dict(kwargs)
        cos_sin, positions = kwargs.get("position_embeddings"), kwargs.get("position_ids")
        if cos_sin is not None and positions is not None:
            rotary = model.get_decoder().rotary_emb
            out["position_embeddings"] = rotary(cos_sin[0], positions, self.layer_types(model)[index])
        return out

    def logits(self, model, input_ids, attention_mask=None):
        raise NotImplementedError(
            f"{self.name} predicts one canvas given its context, not every position of a sequence; use "
            "denoiser_logits(model, context_ids, canvas_ids)"
        )

    # ---- structured pruning: not yet ---------------------------------------------------------------------------
    def check_structured_support(self, model: nn.Module) -> None:
        """Raise before any change: structured pruning (heads, MLP channels, experts) is not supported yet."""
        raise NotImplementedError(f"structured pruning of {self.name} (heads, MLP channels, experts) is not supported "
                                  "yet; unstructured and N:M weight pruning of its dense linear layers is")

    def record_structure(self, model, pruned_heads, mlp_widths) -> None:
        self.check_structured_support(model)

    # ---- names -------------------------------------------------------------------------------------------------
    @classmethod
    def known_names(cls) -> dict[str, str]:
        out = super().known_names()
        out[cls.encoder_blocks_path] = "stack_blocks(model, 'encoder')"
        out["router"] = "projection(block, 'router')"
        out[cls.experts_path] = "expert_weights(block) / experts_module(block)"
        out["gate_up_proj"] = "expert_weights(block)"
        out["pre_feedforward_layernorm"] = "post_attention_norm(block)"
        return out
