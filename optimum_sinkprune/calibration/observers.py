# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Observers of the calibration pipeline: what is gathered from the forwards, independent of how they are run.

The pipeline (`calibration.pipeline.CalibrationPipeline`) runs the forwards; each observer says which modules'
inputs it wants (`modules`), receives them (`on_input`), and is told when a forward ended (`after_forward`, with the
attention mass and the sink weights σ of that forward when it asked for them). The pipeline owns every hook.

* `AttentionMassObserver`: σ statistics for the report (`SinkStatistics`) and, optionally, σ per sample averaged
  over the steps (`sink_sparsegpt`'s token weights).
* `InputNormObserver`: per target layer Σ over forwards of the L2 norm over tokens of w ⊙ X_j, w = 1 − σ when
  sink-weighted (`sink_wanda`), else w = 1 (`wanda_diffusion`).
* `BlockStatisticObserver`: one block's sum of squares (Wanda: sqrt(mean X_j²)) or Hessian (SparseGPT:
  H = 2·Σ XᵀX / n_samples), optionally with per-token weights (sequential order).
* `StructuredObserver`: per-head and per-channel sums of squares, plain and (1 − σ)-weighted, and every head's
  dominant sink position (structured methods).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..methods.scoring import wanda_input_norm, weighted_token_norms


@dataclass
class ForwardContext:
    """What the pipeline knows about the forward that just ran.

    Attributes:
        rows: the calibration samples of the batch.
        step: index of the noised step (0 for clean inputs).
        mass: [b, seq] attention mass summed over layers and heads (when an observer asked for it).
        per_head_mass: [b, layers, heads, seq] (when an observer asked for it).
        sigma: [b, positions] sink weights σ of `mass` (computed over every valid key position), at the positions
            the blocks see (`adapter.observed_positions`: the whole window, or a block-diffusion decoder's canvas).
        valid: bool [b, positions] padding mask of those positions (None: every position is a token).
    """

    rows: range
    step: int
    mass: torch.Tensor | None = None
    per_head_mass: torch.Tensor | None = None
    sigma: torch.Tensor | None = None
    valid: torch.Tensor | None = None


class Observer:
    """Base observer: gathers nothing. Subclasses override what they need."""

    needs_mass: bool = False
    needs_per_head: bool = False

    def modules(self) -> dict[str, nn.Module]:
        """{key: module} whose first positional input `on_input(key, x)` receives before the module runs."""
        return {}

    def on_input(self, name: str, x: torch.Tensor) -> None:
        """One module input of the current forward."""

    def before_forward(self, rows: range) -> None:
        """The batch `rows` is about to run."""

    def after_forward(self, ctx: ForwardContext) -> None:
        """The forward of `ctx.rows` ended."""


# ------------------------------------------------------------------------------------------------------------------
# attention mass / sink weights
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class SinkStatistics:
    """Summary of the sink weights seen during calibration (for the report)."""

    forwards: int = 0
    tokens: int = 0
    sigma_sum: float = 0.0
    sink_tokens: int = 0  # σ > 0.5
    position_hits: dict[int, int] = field(default_factory=dict)  # argmax-mass position -> count

    def add(self, sigma: torch.Tensor, mass: torch.Tensor, valid: torch.Tensor | None = None) -> None:
        """One forward's σ [b, positions] (0 at padding) and mass [b, seq]; `valid` (bool [b, positions]): the
        tokens, so padding is not counted."""
        self.forwards += sigma.shape[0]
        self.tokens += sigma.numel() if valid is None else int(valid.sum())
        self.sigma_sum += float(sigma.double().sum())
        self.sink_tokens += int((sigma > 0.5).sum())
        for pos in mass.argmax(dim=1).tolist():
            self.position_hits[pos] = self.position_hits.get(pos, 0) + 1

    def to_dict(self) -> dict:
        top = sorted(self.position_hits.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        return {
            "forward_passes": self.forwards,
            "mean_sink_weight": self.sigma_sum / self.tokens if self.tokens else 0.0,
            "sink_token_fraction": self.sink_tokens / self.tokens if self.tokens else 0.0,
            "top_sink_positions": [{"position": p, "count": c} for p, c in top],
        }


class AttentionMassObserver(Observer):
    """Sink statistics of every forward; with `num_samples`/`seq_len`, also σ per sample summed over the steps
    (`mean_sigma(num_steps)` divides)."""

    needs_mass = True

    def __init__(self, num_samples: int | None = None, seq_len: int | None = None):
        self.stats = SinkStatistics()
        self.sigma_sum = (
            torch.zeros((num_samples, seq_len), dtype=torch.float32) if num_samples is not None else None
        )

    def after_forward(self, ctx: ForwardContext) -> None:
        sigma = ctx.sigma.cpu()
        self.stats.add(sigma, ctx.mass.cpu(), ctx.valid.cpu() if ctx.valid is not None else None)
        if self.sigma_sum is not None:
            self.sigma_sum[ctx.rows.start:ctx.rows.stop] += sigma

    def mean_sigma(self, num_steps: int) -> torch.Tensor:
        """σ per sample averaged over `num_steps` steps: float32 [n, seq]."""
        if self.sigma_sum is None:
            raise ValueError("this AttentionMassObserver keeps no per-sample σ; give num_samples and seq_len")
        return self.sigma_sum / num_steps


# ------------------------------------------------------------------------------------------------------------------
# per-input norms on the dense order
# ------------------------------------------------------------------------------------------------------------------
class InputNormObserver(Observer):
    """Σ over forwards of ‖w ⊙ X_j‖₂ over tokens for each input group (w = 1 − σ when `sink_weighted`).

    Args:
        groups: {representative name: [member names]} of layers reading the same input.
        modules: {representative name: its module}.
        sink_weighted: weight tokens by 1 − σ of the same forward.
        padded: the forwards carry a padding mask (`ForwardContext.valid`); padded rows get weight 0, so each
            sample's norm is that of its tokens alone.
    """

    def __init__(self, groups: dict[str, list[str]], modules: dict[str, nn.Module], *, sink_weighted: bool,
                 padded: bool = False):
        self.groups = groups
        self._modules = modules
        self.sink_weighted = sink_weighted
        self.padded = padded
        self.needs_mass = sink_weighted
        self.acc: dict[str, torch.Tensor] = {}
        self._kept: dict[str, torch.Tensor] = {}

    def modules(self) -> dict[str, nn.Module]:
        return self._modules

    def _reduce(self, name: str, x: torch.Tensor, weight: torch.Tensor | None) -> None:
        norms = weighted_token_norms(x, weight).sum(dim=0)
        self.acc[name] = norms if name not in self.acc else self.acc[name] + norms

    def on_input(self, name: str, x: torch.Tensor) -> None:
        if self.sink_weighted or self.padded:
            self._kept[name] = x  # reduced after the forward, once the total mass (and the padding) is known
        else:
            self._reduce(name, x, None)

    def after_forward(self, ctx: ForwardContext) -> None:
        if not (self.sink_weighted or self.padded):
            return
        weight = 1.0 - ctx.sigma if self.sink_weighted else None
        if ctx.valid is not None:
            valid = ctx.valid.to(torch.float32)
            weight = valid if weight is None else weight * valid.to(weight.device)
        for name in list(self._kept):  # pop: each kept input is freed as soon as it is reduced
            x = self._kept.pop(name)
            self._reduce(name, x, weight.to(x.device) if weight is not None else None)

    def result(self) -> dict[str, torch.Tensor]:
        """{layer name: float32 [in]} on CPU, every member of a group sharing its representative's value.

        Raises:
            RuntimeError: a layer that received no input (not used by the forward).
        """
        out = {}
        for rep, members in self.groups.items():
            if rep not in self.acc:
                raise RuntimeError(f"layer {rep!r} received no input during calibration; is it used by the forward?")
            for name in members:
                out[name] = self.acc[rep].cpu()
        return out


# ------------------------------------------------------------------------------------------------------------------
# one block's statistics on the sequential order
# ------------------------------------------------------------------------------------------------------------------
STATISTIC_KINDS = ("sq_norm", "hessian")


class BlockStatisticObserver(Observer):
    """Accumulates one block's per-input statistic for each input group (on the block's device, float32).

    Args:
        kind: "sq_norm" or "hessian".
        modules: {representative name: its module}.
        token_weights: optional [n, seq] per-token weights applied to the inputs before the statistic.
        token_valid: optional bool [n, seq] padding mask: the tokens a sum of squares is averaged over (padded
            rows must also get token weight 0).
    """

    def __init__(self, kind: str, modules: dict[str, nn.Module], token_weights: torch.Tensor | None = None,
                 token_valid: torch.Tensor | None = None):
        if kind not in STATISTIC_KINDS:
            raise ValueError(f"statistic kind={kind!r} is not one of {STATISTIC_KINDS}")
        self.kind = kind
        self._modules = modules
        self.token_weights = token_weights
        self.token_valid = token_valid
        self.valid_tokens: int | None = None  # tokens of the current batch when padded
        self.sums: dict[str, torch.Tensor] = {}
        self.tokens: dict[str, int] = {}
        self.samples: dict[str, int] = {}
        self.token_weight: torch.Tensor | None = None  # [b, s] for the current batch

    def modules(self) -> dict[str, nn.Module]:
        return self._modules

    def before_forward(self, rows: range) -> None:
        if self.token_weights is not None:
            self.token_weight = self.token_weights[rows.start:rows.stop]
        if self.token_valid is not None:
            self.valid_tokens = int(self.token_valid[rows.start:rows.stop].sum())

    def on_input(self, name: str, x: torch.Tensor) -> None:
        x = x.float()
        if self.token_weight is not None:
            x = x * self.token_weight.to(x.device)[..., None]
        flat = x.reshape(-1, x.shape[-1])
        value = flat.square().sum(dim=0) if self.kind == "sq_norm" else flat.T @ flat
        if name in self.sums:
            self.sums[name] += value  # in place: no third [in, in] Hessian while adding (same values as a + b)
        else:
            self.sums[name] = value
        tokens = flat.shape[0] if self.valid_tokens is None else self.valid_tokens
        self.tokens[name] = self.tokens.get(name, 0) + tokens
        self.samples[name] = self.samples.get(name, 0) + (x.shape[0] if x.dim() == 3 else 1)

    def finalize(self, name: str) -> torch.Tensor:
        """sq_norm: sqrt(mean over tokens X_j²) [in]; hessian: H = 2·Σ XᵀX / n_samples [in, in]."""
        if self.kind == "sq_norm":
            return wanda_input_norm(self.sums[name], self.tokens[name])
        return self.sums[name] * (2.0 / self.samples[name])


# ------------------------------------------------------------------------------------------------------------------
# per-head / per-channel statistics (structured methods)
# ------------------------------------------------------------------------------------------------------------------
def token_head_sq_norms(x: torch.Tensor, head_dim: int) -> torch.Tensor:
    """‖x_{t,h}‖² per token and head: [b, s, heads·hd] -> float32 [b, s, heads]."""
    b, s, width = x.shape
    return x.float().reshape(b, s, width // head_dim, head_dim).square().sum(dim=-1)


def head_sq_norms(sq: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Σ over batch and tokens of w_t² ‖x_{t,h}‖² per head from per-token norms [b, s, heads] -> float64 [heads]."""
    if weight is not None:
        sq = sq * weight.float().square()[..., None]
    return sq.sum(dim=(0, 1)).double()


def channel_sq_norms(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Σ over batch and tokens of w_t² x_{t,c}² per channel: [b, s, width] -> float64 [width]."""
    sq = x.float().square()
    if weight is not None:
        sq = sq * weight.float().square()[..., None]
    return sq.sum(dim=(0, 1)).double()


class StructuredObserver(Observer):
    """Per-head sums over the o-projection inputs and per-channel sums over the down-projection inputs, plain and
    weighted by 1 − σ (padding weighted 0), plus each head's dominant sink position per (sample, step).

    Args:
        o_modules / down_modules: per layer, the o- and down-projection.
        kept: per layer, the original indices of the heads still present (in their current order).
        num_heads: heads per layer before any structured pruning.
        head_dim: width of one head (one for every layer, or one per layer).
        widths: per layer, the current MLP width.
        num_samples, num_steps: shape of the dominant-position record.
    """

    needs_mass = True
    needs_per_head = True

    def __init__(self, o_modules: list[nn.Module], down_modules: list[nn.Module], *, kept: list[list[int]],
                 num_heads: int, head_dim: int | list[int], widths: list[int], num_samples: int, num_steps: int):
        self.num_layers = len(o_modules)
        self.head_dim = head_dim
        self.head_dims = list(head_dim) if isinstance(head_dim, (list, tuple)) else [head_dim] * self.num_layers
        self.kept = [torch.tensor(k, dtype=torch.long) for k in kept]
        self._modules = {}
        for i in range(self.num_layers):
            self._modules[f"o.{i}"] = o_modules[i]
            self._modules[f"down.{i}"] = down_modules[i]
        self.head_sq = torch.zeros(self.num_layers, num_heads, dtype=torch.float64)
        self.head_sq_weighted = torch.zeros_like(self.head_sq)
        self.channel_sq = [torch.zeros(w, dtype=torch.float64) for w in widths]
        self.channel_sq_weighted = [torch.zeros(w, dtype=torch.float64) for w in widths]
        self.dominant = torch.zeros(num_samples, num_steps, self.num_layers, num_heads, dtype=torch.long)
        self.sigma_sum = 0.0
        self.tokens = 0
        self._captured: dict[str, torch.Tensor] = {}

    def modules(self) -> dict[str, nn.Module]:
        return self._modules

    def on_input(self, name: str, x: torch.Tensor) -> None:
        # o-projection inputs are reduced to per-token head norms at once; MLP inputs wait for σ (end of forward)
        if name.startswith("o."):
            self._captured[name] = token_head_sq_norms(x, self.head_dims[int(name[2:])])
        else:
            self._captured[name] = x

    def after_forward(self, ctx: ForwardContext) -> None:
        sigma, valid = ctx.sigma, ctx.valid
        token_weight = 1.0 - sigma
        token_valid = valid.float() if valid is not None else torch.ones_like(sigma)
        token_weight = token_weight * token_valid
        self.sigma_sum += float((sigma * token_valid).sum())
        self.tokens += int(token_valid.sum())
        self.dominant[ctx.rows.start:ctx.rows.stop, ctx.step] = ctx.per_head_mass.argmax(dim=-1).cpu()
        for i in range(self.num_layers):
            sq_o = self._captured.pop(f"o.{i}")
            idx = self.kept[i]
            self.head_sq[i, idx] += head_sq_norms(sq_o, token_valid.to(sq_o.device)).cpu()
            self.head_sq_weighted[i, idx] += head_sq_norms(sq_o, token_weight.to(sq_o.device)).cpu()
            x_d = self._captured.pop(f"down.{i}")
            self.channel_sq[i] += channel_sq_norms(x_d, token_valid.to(x_d.device)).cpu()
            self.channel_sq_weighted[i] += channel_sq_norms(x_d, token_weight.to(x_d.device)).cpu()


__all__ = [
    "STATISTIC_KINDS",
    "AttentionMassObserver",
    "BlockStatisticObserver",
    "ForwardContext",
    "InputNormObserver",
    "Observer",
    "SinkStatistics",
    "StructuredObserver",
    "channel_sq_norms",
    "head_sq_norms",
    "token_head_sq_norms",
]
