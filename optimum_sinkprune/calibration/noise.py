# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The noise module: which masked-diffusion inputs calibration and the sink analysis see.

One `NoiseSchedule` describes them completely, so the same schedule and seed give the same noisy inputs in the
calibration pipeline and in `analysis.forward_process_trajectory`:

* **steps**: s = interval, 2·interval, …, ≤ K (K = `diffusion_steps`); `include_last` also visits K when the
  interval does not divide it (the analysis' convention).
* **schedule**: "ladder" — t = s / K for sampled step s (LLaDA's calibration, the default); "uniform" — t ~ U(0, 1]
  per (sample, sampled step), stratified across a batch when `batch_size` > 1 (the paper's Dream calibration):
  the batch shares one offset u (drawn by its first sample) and member j gets t = 1 − ((u + j / b) mod 1).
* **protected positions**: "none", "first" (the first valid position of every window) or "first_last" (also the
  last valid one) are never masked; padding (attention mask 0) never is either.
* **padding**: a padded row (attention mask 0 at its pads) draws its noise over its tokens only, in order, so a
  sample right-padded in a batch is noised exactly as the same sample alone; its pads keep their ids.
* **seeding**: sample i draws from its own CPU generator seeded with `sample_seeds(seed, n)[i]`, steps in
  increasing order, so a sample's noise does not depend on batch_size, on the device or on the other samples.
  Under "uniform" every sample draws its own u before its mask at every step, also when a batch uses another
  member's u, so the streams stay aligned for every batch size.

Each masked position follows LLaDA's forward process: masked with p = (1 − eps)·t + eps.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from ..diffusion import forward_process

SCHEDULES = ("ladder", "uniform")
PROTECTED_POSITIONS = ("none", "first", "first_last")


def sample_seeds(seed: int, num_samples: int) -> list[int]:
    """Per-sample noise seeds: `num_samples` draws of randint(0, 2³¹) from a CPU generator seeded with `seed`, so a
    sample's noise does not depend on batch_size, on the device, or on the other samples."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randint(0, 2**31, (num_samples,), generator=gen).tolist()


def step_list(diffusion_steps: int, sample_interval: int, *, include_last: bool = False) -> list[int]:
    """interval, 2·interval, …, ≤ diffusion_steps; with `include_last`, diffusion_steps itself is appended when the
    interval does not divide it."""
    out = list(range(sample_interval, diffusion_steps + 1, sample_interval))
    if include_last and (not out or out[-1] != diffusion_steps):
        out.append(diffusion_steps)
    return out


def protected_mask(valid: torch.Tensor, protected: str) -> torch.Tensor:
    """Bool [batch, seq]: True at the positions `protected` names ("none", "first", "first_last"), counted over the
    valid positions of each row (`valid`: bool [batch, seq]). Pure.

    Raises:
        ValueError: an unknown `protected` value.
    """
    if protected not in PROTECTED_POSITIONS:
        raise ValueError(f"protected={protected!r} is not one of {PROTECTED_POSITIONS}")
    out = torch.zeros(valid.shape, dtype=torch.bool, device=valid.device)
    if protected == "none" or valid.shape[1] == 0:
        return out
    positions = torch.arange(valid.shape[1], device=valid.device).expand(valid.shape)
    has = valid.any(dim=1)
    rows = torch.arange(valid.shape[0], device=valid.device)[has]
    first = torch.where(valid, positions, valid.shape[1]).min(dim=1).values
    out[rows, first[has]] = True
    if protected == "first_last":
        last = torch.where(valid, positions, -1).max(dim=1).values
        out[rows, last[has]] = True
    return out


def maskable_positions(
    shape: tuple[int, int], protected: str, attention_mask: torch.Tensor | None = None
) -> torch.Tensor | None:
    """Bool [batch, seq] of the positions the forward process may mask (valid and not protected), or None when every
    position may be (no padding, nothing protected: the forward process then skips the mask, as calibration always
    did)."""
    if attention_mask is None and protected == "none":
        return None
    valid = attention_mask.to(torch.bool).cpu() if attention_mask is not None else torch.ones(shape, dtype=torch.bool)
    return valid & ~protected_mask(valid, protected)


def stratified_times(offset: float, batch: int) -> torch.Tensor:
    """t_j = 1 − ((offset + j / batch) mod 1) for j < batch: one draw spread evenly over (0, 1]. Pure."""
    j = torch.arange(batch, dtype=torch.float64)
    return (1.0 - torch.remainder(offset + j / batch, 1.0)).to(torch.float32)


def noise_inputs(
    samples: torch.Tensor,
    steps: list[int],
    *,
    diffusion_steps: int,
    mask_token_id: int,
    schedule: str = "ladder",
    protected: str = "none",
    noise_eps: float = 1e-3,
    seed: int = 0,
    attention_mask: torch.Tensor | None = None,
    maskable: torch.Tensor | None = None,
    batch_size: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """All noised inputs of `samples` [n, seq] (on CPU): `(noisy [n, len(steps), seq], t [n, len(steps)])`.

    Args:
        samples (`torch.Tensor`): clean token ids [n, seq].
        steps (`list[int]`): the sampled diffusion steps, increasing (the "ladder" schedule's t = step / K).
        diffusion_steps (`int`): K.
        mask_token_id (`int`): id written at masked positions.
        schedule, protected, noise_eps, seed: see `NoiseSchedule`.
        attention_mask (`torch.Tensor`, *optional*): [n, seq] padding mask; padding is never masked, and a padded
            row draws its noise over its tokens only (the noise of the sample without its pads).
        maskable (`torch.Tensor`, *optional*): bool [n, seq] positions allowed to be masked, given explicitly
            (replaces what `attention_mask` and `protected` would allow).
        batch_size (`int`): the forwards' batch size (only the "uniform" schedule's stratification reads it).

    Raises:
        ValueError: `samples` not [n, seq], a mask of another shape, an unknown schedule or protection.
    """
    if not isinstance(samples, torch.Tensor) or samples.dim() != 2:
        shape = tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__
        raise ValueError(f"samples must be a [n, seq] tensor of token ids, got {shape}")
    if attention_mask is not None and tuple(attention_mask.shape) != tuple(samples.shape):
        raise ValueError(f"attention_mask must have the shape of samples {tuple(samples.shape)}, got "
                         f"{tuple(attention_mask.shape)}")
    if maskable is not None and tuple(maskable.shape) != tuple(samples.shape):
        raise ValueError(f"maskable must have the shape of samples {tuple(samples.shape)}, got "
                         f"{tuple(maskable.shape)}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule={schedule!r} is not allowed; choose one of {SCHEDULES}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} is not allowed; it must be a positive int")
    samples = samples.cpu()
    n, seq = samples.shape
    if maskable is None:
        maskable = maskable_positions((n, seq), protected, attention_mask)
    else:
        protected_mask(maskable, protected)  # validates `protected` even when the caller chose the positions
        maskable = maskable.to(torch.bool).cpu()
    tokens = token_columns(attention_mask, n)
    gens = [torch.Generator(device="cpu").manual_seed(s) for s in sample_seeds(seed, n)]
    out = torch.empty((n, len(steps), seq), dtype=samples.dtype)
    times = torch.empty((n, len(steps)), dtype=torch.float32)
    for k, step in enumerate(steps):
        for start in range(0, n, batch_size):
            rows = range(start, min(start + batch_size, n))
            if schedule == "ladder":
                t_rows = [step / diffusion_steps] * len(rows)
            else:
                # every member draws its own u (its stream stays aligned); the batch is spread from its first draw
                draws = [float(torch.rand((), generator=gens[i])) for i in rows]
                t_rows = stratified_times(draws[0], len(rows)).tolist()
            for i, t in zip(rows, t_rows):
                cols = tokens[i]  # a padded row draws over its tokens only: the draws of the sample alone
                keep = maskable[i:i + 1, cols] if maskable is not None else None
                noisy, _, _ = forward_process(samples[i:i + 1, cols], t, mask_token_id, eps=noise_eps,
                                              generator=gens[i], maskable=keep)
                if isinstance(cols, slice):
                    out[i, k] = noisy[0]
                else:
                    out[i, k] = samples[i]
                    out[i, k, cols] = noisy[0]
                times[i, k] = t
    return out, times


def token_columns(attention_mask: torch.Tensor | None, n: int) -> list:
    """Per row, the columns that hold tokens: `slice(None)` for a row without padding (or no mask), else the
    indices of its valid (1) positions in order. Pure."""
    if attention_mask is None:
        return [slice(None)] * n
    valid = attention_mask.to(torch.bool).cpu()
    return [slice(None) if bool(row.all()) else row.nonzero().flatten() for row in valid]


@dataclass(frozen=True)
class NoiseSchedule:
    """How clean calibration text becomes the noisy inputs of the calibration (and analysis) forwards.

    Args:
        diffusion_steps (`int`): K; t = s / K on the "ladder" schedule.
        sample_interval (`int`): visit s = interval, 2·interval, …, ≤ K.
        schedule (`str`): "ladder" (t = s / K) or "uniform" (t ~ U(0, 1] per (sample, step), stratified in a batch).
        protected (`str`): positions never masked: "none", "first" or "first_last" (of each window's valid tokens).
        noise_eps (`float`): the minimum masking probability, in [0, 1).
        seed (`int`): the per-sample seeds derive from it (`sample_seeds`).
        include_last (`bool`): also visit step K when the interval does not divide it.

    Raises:
        ValueError: a field outside what is allowed (named, with the allowed values).
    """

    diffusion_steps: int = 50
    sample_interval: int = 5
    schedule: str = "ladder"
    protected: str = "none"
    noise_eps: float = 1e-3
    seed: int = 0
    include_last: bool = False

    def __post_init__(self):
        for name in ("diffusion_steps", "sample_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} is not allowed; it must be a positive int")
        if self.sample_interval > self.diffusion_steps:
            raise ValueError(f"sample_interval={self.sample_interval} must be <= diffusion_steps="
                             f"{self.diffusion_steps}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r} is not allowed; choose one of {SCHEDULES}")
        if self.protected not in PROTECTED_POSITIONS:
            raise ValueError(f"protected={self.protected!r} is not allowed; choose one of {PROTECTED_POSITIONS}")
        eps = self.noise_eps
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0.0 <= eps < 1.0:
            raise ValueError(f"noise_eps={eps!r} is not allowed; it must be a number in [0, 1)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed={self.seed!r} is not allowed; it must be an int")

    @classmethod
    def from_config(cls, config, adapter=None, **overrides) -> NoiseSchedule:
        """The schedule of a `SinkAwarePruningConfig` (or any object with its noise fields).

        `schedule` and `protected` come, in this order of precedence, from `overrides`, from the config's
        `noise_schedule` / `protected_positions` when it has them (and they are not None), from the model family's
        defaults (`adapter.noise_defaults()`, when an adapter is given), and finally from this dataclass.

        Raises:
            ValueError: an unknown override field, or a value outside what is allowed.
        """
        values = {
            "diffusion_steps": config.diffusion_steps,
            "sample_interval": config.sample_interval,
            "noise_eps": config.noise_eps,
            "seed": config.seed,
        }
        if adapter is not None:
            family = adapter.noise_defaults()
            values["schedule"], values["protected"] = family.schedule, family.protected
        for field_name, config_name in (("schedule", "noise_schedule"), ("protected", "protected_positions")):
            value = getattr(config, config_name, None)
            if value is not None:
                values[field_name] = value
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown NoiseSchedule fields {sorted(unknown)}; known: {sorted(known)}")
        values.update(overrides)
        return cls(**values)

    @property
    def steps(self) -> list[int]:
        """The sampled diffusion steps, increasing."""
        return step_list(self.diffusion_steps, self.sample_interval, include_last=self.include_last)

    def ladder_times(self) -> list[float]:
        """t = s / K of every sampled step (the "ladder" schedule)."""
        return [s / self.diffusion_steps for s in self.steps]

    def noised(
        self,
        samples: torch.Tensor,
        mask_token_id: int,
        *,
        attention_mask: torch.Tensor | None = None,
        maskable: torch.Tensor | None = None,
        batch_size: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All noised inputs of `samples` [n, seq] at this schedule's steps: see `noise_inputs`."""
        return noise_inputs(samples, self.steps, diffusion_steps=self.diffusion_steps, mask_token_id=mask_token_id,
                            schedule=self.schedule, protected=self.protected, noise_eps=self.noise_eps,
                            seed=self.seed, attention_mask=attention_mask, maskable=maskable,
                            batch_size=batch_size)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


__all__ = [
    "PROTECTED_POSITIONS",
    "SCHEDULES",
    "NoiseSchedule",
    "maskable_positions",
    "noise_inputs",
    "protected_mask",
    "sample_seeds",
    "step_list",
    "stratified_times",
    "token_columns",
]
