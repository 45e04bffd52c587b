# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The registered structured head methods (`sink_heads`, `activation_heads`, `magnitude_heads`, `random_heads`) on
DiffusionGemma, whose sliding and full-attention layers have their own head size and kv-head count: the statistics
read each layer's heads with its own head size from the decoder's attention on the model's own noised canvases, the
planner removes whole kv groups of either layer kind to the parameter budget (each layer's unit by its own size),
and the pruned checkpoint reloads through the Auto class with identical logits and still generates."""

from __future__ import annotations

import pytest
import torch

from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.calibration.noise import NoiseSchedule
from optimum_sinkprune.configuration import SinkAwarePruningConfig
from optimum_sinkprune.pruner import SinkAwarePruner
from optimum_sinkprune.structured import collect_structured_statistics
from optimum_sinkprune.structured.pruner import layer_unit_costs, plan_structured_budget

import diffusion_gemma_fixtures as fx

SEQ = 24
SMALL = dict(num_samples=2, seq_len=SEQ, diffusion_steps=4, sample_interval=2, seed=3)
METHODS = ("sink_heads", "activation_heads", "magnitude_heads", "random_heads")
# two kv heads in the full-attention layer too: both layer kinds have a removable kv group
TWO_KV = dict(num_global_key_value_heads=2)


def _logits(model):
    ctx, canvas = fx.text_ids(2, 10, seed=7), fx.text_ids(2, fx.DG_CANVAS, seed=8)
    with torch.no_grad():
        return get_adapter(model).denoiser_logits(model, ctx, canvas)


def _prune(model, method: str, **fields):
    config = SinkAwarePruningConfig(method=method, **{**SMALL, "target_param_reduction": 0.2, **fields})
    return SinkAwarePruner(model).prune(config, fx.text_ids(2, SEQ), progress=False)[1]


def test_each_layer_kind_has_its_own_unit_size():
    # sliding: 2 query heads of 8 (q rows + o cols) and one k and one v head; full: 2 heads of 16 and keys as values
    hidden = 32
    costs = layer_unit_costs(fx.tiny_diffusion_gemma(**TWO_KV))
    assert [c.head_unit for c in costs] == [2 * 8 * 2 * hidden + 2 * 8 * hidden, 2 * 16 * 2 * hidden + 16 * hidden]
    assert {c.channel for c in costs} == {3 * hidden}
    plan = plan_structured_budget(fx.tiny_diffusion_gemma(**TWO_KV),
                                  SinkAwarePruningConfig(method="magnitude_heads", target_param_reduction=0.2))
    assert plan.layered and plan.present_units == [2, 2] and plan.head_capacity == [1, 1]


def test_the_statistics_read_every_layer_with_its_own_head_size_on_the_noised_canvases():
    model = fx.tiny_diffusion_gemma()
    adapter = get_adapter(model)
    ids = fx.text_ids(2, SEQ)
    noise = NoiseSchedule(diffusion_steps=4, sample_interval=2, seed=3)
    stats = collect_structured_statistics(model, ids, noise=noise, progress=False)
    # the same noised windows, through plain forwards: sums over canvas tokens of each head's o-projection input
    noisy, _ = adapter.calibration_noise(model, ids, noise, adapter.noise_token_id(model))
    expected = torch.zeros(2, 4, dtype=torch.float64)
    captured = {}
    blocks = adapter.blocks(model)
    handles = [adapter.projection(b, "o").register_forward_pre_hook(
        lambda _m, args, i=i: captured.__setitem__(i, args[0])) for i, b in enumerate(blocks)]
    try:
        with torch.no_grad():
            for window in noisy.reshape(-1, SEQ):
                adapter.calibration_forward(model, window[None])
                for i, x in captured.items():
                    hd = adapter.layer_head_dim(model, i)
                    expected[i] += x.double().reshape(-1, 4, hd).square().sum(dim=(0, 2))
    finally:
        for handle in handles:
            handle.remove()
    assert [adapter.layer_head_dim(model, i) for i in range(2)] == [8, 16]
    assert torch.allclose(stats.head_sq, expected, rtol=1e-5)
    assert stats.dominant_positions.shape == (2, 2, 2, 4)  # samples, steps, layers, heads
    assert int(stats.dominant_positions.max()) < SEQ
    assert 0.0 < stats.mean_sink_weight < 1.0
    assert bool((stats.head_sq_weighted <= stats.head_sq * (1 + 1e-6)).all())
    assert [c.numel() for c in stats.channel_sq] == [64, 64] and stats.forwards == 4


@pytest.mark.parametrize("method", METHODS)
def test_each_method_removes_whole_kv_groups_and_reloads_with_identical_logits(method, tmp_path):
    from transformers import AutoModelForImageTextToText

    model = fx.tiny_diffusion_gemma()
    report = _prune(model, method)
    st = report.structured
    # the sliding layer loses one of its two kv groups; the full layer's only group stays (min_heads_per_layer)
    assert st["removed_heads"] in ({"0": [0, 1]}, {"0": [2, 3]})  # JSON keys
    assert abs(st["params_before"] - st["params_after"] - st["target_params"]) <= 96 / 2
    assert [row["heads_left"] for row in st["per_layer"]] == [2, 4]
    adapter = get_adapter(model)
    assert adapter.num_kv_heads(model, 0) == 1 and adapter.num_kv_heads(model, 1) == 1
    for dec, enc in zip(adapter.blocks(model), adapter.stack_blocks(model, "encoder")):
        for role in adapter.projections(dec):
            assert adapter.projection(enc, role).weight is adapter.projection(dec, role).weight
    expected = _logits(model)
    model.save_pretrained(tmp_path / method)
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path / method).eval()
    assert torch.equal(_logits(reloaded), expected)
    out = reloaded.generate(fx.text_ids(1, 5), max_new_tokens=fx.DG_CANVAS, max_denoising_steps=2)
    assert out.sequences.shape == (1, 5 + fx.DG_CANVAS)


@pytest.mark.parametrize("allocation", ["uniform", "global"])
def test_the_budget_takes_units_of_both_sizes_and_the_channels_fill_the_rest(allocation, tmp_path):
    from transformers import AutoModelForImageTextToText

    model = fx.tiny_diffusion_gemma(**TWO_KV)
    report = _prune(model, "sink_heads", target_param_reduction=0.3, allocation=allocation)
    st = report.structured
    # the attention share (~4031 parameters) is closest with one unit of each kind (1536 + 2560)
    assert set(st["removed_heads"]) == {"0", "1"}
    assert all(len(v) == 2 and v[1] == v[0] + 1 and v[0] % 2 == 0 for v in st["removed_heads"].values())
    assert abs(st["params_before"] - st["params_after"] - st["target_params"]) <= 96 / 2
    adapter = get_adapter(model)
    assert [adapter.num_kv_heads(model, i) for i in range(2)] == [1, 1]
    assert adapter.projection(adapter.blocks(model)[1], "o").in_features == 2 * 16
    expected = _logits(model)
    model.save_pretrained(tmp_path / "dg")
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path / "dg").eval()
    assert torch.equal(_logits(reloaded), expected)


def test_mask_mode_zeroes_what_remove_mode_removes():
    masked, removed = fx.tiny_diffusion_gemma(**TWO_KV), fx.tiny_diffusion_gemma(**TWO_KV)
    a = _prune(masked, "magnitude_heads", target_param_reduction=0.3, structured_mode="mask").structured
    b = _prune(removed, "magnitude_heads", target_param_reduction=0.3).structured
    assert a["removed_heads"] == b["removed_heads"] and a["removed_channels"] == b["removed_channels"]
    assert torch.allclose(_logits(masked), _logits(removed), rtol=1e-4, atol=1e-4)
    assert a["params_after"] == b["params_after"]  # non-zero block parameters = the smaller shapes' count


def test_head_ratio_counts_units_of_either_kind():
    model = fx.tiny_diffusion_gemma(**TWO_KV)
    st = _prune(model, "magnitude_heads", target_param_reduction=None, head_ratio=0.5).structured
    assert sum(len(v) for v in st["removed_heads"].values()) == 2 * 2  # 2 of 4 kv groups, 2 query heads each
    assert st["mlp_widths"] == [64, 64]


def test_a_target_the_model_cannot_reach_is_refused_before_any_change():
    model = fx.tiny_diffusion_gemma()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with pytest.raises(ValueError, match=r"target_param_reduction=0.9 asks for .* at most"):
        _prune(model, "sink_heads", target_param_reduction=0.9)
    with pytest.raises(ValueError, match=r"target_param_reduction=0.0001 removes nothing"):
        _prune(model, "sink_heads", target_param_reduction=0.0001)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
