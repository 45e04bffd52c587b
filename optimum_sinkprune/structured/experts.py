# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Expert pruning of a mixture-of-experts diffusion LM (DiffusionGemma) by router statistics on noised calibration
data: drop the least-used experts of every layer; the router shrinks with them.

For layer l and expert e, over the calibration tokens t the router sends to e (the model's own forward process:
`adapter.calibration_noise`, one forward per (window, step) through `CalibrationPipeline.dense`):

    REAP (baseline, router-weighted expert activation norms):  S_e = Σ_t g_e(t) · ‖E_e(x_t)‖₂ / |{t → e}|
    sink-aware:                                                  S_e = Σ_t w_t g_e(t) ‖E_e(x_t)‖₂ / Σ_t w_t,  w_t = 1 − σ_t

g_e(t) is the gate weight the layer applies to expert e's output (after top-k renormalisation and the per-expert
scale), E_e(x_t) the expert's output, σ_t the sink weight of token t from the decoder's attention (computed over every
key the canvas attends to, read at the canvas positions, as for the weight-pruning methods). An expert no calibration
token reaches scores 0 (it goes first). round(expert_ratio · experts of the layer) experts go from every layer, so a
model with the same count everywhere keeps one count (the config's `num_experts`: the Auto classes rebuild the smaller
model with no loading hook); at least `top_k_experts` remain. Layers with different counts (`keep_experts` with
uneven sets) are recorded per layer in the text config and rebuilt by the reload hook.

The registered methods `reap_experts` (the baseline) and `sink_experts` (the sink-aware score) run this through
`SinkAwarePruningConfig(method=..., expert_ratio=...)` and `SinkAwarePruner`; `prune_experts` is the library call
underneath, with a `sink_weighted` switch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..adapters import get_adapter
from ..calibration.observers import ForwardContext, Observer
from ..calibration.pipeline import CalibrationPipeline, block_names
from ..offload import check_not_offloaded

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------------------------
# pure maths
# ---------------------------------------------------------------------------------------------------------------------
def experts_to_remove(num_experts: int, top_k: int, expert_ratio: float) -> int:
    """How many experts per layer `expert_ratio` removes: round(ratio · num_experts). Pure.

    Raises:
        ValueError: a ratio outside (0, 1), one that removes nothing, or one that leaves fewer experts than top_k
            (the message gives both numbers).
    """
    if isinstance(expert_ratio, bool) or not isinstance(expert_ratio, (int, float)) or not 0 < expert_ratio < 1:
        raise ValueError(f"expert_ratio={expert_ratio!r} is not allowed; it must be a number in (0, 1)")
    remove = round(expert_ratio * num_experts)
    if remove == 0:
        raise ValueError(f"expert_ratio={expert_ratio!r} removes no expert of {num_experts}; use expert_ratio >= "
                         f"{0.5 / num_experts:.3g}")
    if num_experts - remove < top_k:
        raise ValueError(f"expert_ratio={expert_ratio!r} leaves {num_experts - remove} experts per layer, fewer than "
                         f"top_k_experts={top_k} (the router picks {top_k} experts per token); use expert_ratio <= "
                         f"{(num_experts - top_k) / num_experts:.3g}")
    return remove


def router_weighted_norms(gates: torch.Tensor, output_norms: torch.Tensor,
                          token_weight: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per expert, Σ_t w_t g_e(t) ‖E_e(x_t)‖ and Σ_t w_t over the tokens routed to e. Pure.

    Args:
        gates: [tokens, experts] the gate weight of each routed (token, expert), 0 where not routed.
        output_norms: [tokens, experts] ‖E_e(x_t)‖₂ (any value where not routed).
        token_weight: [tokens] (1 − σ) or None (every token weighs 1).

    Returns:
        `(numerator [experts], denominator [experts])` in float64.
    """
    routed = (gates != 0).to(torch.float64)
    w = torch.ones(gates.shape[0], dtype=torch.float64) if token_weight is None else token_weight.double()
    numerator = (w[:, None] * gates.double() * output_norms.double() * routed).sum(dim=0)
    return numerator, (w[:, None] * routed).sum(dim=0)


def expert_scores(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """S_e = numerator / denominator, 0 for an expert no token reached. Pure."""
    return torch.where(denominator > 0, numerator / denominator.clamp_min(1e-30), torch.zeros_like(numerator))


def kept_experts(scores: torch.Tensor, remove: int | list[int],
                 counts: list[int] | None = None) -> dict[int, list[int]]:
    """Per layer, the experts kept after removing the `remove` (one number, or one per layer) lowest-scored ones
    (ties: the higher index goes first), in index order. `scores`: [layers, experts]; `counts`: the experts of each
    layer when layers differ (the first `counts[layer]` columns are its experts; default: every column). Pure."""
    out = {}
    for layer, row in enumerate(scores.double()):
        num = counts[layer] if counts is not None else scores.shape[1]
        drop = remove[layer] if isinstance(remove, list) else remove
        # stable sort on (score, -index): equal scores drop the later expert first
        order = sorted(range(num), key=lambda e: (float(row[e]), -e))
        out[layer] = sorted(order[drop:])
    return out


def expert_model_types() -> list[str]:
    """The registered model types whose adapter can remove experts (`keep_experts`, `route`)."""
    from ..adapters.registry import adapter_for_model_type, supported_model_types

    return [t for t in supported_model_types() if _supports_experts(adapter_for_model_type(t))]


def _supports_experts(adapter) -> bool:
    return all(hasattr(adapter, name) for name in ("keep_experts", "route", "num_experts", "top_k_experts"))


def _require_experts(model: nn.Module, adapter) -> None:
    if not _supports_experts(adapter):
        raise ValueError(
            f"expert pruning needs a mixture-of-experts model with routed experts; "
            f"model_type={getattr(model.config, 'model_type', None)!r} ({type(model).__name__}) has none that "
            f"optimum-sinkprune can remove (supported: {', '.join(expert_model_types())}); use a weight-pruning or "
            "structured method for it")


def check_expert_pruning(
    model: nn.Module, expert_ratio: float, adapter=None, *, method: str | None = None
) -> list[int]:
    """Check, before any calibration or change, that `model` has routed experts its adapter can remove, all in memory
    (not offloaded), and that `expert_ratio` removes some of every layer's while keeping at least `top_k_experts`;
    returns how many go from each layer (`experts_to_remove` of the layer's count). `method` names the run in
    messages.

    Raises:
        ValueError: a model without routed experts (naming its model type and the supported ones), a block offloaded
            by accelerate (named), or a ratio outside (0, 1), one that removes nothing or one that leaves fewer
            experts than top_k (both numbers in the message).
    """
    adapter = adapter if adapter is not None else get_adapter(model)
    _require_experts(model, adapter)
    check_not_offloaded(block_names(model, adapter), what=f"method={method!r}" if method else "expert pruning")
    top_k = adapter.top_k_experts(model)
    return [experts_to_remove(count, top_k, expert_ratio) for count in _layer_counts(model, adapter)]


def _layer_counts(model: nn.Module, adapter) -> list[int]:
    """Experts of every layer (the config's one count for an adapter that does not tell them apart)."""
    if hasattr(adapter, "layer_num_experts"):
        return adapter.layer_num_experts(model)
    return [adapter.num_experts(model)] * adapter.num_layers(model)


# ---------------------------------------------------------------------------------------------------------------------
# the observer
# ---------------------------------------------------------------------------------------------------------------------
class ExpertRouterObserver(Observer):
    """Router-weighted expert output norms of every decoder layer, from the router's input (re-routed through the
    adapter's `route`) and each expert's down-projection input (the adapter's per-expert views, replayed with the
    tokens routed to the expert); with `sink_weighted`, tokens weigh 1 − σ of the same forward."""

    def __init__(self, model: nn.Module, adapter, *, sink_weighted: bool):
        self.model, self.adapter = model, adapter
        self.sink_weighted = sink_weighted
        self.needs_mass = sink_weighted
        self.blocks = list(adapter.blocks(model))
        self.counts = _layer_counts(model, adapter)  # experts of each layer (layers may differ)
        self.num_experts = max(self.counts)
        self._modules: dict[str, nn.Module] = {}
        self.views: list[list[nn.Module]] = []
        for i, block in enumerate(self.blocks):
            self._modules[f"router.{i}"] = adapter.router_module(block)
            views = adapter.expert_views(block, "expert_down", requires_routed_tokens=False)
            self.views.append(views)
            for e, view in enumerate(views):
                self._modules[f"down.{i}.{e}"] = view
        shape = (len(self.blocks), self.num_experts)
        self.numerator = torch.zeros(shape, dtype=torch.float64)
        self.denominator = torch.zeros(shape, dtype=torch.float64)
        self.tokens = torch.zeros(shape, dtype=torch.long)  # routed (token, expert) pairs, unweighted
        self.forwards = 0
        self._inputs: dict[str, torch.Tensor] = {}

    def modules(self) -> dict[str, nn.Module]:
        return self._modules

    def on_input(self, name: str, x: torch.Tensor) -> None:
        self._inputs[name] = x

    def after_forward(self, ctx: ForwardContext) -> None:
        weight = (1.0 - ctx.sigma).reshape(-1).cpu() if self.sink_weighted else None
        for i, block in enumerate(self.blocks):
            router_in = self._inputs.pop(f"router.{i}")
            gate_w, index = self.adapter.route(block, router_in)
            self._inputs.pop(f"router.{i}", None)  # re-routing passed the router's own input hook again
            count = self.counts[i]
            gates = torch.zeros(index.shape[0], count + 1, dtype=torch.float32, device=index.device)
            gates.scatter_(1, index.clamp(max=count), gate_w.float())
            gates = gates[:, :count].cpu()
            norms = torch.zeros(index.shape[0], count, dtype=torch.float32)
            for e, view in enumerate(self.views[i]):
                h = self._inputs.pop(f"down.{i}.{e}")
                out = nn.functional.linear(h, view.weight)  # not view(h): that would feed its own input hook
                norms[:, e] = out.float().reshape(index.shape[0], -1).norm(dim=-1).cpu()
            numerator, denominator = router_weighted_norms(gates, norms, weight)
            self.numerator[i, :count] += numerator
            self.denominator[i, :count] += denominator
            self.tokens[i, :count] += (gates != 0).sum(dim=0)

    def scores(self) -> torch.Tensor:
        """[layers, experts] S_e (layers with fewer experts: 0 past their count)."""
        return expert_scores(self.numerator, self.denominator)


# ---------------------------------------------------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class ExpertPruningResult:
    """What `prune_experts` did (`to_dict()` is JSON-able)."""

    sink_weighted: bool
    num_experts_before: int | list[int]  # one count, or one per layer where layers differ
    num_experts_after: int | list[int]
    kept: dict[int, list[int]]
    scores: list[list[float]]
    routed_tokens: list[list[int]]
    forwards: int
    params_before: int
    params_after: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"sink_weighted": self.sink_weighted, "num_experts_before": self.num_experts_before,
                "num_experts_after": self.num_experts_after,
                "kept": {str(k): v for k, v in self.kept.items()}, "scores": self.scores,
                "routed_tokens": self.routed_tokens, "forwards": self.forwards, "params_before": self.params_before,
                "params_after": self.params_after, **self.extra}


def score_experts(model: nn.Module, calibration_ids: torch.Tensor, *, noise, sink_weighted: bool,
                  sink_alpha: float = 5.0, sink_std: float = 2.0, batch_size: int = 1,
                  progress: bool = True) -> ExpertRouterObserver:
    """Run the dense calibration (noised windows of the model's own forward process) with an `ExpertRouterObserver`.

    Raises:
        ValueError: a model without experts, image tokens or windows not longer than the canvas.
    """
    adapter = get_adapter(model)
    _require_experts(model, adapter)
    adapter.check_text_ids(model, calibration_ids, argument="calibration_ids")
    noisy, _ = adapter.calibration_noise(model, calibration_ids, noise, adapter.noise_token_id(model),
                                         batch_size=batch_size)
    observer = ExpertRouterObserver(model, adapter, sink_weighted=sink_weighted)
    pipeline = CalibrationPipeline(model, adapter, batch_size=batch_size, sink_alpha=sink_alpha, sink_std=sink_std,
                                   progress=progress)
    with torch.no_grad():
        observer.forwards = pipeline.dense(noisy, [observer], desc="expert routing")
    return observer


def prune_experts(
    model: nn.Module,
    calibration_ids: torch.Tensor,
    *,
    expert_ratio: float,
    sink_weighted: bool = True,
    noise=None,
    sink_alpha: float = 5.0,
    sink_std: float = 2.0,
    batch_size: int = 1,
    progress: bool = True,
) -> ExpertPruningResult:
    """Remove the `round(expert_ratio · experts of the layer)` least-used experts of every layer, by router statistics
    on noised calibration data; the router (its rows and per-expert scales) shrinks with them and the config's
    `num_experts` follows (per-layer counts where layers differ), so `save_pretrained` / the Auto classes round-trip
    the smaller model.

    Args:
        model (`nn.Module`): a DiffusionGemma; modified in place.
        calibration_ids (`torch.Tensor`): text windows [n, seq], seq > canvas_length (no image tokens).
        expert_ratio (`float`): the share of experts to remove per layer, in (0, 1).
        sink_weighted (`bool`): the sink-aware score (tokens weigh 1 − σ); False: the REAP baseline.
        noise (`NoiseSchedule`, *optional*): the forward process's steps and seed (default: `NoiseSchedule()`).
        sink_alpha, sink_std (`float`): σ = sigmoid(alpha · (m − (mean + sink_std · std))).
        batch_size (`int`), progress (`bool`): the calibration forwards.

    Returns:
        `ExpertPruningResult`.

    Raises:
        ValueError: a ratio leaving fewer experts than top_k (both numbers in the message), a model without experts,
            image tokens in `calibration_ids`; before any weight changes.
    """
    from ..calibration.noise import NoiseSchedule
    from ..counting import count_parameters

    adapter = get_adapter(model)
    remove = check_expert_pruning(model, expert_ratio, adapter)
    counts = _layer_counts(model, adapter)
    noise = noise if noise is not None else NoiseSchedule()
    observer = score_experts(model, calibration_ids, noise=noise, sink_weighted=sink_weighted,
                             sink_alpha=sink_alpha, sink_std=sink_std, batch_size=batch_size, progress=progress)
    scores = observer.scores()
    if not bool(torch.isfinite(scores).all()):
        raise FloatingPointError("expert scores are not finite (activation overflow in calibration)")
    kept = kept_experts(scores, remove, counts)
    before = count_parameters(model).params
    if adapter.keep_experts(model, kept):
        from ..models.pruned_loading import register_pruned_loading

        register_pruned_loading()  # uneven counts: only the reload hook builds each layer at its size
    after = count_parameters(model).params
    after_counts = [n - r for n, r in zip(counts, remove)]
    logger.info("experts per layer %s -> %s (%s); parameters %d -> %d", counts, after_counts,
                "sink-aware" if sink_weighted else "REAP", before, after)

    def one_or_all(values: list[int]) -> int | list[int]:
        return values[0] if len(set(values)) == 1 else values

    return ExpertPruningResult(
        sink_weighted=sink_weighted, num_experts_before=one_or_all(counts),
        num_experts_after=one_or_all(after_counts), kept=kept,
        scores=[[float(v) for v in row] for row in scores], routed_tokens=observer.tokens.tolist(),
        forwards=int(observer.forwards), params_before=before, params_after=after,
        extra={"expert_ratio": float(expert_ratio), "noise": noise.to_dict()},
    )


__all__ = [
    "ExpertPruningResult",
    "ExpertRouterObserver",
    "check_expert_pruning",
    "expert_model_types",
    "expert_scores",
    "experts_to_remove",
    "kept_experts",
    "prune_experts",
    "router_weighted_norms",
    "score_experts",
]
