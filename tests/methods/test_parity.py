# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Every method's masks equal the straightforward reference implementation (tests/methods/methods_reference.py)."""

from __future__ import annotations

import copy

import pytest
import torch

from methods_reference import prunable, reference_dense_norms, reference_prune
from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.calibration import engine
from optimum_sinkprune.configuration import SinkAwarePruningConfig
from optimum_sinkprune.pruner import SinkAwarePruner

SMALL = dict(num_samples=3, seq_len=16, diffusion_steps=10, sample_interval=5, block_size=32)


def _ids(n=3, s=16, seed=0):
    return torch.randint(2, 120, (n, s), generator=torch.Generator().manual_seed(seed))


def _masks_after(model) -> dict[str, torch.Tensor]:
    return {name: layer.weight == 0 for name, layer in prunable(model).items()}


@pytest.mark.parametrize("method,pattern,sparsity", [
    ("magnitude", "unstructured", 0.5),
    ("magnitude", "2:4", 0.5),
    ("wanda", "unstructured", 0.5),
    ("wanda", "4:8", 0.5),
    ("sink_wanda", "unstructured", 0.6),
    ("sink_wanda", "2:4", 0.5),
    ("wanda_diffusion", "unstructured", 0.5),
    ("sparsegpt", "unstructured", 0.5),
    ("sparsegpt", "2:4", 0.5),
    ("sink_sparsegpt", "unstructured", 0.5),
])
def test_llada_masks_match_reference(tiny_llada, randomize, method, pattern, sparsity):
    model = randomize(tiny_llada, seed=3)
    ref_model = copy.deepcopy(model)
    ids = _ids()
    config = SinkAwarePruningConfig(method=method, pattern=pattern, sparsity=sparsity, **SMALL)
    SinkAwarePruner(model).prune(config, ids, progress=False)
    ref_masks = reference_prune(ref_model, ids, config)
    ours = _masks_after(model)
    for name, ref in ref_masks.items():
        layer = prunable(model)[name]
        # zeros of the pruned weight are exactly the reference mask (random weights are never exactly 0 otherwise)
        assert torch.equal(ours[name], ref), f"{method} {pattern}: mask of {name} differs in {(ours[name] ^ ref).sum()}"
        if method in ("sparsegpt", "sink_sparsegpt"):
            torch.testing.assert_close(layer.weight, prunable(ref_model)[name].weight, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("fixture", ["tiny_dream", "tiny_llama"])
def test_other_architectures_match_reference(request, randomize, fixture):
    model = randomize(request.getfixturevalue(fixture), seed=5)
    method = "wanda" if fixture == "tiny_llama" else "sink_wanda"
    if fixture == "tiny_llama":
        model.config.mask_token_id = 127
    ref_model = copy.deepcopy(model)
    ids = _ids(seed=1)
    # the reference noises as LLaDA does (t = s/K, any position): Dream, whose own default is the paper's uniform
    # schedule with first and last kept (tests/calibration/test_family_noise.py), is compared on that schedule
    config = SinkAwarePruningConfig(method=method, sparsity=0.5, noise_schedule="ladder", protected_positions="none",
                                    **SMALL)
    SinkAwarePruner(model).prune(config, ids, progress=False)
    ref_masks = reference_prune(ref_model, ids, config)
    ours = _masks_after(model)
    for name, ref in ref_masks.items():
        assert torch.equal(ours[name], ref), name


def test_single_pass_statistic_equals_two_pass(tiny_llada, randomize):
    """The engine's one-forward statistic equals the two-pass definition (mass from full matrices, then hooks)."""
    model = randomize(tiny_llada, seed=7)
    ids = _ids()
    config = SinkAwarePruningConfig(method="sink_wanda", **SMALL)
    adapter = get_adapter(model)
    targets = adapter.linear_layers(model)
    noisy = engine.noised_samples(ids, config.sampled_steps, diffusion_steps=config.diffusion_steps,
                                  mask_token_id=127, noise_eps=config.noise_eps, seed=config.seed)
    ours, stats = engine.collect_dense_norms(model, adapter, targets, noisy, sink=True, sink_alpha=config.sink_alpha,
                                             sink_std=config.sink_std, batch_size=2, progress=False)
    ref = reference_dense_norms(model, ids, config, sink=True)
    for name in targets:
        torch.testing.assert_close(ours[name].double(), ref[name], rtol=1e-4, atol=1e-5)
    assert stats.forwards == ids.shape[0] * len(config.sampled_steps)
