# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The calibration engine: input groups, noise contract, sequential block mode, hooks removed, memory estimate."""

from __future__ import annotations

import pytest
import torch

from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.calibration import engine
from optimum_sinkprune.configuration import SinkAwarePruningConfig
from optimum_sinkprune.diffusion import forward_process


def _ids(n=3, s=16, seed=0):
    return torch.randint(2, 120, (n, s), generator=torch.Generator().manual_seed(seed))


def _hook_count(model):
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


def test_input_groups_deduplicate_shared_inputs(tiny_llada, tiny_dream):
    for model in (tiny_llada, tiny_dream):
        adapter = get_adapter(model)
        groups = engine.input_groups(adapter, adapter.linear_layers(model))
        assert len(groups) == 4 * adapter.num_layers(model)
        sizes = sorted(len(m) for m in groups.values())
        assert sizes == [1] * 4 + [2] * 2 + [3] * 2  # o, down | gate+up | q+k+v per layer


def test_noised_samples_follow_the_forward_process():
    ids = _ids()
    noisy = engine.noised_samples(ids, [5, 10], diffusion_steps=10, mask_token_id=127, noise_eps=1e-3, seed=4)
    seeds = engine.sample_seeds(4, 3)
    for i in range(3):
        gen = torch.Generator().manual_seed(seeds[i])
        for k, step in enumerate([5, 10]):
            expected, _, _ = forward_process(ids[i:i + 1], step / 10, 127, eps=1e-3, generator=gen)
            assert torch.equal(noisy[i, k], expected[0])
    assert (noisy[:, 1] == 127).all()  # t = 1 masks (almost) everything
    assert not torch.equal(noisy, engine.noised_samples(ids, [5, 10], diffusion_steps=10, mask_token_id=127,
                                                        noise_eps=1e-3, seed=5))


def test_sequential_mode_sees_upstream_pruning_and_removes_hooks(tiny_llada, randomize):
    """Block 1's statistics come from block 0's outputs *after* block 0 was pruned."""
    model = randomize(tiny_llada, seed=1)
    adapter = get_adapter(model)
    targets = adapter.linear_layers(model)
    ids = _ids()
    hooks_before = _hook_count(model)
    seen = {}

    def prune_block(index, stats):
        seen[index] = {k: v.clone() for k, v in stats.items()}
        if index == 0:
            with torch.no_grad():
                for name in stats:
                    targets[name].weight.zero_()  # a drastic "pruning" of block 0

    engine.run_sequential(model, adapter, ids, targets, statistic="sq_norm", prune_block=prune_block, batch_size=2,
                          progress=False)
    assert _hook_count(model) == hooks_before
    # with block 0's linears zeroed, block 1's input is the embedding itself (through its norm)
    got = {}
    h = targets["model.transformer.blocks.1.q_proj"].register_forward_pre_hook(
        lambda m, a: got.__setitem__("x", a[0]))
    try:
        model(input_ids=ids)
    finally:
        h.remove()
    x = got["x"].float()
    expected = torch.sqrt((x ** 2).reshape(-1, x.shape[-1]).mean(0))
    torch.testing.assert_close(seen[1]["model.transformer.blocks.1.q_proj"], expected)


def test_hooks_removed_when_forward_fails(tiny_llada):
    adapter = get_adapter(tiny_llada)
    before = _hook_count(tiny_llada)

    def boom(index, stats):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        engine.run_sequential(tiny_llada, adapter, _ids(), adapter.linear_layers(tiny_llada), statistic="hessian",
                              prune_block=boom, progress=False)
    assert _hook_count(tiny_llada) == before


def test_hessian_statistic_with_token_weights(tiny_llada, randomize):
    model = randomize(tiny_llada, seed=2)
    adapter = get_adapter(model)
    targets = {"model.transformer.blocks.0.q_proj": adapter.linear_layers(model)["model.transformer.blocks.0.q_proj"]}
    ids = _ids()
    w = torch.rand(3, 16, generator=torch.Generator().manual_seed(0))
    seen = {}
    engine.run_sequential(model, adapter, ids, targets, statistic="hessian", token_weights=w,
                          prune_block=lambda i, s: seen.update(s), progress=False)
    x = model.model.transformer.blocks[0].attn_norm(model.model.transformer.wte(ids)).float() * w[..., None]
    flat = x.reshape(-1, 64)
    torch.testing.assert_close(seen["model.transformer.blocks.0.q_proj"], 2 * flat.T @ flat / 3, rtol=1e-4, atol=1e-5)


def test_memory_estimate_grows_with_the_config_and_refuses_with_numbers(tiny_llada):
    adapter = get_adapter(tiny_llada)
    targets = adapter.linear_layers(tiny_llada)
    small = engine.estimate_memory(tiny_llada, adapter, targets, config=SinkAwarePruningConfig(seq_len=64))
    big = engine.estimate_memory(tiny_llada, adapter, targets,
                                 config=SinkAwarePruningConfig(seq_len=256, batch_size=8))
    assert big.device_bytes > small.device_bytes > 0
    hess = engine.estimate_memory(tiny_llada, adapter, targets, config=SinkAwarePruningConfig(method="sparsegpt"))
    assert "hessians of one block" in hess.parts
    with pytest.raises(MemoryError, match=r"needs about .* GiB more on cpu but only 0\.000 GiB"):
        engine.check_memory(big, limit_bytes=1000)
    engine.check_memory(small, limit_bytes=10**12)
