# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
import copy
import json

import pytest
import torch

from optimum_sinkprune.calibration.attention import attention_mass
from optimum_sinkprune.calibration.engine import noised_samples
from optimum_sinkprune.configuration import SinkAwarePruningConfig
from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.structured import collect_structured_statistics, prune_structured, remove_heads
from optimum_sinkprune.structured import scoring

from structured_models import logits, tiny_dream, tiny_llada


def test_sink_instability_matches_loops():
    gen = torch.Generator().manual_seed(0)
    pos = torch.randint(0, 16, (3, 5, 2, 4), generator=gen)
    got = scoring.sink_instability(pos)
    for layer in range(2):
        for head in range(4):
            per_sample = []
            for s in range(3):
                xs = [float(pos[s, k, layer, head]) for k in range(5)]
                mean = sum(xs) / 5
                per_sample.append(sum((x - mean) ** 2 for x in xs) / 5)
            assert got[layer, head].item() == pytest.approx(sum(per_sample) / 3, rel=1e-6)
    assert torch.equal(scoring.sink_instability(pos[:, :1]), torch.zeros(2, 4))


def test_sink_head_score_combination():
    importance = torch.tensor([[1.0, 2.0, 3.0, float("nan")]])
    instability = torch.tensor([[0.0, 4.0, 0.0, 0.0]])
    got = scoring.sink_head_scores(importance, instability, 0.5)
    imp = torch.tensor([1.0, 2.0, 3.0])
    ins = torch.tensor([0.0, 4.0, 0.0])
    z = lambda x: (x - x.mean()) / x.std(unbiased=False)  # noqa: E731
    torch.testing.assert_close(got[0, :3], z(imp) - 0.5 * z(ins))
    assert torch.isnan(got[0, 3])
    # constant instability contributes nothing
    torch.testing.assert_close(scoring.sink_head_scores(importance, torch.ones(1, 4), 3.0)[0, :3], z(imp))


def test_group_scores_and_wanda():
    s = torch.tensor([[1.0, 3.0, 5.0, 7.0]])
    torch.testing.assert_close(scoring.group_scores(s, 2), torch.tensor([[2.0, 6.0]]))
    torch.testing.assert_close(scoring.channel_wanda_scores(torch.tensor([2.0, 3.0]), torch.tensor([5.0, 0.5])),
                               torch.tensor([10.0, 1.5]))


def test_statistics_match_an_independent_forward():
    model = tiny_llada()
    remove_heads(model, {1: [2]})  # a pruned layer: stats in original indexing, removed head NaN
    ids = torch.randint(2, 120, (2, 10), generator=torch.Generator().manual_seed(3))
    stats = collect_structured_statistics(model, ids, diffusion_steps=10, sample_interval=5, seed=7, progress=False,
                                          batch_size=2)
    assert stats.dominant_positions.shape == (2, 2, 2, 4) and stats.forwards == 2
    # independent: same noised inputs, plain hooks, plain sums
    noisy = noised_samples(ids, [5, 10], diffusion_steps=10, mask_token_id=127, noise_eps=1e-3, seed=7)
    adapter = get_adapter(model)
    head_sq = torch.zeros(2, 4, dtype=torch.float64)
    ch_sq = [torch.zeros(96, dtype=torch.float64) for _ in range(2)]
    for k in range(2):
        inputs = {}
        handles = []
        for i, block in enumerate(adapter.blocks(model)):
            handles.append(adapter.projection(block, "o").register_forward_pre_hook(
                lambda m, a, i=i: inputs.__setitem__(("o", i), a[0])))
            handles.append(adapter.projection(block, "down").register_forward_pre_hook(
                lambda m, a, i=i: inputs.__setitem__(("down", i), a[0])))
        try:
            with torch.no_grad():
                model(input_ids=noisy[:, k])
        finally:
            for h in handles:
                h.remove()
        for i in range(2):
            kept = [h for h in range(4) if not (i == 1 and h == 2)]
            x = inputs[("o", i)].double()
            for p, h in enumerate(kept):
                head_sq[i, h] += x[..., p * 16:(p + 1) * 16].square().sum()
            ch_sq[i] += inputs[("down", i)].double().square().sum(dim=(0, 1))
        per_head = attention_mass(model, noisy[:, k], per_head=True)
        assert torch.equal(stats.dominant_positions[:, k], per_head.argmax(dim=-1))
    head_sq[1, 2] = float("nan")
    torch.testing.assert_close(stats.head_sq, head_sq, equal_nan=True, rtol=1e-5, atol=1e-6)
    for i in range(2):
        torch.testing.assert_close(stats.channel_sq[i], ch_sq[i], rtol=1e-5, atol=1e-6)
        assert (stats.channel_sq_weighted[i] <= stats.channel_sq[i] + 1e-9).all()
    assert 0.0 <= stats.mean_sink_weight <= 1.0


@pytest.mark.parametrize("method", ["sink_heads", "activation_heads", "magnitude_heads", "random_heads"])
def test_prune_structured_with_the_real_config(method, tmp_path):
    model = tiny_dream()
    ids = torch.randint(2, 120, (2, 12), generator=torch.Generator().manual_seed(0))
    masked = copy.deepcopy(model)
    cfg = SinkAwarePruningConfig(method=method, target_param_reduction=0.3, num_samples=2, seq_len=12,
                                 diffusion_steps=10, sample_interval=5, batch_size=2)
    result = prune_structured(model, config=cfg, calibration_ids=ids, progress=False)
    cfg_mask = SinkAwarePruningConfig(**{**cfg.__dict__, "structured_mode": "mask"})
    mask_result = prune_structured(masked, config=cfg_mask, calibration_ids=ids, progress=False)
    # same statistics, same plan: the two modes remove the same things and give the same logits
    assert mask_result.removed_heads == result.removed_heads
    assert mask_result.removed_channels == result.removed_channels
    torch.testing.assert_close(logits(model, ids), logits(masked, ids), atol=1e-5, rtol=1e-5)
    # GQA: only whole kv groups (pairs 0-1, 2-3)
    for heads in result.pruned_heads.values():
        assert all((h ^ 1) in heads for h in heads)
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["realised_reduction"] == pytest.approx(result.realised_reduction)
    assert payload["params_after"] < payload["params_before"]
    if method in ("sink_heads", "activation_heads"):
        assert payload["scores_summary"]["calibration_forwards"] == 2


def test_sink_heads_prefers_unstable_heads():
    """With instability dominating, the head whose sink moves most across steps goes first."""
    model = tiny_llada()
    ids = torch.randint(2, 120, (2, 12), generator=torch.Generator().manual_seed(0))
    stats = collect_structured_statistics(model, ids, diffusion_steps=10, sample_interval=2, progress=False)
    instability = scoring.sink_instability(stats.dominant_positions)
    from optimum_sinkprune.structured import score_heads_and_channels

    heads, _, _ = score_heads_and_channels(model, "sink_heads", stats=stats, instability_weight=1000.0, seed=0)
    if instability.std() > 0:
        assert instability.flatten()[heads.flatten().argmin()] == instability.max()


def test_prune_structured_uses_the_configs_noise_schedule(monkeypatch):
    """`noise_schedule` / `protected_positions` of the config reach the structured statistics (None: the family's)."""
    import optimum_sinkprune.structured.pruner as structured_pruner

    seen = []
    real = structured_pruner.collect_structured_statistics

    def spy(*args, **kwargs):
        seen.append(kwargs["noise"])
        return real(*args, **kwargs)

    monkeypatch.setattr(structured_pruner, "collect_structured_statistics", spy)
    ids = torch.randint(4, 120, (2, 12), generator=torch.Generator().manual_seed(0))
    common = dict(method="sink_heads", target_param_reduction=0.3, num_samples=2, seq_len=12, diffusion_steps=10,
                  sample_interval=5, batch_size=2)
    prune_structured(tiny_llada(), config=SinkAwarePruningConfig(**common), calibration_ids=ids, progress=False)
    prune_structured(tiny_llada(), config=SinkAwarePruningConfig(**common, noise_schedule="uniform",
                                                                 protected_positions="first_last"),
                     calibration_ids=ids, progress=False)
    family = get_adapter(tiny_llada()).noise_defaults()
    assert (seen[0].schedule, seen[0].protected) == (family.schedule, family.protected)
    assert (seen[1].schedule, seen[1].protected) == ("uniform", "first_last")
