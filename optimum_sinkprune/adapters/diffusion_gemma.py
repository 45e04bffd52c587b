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
accept), see `optimum_sinkprune.diffusion.block_diffusion`; `calibration_noise` noises the canvas of calibration
windows that way and keeps the context clean. The vision tower is never a pruning target.

Pruning targets (`linear_layers`) are the dense projections and every expert's slices of the packed tensors
(`ExpertLinear` views; `observation_context` routes calibration tokens to them). Surgery: `keep_experts` (expert
pruning, the router shrinks too), and kv-group / MLP-channel removal mirrored into the encoder with the structure in
the text config (`record_structure`, `resize_pruned_layer` for the reload). See docs/diffusion_gemma.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .base import ALL_ROLES, BlockLayout, MissingMaskTokenError, ModelAdapter
from .dream import QWEN2_STYLE_PROJECTIONS

STACKS = ("decoder", "encoder")
# target roles of one expert's slices of the packed tensors (`ExpertLinear`) -> the packed tensor's key
EXPERT_ROLES = {"expert_gate_up": "gate_up", "expert_down": "down"}


class ExpertLinear(nn.Module):
    """Expert `expert`'s slice of a packed expert tensor seen as a bias-free linear layer: `weight` is the view
    `packed[expert]` [out, in] (nn.Linear layout), so masking it writes the packed tensor in place; calling it is
    `F.linear(x, weight)`. A view module outside the model's tree (it owns no parameter), so pruning methods treat
    every expert's matrix as its own layer: its rows are its own comparison groups.

    Args:
        experts (`nn.Module`): the module holding the packed tensor.
        attr (`str`): the packed tensor's attribute name.
        expert (`int`): the expert's index.
    """

    def __init__(self, experts: nn.Module, attr: str, expert: int, *, requires_routed_tokens: bool = True):
        super().__init__()
        object.__setattr__(self, "_experts", experts)  # not a submodule: the view adds nothing to the model's tree
        self.attr = attr
        self.expert = int(expert)
        # weight pruning needs tokens routed to the expert; router statistics count an unrouted expert as unused
        self.requires_routed_tokens = bool(requires_routed_tokens)

    @property
    def packed(self) -> nn.Parameter:
        return getattr(self._experts, self.attr)

    @property
    def weight(self) -> torch.Tensor:
        return self.packed[self.expert]

    @property
    def bias(self) -> None:
        return None

    @property
    def in_features(self) -> int:
        return int(self.packed.shape[2])

    @property
    def out_features(self) -> int:
        return int(self.packed.shape[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight)

    def extra_repr(self) -> str:
        return f"expert={self.expert}, {self.attr}: in_features={self.in_features}, out_features={self.out_features}"


class UnroutedExpertError(ValueError):
    """Raised when calibration sent no token to an expert whose weights are pruned (its statistics are empty)."""

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
        """The prunable linear layers of the text layers, by decoder name, in forward order: per layer the dense
        projections (q, k, v where present, o, gate, up, down), then every expert's slices of the packed tensors as
        `ExpertLinear` views (roles "expert_gate_up" [2·moe_width, hidden] and "expert_down" [hidden, moe_width],
        named `<layer>.experts.<e>.gate_up_proj` / `.down_proj`). The router, embeddings, self-conditioning, the LM
        head and the vision tower are not included."""
        out: dict[str, nn.Linear] = {}
        for i, block in enumerate(self.blocks(model)):
            for role in ALL_ROLES:
                if self.has_projection(block, role):
                    out[self.projection_name(i, role)] = self.projection(block, role)
            out.update(self.expert_linears(block, i))
        return out

    def expert_linears(self, block: nn.Module, index: int) -> dict[str, ExpertLinear]:
        """Every expert's gate_up and down slices of layer `index` as `ExpertLinear` views, by name."""
        experts = self.experts_module(block)
        count = int(getattr(experts, self.expert_tensors["gate_up"]).shape[0])
        return {self.expert_linear_name(index, e, role): ExpertLinear(experts, self.expert_tensors[packed], e)
                for e in range(count) for role, packed in EXPERT_ROLES.items()}

    def expert_linear_name(self, index: int, expert: int, role: str) -> str:
        """Name of expert `expert`'s slice ("expert_gate_up" or "expert_down") of layer `index`."""
        if role not in EXPERT_ROLES:
            raise ValueError(f"role={role!r} is not one of {list(EXPERT_ROLES)}")
        return f"{self.block_name(index)}.{self.experts_path}.{int(expert)}.{self.expert_tensors[EXPERT_ROLES[role]]}"

    def _expert_match(self, rest: str) -> tuple[int, str] | None:
        """(expert, role) of a name's tail `experts.<e>.<packed tensor>` (None otherwise)."""
        attrs = {attr: f"expert_{role}" for role, attr in self.expert_tensors.items()}
        found = re.fullmatch(rf"{re.escape(self.experts_path)}\.(\d+)\.(\w+)", rest)
        if found and found.group(2) in attrs:
            return int(found.group(1)), attrs[found.group(2)]
        return None

    def projection_name(self, index: int, role: str) -> str:
        if role == "router":
            return f"{self.block_name(index)}.{self.router_path}"
        return super().projection_name(index, role)

    def role_of(self, name: str) -> str:
        if name.endswith("." + self.router_path):
            return "router"
        head, _, tail = name.rpartition(f".{self.experts_path}.")
        if head and self._expert_match(f"{self.experts_path}.{tail}") is not None:
            return self._expert_match(f"{self.experts_path}.{tail}")[1]
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
            expert = self._expert_match(rest)
            if expert is not None:
                return int(index), expert[1]
            break
        raise ValueError(
            f"name={name!r} is not a projection (or its parameter) of a {self.name} text layer; names look like "
            f"{self.projection_name(0, 'q')!r} or {self.encoder_blocks_path + '.0.' + self.layout.projections['q']!r}"
        )

    def input_group(self, role: str) -> str:
        if role == "router":
            return "router input"  # the router reads the residual stream before the MLP norms
        if role in EXPERT_ROLES:  # each expert reads its own routed tokens
            return "expert input" if role == "expert_gate_up" else "expert hidden"
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

    @contextmanager
    def observation_context(self, model: nn.Module, modules: Iterable[nn.Module]) -> Iterator[None]:
        """While active, every forward of a decoder layer replays its routing through the observed `ExpertLinear`
        views among `modules`, so their input hooks see exactly the tokens the router sent to their expert: after the
        experts ran, each observed expert e gets the layer's expert input [b, s, hidden] with the tokens not routed
        to e zeroed (zero rows add nothing to sums of squares, norms or Hessians and keep the [b, s] token layout the
        sink weights σ index), its gate_up output gives the down input act(gate)·up. The model's own outputs are
        untouched; the replay costs one extra expert matmul per observed expert and token. Hooks are removed on
        exit; then every observed expert must have received a routed token.

        Raises:
            UnroutedExpertError: no calibration token was routed to some observed expert (its statistics would be
                empty): names the experts and what to do.
        """
        views = [m for m in modules if isinstance(m, ExpertLinear)]
        if not views:
            yield
            return
        by_module: dict[int, dict[int, dict[str, ExpertLinear]]] = {}
        for view in views:
            role = "gate_up" if view.attr == self.expert_tensors["gate_up"] else "down"
            by_module.setdefault(id(view._experts), {}).setdefault(view.expert, {})[role] = view
        routed: dict[tuple[int, int], int] = {(id(v._experts), v.expert): 0 for v in views
                                              if v.requires_routed_tokens}
        names: dict[tuple[int, int], str] = {}
        handles = []
        try:
            for i, block in enumerate(self.blocks(model)):
                experts = self.experts_module(block)
                if id(experts) not in by_module:
                    continue
                for e in by_module[id(experts)]:
                    names[(id(experts), e)] = f"layer {i} expert {e}"
                shape: dict[str, tuple[int, int]] = {}

                def record_shape(_module, args, shape=shape):
                    shape["bs"] = tuple(args[0].shape[:2])

                def replay(module, args, kwargs, _output, shape=shape):
                    hidden = args[0] if args else kwargs["hidden_states"]
                    top_k_index = args[1] if len(args) > 1 else kwargs["top_k_index"]
                    b, s = shape["bs"]
                    for e, roles in by_module[id(module)].items():
                        chosen = (top_k_index == e).any(dim=-1)  # [b·s]
                        if (id(module), e) in routed:
                            routed[(id(module), e)] += int(chosen.sum())
                        x = (hidden * chosen[:, None].to(hidden.dtype)).reshape(b, s, -1)
                        gate_up = roles.get("gate_up")
                        out = gate_up(x) if gate_up is not None else nn.functional.linear(
                            x, getattr(module, self.expert_tensors["gate_up"])[e])
                        if "down" in roles:
                            gate, up = out.chunk(2, dim=-1)
                            roles["down"](module.act_fn(gate) * up)

                handles.append(block.register_forward_pre_hook(record_shape))
                handles.append(experts.register_forward_hook(replay, with_kwargs=True))
            yield
        finally:
            for handle in handles:
                handle.remove()
        missing = [names[key] for key, count in routed.items() if count == 0 and key in names]
        if missing:
            raise UnroutedExpertError(
                f"calibration routed no token to {', '.join(missing)}: their statistics are empty (Wanda would "
                "prune them arbitrarily, SparseGPT would zero them); use more calibration samples or leave their "
                "weights out (ignore=['expert_gate_up', 'expert_down'] or a name pattern such as "
                "'*.experts.3.*')")

    def expert_views(self, block: nn.Module, role: str, *, requires_routed_tokens: bool = True) -> list[ExpertLinear]:
        """Every expert's `ExpertLinear` view of one packed tensor ("expert_gate_up" or "expert_down") of `block`."""
        if role not in EXPERT_ROLES:
            raise ValueError(f"role={role!r} is not one of {list(EXPERT_ROLES)}")
        experts = self.experts_module(block)
        attr = self.expert_tensors[EXPERT_ROLES[role]]
        return [ExpertLinear(experts, attr, e, requires_routed_tokens=requires_routed_tokens)
                for e in range(int(getattr(experts, attr).shape[0]))]

    def router_module(self, block: nn.Module) -> nn.Module:
        """The router of `block` (its input: the residual stream, flattened to [tokens, hidden])."""
        return block.get_submodule(self.router_path.rpartition(".")[0])

    def route(self, block: nn.Module, router_input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(gate weights [tokens, top_k] as the layer applies them, expert indices [tokens, top_k]) of the router of
        `block` for its input [tokens, hidden]."""
        _, weights, index = self.router_module(block)(router_input)
        return weights, index

    def keep_experts(self, model: nn.Module, kept: dict[int, list[int]]) -> bool:
        """Keep only the experts `kept[layer]` (current indices) in both stacks: the packed expert tensors, the router's
        rows and per-expert scales shrink with them. The same count in every layer sets the config's `num_experts`
        (the Auto classes rebuild the smaller model on their own); counts that differ between layers set
        `num_experts` to the largest and record every layer's count in the text config (`sinkprune_num_experts`),
        which the reload hook (`models.pruned_loading`) reads to build each layer's experts and router at its size.

        Returns:
            `bool`: whether the counts now differ between layers, so that reloading needs the loading hook
            (`models.pruned_loading.register_pruned_loading`; `structured.experts.prune_experts` registers it).

        Raises:
            ValueError: a layer missing from `kept`, an index out of range or repeated, or fewer experts than
                `top_k_experts` in a layer; before any change.
        """
        num_layers, top_k = self.num_layers(model), self.top_k_experts(model)
        if sorted(kept) != list(range(num_layers)):
            raise ValueError(f"kept must name the experts of every layer 0..{num_layers - 1}, got layers "
                             f"{sorted(kept)}")
        totals = self.layer_num_experts(model)
        for layer, experts in kept.items():
            total = totals[layer]
            if len(set(experts)) != len(experts) or any(not 0 <= int(e) < total for e in experts):
                raise ValueError(f"kept[{layer}]={experts!r}: expert indices must be distinct, in [0, {total})")
            if len(experts) < top_k:
                raise ValueError(f"kept[{layer}] keeps {len(experts)} experts, fewer than top_k_experts={top_k}: the "
                                 f"router picks {top_k} experts per token; keep at least {top_k} of {total}")
        counts = [len(kept[i]) for i in range(num_layers)]
        with torch.no_grad():
            for layer in range(num_layers):
                index = torch.tensor(sorted(int(e) for e in kept[layer]), dtype=torch.long)
                blocks = [self.stack_blocks(model, stack)[layer] for stack in STACKS]
                decoder = blocks[0]
                new = {attr: nn.Parameter(getattr(self.experts_module(decoder), attr).detach()[index].clone())
                       for attr in self.expert_tensors.values()}
                proj = self.projection(decoder, "router")
                router_weight = nn.Parameter(proj.weight.detach()[index].clone())
                scale = nn.Parameter(self.router_module(decoder).per_expert_scale.detach()[index].clone())
                for block in blocks:  # the stacks share these tensors: both get the same new ones
                    experts = self.experts_module(block)
                    for attr, param in new.items():
                        setattr(experts, attr, param)
                    experts.num_experts = counts[layer]
                    router = self.projection(block, "router")
                    router.weight = router_weight
                    router.out_features = counts[layer]
                    self.router_module(block).per_expert_scale = scale
        text = self.text_config(model.config)
        text.num_experts = max(counts)
        if len(set(counts)) == 1:
            if getattr(text, self.expert_counts_key, None) is not None:
                delattr(text, self.expert_counts_key)
            return False
        setattr(text, self.expert_counts_key, counts)
        return True  # the native classes build one expert count: only the reload hook builds each layer's

    # Text-config key of the per-layer expert counts (written only when they differ between layers).
    expert_counts_key = "sinkprune_num_experts"

    def num_experts(self, model: nn.Module) -> int:
        """Experts per layer: the config's `num_experts` (the largest count when layers differ: `layer_num_experts`)."""
        return int(self.text_config(model.config).num_experts)

    def layer_num_experts(self, model: nn.Module) -> list[int]:
        """The current number of experts of every layer (from its packed expert tensors)."""
        return [int(self.expert_weights(block)["gate_up"].shape[0]) for block in self.blocks(model)]

    def config_layer_num_experts(self, config, layer: int) -> int:
        """Experts of text layer `layer` according to the config (`sinkprune_num_experts`, else `num_experts`).

        Raises:
            ValueError: a malformed per-layer record (names the field, the layer and the allowed range).
        """
        text = self.text_config(config)
        counts = getattr(text, self.expert_counts_key, None)
        largest = int(text.num_experts)
        if counts is None:
            return largest
        field = f"{type(text).__name__}.{self.expert_counts_key}"
        num_layers = int(text.num_hidden_layers)
        if not isinstance(counts, (list, tuple)) or len(counts) != num_layers:
            raise ValueError(f"{field}={counts!r} must list one expert count per layer ({num_layers})")
        top_k = int(text.top_k_experts)
        value = counts[layer]
        if isinstance(value, bool) or not isinstance(value, int) or not top_k <= value <= largest:
            raise ValueError(f"{field}[{layer}]={value!r} must be an int in [top_k_experts={top_k}, "
                             f"num_experts={largest}]")
        return int(value)

    def records_structure(self, config) -> bool:
        """True when the text config records a pruned structure the native classes do not build on their own (pruned
        heads, per-layer MLP widths or per-layer expert counts): the reload hook then resizes each layer."""
        text = self.text_config(config)
        return bool(getattr(text, "pruned_heads", None)) or any(
            getattr(text, key, None) is not None for key in (self.mlp_widths_key, self.expert_counts_key))

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
            "generate(). Its calibration noise needs none (noise_token_id is None, calibration_noise noises the "
            "canvas); analyse its sinks with optimum_sinkprune.analysis.block_diffusion (forward_process_sink_profile, "
            "generation_sink_trajectory)"
        )

    # ---- calibration noise: the block-diffusion forward process ------------------------------------------------
    def noise_token_id(self, model: nn.Module, tokenizer=None) -> None:
        """None: the forward process replaces canvas tokens by tokens drawn uniformly from the vocabulary."""
        return None

    def calibration_noise(self, model: nn.Module, samples: torch.Tensor, schedule, token_id=None, *,
                          batch_size: int = 1, attention_mask=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Noised calibration windows `(noisy [n, steps, seq], t [n, steps])`: the context (the first seq − canvas
        tokens, which the encoder reads) stays clean, the canvas (the last `canvas_length` tokens, which the decoder
        denoises) is noised at every step of `schedule` by the model's own uniform-token forward process
        (`diffusion.block_diffusion.noise_canvases`, the noise `forward_process_sink_profile` uses: same schedule and
        seed, same canvases). Canvases are noised independently of `batch_size` (no stratification across a batch).

        Raises:
            ValueError: windows not longer than the canvas, protected positions other than "none", or padding.
        """
        from ..diffusion.block_diffusion import noise_canvases

        if attention_mask is not None and not bool(attention_mask.to(torch.bool).all()):
            raise ValueError(f"{self.name} calibration takes full windows without padding; attention_mask has "
                             f"{int((~attention_mask.to(torch.bool)).sum())} padded positions")

        self.check_calibration_ids(model, samples)
        context, canvas = self.split_window(model, samples.cpu())
        noisy, times = noise_canvases(canvas, schedule, self.vocab_size(model))
        clean = context[:, None, :].expand(-1, noisy.shape[1], -1)
        return torch.cat([clean, noisy], dim=-1), times

    def observed_positions(self, model: nn.Module, seq_len: int) -> slice:
        """The canvas (the window's last `canvas_length` positions): the decoder layers' hooks see those tokens
        only. σ is computed over all the keys the canvas queries attend to (context and canvas) and applied to the
        canvas positions."""
        return slice(seq_len - self.canvas_length(model), seq_len)

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
        context, canvas = self.split_window(model, input_ids)
        # the clean context only: a noised canvas holds tokens drawn from the whole vocabulary (image ids included,
        # as in generate()); the clean windows are checked once before calibration (`check_calibration_ids`)
        self.check_text_ids(model, context, argument="calibration input_ids")
        return self.denoiser_logits(model, context, canvas)

    def check_calibration_ids(self, model: nn.Module, input_ids: torch.Tensor) -> None:
        """Clean calibration windows must be text only and longer than the canvas.

        Raises:
            ValueError: image tokens (naming what is supported), or windows not longer than `canvas_length`.
        """
        self.check_text_ids(model, input_ids, argument="calibration input_ids")
        self.split_window(model, input_ids)

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

    # ---- structured pruning: heads (kv groups) and dense-MLP channels -------------------------------------------
    mlp_widths_key = "sinkprune_mlp_widths"

    def layer_head_geometry(self, model: nn.Module, layer: int) -> tuple[int, int, int]:
        """(query heads, kv heads, head size) of text layer `layer` (sliding and full-attention layers differ)."""
        return self._geometry_of(model.config, layer)

    def _geometry_of(self, config, layer: int) -> tuple[int, int, int]:
        layer_config = self.config_layer(config, layer)
        return (int(self.text_config(config).num_attention_heads), int(layer_config.num_key_value_heads),
                int(layer_config.head_dim))

    def pruned_heads(self, model: nn.Module) -> dict[int, list[int]]:
        """Heads removed so far per layer (original indices), from the text config (both stacks' layers read it)."""
        raw = getattr(self.text_config(model.config), "pruned_heads", None) or {}
        return {int(k): sorted(int(i) for i in v) for k, v in raw.items()}

    def slice_projection(self, block, role, *, rows=None, cols=None):
        """As the base adapter; "v" of a full-attention layer is absent (its keys are the values): nothing to slice."""
        if role == "v" and not self.has_projection(block, "v"):
            return None
        return super().slice_projection(block, role, rows=rows, cols=cols)

    def zero_projection(self, block, role, *, rows=None, cols=None) -> None:
        if role == "v" and not self.has_projection(block, "v"):
            return
        super().zero_projection(block, role, rows=rows, cols=cols)

    def record_structure(self, model: nn.Module, pruned_heads: dict[int, list[int]], mlp_widths: list[int]) -> None:
        """Write the structure into the text config (`pruned_heads`, `sinkprune_mlp_widths`), which the reload hook
        (`models.pruned_loading`) reads for both stacks' layers, and give the encoder's layers the decoder's resized
        projections (the same modules: the stacks keep sharing their weights) and head counts / widths."""
        text = self.text_config(model.config)
        text.pruned_heads = {int(k): sorted(int(i) for i in v) for k, v in pruned_heads.items() if v}
        setattr(text, self.mlp_widths_key, [int(w) for w in mlp_widths])
        for i, (dec, enc) in enumerate(zip(self.blocks(model), self.stack_blocks(model, "encoder"))):
            for role in self.projections(dec):
                if self.projection(enc, role) is not self.projection(dec, role):
                    super().replace_projection(enc, role, self.projection(dec, role))
            heads = self.num_heads(model, i)
            kv = self.num_kv_heads(model, i)
            self.set_head_count(enc, heads, kv)
            self.set_mlp_width(enc, self.mlp_width(model, i))

    def pruned_layer_shape(self, config, layer: int) -> tuple[int, int, int, int]:
        """(query heads, kv heads, head size, MLP width) of `layer` after the structure recorded in the text config
        `config`, checked against its original sizes.

        Raises:
            ValueError: a malformed record (names the field, the layer and the allowed range).
        """
        from ..models.structural_record import validate_head_request

        text = self.text_config(config)
        num_layers = int(text.num_hidden_layers)
        self.config_layer_num_experts(config, layer)  # the per-layer expert counts are checked with the rest
        heads, kv, head_dim = self._geometry_of(config, layer)
        raw = getattr(text, "pruned_heads", None) or {}
        entry = {k: v for k, v in raw.items() if str(k) == str(layer)}
        removed = validate_head_request(entry, num_heads=heads, num_kv_heads=kv, num_layers=num_layers, min_heads=0,
                                        field=f"{type(text).__name__}.pruned_heads").get(layer, [])
        widths = getattr(text, self.mlp_widths_key, None)
        width = int(text.intermediate_size)
        if widths is not None:
            field = f"{type(text).__name__}.{self.mlp_widths_key}"
            if not isinstance(widths, (list, tuple)) or len(widths) != num_layers:
                raise ValueError(f"{field}={widths!r} must list one MLP width per layer ({num_layers})")
            if not isinstance(widths[layer], int) or not 1 <= widths[layer] <= width:
                raise ValueError(f"{field}[{layer}]={widths[layer]!r} must be an int in [1, {width}]")
            width = int(widths[layer])
        return heads - len(removed), kv - len(removed) // (heads // kv), head_dim, width

    def resize_pruned_layer(self, layer_module: nn.Module, config, layer: int) -> None:
        """Give a freshly built text layer (encoder or decoder) the pruned shapes recorded in `config` (the reload
        hook calls it before the weights load): heads, MLP width and the layer's expert count (its packed expert
        tensors, router rows and per-expert scales); unpruned shapes are kept."""
        from .surgery import linear_like

        heads, kv, head_dim, width = self.pruned_layer_shape(config, layer)
        hidden = int(self.text_config(config).hidden_size)
        count = self.config_layer_num_experts(config, layer)
        experts = self.experts_module(layer_module)
        if int(getattr(experts, self.expert_tensors["gate_up"]).shape[0]) != count:
            for attr in self.expert_tensors.values():
                old = getattr(experts, attr)
                setattr(experts, attr, nn.Parameter(old.new_empty((count, *old.shape[1:]))))
            experts.num_experts = count
            router = self.projection(layer_module, "router")
            parent_path, _, attr = self.router_path.rpartition(".")
            setattr(layer_module.get_submodule(parent_path), attr, linear_like(router, router.in_features, count))
            scale = self.router_module(layer_module).per_expert_scale
            self.router_module(layer_module).per_expert_scale = nn.Parameter(scale.new_ones(count))
        if self.projection(layer_module, "q").out_features != heads * head_dim:
            shapes = {"q": (hidden, heads * head_dim), "k": (hidden, kv * head_dim), "v": (hidden, kv * head_dim),
                      "o": (heads * head_dim, hidden)}
            for role, (fan_in, fan_out) in shapes.items():
                if self.has_projection(layer_module, role):
                    old = self.projection(layer_module, role)
                    super().replace_projection(layer_module, role, linear_like(old, fan_in, fan_out))
            self.set_head_count(layer_module, heads, kv)
        if self.projection(layer_module, "down").in_features != width:
            for role, (fan_in, fan_out) in {"gate": (hidden, width), "up": (hidden, width),
                                            "down": (width, hidden)}.items():
                old = self.projection(layer_module, role)
                super().replace_projection(layer_module, role, linear_like(old, fan_in, fan_out))
            self.set_mlp_width(layer_module, width)

    # ---- names -------------------------------------------------------------------------------------------------
    @classmethod
    def known_names(cls) -> dict[str, str]:
        out = super().known_names()
        out[cls.encoder_blocks_path] = "stack_blocks(model, 'encoder')"
        out["router"] = "projection(block, 'router')"
        out[cls.experts_path] = "expert_weights(block) / experts_module(block)"
        out["gate_up_proj"] = "expert_weights(block)"
        out["per_expert_scale"] = "keep_experts(model, kept)"
        out["pre_feedforward_layernorm"] = "post_attention_norm(block)"
        return out
