# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Per-sample calibration rows of different lengths, right-padded with an attention mask (Dream).

The reference is each sample run alone, without padding: a padded batch must give the same noise, the same attention
mass (pad keys get none), the same σ and the same statistics. Padding is told by the mask alone: here the pad id is
also the BOS/EOS id, as in Dream-7B. Packed windows (no mask) run exactly as before.
"""

from __future__ import annotations

import pytest
import torch

from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.calibration import engine
from optimum_sinkprune.calibration.attention import attention_mass
from optimum_sinkprune.calibration.data import (
    CalibrationBatch,
    batch_from_mask,
    describe_calibration_data,
    get_calibration_dataset,
    pad_rows,
)
from optimum_sinkprune.calibration.noise import NoiseSchedule, noise_inputs
from optimum_sinkprune.configuration import SinkAwarePruningConfig
from optimum_sinkprune.pruner import SinkAwarePruner

MASK_ID = 127  # tests/conftest.py
SPECIAL = 1  # the tiny Dream's BOS = EOS; used as the pad id too, as Dream-7B does (151643)
LENGTHS = (20, 13, 7, 16)


def _rows(lengths=LENGTHS, seed=0) -> list[torch.Tensor]:
    """Samples that open with BOS and close with EOS (the pad id), with ordinary tokens between."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for n in lengths:
        body = torch.randint(2, MASK_ID, (n - 2,), generator=gen)
        rows.append(torch.cat([torch.tensor([SPECIAL]), body, torch.tensor([SPECIAL])]))
    return rows


def _padded(rows) -> CalibrationBatch:
    return pad_rows(rows, pad_token_id=SPECIAL)


def _dream_noise(**overrides) -> NoiseSchedule:
    fields = dict(diffusion_steps=10, sample_interval=2, schedule="uniform", protected="first_last", seed=3)
    fields.update(overrides)
    return NoiseSchedule(**fields)


# ---------------------------------------------------------------------------------------------------------------------
# the batch itself
# ---------------------------------------------------------------------------------------------------------------------
def test_rows_are_right_padded_and_told_by_the_mask_not_the_id():
    rows = _rows()
    batch = _padded(rows)
    assert batch.shape == (len(rows), max(LENGTHS))
    assert batch.attention_mask.sum(dim=1).tolist() == list(LENGTHS)
    assert batch.num_tokens == sum(LENGTHS) and batch.has_padding()
    for row, ids, mask in zip(rows, batch.input_ids, batch.attention_mask):
        assert torch.equal(ids[: row.numel()], row) and (ids[row.numel():] == SPECIAL).all()
        assert (mask[: row.numel()] == 1).all() and (mask[row.numel():] == 0).all()
    # the EOS closing every sample has the pad id, yet it is a token
    assert (batch.input_ids[batch.attention_mask.bool()] == SPECIAL).sum() == 2 * len(rows)


def test_left_padding_becomes_right_padding_and_sources_agree():
    rows = _rows()
    right = _padded(rows)
    width = right.shape[1]
    left_ids = torch.stack([torch.cat([torch.full((width - r.numel(),), 0), r]) for r in rows])
    left_mask = torch.stack([torch.cat([torch.zeros(width - r.numel()), torch.ones(r.numel())]) for r in rows]).long()
    assert torch.equal(batch_from_mask(left_ids, left_mask, SPECIAL).input_ids, right.input_ids)
    from_mapping = get_calibration_dataset(None, {"input_ids": left_ids, "attention_mask": left_mask},
                                           num_samples=len(rows), seq_len=width)
    from_lists = get_calibration_dataset(None, [r.tolist() for r in rows], num_samples=len(rows), seq_len=width)
    from_batch = get_calibration_dataset(None, right, num_samples=len(rows), seq_len=width)
    for got in (from_mapping, from_lists, from_batch):
        assert isinstance(got, CalibrationBatch)
        assert torch.equal(got.attention_mask, right.attention_mask)
        assert torch.equal(got.input_ids[got.attention_mask.bool()], right.input_ids[right.attention_mask.bool()])
    cut = get_calibration_dataset(None, right, num_samples=2, seq_len=10)
    assert cut.shape == (2, 10) and cut.attention_mask.sum(dim=1).tolist() == [10, 10]
    assert describe_calibration_data(right) == f"{len(rows)} padded token id samples ({sum(LENGTHS)} tokens)"


def test_per_text_rows_with_packing_false():
    class CharTokenizer:  # one id per character, no special tokens added
        bos_token_id, eos_token_id, pad_token_id = SPECIAL, SPECIAL, SPECIAL

        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [2 + ord(c) % 100 for c in text]}

    texts = ["a short one", "", "a somewhat longer text than the first", "mid length"]
    batch = get_calibration_dataset(CharTokenizer(), texts, num_samples=3, seq_len=16, packing=False)
    lengths = [1 + len(texts[0]), 16, 1 + len(texts[3])]  # BOS + text, cut to seq_len
    assert batch.attention_mask.sum(dim=1).tolist() == lengths
    assert (batch.input_ids[:, 0] == SPECIAL).all()
    with pytest.raises(ValueError, match="3 non-empty texts, fewer than num_samples=4"):
        get_calibration_dataset(CharTokenizer(), texts, num_samples=4, seq_len=16, packing=False)
    with pytest.raises(ValueError, match="packing='no' must be True"):
        get_calibration_dataset(CharTokenizer(), texts, num_samples=3, seq_len=16, packing="no")
    with pytest.raises(ValueError, match="without any token"):
        get_calibration_dataset(None, {"input_ids": torch.ones(2, 4, dtype=torch.long),
                                       "attention_mask": torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]])},
                                num_samples=2, seq_len=4)


# ---------------------------------------------------------------------------------------------------------------------
# noise
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("schedule,protected", [("uniform", "first_last"), ("ladder", "none")])
def test_noise_of_a_padded_row_is_the_noise_of_the_sample_alone(schedule, protected):
    rows = _rows()
    batch = _padded(rows)
    noise = _dream_noise(schedule=schedule, protected=protected)
    noisy, times = noise.noised(batch.input_ids, MASK_ID, attention_mask=batch.attention_mask)
    for i, row in enumerate(rows):
        n = row.numel()
        # the reference: the same sample index (its own seed) in a batch without padding (rows are independent)
        alone = torch.stack([row if j == i else torch.full((n,), 5) for j in range(len(rows))])
        ref, ref_times = noise.noised(alone, MASK_ID)
        assert torch.equal(noisy[i, :, :n], ref[i]) and torch.equal(times[i], ref_times[i])
        assert (noisy[i, :, n:] == SPECIAL).all()  # pads keep their ids, never masked
        if protected == "first_last":
            assert not (noisy[i, :, [0, n - 1]] == MASK_ID).any()  # the sample's own first and last token
    assert (noisy == MASK_ID).any()


def test_noise_without_padding_is_unchanged():
    ids = torch.stack(_rows((12, 12, 12)))
    kwargs = dict(diffusion_steps=10, mask_token_id=MASK_ID, schedule="uniform", protected="first_last", seed=1)
    plain, t_plain = noise_inputs(ids, [2, 6, 10], **kwargs)
    full, t_full = noise_inputs(ids, [2, 6, 10], attention_mask=torch.ones_like(ids), **kwargs)
    assert torch.equal(plain, full) and torch.equal(t_plain, t_full)


# ---------------------------------------------------------------------------------------------------------------------
# attention mass, σ and the statistics
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["hooks", "interface"])
def test_pad_keys_get_no_attention_mass(tiny_dream, method):
    rows = _rows()
    batch = _padded(rows)
    mass = attention_mass(tiny_dream, batch.input_ids, batch.attention_mask, method=method)
    assert (mass[~batch.attention_mask.bool()] == 0).all()
    for i, row in enumerate(rows):
        alone = attention_mass(tiny_dream, row[None], method=method)[0]
        torch.testing.assert_close(mass[i, : row.numel()], alone, rtol=1e-5, atol=1e-5)


def _noisy_batch(model, rows, noise):
    batch = _padded(rows)
    adapter = get_adapter(model)
    noisy, _ = adapter.calibration_noise(model, batch.input_ids, noise, MASK_ID, attention_mask=batch.attention_mask)
    return batch, noisy


@pytest.mark.parametrize("sink", [True, False])
def test_dense_norms_of_a_padded_batch_are_those_of_each_sample_alone(tiny_dream, randomize, sink):
    model = randomize(tiny_dream, seed=2)
    adapter = get_adapter(model)
    targets = adapter.linear_layers(model)
    rows = _rows()
    batch, noisy = _noisy_batch(model, rows, _dream_noise())
    common = dict(sink=sink, sink_alpha=5.0, sink_std=2.0, progress=False)
    padded, stats = engine.collect_dense_norms(model, adapter, targets, noisy, attention_mask=batch.attention_mask,
                                               batch_size=len(rows), **common)
    reference = {name: 0.0 for name in targets}
    ref_stats = []
    for i, row in enumerate(rows):
        alone, alone_stats = engine.collect_dense_norms(model, adapter, targets, noisy[i:i + 1, :, : row.numel()],
                                                        **common)
        for name in targets:
            reference[name] = reference[name] + alone[name]
        ref_stats.append(alone_stats)
    for name in targets:
        torch.testing.assert_close(padded[name], reference[name], rtol=1e-5, atol=1e-5)
    if sink:
        assert stats.tokens == sum(s.tokens for s in ref_stats) == len(noisy[0]) * sum(LENGTHS)
        assert stats.sigma_sum == pytest.approx(sum(s.sigma_sum for s in ref_stats), rel=1e-5)
        assert stats.sink_tokens == sum(s.sink_tokens for s in ref_stats)
    else:
        assert stats is None


def test_sink_weights_and_sequential_statistics_match_each_sample_alone(tiny_dream, randomize):
    model = randomize(tiny_dream, seed=3)
    adapter = get_adapter(model)
    targets = adapter.linear_layers(model)
    rows = _rows()
    batch, noisy = _noisy_batch(model, rows, _dream_noise())
    common = dict(sink_alpha=5.0, sink_std=2.0, progress=False)
    sigma, _ = engine.collect_sink_weights(model, adapter, noisy, attention_mask=batch.attention_mask,
                                           batch_size=2, **common)
    assert (sigma[~batch.attention_mask.bool()] == 0).all()
    alone_sigma = [engine.collect_sink_weights(model, adapter, noisy[i:i + 1, :, : r.numel()], **common)[0][0]
                   for i, r in enumerate(rows)]
    for i, row in enumerate(rows):
        torch.testing.assert_close(sigma[i, : row.numel()], alone_sigma[i], rtol=1e-5, atol=1e-6)

    def gather(samples, weights, mask, statistic):
        seen = {}
        engine.run_sequential(model, adapter, samples, targets, statistic=statistic,
                              prune_block=lambda index, stats: seen.update(stats), token_weights=weights,
                              batch_size=2, attention_mask=mask, progress=False)
        return seen

    for statistic in ("sq_norm", "hessian"):
        for weighted in (True, False):
            padded = gather(batch.input_ids, 1.0 - sigma if weighted else None, batch.attention_mask, statistic)
            alone = [gather(r[None], (1.0 - alone_sigma[i])[None] if weighted else None, None, statistic)
                     for i, r in enumerate(rows)]
            for name in targets:
                if statistic == "hessian":  # H = 2·Σ XᵀX / n_samples: the mean of the samples' own
                    expected = sum(a[name] for a in alone) / len(rows)
                else:  # sqrt(Σ X² / tokens) over every sample's tokens
                    expected = torch.sqrt(sum(a[name] ** 2 * r.numel() for a, r in zip(alone, rows)) / sum(LENGTHS))
                torch.testing.assert_close(padded[name], expected, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------------
# whole runs
# ---------------------------------------------------------------------------------------------------------------------
def _masks(model) -> dict[str, torch.Tensor]:
    adapter = get_adapter(model)
    return {name: layer.weight.detach() == 0 for name, layer in adapter.linear_layers(model).items()}


@pytest.mark.parametrize("method", ["sink_wanda", "sink_sparsegpt"])
def test_pruning_with_padded_rows_ignores_what_the_pads_hold(tiny_dream, randomize, method):
    """Only the mask tells padding: whatever ids sit at the pads, the masks are the same."""
    import copy

    base = randomize(tiny_dream, seed=4)
    rows = _rows()
    config = SinkAwarePruningConfig(method=method, sparsity=0.5, num_samples=len(rows), seq_len=max(LENGTHS),
                                    batch_size=2, diffusion_steps=10, sample_interval=5)
    batch = _padded(rows)
    other = CalibrationBatch(torch.where(batch.attention_mask.bool(), batch.input_ids, MASK_ID - 3),
                             batch.attention_mask)
    results = []
    for data in (batch, other, [r.tolist() for r in rows]):
        model = copy.deepcopy(base)
        _, report = SinkAwarePruner(model).prune(config, data, progress=False)
        assert report.calibration["num_samples"] == len(rows)
        results.append(_masks(model))
    for name in results[0]:
        assert torch.equal(results[0][name], results[1][name]) and torch.equal(results[0][name], results[2][name])


@pytest.mark.parametrize("fixture,method", [("tiny_llada", "sink_wanda"), ("tiny_llada", "sink_sparsegpt"),
                                            ("tiny_dream", "sink_wanda")])
def test_packed_runs_are_unchanged(request, randomize, fixture, method):
    """Rows that fill the width carry no padding mask: the run is the packed one, bit for bit (LLaDA's packed masks
    are also pinned by tests/test_golden_masks.py)."""
    import copy

    base = randomize(request.getfixturevalue(fixture), seed=5)
    ids = torch.randint(2, MASK_ID, (4, 16), generator=torch.Generator().manual_seed(0))
    config = SinkAwarePruningConfig(method=method, sparsity=0.5, num_samples=4, seq_len=16, batch_size=2,
                                    diffusion_steps=10, sample_interval=5)
    results = []
    for data in (ids, CalibrationBatch(ids, torch.ones_like(ids)), {"input_ids": ids}):
        model = copy.deepcopy(base)
        SinkAwarePruner(model).prune(config, data, progress=False)
        results.append({name: layer.weight.detach().clone()
                        for name, layer in get_adapter(model).linear_layers(model).items()})
    for name in results[0]:
        assert torch.equal(results[0][name], results[1][name]) and torch.equal(results[0][name], results[2][name])


def test_full_window_methods_refuse_padded_rows(tiny_dream):
    pruner = SinkAwarePruner(tiny_dream)
    config = SinkAwarePruningConfig(method="sink_wanda", sparsity=0.5, num_samples=2, seq_len=20)
    with pytest.raises(ValueError, match=r"takes full calibration windows; the calibration data has 7 padded"):
        pruner._prepare_calibration(config, _padded(_rows((20, 13))))
