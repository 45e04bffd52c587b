# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Sink statistics over a denoising trajectory.

Two trajectories (the paper's question: does the sink move while a diffusion LM denoises?):

* `forward_process_trajectory`: clean text noised by the calibration's noise module (`calibration.noise`, with
  the model family's schedule and protected positions, as in calibration: LLaDA t = s/steps for s = interval,
  2·interval, ..., steps with nothing protected, Dream t ~ U(0, 1) with the first and last tokens kept; per-sample
  seeds), one forward per sampled step.
* `generation_trajectory`: the canvases of a real sampler run (all-mask → text), every `sample_interval`-th step.

For an autoregressive model (adapter.is_diffusion False) `forward_process_trajectory` repeats the clean text at every
step: an AR model never sees a noised input, so its input (and its sink) cannot change across steps. That is the
comparison the paper makes: the DLM's sink moves with the noise level, the AR sink stays on the first tokens.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from ..adapters import get_adapter
from ..calibration.attention import attention_mass, validate_model_inputs
from ..calibration.noise import NoiseSchedule, step_list
from ..diffusion import generate
from ..offload import input_device
from .statistics import (
    TOKEN_KINDS,
    classify_positions,
    dominant_positions,
    position_range,
    position_variance,
    sink_share,
    threshold_set_size,
    topk_positions,
)

logger = logging.getLogger(__name__)

TRAJECTORY_KINDS = ("forward_process", "generation")
# The paper's criterion: a head's sink "moves" when its dominant position spans more than 3 positions.
DEFAULT_MOVE_THRESHOLD = 3


@dataclass
class SinkTrajectory:
    """Per-step sink statistics of one model on one batch.

    Attributes:
        steps (`list[int]`): the sampled step indices.
        t (`list[float]`): diffusion time (fraction of noise) of each sampled step.
        dominant (`torch.LongTensor`): [num_steps, batch, layers, heads] argmax position of each head's mass.
        topk (`torch.LongTensor`): [num_steps, batch, layers, heads, k] top-k positions, largest first.
        share (`torch.Tensor`): [num_steps, batch, layers, heads] mass on the top-k positions / total mass.
        mass (`torch.Tensor`): [num_steps, batch, seq] mass summed over layers and heads.
        token_kind (`torch.LongTensor`): [num_steps, batch, layers, heads] index into `TOKEN_KINDS` of the token
            under each dominant sink ("first" position, "mask" token, other "real" token).
        sink_set_size (`torch.LongTensor`): [num_steps, batch, layers, heads] size of the thresholded sink set
            (mass > mean + k_std·std over valid positions).
        tokens (`torch.LongTensor`): [num_steps, batch, seq] the input of each forward.
        valid (`torch.BoolTensor`): [batch, seq] padding mask.
        heads_present (`torch.BoolTensor`): [layers, heads]; False for heads removed by structured pruning (they
            are left out of every statistic).
        kind (`str`): "forward_process" or "generation".
        is_diffusion (`bool`): whether the model is a DLM (False: an AR baseline, input repeated over steps).
        k_std (`float`): threshold of `sink_set_size`.
        mask_token_id (`int`, *optional*): the [MASK] id used to classify sink tokens.
    """

    steps: list[int]
    t: list[float]
    dominant: torch.LongTensor
    topk: torch.LongTensor
    share: torch.Tensor
    mass: torch.Tensor
    token_kind: torch.LongTensor
    sink_set_size: torch.LongTensor
    tokens: torch.LongTensor
    valid: torch.BoolTensor
    heads_present: torch.BoolTensor
    kind: str = "forward_process"
    is_diffusion: bool = True
    k_std: float = 2.0
    mask_token_id: int | None = None
    extra: dict = field(default_factory=dict)

    # ---- shape helpers -----------------------------------------------------------------------------------------------
    @property
    def num_steps(self) -> int:
        return len(self.steps)

    @property
    def num_layers(self) -> int:
        return int(self.dominant.shape[2])

    @property
    def num_heads(self) -> int:
        return int(self.dominant.shape[3])

    # ---- per-head statistics over steps --------------------------------------------------------------------------
    def per_head_position_variance(self) -> torch.Tensor:
        """[layers, heads]: population variance across steps of the dominant sink position, averaged over the batch
        (pruned heads: NaN)."""
        out = position_variance(self.dominant).mean(dim=0)
        return out.masked_fill(~self.heads_present, float("nan"))

    def per_head_position_range(self) -> torch.Tensor:
        """[layers, heads]: max − min across steps of the dominant sink position, averaged over the batch
        (pruned heads: NaN)."""
        out = position_range(self.dominant).mean(dim=0)
        return out.masked_fill(~self.heads_present, float("nan"))

    def moving_head_fraction(self, threshold: float = DEFAULT_MOVE_THRESHOLD) -> float:
        """Fraction of (sample, head) pairs whose dominant sink spans more than `threshold` positions across steps."""
        moved = position_range(self.dominant) > threshold  # [b, L, H]
        return float(moved[:, self.heads_present].to(torch.float32).mean())

    def token_kind_frequencies(self) -> dict[str, float]:
        """How often the dominant sink sits on each kind of token, over steps, samples and present heads."""
        kinds = self.token_kind[:, :, self.heads_present]
        total = max(1, kinds.numel())
        return {name: float((kinds == i).sum()) / total for i, name in enumerate(TOKEN_KINDS)}

    def summary(self, move_threshold: float = DEFAULT_MOVE_THRESHOLD) -> dict:
        """Headline numbers: moving-head fraction, per-head variance (mean/median), range, token kinds, share."""
        var = self.per_head_position_variance()[self.heads_present]
        rng = self.per_head_position_range()[self.heads_present]
        present = self.heads_present
        return {
            "kind": self.kind,
            "is_diffusion": self.is_diffusion,
            "num_steps": self.num_steps,
            "num_samples": int(self.dominant.shape[1]),
            "num_heads": int(present.sum()),
            "move_threshold": move_threshold,
            "moving_head_fraction": self.moving_head_fraction(move_threshold),
            "mean_position_variance": float(var.mean()) if var.numel() else 0.0,
            "median_position_variance": float(var.median()) if var.numel() else 0.0,
            "mean_position_range": float(rng.mean()) if rng.numel() else 0.0,
            "token_kind_frequencies": self.token_kind_frequencies(),
            "mean_topk_share": float(self.share[:, :, present].mean()),
            "topk": int(self.topk.shape[-1]),
            "mean_sink_set_size": float(self.sink_set_size[:, :, present].to(torch.float32).mean()),
            "k_std": self.k_std,
        }

    # ---- serialisation ----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dict (tensors as nested lists)."""
        return {
            "steps": list(self.steps),
            "t": [float(x) for x in self.t],
            "dominant": self.dominant.tolist(),
            "topk": self.topk.tolist(),
            "share": self.share.tolist(),
            "mass": self.mass.tolist(),
            "token_kind": self.token_kind.tolist(),
            "sink_set_size": self.sink_set_size.tolist(),
            "tokens": self.tokens.tolist(),
            "valid": self.valid.to(torch.int64).tolist(),
            "heads_present": self.heads_present.to(torch.int64).tolist(),
            "kind": self.kind,
            "is_diffusion": self.is_diffusion,
            "k_std": self.k_std,
            "mask_token_id": self.mask_token_id,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict) -> SinkTrajectory:
        return cls(
            steps=[int(s) for s in data["steps"]],
            t=[float(x) for x in data["t"]],
            dominant=torch.tensor(data["dominant"], dtype=torch.long),
            topk=torch.tensor(data["topk"], dtype=torch.long),
            share=torch.tensor(data["share"], dtype=torch.float32),
            mass=torch.tensor(data["mass"], dtype=torch.float32),
            token_kind=torch.tensor(data["token_kind"], dtype=torch.long),
            sink_set_size=torch.tensor(data["sink_set_size"], dtype=torch.long),
            tokens=torch.tensor(data["tokens"], dtype=torch.long),
            valid=torch.tensor(data["valid"], dtype=torch.bool),
            heads_present=torch.tensor(data["heads_present"], dtype=torch.bool),
            kind=data.get("kind", "forward_process"),
            is_diffusion=bool(data.get("is_diffusion", True)),
            k_std=float(data.get("k_std", 2.0)),
            mask_token_id=data.get("mask_token_id"),
            extra=dict(data.get("extra", {})),
        )


# ---------------------------------------------------------------------------------------------------------------------
# builders
# ---------------------------------------------------------------------------------------------------------------------
def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _heads_present(model: nn.Module, adapter) -> torch.BoolTensor:
    layers, heads = adapter.num_layers(model), adapter.original_num_heads(model)
    present = torch.ones(layers, heads, dtype=torch.bool)
    for layer, removed in adapter.pruned_heads(model).items():
        if 0 <= layer < layers:
            present[layer, [h for h in removed if 0 <= h < heads]] = False
    return present


def trajectory_from_inputs(
    model: nn.Module,
    inputs: list[torch.LongTensor],
    *,
    steps: list[int],
    t: list[float],
    attention_mask: torch.Tensor | None = None,
    mask_token_id: int | None = None,
    top_k: int = 3,
    k_std: float = 2.0,
    chunk_size: int | None = None,
    kind: str = "forward_process",
    progress: bool = False,
) -> SinkTrajectory:
    """Sink statistics for a given sequence of inputs (one forward each).

    Args:
        model (`nn.Module`): any supported model.
        inputs (`list[torch.LongTensor]`): one [batch, seq] input per step (same shape for all).
        steps (`list[int]`), t (`list[float]`): labels of the inputs (same length as `inputs`).
        attention_mask (`torch.Tensor`, *optional*): [batch, seq] padding mask shared by all steps.
        mask_token_id (`int`, *optional*): classifies sinks on [MASK] tokens (None: no mask tokens).
        top_k (`int`): positions kept per head for `topk` and `share`.
        k_std (`float`): threshold of the sink-set size.
        chunk_size (`int`, *optional*): query chunk of the attention-mass capture.
        kind (`str`): "forward_process" or "generation".
        progress (`bool`): tqdm bar over steps.

    Returns:
        `SinkTrajectory`.
    """
    adapter = get_adapter(model)
    if not inputs:
        raise ValueError("inputs is empty: pass at least one [batch, seq] input")
    if len(steps) != len(inputs) or len(t) != len(inputs):
        raise ValueError(f"steps ({len(steps)}) and t ({len(t)}) must match the number of inputs ({len(inputs)})")
    if kind not in TRAJECTORY_KINDS:
        raise ValueError(f"kind={kind!r} is not one of {TRAJECTORY_KINDS}")
    _positive_int("top_k", top_k)
    shape = tuple(inputs[0].shape)
    for x in inputs:
        if tuple(x.shape) != shape:
            raise ValueError(f"every input must have the shape of the first {shape}, got {tuple(x.shape)}")
        validate_model_inputs(model, adapter, x, attention_mask)
    valid = (
        attention_mask.to(torch.bool).cpu() if attention_mask is not None else torch.ones(shape, dtype=torch.bool)
    )
    dominant, topk, share, mass, kinds, set_sizes = [], [], [], [], [], []
    for x in tqdm(inputs, desc=f"sink trajectory ({kind})", disable=not progress):
        per_head = attention_mass(model, x, attention_mask, per_head=True, chunk_size=chunk_size).cpu()
        dom = dominant_positions(per_head)
        dominant.append(dom)
        topk.append(topk_positions(per_head, top_k))
        share.append(sink_share(per_head, top_k))
        mass.append(per_head.sum(dim=(1, 2)))
        kinds.append(classify_positions(dom, x.cpu(), valid, mask_token_id))
        set_sizes.append(threshold_set_size(per_head, valid, k_std))
    return SinkTrajectory(
        steps=[int(s) for s in steps],
        t=[float(v) for v in t],
        dominant=torch.stack(dominant),
        topk=torch.stack(topk),
        share=torch.stack(share),
        mass=torch.stack(mass),
        token_kind=torch.stack(kinds),
        sink_set_size=torch.stack(set_sizes),
        tokens=torch.stack([x.cpu() for x in inputs]),
        valid=valid,
        heads_present=_heads_present(model, adapter),
        kind=kind,
        is_diffusion=adapter.is_diffusion,
        k_std=float(k_std),
        mask_token_id=mask_token_id,
    )


def sampled_steps(steps: int, sample_interval: int) -> list[int]:
    """interval, 2·interval, ..., up to `steps` (the last step is always included: `NoiseSchedule.include_last`)."""
    _positive_int("steps", steps)
    _positive_int("sample_interval", sample_interval)
    if sample_interval > steps:
        raise ValueError(f"sample_interval={sample_interval} must be <= steps={steps}")
    return step_list(steps, sample_interval, include_last=True)


def forward_process_trajectory(
    model: nn.Module,
    input_ids: torch.LongTensor,
    *,
    steps: int = 50,
    sample_interval: int = 5,
    eps: float = 1e-3,
    seed: int = 0,
    attention_mask: torch.Tensor | None = None,
    maskable: torch.Tensor | None = None,
    schedule: str | None = None,
    protected: str | None = None,
    top_k: int = 3,
    k_std: float = 2.0,
    chunk_size: int | None = None,
    progress: bool = True,
) -> SinkTrajectory:
    """Sink statistics along the forward process: the text noised by the calibration's noise module
    (`calibration.noise.NoiseSchedule`), one forward per sampled step, so the same seed and schedule give the inputs
    calibration sees.

    Args:
        model (`nn.Module`): a supported DLM, or an AR model (its input is the clean text at every step).
        input_ids (`torch.LongTensor`): [batch, seq] clean text.
        steps (`int`): number of diffusion steps (t = s / steps on the "ladder" schedule).
        sample_interval (`int`): analyse s = interval, 2·interval, ..., steps (the last step always).
        eps (`float`): minimum masking probability of the forward process.
        seed (`int`): seeds the masks, per sample (`calibration.noise.sample_seeds`): reproducible, and independent
            of the other rows of the batch.
        attention_mask (`torch.Tensor`, *optional*): [batch, seq] padding mask; padding is never masked.
        maskable (`torch.Tensor`, *optional*): bool [batch, seq] positions allowed to be masked (replaces the
            padding and `protected` rule).
        schedule (`str`, *optional*): "ladder" (t = s / steps) or "uniform" (t ~ U(0, 1] per (sample, step),
            stratified); default: the model family's, as in calibration (`adapter.noise_defaults()`).
        protected (`str`, *optional*): positions never masked: "none", "first" or "first_last" (of each row's valid
            tokens); default: the family's, as in calibration, so a [BOS] at position 0 is treated alike in both
            (LLaDA / MMaDA: maskable; Dream: kept). Pass "first" to keep the first token clean.
        top_k (`int`), k_std (`float`), chunk_size (`int`, *optional*): see `trajectory_from_inputs`.
        progress (`bool`): tqdm bar.

    Returns:
        `SinkTrajectory` with kind "forward_process".

    Raises:
        `MissingMaskTokenError`: a DLM without a mask token (config or tokenizer).
        `ValueError`: bad steps / interval / schedule / protection, empty or too long input.
    """
    adapter = get_adapter(model)
    validate_model_inputs(model, adapter, input_ids, attention_mask)
    step_list_ = sampled_steps(steps, sample_interval)
    if not 0 <= eps < 1:
        raise ValueError(f"eps must lie in [0, 1), got {eps}")
    if maskable is not None and tuple(maskable.shape) != tuple(input_ids.shape):
        raise ValueError(f"maskable must have the shape of input_ids {tuple(input_ids.shape)}, got {tuple(maskable.shape)}")
    family = adapter.noise_defaults()  # the calibration's defaults: one rule for both
    schedule = family.schedule if schedule is None else schedule
    protected = family.protected if protected is None else protected
    noise = NoiseSchedule(diffusion_steps=steps, sample_interval=sample_interval, schedule=schedule,
                          protected=protected, noise_eps=eps, seed=seed, include_last=True)
    if adapter.is_diffusion:
        mask_token_id = adapter.mask_token_id(model)
        noisy, times = noise.noised(input_ids, mask_token_id, attention_mask=attention_mask, maskable=maskable,
                                    batch_size=input_ids.shape[0])
        inputs = [noisy[:, k].to(input_ids.device) for k in range(noisy.shape[1])]
        # one t per step: the ladder's s/steps; a uniform schedule records the batch mean (per-row t in `extra`)
        t = noise.ladder_times() if schedule == "ladder" else [float(v) for v in times.mean(dim=0)]
    else:
        # An AR model never sees noised text: the same clean input at every step (documented comparison).
        mask_token_id = None
        inputs = [input_ids for _ in step_list_]
        times = None
        t = noise.ladder_times()
    traj = trajectory_from_inputs(
        model, inputs, steps=step_list_, t=t, attention_mask=attention_mask, mask_token_id=mask_token_id,
        top_k=top_k, k_std=k_std, chunk_size=chunk_size, kind="forward_process", progress=progress,
    )
    traj.extra["noise"] = noise.to_dict()
    if times is not None and schedule != "ladder":
        traj.extra["t_per_sample"] = times.T.tolist()
    return traj


def generation_trajectory(
    model: nn.Module,
    prompt: torch.LongTensor,
    *,
    sample_interval: int = 1,
    top_k: int = 3,
    k_std: float = 2.0,
    chunk_size: int | None = None,
    progress: bool = True,
    **sampler_kwargs,
) -> SinkTrajectory:
    """Sink statistics along a real sampler run: canvases from all-mask (step 0) to the final text.

    Args:
        model (`nn.Module`): a supported DLM.
        prompt (`torch.LongTensor`): [batch, prompt_len].
        sample_interval (`int`): analyse every `sample_interval`-th canvas (the first and last always).
        top_k (`int`), k_std (`float`), chunk_size (`int`, *optional*): see `trajectory_from_inputs`.
        progress (`bool`): tqdm bars (sampling and analysis).
        **sampler_kwargs: passed to `optimum_sinkprune.diffusion.generate` (steps, gen_length, block_length,
            temperature, remasking, attention_mask, generator, ...).

    Returns:
        `SinkTrajectory` with kind "generation"; `t` is the fraction of steps still to run (1 = all mask).
    """
    adapter = get_adapter(model)
    if not adapter.is_diffusion:
        raise ValueError(
            f"generation_trajectory needs a diffusion LM; {type(model).__name__} "
            f"(model_type={model.config.model_type!r}) is autoregressive"
        )
    _positive_int("sample_interval", sample_interval)
    for reserved in ("return_trajectory", "progress", "keep_framing"):
        if reserved in sampler_kwargs:
            raise ValueError(f"{reserved} is set by generation_trajectory; do not pass it")
    mask_token_id = sampler_kwargs.get("mask_token_id")
    if mask_token_id is None:
        mask_token_id = adapter.mask_token_id(model)
    # the canvases as the model saw them: with the family's framing (BERT: [CLS] … [SEP]) where the sampler added it
    out = generate(model, prompt, return_trajectory=True, progress=progress, keep_framing=True, **sampler_kwargs)
    total = out.steps_taken
    idx = list(range(0, len(out.trajectory), sample_interval))
    if idx[-1] != len(out.trajectory) - 1:
        idx.append(len(out.trajectory) - 1)
    full_mask = out.attention_mask
    device = input_device(model)
    inputs = [out.trajectory[i].to(device) for i in idx]
    return trajectory_from_inputs(
        model, inputs, steps=idx, t=[1.0 - i / max(total, 1) for i in idx],
        attention_mask=None if full_mask is None else full_mask.to(device), mask_token_id=mask_token_id,
        top_k=top_k, k_std=k_std, chunk_size=chunk_size, kind="generation", progress=progress,
    )


__all__ = [
    "DEFAULT_MOVE_THRESHOLD",
    "TRAJECTORY_KINDS",
    "SinkTrajectory",
    "forward_process_trajectory",
    "generation_trajectory",
    "sampled_steps",
    "trajectory_from_inputs",
]
