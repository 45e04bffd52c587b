# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Expert pruning of DiffusionGemma by router statistics on its own noised calibration windows: the REAP baseline and
the sink-aware score equal hand computations from the model's routing, the lowest-scored experts go, the router shrinks
with them, the smaller model reloads through the Auto class with identical logits, and budgets that leave fewer experts
than top_k are refused (both numbers in the message) before any change."""

from __future__ import annotations


import pytest
import torch

from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.calibration.noise import NoiseSchedule
from optimum_sinkprune.calibration.sink_weights import sink_weights
from optimum_sinkprune.structured.experts import (
    check_expert_pruning,
    experts_to_remove,
    kept_experts,
    prune_experts,
    score_experts,
)

import diffusion_gemma_fixtures as fx

SEQ = 24
NOISE = NoiseSchedule(diffusion_steps=4, sample_interval=2, seed=3)


def _snapshot(model) -> dict[str, torch.Tensor]:
    """Every parameter by every name (tied ones under both stacks' names)."""
    return {name: p.detach().clone() for name, p in model.named_parameters(remove_duplicate=False)}


def _hand_scores(model, windows: torch.Tensor, token_weight: torch.Tensor) -> torch.Tensor:
    """[layers, experts] Σ_t w_t g_e(t) ‖E_e(x_t)‖ / Σ_t w_t over routed tokens, from hooks on the experts modules of
    plain calibration forwards (E_e recomputed from the packed tensors)."""
    adapter = get_adapter(model)
    blocks = adapter.blocks(model)
    num = adapter.num_experts(model)
    num_acc = torch.zeros(len(blocks), num, dtype=torch.float64)
    den_acc = torch.zeros_like(num_acc)
    current = {}

    def hook_for(layer):
        def hook(module, args, _output):
            hidden, index, gate = args[0].float(), args[1], args[2].float()
            w = current["w"].double()
            for e in range(num):
                for t in range(hidden.shape[0]):
                    slots = (index[t] == e).nonzero().flatten()
                    if len(slots) == 0:
                        continue
                    g, u = (hidden[t] @ module.gate_up_proj[e].detach().T).chunk(2)
                    out = (module.act_fn(g) * u) @ module.down_proj[e].detach().T
                    num_acc[layer, e] += w[t] * float(gate[t, slots].sum()) * float(out.norm())
                    den_acc[layer, e] += w[t] * len(slots)
        return hook

    handles = [block.experts.register_forward_hook(hook_for(i)) for i, block in enumerate(blocks)]
    fx.weighted_calibration_forwards(model, adapter, windows, token_weight, current, handles)
    return num_acc / den_acc


@pytest.mark.parametrize("sink_weighted", [False, True])
def test_scores_equal_the_routing_of_plain_forwards(sink_weighted):
    from optimum_sinkprune.analysis.block_diffusion import forward_process_sink_profile

    model = fx.tiny_diffusion_gemma()
    adapter = get_adapter(model)
    ids = fx.text_ids(2, SEQ, seed=4)
    noisy, _ = adapter.calibration_noise(model, ids, NOISE, None)
    windows = noisy.reshape(-1, SEQ)
    if sink_weighted:
        profile = forward_process_sink_profile(model, ids, schedule=NOISE, progress=False)
        sigma = sink_weights(profile.mass.sum(dim=(2, 3)).reshape(-1, SEQ))[:, -fx.DG_CANVAS:]
        weight = 1.0 - sigma
    else:
        weight = torch.ones(windows.shape[0], fx.DG_CANVAS)
    expected = _hand_scores(model, windows, weight)
    observer = score_experts(model, ids, noise=NOISE, sink_weighted=sink_weighted, progress=False)
    assert observer.forwards == 4
    assert torch.allclose(observer.scores(), expected, rtol=1e-4, atol=1e-6)
    assert observer.tokens.sum(dim=1).tolist() == [4 * fx.DG_CANVAS * 2] * 2  # top-2 of every canvas token


def test_sink_weighting_changes_the_scores():
    model = fx.tiny_diffusion_gemma()
    ids = fx.text_ids(2, SEQ, seed=4)
    reap = score_experts(model, ids, noise=NOISE, sink_weighted=False, progress=False).scores()
    sink = score_experts(model, ids, noise=NOISE, sink_weighted=True, progress=False).scores()
    assert not torch.allclose(reap, sink)


def test_the_lowest_scored_experts_go_and_the_router_shrinks_with_them(tmp_path):
    from transformers import AutoModelForImageTextToText

    model = fx.tiny_diffusion_gemma()
    adapter = get_adapter(model)
    before = _snapshot(model)
    ids = fx.text_ids(2, SEQ, seed=4)
    scores = score_experts(model, ids, noise=NOISE, sink_weighted=True, progress=False).scores()
    result = prune_experts(model, ids, expert_ratio=0.5, sink_weighted=True, noise=NOISE, progress=False)
    assert result.num_experts_after == 2 and model.config.text_config.num_experts == 2
    for layer, kept in result.kept.items():
        dropped = [e for e in range(4) if e not in kept]
        assert max(float(scores[layer, e]) for e in dropped) <= min(float(scores[layer, e]) for e in kept)
        prefix = f"model.decoder.layers.{layer}."
        block = adapter.blocks(model)[layer]
        assert torch.equal(block.experts.gate_up_proj, before[prefix + "experts.gate_up_proj"][kept])
        assert torch.equal(block.experts.down_proj, before[prefix + "experts.down_proj"][kept])
        assert torch.equal(adapter.projection(block, "router").weight, before[prefix + "router.proj.weight"][kept])
        assert torch.equal(block.router.per_expert_scale, before[prefix + "router.per_expert_scale"][kept])
        encoder = adapter.stack_blocks(model, "encoder")[layer]
        assert encoder.experts.gate_up_proj is block.experts.gate_up_proj
        assert adapter.projection(encoder, "router").weight is adapter.projection(block, "router").weight
    # per layer, 2 experts x (gate_up 32x32 + down 32x16), their 2 router rows of 32 and 2 scales (stacks share them)
    assert result.params_before - result.params_after == 2 * (2 * (32 * 32 + 32 * 16) + 2 * 32 + 2)
    ctx, canvas = fx.text_ids(2, 10), fx.text_ids(2, fx.DG_CANVAS, seed=1)
    with torch.no_grad():
        logits = adapter.denoiser_logits(model, ctx, canvas)
    assert torch.isfinite(logits).all()
    model.save_pretrained(tmp_path / "dg-experts")
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path / "dg-experts").eval()
    with torch.no_grad():
        assert torch.equal(adapter.denoiser_logits(reloaded, ctx, canvas), logits)
    assert reloaded.config.text_config.num_experts == 2
    assert adapter.blocks(reloaded)[1].experts.down_proj.shape == (2, 32, 16)


@pytest.mark.parametrize("ratio, message", [
    (0.75, r"leaves 1 experts per layer, fewer than top_k_experts=2"),
    (0.1, r"removes no expert of 4"),
    (1.0, r"must be a number in \(0, 1\)"),
])
def test_bad_expert_ratios_are_refused_before_any_change(ratio, message):
    model = fx.tiny_diffusion_gemma()
    before = _snapshot(model)
    with pytest.raises(ValueError, match=message):
        prune_experts(model, fx.text_ids(2, SEQ), expert_ratio=ratio, noise=NOISE, progress=False)
    after = dict(model.named_parameters(remove_duplicate=False))
    assert set(after) == set(before) and all(torch.equal(after[n], before[n]) for n in before)


def test_offloaded_blocks_are_refused_by_name_before_any_change(tmp_path):
    """Removing experts changes the packed tensors' shapes, which accelerate's offload maps cannot follow."""
    from accelerate import cpu_offload

    model = fx.tiny_diffusion_gemma()
    before = {n: p.clone() for n, p in model.state_dict().items()}
    cpu_offload(model)  # every parameter on meta, its value in an offload map
    with pytest.raises(ValueError, match=r"method='sink_experts' removes parameters and changes layer shapes.* "
                                         r"'model\.decoder\.layers\.0', 'model\.decoder\.layers\.1' are offloaded"):
        check_expert_pruning(model, 0.5, method="sink_experts")
    with pytest.raises(ValueError, match=r"expert pruning removes parameters.* are offloaded"):
        prune_experts(model, fx.text_ids(2, SEQ), expert_ratio=0.5, noise=NOISE, progress=False)
    from optimum_sinkprune.offload import read_tensor

    for name, value in before.items():
        prefix, _, attr = name.rpartition(".")
        assert torch.equal(read_tensor(model.get_submodule(prefix), attr), value), name


def test_keep_experts_refuses_too_small_or_bad_sets():
    # uneven sets are allowed: tests/test_diffusion_gemma_expert_counts.py
    model = fx.tiny_diffusion_gemma()
    adapter = get_adapter(model)
    with pytest.raises(ValueError, match=r"kept\[0\] keeps 1 experts, fewer than top_k_experts=2"):
        adapter.keep_experts(model, {0: [0], 1: [3, 2]})
    with pytest.raises(ValueError, match=r"kept must name the experts of every layer 0..1"):
        adapter.keep_experts(model, {0: [0, 1]})
    with pytest.raises(ValueError, match=r"kept\[1\]=\[0, 0\]"):
        adapter.keep_experts(model, {0: [0, 1], 1: [0, 0]})
    assert adapter.num_experts(model) == 4 and adapter.blocks(model)[0].experts.gate_up_proj.shape[0] == 4


def test_image_tokens_are_refused_with_what_is_supported():
    model = fx.tiny_diffusion_gemma()
    ids = fx.text_ids(2, SEQ)
    ids[1, 2] = fx.DG_BOI_TOKEN
    with pytest.raises(ValueError, match="calibration_ids holds image tokens .*support text-only inputs"):
        prune_experts(model, ids, expert_ratio=0.5, noise=NOISE, progress=False)


def test_pure_helpers():
    assert experts_to_remove(128, 8, 0.25) == 32
    with pytest.raises(ValueError, match="leaves 4 experts per layer, fewer than top_k_experts=8"):
        experts_to_remove(128, 8, 0.97)
    scores = torch.tensor([[3.0, 1.0, 1.0, 2.0], [0.0, 5.0, 4.0, 6.0]])
    assert kept_experts(scores, 2) == {0: [0, 3], 1: [1, 3]}  # a tie drops the later expert first
