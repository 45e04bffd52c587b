# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The memory estimate: what it adds up, where restore copies go, and a meta-device model of LLaDA-8B's width."""

from __future__ import annotations

import pytest
import torch

from optimum_sinkprune import LLaDAConfig, LLaDAModelLM
from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.calibration import memory
from optimum_sinkprune.configuration import SinkAwarePruningConfig
from optimum_sinkprune.pruner import select_targets


def _estimate(model, device=None, restore_copies=False, **config):
    adapter = get_adapter(model)
    targets = select_targets(model, adapter, None, [])
    return memory.estimate_memory(model, adapter, targets, config=SinkAwarePruningConfig(**config),
                                  restore_copies=restore_copies, device=device), targets


@pytest.mark.parametrize("method", ["sink_wanda", "wanda_diffusion", "wanda", "sparsegpt", "sink_sparsegpt",
                                    "magnitude"])
def test_parts_add_up_to_the_peak_on_cpu_and_on_an_accelerator(tiny_llada, method):
    cpu, _ = _estimate(tiny_llada, method=method, seq_len=32, num_samples=4)
    held = sum(v for k, v in cpu.parts.items() if k != "host activations")
    assert cpu.parts["working memory"] == max(cpu.phases.values())
    assert cpu.device_bytes == cpu.host_bytes == held + cpu.parts["host activations"]
    # sized for an accelerator (only a device name: nothing is allocated there)
    acc, _ = _estimate(tiny_llada, device="cuda", method=method, seq_len=32, num_samples=4)
    assert acc.device == "cuda" and acc.device_bytes == held and acc.host_bytes == acc.parts["host activations"]


def test_restore_copies_go_to_disk_not_memory(tiny_llada):
    plain, targets = _estimate(tiny_llada, method="sparsegpt", seq_len=32)
    journaled, _ = _estimate(tiny_llada, method="sparsegpt", seq_len=32, restore_copies=True)
    assert plain.disk_bytes == 0
    assert journaled.disk_bytes == sum(t.weight.numel() * t.weight.element_size() for t in targets.values())
    assert (journaled.device_bytes, journaled.host_bytes) == (plain.device_bytes, plain.host_bytes)
    assert "restore copies" in journaled.summary()


def test_phases_follow_the_config(tiny_llada):
    short, _ = _estimate(tiny_llada, method="sink_wanda", seq_len=32)
    long, _ = _estimate(tiny_llada, method="sink_wanda", seq_len=128)
    plain, _ = _estimate(tiny_llada, method="wanda_diffusion", seq_len=128)
    assert long.phases["forward"] > short.phases["forward"]
    assert long.phases["forward"] > plain.phases["forward"]  # the sink weighting keeps every observed input
    assert long.phases["mask of one layer"] == short.phases["mask of one layer"]  # masks do not depend on tokens
    hess, _ = _estimate(tiny_llada, method="sparsegpt", seq_len=32)
    assert {"hessians of one block", "working memory"} <= set(hess.parts)
    assert "reconstruction of one layer" in hess.phases


def test_full_width_block_sizes_on_a_meta_model():
    """LLaDA-8B's width on the meta device: per-layer work is bounded by one layer, not by the model."""
    with torch.device("meta"):
        model = LLaDAModelLM(LLaDAConfig(n_layers=2, d_model=4096, n_heads=32, mlp_hidden_size=12288))
    est, targets = _estimate(model, device="cpu", method="sink_wanda", seq_len=512, num_samples=1)
    block = sum(t.weight.numel() * 4 for name, t in targets.items() if ".0." in name)
    assert est.phases["mask of one layer"] < 0.15 * block
    assert est.host_bytes < 0.5 * block
    sgpt, _ = _estimate(model, device="cpu", method="sparsegpt", seq_len=512, num_samples=1)
    assert sgpt.parts["hessians of one block"] == 4 * (3 * 4096**2 + 12288**2)


def test_block_forward_bytes_grows_with_tokens_and_probe():
    base = memory.block_forward_bytes(256, 64, 256, 4, 4, probe=False)
    assert memory.block_forward_bytes(512, 64, 256, 4, 4, probe=False) == 2 * base
    assert memory.block_forward_bytes(256, 64, 256, 4, 4, probe=True) > base
