# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The noise module: the default schedule reproduces the calibration inputs bit for bit, seeds are per sample,
the uniform schedule and protected positions, bad input, and one noise for calibration and analysis."""

from __future__ import annotations

import hashlib
import types

import pytest
import torch

from optimum_sinkprune.analysis import forward_process_trajectory
from optimum_sinkprune.calibration import engine
from optimum_sinkprune.calibration.noise import (
    NoiseSchedule,
    noise_inputs,
    protected_mask,
    sample_seeds,
    step_list,
    stratified_times,
)
from optimum_sinkprune.configuration import SinkAwarePruningConfig
from optimum_sinkprune.diffusion import forward_process

MASK = 127


def _ids(n=4, s=32, seed=11):
    return torch.randint(2, 120, (n, s), generator=torch.Generator().manual_seed(seed))


def _reference_ladder(samples, steps, diffusion_steps, mask_id, eps, seed):
    """The calibration inputs as the engine built them before the noise module (written out independently)."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    seeds = torch.randint(0, 2**31, (samples.shape[0],), generator=gen).tolist()
    out = torch.empty((samples.shape[0], len(steps), samples.shape[1]), dtype=samples.dtype)
    for i, s in enumerate(seeds):
        g = torch.Generator(device="cpu").manual_seed(s)
        for k, step in enumerate(steps):
            out[i, k] = forward_process(samples[i:i + 1], step / diffusion_steps, mask_id, eps=eps, generator=g)[0][0]
    return out


def test_default_schedule_reproduces_the_calibration_inputs_bit_for_bit():
    ids = _ids()
    noisy, t = NoiseSchedule(seed=3).noised(ids, MASK)
    expected = _reference_ladder(ids, list(range(5, 51, 5)), 50, MASK, 1e-3, 3)
    assert torch.equal(noisy, expected)
    # pinned: the inputs of these ids at seed 3 (changing them changes every noised method's masks)
    assert hashlib.sha256(noisy.numpy().tobytes()).hexdigest()[:16] == "73b2c38331657675"
    assert torch.equal(t, torch.tensor([[s / 50 for s in range(5, 51, 5)]] * 4))
    # the config's schedule is the same one, and the engine's helper gives the same inputs
    config = SinkAwarePruningConfig(seed=3)
    schedule = NoiseSchedule.from_config(config)
    assert schedule.steps == config.sampled_steps
    assert torch.equal(schedule.noised(ids, MASK)[0], noisy)
    assert torch.equal(engine.noised_samples(ids, config.sampled_steps, diffusion_steps=50, mask_token_id=MASK,
                                             noise_eps=1e-3, seed=3), noisy)
    # batch size does not matter on the ladder
    assert torch.equal(schedule.noised(ids, MASK, batch_size=3)[0], noisy)


def test_seeds_are_per_sample():
    ids = _ids(n=5)
    for schedule in ("ladder", "uniform"):
        full, t_full = NoiseSchedule(schedule=schedule, seed=9).noised(ids, MASK)
        part, t_part = NoiseSchedule(schedule=schedule, seed=9).noised(ids[:2], MASK)
        assert torch.equal(full[:2], part) and torch.equal(t_full[:2], t_part)
    assert sample_seeds(9, 2) == sample_seeds(9, 5)[:2]


def test_uniform_schedule_draws_t_per_sample_and_step_and_stratifies_batches():
    ids = _ids(n=64, s=64)
    schedule = NoiseSchedule(schedule="uniform", seed=1, diffusion_steps=10, sample_interval=1)
    noisy, t = schedule.noised(ids, MASK)
    assert t.shape == (64, 10) and bool(((t > 0) & (t <= 1)).all())
    # t ~ U(0, 1]: mean 1/2, variance 1/12 (640 draws: standard error of the mean ≈ 0.011)
    assert abs(float(t.mean()) - 0.5) < 0.05 and abs(float(t.var()) - 1 / 12) < 0.02
    assert len({round(v, 6) for v in t.flatten().tolist()}) > 600  # a fresh draw per (sample, step)
    # the masking rate follows each draw's t: p = (1 − eps) t + eps
    rate = (noisy == MASK).float().mean(dim=2)
    assert float((rate - ((1 - 1e-3) * t + 1e-3)).abs().mean()) < 0.06
    # stratified across a batch of 4: one offset, members 1/4 apart
    _, t4 = schedule.noised(ids, MASK, batch_size=4)
    for start in range(0, 64, 4):
        spread = sorted(t4[start:start + 4, 0].tolist())
        gaps = [b - a for a, b in zip(spread, spread[1:])]
        assert gaps == pytest.approx([0.25] * 3, abs=1e-6)
    assert torch.equal(t4[::4], t[::4])  # each batch's first member keeps its own draw
    assert stratified_times(0.9, 2).tolist() == pytest.approx([0.1, 0.6])


@pytest.mark.parametrize("protected,kept", [("none", []), ("first", [0]), ("first_last", [0, 31])])
def test_protected_positions_are_never_masked(protected, kept):
    ids = _ids()
    noisy, _ = NoiseSchedule(protected=protected, diffusion_steps=2, sample_interval=1, noise_eps=0.5).noised(ids, MASK)
    last = noisy[:, -1]  # t = 1: every other position masked
    for pos in range(32):
        expected = ids[:, pos] if pos in kept else torch.full((4,), MASK)
        assert torch.equal(last[:, pos], expected)
    # counted over valid tokens: a row padded after position 20 keeps its token 19 under "first_last"
    valid = torch.ones(2, 32, dtype=torch.bool)
    valid[1, 20:] = False
    marks = protected_mask(valid, "first_last")
    assert marks[0].nonzero().flatten().tolist() == [0, 31] and marks[1].nonzero().flatten().tolist() == [0, 19]
    padded, _ = noise_inputs(ids[:2], [2], diffusion_steps=2, mask_token_id=MASK, attention_mask=valid.long())
    assert torch.equal(padded[1, 0, 20:], ids[1, 20:])


def test_bad_input_names_the_field():
    with pytest.raises(ValueError, match=r"schedule='cosine' is not allowed; choose one of \('ladder', 'uniform'\)"):
        NoiseSchedule(schedule="cosine")
    with pytest.raises(ValueError, match="protected='last' is not allowed"):
        NoiseSchedule(protected="last")
    with pytest.raises(ValueError, match="noise_eps=1.0 is not allowed"):
        NoiseSchedule(noise_eps=1.0)
    with pytest.raises(ValueError, match="sample_interval=6 must be <= diffusion_steps=5"):
        NoiseSchedule(diffusion_steps=5, sample_interval=6)
    with pytest.raises(ValueError, match="unknown NoiseSchedule fields"):
        NoiseSchedule.from_config(SinkAwarePruningConfig(), steps=3)
    with pytest.raises(ValueError, match=r"samples must be a \[n, seq\] tensor"):
        NoiseSchedule().noised(torch.ones(3, dtype=torch.long), MASK)
    with pytest.raises(ValueError, match="batch_size=0 is not allowed"):
        NoiseSchedule().noised(_ids(), MASK, batch_size=0)


def test_from_config_reads_schedule_fields_when_present():
    config = types.SimpleNamespace(diffusion_steps=20, sample_interval=4, noise_eps=0.01, seed=5,
                                   noise_schedule="uniform", protected_positions="first_last")
    schedule = NoiseSchedule.from_config(config)
    assert (schedule.schedule, schedule.protected, schedule.steps) == ("uniform", "first_last", [4, 8, 12, 16, 20])
    assert step_list(10, 3) == [3, 6, 9] and step_list(10, 3, include_last=True) == [3, 6, 9, 10]


def test_analysis_sees_the_calibration_inputs(tiny_llada):
    """Same schedule and seed: the sink analysis runs on exactly the inputs calibration builds."""
    ids = _ids(n=2, s=16)
    config = SinkAwarePruningConfig(diffusion_steps=10, sample_interval=5, seed=4)
    calibration, _ = NoiseSchedule.from_config(config).noised(ids, MASK)
    # the analysis' defaults are the family's, as in calibration (a [BOS] at position 0 is treated alike)
    traj = forward_process_trajectory(tiny_llada, ids, steps=10, sample_interval=5, seed=4, progress=False)
    assert torch.equal(traj.tokens.permute(1, 0, 2), calibration)
    assert traj.extra["noise"]["protected"] == "none"
    # protected="first" keeps the first token clean; every other position gets the same draws
    first = forward_process_trajectory(tiny_llada, ids, steps=10, sample_interval=5, seed=4, protected="first",
                                       progress=False)
    assert torch.equal(first.tokens[:, :, 0], ids[:, 0].expand(2, 2))
    assert torch.equal(first.tokens[:, :, 1:], traj.tokens[:, :, 1:])
    assert first.extra["noise"]["protected"] == "first"


def test_family_defaults_sit_below_the_config_fields(tiny_llada):
    from optimum_sinkprune.adapters import get_adapter

    adapter = get_adapter(tiny_llada)
    family = adapter.noise_defaults()
    schedule = NoiseSchedule.from_config(SinkAwarePruningConfig(), adapter)
    assert (schedule.schedule, schedule.protected) == (family.schedule, family.protected)
    fake = types.SimpleNamespace(noise_defaults=lambda: types.SimpleNamespace(schedule="uniform", protected="first"))
    config = types.SimpleNamespace(diffusion_steps=10, sample_interval=5, noise_eps=1e-3, seed=0,
                                   noise_schedule=None, protected_positions="first_last")
    schedule = NoiseSchedule.from_config(config, fake)
    assert (schedule.schedule, schedule.protected) == ("uniform", "first_last")
    assert NoiseSchedule.from_config(config, fake, protected="none").protected == "none"
