# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The uniform-token forward process of block diffusion (DiffusionGemma's own noising): replacement rates, what is
never replaced, per-sample seeding independent of the other samples, and the schedule's t."""

from __future__ import annotations

import pytest
import torch

from optimum_sinkprune.calibration.noise import NoiseSchedule
from optimum_sinkprune.diffusion.block_diffusion import noise_canvases, uniform_replace


def _tokens(n: int, length: int) -> torch.Tensor:
    return torch.randint(3, 100, (n, length), generator=torch.Generator().manual_seed(0))


def test_replacement_rate_follows_p_and_draws_cover_the_vocabulary():
    clean = _tokens(64, 64)
    gen = torch.Generator().manual_seed(1)
    noisy, replaced = uniform_replace(clean, 0.3, 1000, generator=gen)
    assert abs(replaced.float().mean().item() - 0.3) < 0.02
    assert torch.equal(noisy[~replaced], clean[~replaced])
    # draws come from the whole vocabulary [0, 1000), far beyond the clean ids [3, 100)
    assert int(noisy[replaced].max()) > 500 and int(noisy.min()) >= 0 and int(noisy.max()) < 1000


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_extreme_levels(p):
    clean = _tokens(4, 16)
    noisy, replaced = uniform_replace(clean, p, 50, generator=torch.Generator().manual_seed(0))
    assert bool(replaced.all()) is (p == 1.0) and bool(replaced.any()) is (p == 1.0)
    if p == 0.0:
        assert torch.equal(noisy, clean)


def test_maskable_positions_are_the_only_ones_replaced():
    clean = _tokens(8, 10)
    maskable = torch.zeros_like(clean, dtype=torch.bool)
    maskable[:, 5:] = True
    noisy, replaced = uniform_replace(clean, 1.0, 50, generator=torch.Generator().manual_seed(0), maskable=maskable)
    assert torch.equal(replaced, maskable) and torch.equal(noisy[:, :5], clean[:, :5])


@pytest.mark.parametrize("kwargs, match", [({"p": 1.5}, "p=1.5"), ({"vocab_size": 0}, "vocab_size=0"),
                                           ({"maskable": torch.ones(2, 2, dtype=torch.bool)}, "maskable")])
def test_bad_arguments_are_named(kwargs, match):
    args = dict(p=0.5, vocab_size=10)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        uniform_replace(_tokens(2, 4), args.pop("p"), args.pop("vocab_size"), **args)


def test_ladder_times_and_per_sample_seeds():
    schedule = NoiseSchedule(diffusion_steps=4, sample_interval=1, noise_eps=0.0, seed=7)
    clean = _tokens(5, 32)
    noisy, t = noise_canvases(clean, schedule, 1000)
    assert noisy.shape == (5, 4, 32)
    assert torch.allclose(t, torch.tensor([0.25, 0.5, 0.75, 1.0]).expand(5, 4))
    changed = (noisy != clean[:, None]).float().mean(dim=(0, 2))
    assert changed[0] < changed[1] < changed[2] < changed[3] and changed[3] > 0.95
    # a sample's noise does not depend on the other samples
    alone, _ = noise_canvases(clean[:2], schedule, 1000)
    assert torch.equal(alone, noisy[:2])
    again, _ = noise_canvases(clean, schedule, 1000)
    assert torch.equal(again, noisy)
    other, _ = noise_canvases(clean, NoiseSchedule(diffusion_steps=4, sample_interval=1, noise_eps=0.0, seed=8), 1000)
    assert not torch.equal(other, noisy)


def test_uniform_schedule_draws_t_per_sample_and_step():
    schedule = NoiseSchedule(diffusion_steps=10, sample_interval=2, schedule="uniform", seed=0)
    noisy, t = noise_canvases(_tokens(6, 8), schedule, 100)
    assert noisy.shape == (6, 5, 8) and bool(((t > 0) & (t <= 1)).all())
    assert len(set(t.flatten().tolist())) == t.numel()


def test_protected_positions_are_refused():
    with pytest.raises(ValueError, match="protected='first'"):
        noise_canvases(_tokens(2, 8), NoiseSchedule(protected="first"), 100)
    with pytest.raises(ValueError, match=r"\[n, canvas\]"):
        noise_canvases(torch.zeros(8, dtype=torch.long), NoiseSchedule(), 100)
