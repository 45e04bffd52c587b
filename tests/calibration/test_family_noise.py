# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Each family calibrates with the paper's noise for it: the inputs a pruning run records. Dream: t ~ U(0, 1) per
(sample, sampled step), stratified across a batch, first and last positions clean; LLaDA: t = s / K, any position."""

from __future__ import annotations

import json

import pytest
import torch

from optimum_sinkprune.calibration.noise import NoiseSchedule
from optimum_sinkprune.configuration import SinkAwarePruningConfig
from optimum_sinkprune.pruner import SinkAwarePruner

MASK_ID = 127  # tests/conftest.py


@pytest.fixture
def recorded(monkeypatch):
    """Every `NoiseSchedule.noised` call of a run: (schedule, clean ids, noisy ids, t)."""
    calls = []
    original = NoiseSchedule.noised

    def spy(self, samples, mask_token_id, **kwargs):
        noisy, times = original(self, samples, mask_token_id, **kwargs)
        calls.append((self, samples.clone(), noisy.clone(), times.clone()))
        return noisy, times

    monkeypatch.setattr(NoiseSchedule, "noised", spy)
    return calls


def _clean_ids(n: int, seq: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randint(2, MASK_ID, (n, seq), generator=gen)  # no pad (0), EOS (1) or mask token


def test_dream_calibration_inputs_are_uniform_with_first_and_last_clean(tiny_dream, recorded, tmp_path):
    n, seq, batch = 48, 40, 4
    config = SinkAwarePruningConfig(method="sink_wanda", sparsity=0.5, num_samples=n, seq_len=seq, batch_size=batch)
    assert config.noise_schedule is None and config.protected_positions is None  # the family decides
    pruner = SinkAwarePruner(tiny_dream)
    pruner.prune(config, _clean_ids(n, seq), progress=False)
    schedule, clean, noisy, times = recorded[-1]
    assert (schedule.schedule, schedule.protected) == ("uniform", "first_last")
    masked = noisy == MASK_ID  # [n, steps, seq]
    assert masked.shape == (n, len(config.sampled_steps), seq)
    assert not masked[:, :, 0].any() and not masked[:, :, -1].any()  # first and last never masked
    assert torch.equal(noisy[~masked], clean[:, None, :].expand_as(noisy)[~masked])  # the rest is the clean text

    # masking rates over the maskable positions: t ~ U(0, 1) and a binomial mask make the rate uniform on
    # {0, 1/m, ..., 1} (a beta-binomial with a = b = 1), so a Kolmogorov-Smirnov bound against U(0, 1) holds
    m = seq - 2
    rates = masked[:, :, 1:-1].float().mean(-1).flatten().sort().values
    count = rates.numel()
    ecdf = torch.arange(1, count + 1, dtype=torch.float32) / count
    ks = torch.maximum((ecdf - rates).abs(), (ecdf - 1 / count - rates).abs()).max().item()
    assert ks < 1.63 / count**0.5 + 1 / (m + 1)  # 1 % level, plus the rates' grid
    assert abs(rates.mean().item() - 0.5) < 4 * (1 / 12 / count) ** 0.5
    assert abs(rates.var().item() - (m + 2) / (12 * m)) < 0.02
    # t itself: one uniform offset per (batch, step), the batch's members spread 1/batch apart
    for start in range(0, n, batch):
        gaps = times[start:start + batch].sort(dim=0).values.diff(dim=0)
        assert torch.allclose(gaps, torch.full_like(gaps, 1 / batch), atol=1e-5)
    assert len({round(t, 6) for t in times[:, 0].tolist()}) > n // 2  # fresh draws, not a ladder

    # the resolved values are recorded with the run
    pruner.save_pretrained(tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "sink_pruning_config.json").read_text())
    assert (saved["noise_schedule"], saved["protected_positions"]) == ("uniform", "first_last")
    card = (tmp_path / "out" / "README.md").read_text()
    assert "uniform" in card and "first_last" in card


def test_llada_calibration_inputs_keep_the_ladder(tiny_llada, recorded):
    n, seq = 6, 24
    config = SinkAwarePruningConfig(method="sink_wanda", sparsity=0.5, num_samples=n, seq_len=seq)
    pruner = SinkAwarePruner(tiny_llada)
    pruner.prune(config, _clean_ids(n, seq), progress=False)
    schedule, _clean, noisy, times = recorded[-1]
    assert (schedule.schedule, schedule.protected) == ("ladder", "none")
    expected = torch.tensor([s / config.diffusion_steps for s in config.sampled_steps]).expand(n, -1)
    assert torch.allclose(times, expected)
    assert (noisy[:, -1, 0] == MASK_ID).any() or (noisy[:, -1, -1] == MASK_ID).any()  # any position may be masked
    assert (pruner.config.noise_schedule, pruner.config.protected_positions) == ("ladder", "none")


def test_explicit_config_fields_win_over_the_family(tiny_dream, recorded):
    config = SinkAwarePruningConfig(method="sink_wanda", num_samples=2, seq_len=16, noise_schedule="ladder",
                                    protected_positions="first")
    SinkAwarePruner(tiny_dream).prune(config, _clean_ids(2, 16), progress=False)
    schedule = recorded[-1][0]
    assert (schedule.schedule, schedule.protected) == ("ladder", "first")
