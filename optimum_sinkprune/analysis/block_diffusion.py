# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Sinks of a block-diffusion decoder (DiffusionGemma) over its forward process.

Each calibration window [seq] is split into a clean context (the first seq − C tokens, read by the encoder) and a
canvas (the last C = `canvas_length` tokens). The canvas is noised at every step of a `NoiseSchedule` with the
model's own uniform-token forward process (`diffusion.block_diffusion.noise_canvases`); the decoder then denoises it
while reading the encoder's keys/values. The decoder's attention is captured through transformers' attention interface
(`calibration.attention.AttentionMassProbe`), so the mass is what the model itself computes:

    m^{l,h}_j = Σ_{i ∈ canvas} softmax(q_i kᵀ)_j,   j over [context | canvas] keys,  Σ_j m^{l,h}_j = C

Sliding-attention layers only see the last (window − 1) context keys the cache keeps; their mass is placed at those
positions (the keys they cannot see get 0). From that:

* context share: Σ_{j ∈ context} m_j / C per (sample, step, layer, head): do sinks sit on the context or the canvas?
* dominant sink j* = argmax_j m_j and whether it lies in the context;
* within-canvas sink: argmax over canvas keys only; it "moves" over the forward process when its range over the
  steps exceeds `move_threshold` positions (the paper's definition, `analysis.statistics.position_range`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from ..adapters import get_adapter
from ..calibration.attention import AttentionMassProbe, right_align
from ..calibration.noise import NoiseSchedule
from ..diffusion.block_diffusion import noise_canvases
from ..offload import input_device
from .statistics import dominant_positions, position_range, position_variance

logger = logging.getLogger(__name__)

DEFAULT_MOVE_THRESHOLD = 3


class _LayerMassProbe(AttentionMassProbe):
    """The probe with every layer's own mass: the decoder's layers see key ranges of different lengths (sliding
    layers keep only their window of the context), which the summed `mass` cannot hold."""

    def layer_masses(self) -> dict[int, torch.Tensor]:
        """{layer: float32 [batch, heads, keys of that layer]} of the latest forward."""
        return dict(self._collect())


@dataclass
class BlockDiffusionSinkProfile:
    """Decoder attention mass over the forward process of one set of calibration windows.

    Attributes:
        mass: float32 [n, steps, layers, heads, context + canvas], keys in sequence order.
        times: float32 [n, steps], the noise level t of each forward.
        steps: the schedule's sampled steps.
        context_length, canvas_length: how each window was split.
        layer_types: "sliding_attention" / "full_attention" per layer.
    """

    mass: torch.Tensor
    times: torch.Tensor
    steps: list[int]
    context_length: int
    canvas_length: int
    layer_types: list[str]

    @property
    def context_share(self) -> torch.Tensor:
        """Fraction of each head's mass on context keys: [n, steps, layers, heads]."""
        total = self.mass.sum(dim=-1).clamp_min(torch.finfo(torch.float32).tiny)
        return self.mass[..., : self.context_length].sum(dim=-1) / total

    @property
    def dominant(self) -> torch.LongTensor:
        """Dominant key position (over context and canvas) per head: [n, steps, layers, heads]."""
        return dominant_positions(self.mass)

    @property
    def dominant_on_context(self) -> torch.Tensor:
        """Bool [n, steps, layers, heads]: the dominant sink is a context token."""
        return self.dominant < self.context_length

    @property
    def canvas_dominant(self) -> torch.LongTensor:
        """Dominant position among the canvas keys only, as an offset into the canvas: [n, steps, layers, heads]."""
        return dominant_positions(self.mass[..., self.context_length:])

    def canvas_sink_range(self) -> torch.Tensor:
        """Range over the steps of the within-canvas dominant position: float32 [n, layers, heads]."""
        return position_range(self.canvas_dominant.transpose(0, 1))

    def canvas_sink_variance(self) -> torch.Tensor:
        """Variance over the steps of the within-canvas dominant position: float32 [n, layers, heads]."""
        return position_variance(self.canvas_dominant.transpose(0, 1))

    def summary(self, move_threshold: int = DEFAULT_MOVE_THRESHOLD) -> dict:
        """Per step (mean over samples, layers, heads): context share, fraction of heads whose dominant sink is on
        the context, the most frequent dominant positions; and the fraction of heads whose within-canvas sink moves
        by more than `move_threshold` positions over the steps."""
        share = self.context_share
        on_ctx = self.dominant_on_context.to(torch.float32)
        per_step = []
        for k, step in enumerate(self.steps):
            dom = self.dominant[:, k].reshape(-1)
            counts = torch.bincount(dom, minlength=self.mass.shape[-1])
            top = torch.argsort(counts, descending=True, stable=True)[:3]
            per_step.append({
                "step": int(step),
                "mean_t": float(self.times[:, k].mean()),
                "context_share": float(share[:, k].mean()),
                "dominant_on_context": float(on_ctx[:, k].mean()),
                "top_dominant_positions": [{"position": int(p), "in": "context" if p < self.context_length else
                                            "canvas", "heads": int(counts[p])} for p in top if counts[p] > 0],
            })
        per_layer = [{"layer": i, "type": self.layer_types[i], "context_share": float(share[:, :, i].mean())}
                     for i in range(self.mass.shape[2])]
        moves = self.canvas_sink_range() > move_threshold
        return {
            "context_length": self.context_length,
            "canvas_length": self.canvas_length,
            "samples": int(self.mass.shape[0]),
            "per_step": per_step,
            "per_layer": per_layer,
            "canvas_sink_moving_fraction": float(moves.to(torch.float32).mean()),
            "move_threshold": int(move_threshold),
        }


def _block_diffusion_adapter(model: nn.Module, batch_size: int | None, *, what: str):
    """The adapter of `model`, checked up front: an encoder/decoder block-diffusion family (`what` names the analysis
    in the error) and, unless None, a positive int `batch_size`."""
    adapter = get_adapter(model)
    if not (hasattr(adapter, "split_window") and hasattr(adapter, "stack_blocks")):
        raise ValueError(f"{what} needs an encoder/decoder block-diffusion model "
                         f"(supported: diffusion_gemma), got model_type={getattr(model.config, 'model_type', None)!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size={batch_size!r} is not allowed; it must be a positive int")
    return adapter


@torch.no_grad()
def forward_process_sink_profile(
    model: nn.Module,
    input_ids: torch.Tensor,
    *,
    schedule: NoiseSchedule | None = None,
    batch_size: int = 1,
    progress: bool = True,
) -> BlockDiffusionSinkProfile:
    """Decoder attention mass of a block-diffusion model over its own forward process.

    Args:
        model (`nn.Module`): a DiffusionGemma (`DiffusionGemmaForBlockDiffusion`).
        input_ids (`torch.Tensor`): text windows [n, seq], seq > canvas_length; the last canvas_length tokens are
            the canvas, the rest the context.
        schedule (`NoiseSchedule`, *optional*): steps, t and seed (default: `NoiseSchedule()`).
        batch_size (`int`): windows per forward (the noise does not depend on it).
        progress (`bool`): a tqdm bar over the forwards.

    Returns:
        `BlockDiffusionSinkProfile`.

    Raises:
        ValueError: a model without block-diffusion stacks, windows not longer than the canvas, image tokens in
            `input_ids`, a bad batch size — before anything runs.
    """
    adapter = _block_diffusion_adapter(model, batch_size, what="the block-diffusion sink profile")
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        raise ValueError("input_ids must be a [n, seq] tensor of token ids")
    adapter.check_text_ids(model, input_ids)
    context, canvas = adapter.split_window(model, input_ids.cpu())
    schedule = schedule or NoiseSchedule()
    noisy, times = noise_canvases(canvas, schedule, adapter.vocab_size(model))
    n, num_steps, c = noisy.shape
    ctx = context.shape[1]
    layers = adapter.num_layers(model)
    heads = adapter.original_num_heads(model)
    device = input_device(model)
    mass = torch.zeros((n, num_steps, layers, heads, ctx + c), dtype=torch.float32)
    rows_list = [range(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    bar = tqdm(total=len(rows_list) * num_steps, desc="block-diffusion sinks", unit="fwd", disable=not progress)
    try:
        for rows in rows_list:
            # the encoder reads the clean context once; the decoder only reads its cache
            cache = adapter.encode_context(model, context[rows.start:rows.stop].to(device))
            with _LayerMassProbe(model, per_head=True, method="interface", adapter=adapter) as probe:
                for k in range(num_steps):
                    adapter.denoiser_logits(model, None, noisy[rows.start:rows.stop, k].to(device), cache=cache)
                    for layer, layer_mass in probe.layer_masses().items():
                        mass[rows.start:rows.stop, k, layer] = right_align(layer_mass.float().cpu(), ctx + c)
                    bar.update(1)
    finally:
        bar.close()
    return BlockDiffusionSinkProfile(mass=mass, times=times, steps=list(schedule.steps), context_length=ctx,
                                     canvas_length=c, layer_types=adapter.layer_types(model))


class _StackView:
    """The model's adapter with `blocks` = the layers of one stack, so the probe's attention interface serves that
    stack alone (the encoder runs without the decoder when it is called by itself)."""

    def __init__(self, adapter, model: nn.Module, stack: str):
        self._adapter = adapter
        self._blocks = adapter.stack_blocks(model, stack)
        self.is_causal = adapter.stack_is_causal(model, stack)

    def blocks(self, model: nn.Module) -> nn.ModuleList:
        return self._blocks

    def __getattr__(self, name):
        return getattr(self._adapter, name)


@torch.no_grad()
def encoder_attention_mass(model: nn.Module, input_ids: torch.Tensor, *, batch_size: int = 1) -> torch.Tensor:
    """Attention mass of the encoder stack over clean windows (its own, usually causal, attention): the
    autoregressive side of the comparison with the decoder.

    Args:
        model (`nn.Module`): a DiffusionGemma.
        input_ids (`torch.Tensor`): clean text windows [n, seq].
        batch_size (`int`): windows per forward.

    Returns:
        float32 [n, layers, heads, seq].

    Raises:
        ValueError: a model without block-diffusion stacks, image tokens, a bad batch size.
    """
    adapter = _block_diffusion_adapter(model, batch_size, what="the encoder attention mass")
    adapter.check_text_ids(model, input_ids)
    view = _StackView(adapter, model, "encoder")
    device = input_device(model)
    out = []
    with _LayerMassProbe(model, per_head=True, method="interface", adapter=view) as probe:
        for start in range(0, input_ids.shape[0], batch_size):
            adapter.encode_context(model, input_ids[start:start + batch_size].to(device))
            masses = probe.layer_masses()
            out.append(torch.stack([masses[i].float().cpu() for i in range(len(masses))], dim=1))
    return torch.cat(out, dim=0)


def stack_comparison(encoder_mass: torch.Tensor, profile: BlockDiffusionSinkProfile) -> dict:
    """Encoder (autoregressive, clean windows) against decoder (denoising the canvas) sinks on the same windows.

    Args:
        encoder_mass: [n, layers, heads, seq] from `encoder_attention_mass`.
        profile: the decoder's `BlockDiffusionSinkProfile` of the same windows.

    Returns:
        a dict: for the encoder, the fraction of heads whose dominant sink is the first token and the mean share of
        mass on it; for the decoder, per step, the same two numbers over its keys (the first context token), the
        context share and the fraction of heads whose dominant sink is a context token; and how often the canvas
        sink moves.
    """
    enc_dom = dominant_positions(encoder_mass)
    enc_total = encoder_mass.sum(dim=-1).clamp_min(torch.finfo(torch.float32).tiny)
    dec_total = profile.mass.sum(dim=-1).clamp_min(torch.finfo(torch.float32).tiny)
    decoder = []
    for k, step in enumerate(profile.steps):
        decoder.append({
            "step": int(step),
            "first_token_dominant": float((profile.dominant[:, k] == 0).to(torch.float32).mean()),
            "first_token_share": float((profile.mass[:, k, ..., 0] / dec_total[:, k]).mean()),
            "context_share": float(profile.context_share[:, k].mean()),
            "dominant_on_context": float(profile.dominant_on_context[:, k].to(torch.float32).mean()),
        })
    return {
        "encoder": {
            "first_token_dominant": float((enc_dom == 0).to(torch.float32).mean()),
            "first_token_share": float((encoder_mass[..., 0] / enc_total).mean()),
        },
        "decoder": decoder,
        "canvas_sink_moving_fraction": profile.summary()["canvas_sink_moving_fraction"],
    }


class _BothStacksView:
    """The model's adapter with `blocks` = encoder layers then decoder layers, so that the probe's attention interface
    knows every text attention module a `generate()` call runs (the encoder's first, then the decoder's)."""

    def __init__(self, adapter, model: nn.Module):
        self._adapter = adapter
        self._blocks = nn.ModuleList([*adapter.stack_blocks(model, "encoder"), *adapter.stack_blocks(model, "decoder")])

    def blocks(self, model: nn.Module) -> nn.ModuleList:
        return self._blocks

    def __getattr__(self, name):
        return getattr(self._adapter, name)


class _GenerationProbe(_LayerMassProbe):
    def decoder_masses(self, num_layers: int) -> dict[int, torch.Tensor]:
        """{decoder layer: [batch, heads, keys]} of the latest decoder forward (encoder layers are left out)."""
        return {i - num_layers: m for i, m in self._layer_mass.items() if i >= num_layers}


@dataclass
class GenerationSinkTrajectory:
    """Decoder attention mass at every denoising step of every canvas of one `generate()` call.

    Attributes:
        canvases: per canvas, float32 [steps run, batch, layers, heads, context + canvas] (the context grows by one
            canvas each time; `generate()` may stop a canvas early when it is stable and confident).
        context_lengths: the context (prompt plus finished canvases) each canvas was denoised against.
        canvas_length: tokens per canvas.
        sequences: the generated ids [batch, prompt + new tokens].
    """

    canvases: list[torch.Tensor]
    context_lengths: list[int]
    canvas_length: int
    sequences: torch.Tensor

    def context_share(self, canvas: int) -> torch.Tensor:
        """Fraction of each head's mass on context keys: [steps, batch, layers, heads]."""
        mass = self.canvases[canvas]
        total = mass.sum(dim=-1).clamp_min(torch.finfo(torch.float32).tiny)
        return mass[..., : self.context_lengths[canvas]].sum(dim=-1) / total

    def canvas_dominant(self, canvas: int) -> torch.LongTensor:
        """Dominant canvas key (offset into the canvas) per step and head: [steps, batch, layers, heads]."""
        return dominant_positions(self.canvases[canvas][..., self.context_lengths[canvas]:])

    def summary(self, move_threshold: int = DEFAULT_MOVE_THRESHOLD) -> dict:
        """Per canvas: steps run, mean context share per step, fraction of heads whose dominant sink is on the
        context per step, and the fraction of heads whose within-canvas sink moves by more than `move_threshold`
        positions over the canvas's denoising steps."""
        rows = []
        for c, mass in enumerate(self.canvases):
            ctx = self.context_lengths[c]
            share = self.context_share(c)
            on_ctx = (dominant_positions(mass) < ctx).to(torch.float32)
            moving = position_range(self.canvas_dominant(c)) > move_threshold
            rows.append({
                "canvas": c,
                "context_length": ctx,
                "steps": int(mass.shape[0]),
                "context_share_per_step": [float(v) for v in share.mean(dim=(1, 2, 3))],
                "dominant_on_context_per_step": [float(v) for v in on_ctx.mean(dim=(1, 2, 3))],
                "canvas_sink_moving_fraction": float(moving.to(torch.float32).mean()),
            })
        return {"canvas_length": self.canvas_length, "move_threshold": int(move_threshold), "canvases": rows}


@torch.no_grad()
def generation_sink_trajectory(
    model: nn.Module, input_ids: torch.Tensor, *, seed: int = 0, **generate_kwargs
) -> GenerationSinkTrajectory:
    """Run the model's own `generate()` and capture its decoder attention at every denoising step of every canvas.

    Args:
        model (`nn.Module`): a DiffusionGemma (`DiffusionGemmaForBlockDiffusion`).
        input_ids (`torch.Tensor`): text prompts [batch, prompt].
        seed (`int`): seeds the sampler's draws (initial canvases, sampling, renoising) under a forked RNG state, so
            the global RNG is left as it was.
        generate_kwargs: passed to `generate()` (e.g. `max_new_tokens`, `max_denoising_steps`, `t_min`, `t_max`).

    Returns:
        `GenerationSinkTrajectory`.

    Raises:
        ValueError: a model without block-diffusion stacks, or image tokens in `input_ids`.
    """
    adapter = _block_diffusion_adapter(model, None, what="the generation sink trajectory")
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        raise ValueError("input_ids must be a [batch, prompt] tensor of token ids")
    adapter.check_text_ids(model, input_ids)
    num_layers = adapter.num_layers(model)
    canvas_len = adapter.canvas_length(model)
    steps: list[list[torch.Tensor]] = []
    context_lengths: list[int] = []
    view = _BothStacksView(adapter, model)
    device = input_device(model)

    def on_encoder(_module, _args, kwargs):
        steps.append([])  # each encoder call opens the next canvas

    def on_decoder_step(_module, args, kwargs, _output):
        masses = probe.decoder_masses(num_layers)
        width = max(m.shape[-1] for m in masses.values())
        if len(context_lengths) < len(steps):
            context_lengths.append(width - canvas_len)
        steps[-1].append(torch.stack([right_align(masses[i].float().cpu(), width) for i in range(num_layers)], dim=1))

    handles = []
    with torch.random.fork_rng(devices=[device] if device.type != "cpu" else []):
        torch.manual_seed(seed)
        with _GenerationProbe(model, per_head=True, method="interface", adapter=view) as probe:
            try:
                handles.append(model.get_encoder().register_forward_pre_hook(on_encoder, with_kwargs=True))
                # generate() calls the model's forward method directly: hook the decoder stack's module instead
                handles.append(model.get_decoder().register_forward_hook(on_decoder_step, with_kwargs=True))
                out = model.generate(input_ids.to(device), **generate_kwargs)
            finally:
                for handle in handles:
                    handle.remove()
    sequences = out.sequences if hasattr(out, "sequences") else out
    canvases = [torch.stack(s, dim=0) for s in steps if s]
    return GenerationSinkTrajectory(canvases=canvases, context_lengths=context_lengths[: len(canvases)],
                                    canvas_length=canvas_len, sequences=sequences.cpu())


__all__ = ["BlockDiffusionSinkProfile", "GenerationSinkTrajectory", "encoder_attention_mass",
           "forward_process_sink_profile", "generation_sink_trajectory", "right_align", "stack_comparison"]
