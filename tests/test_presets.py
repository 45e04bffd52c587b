# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The paper preset: its values against the paper's code, its bad input, and the memory estimate of LLaDA-8B from
its config (meta device, nothing downloaded)."""

from __future__ import annotations

import pytest

from optimum_sinkprune.adapters.registry import adapter_for_model_type
from optimum_sinkprune.calibration.memory import estimate_memory
from optimum_sinkprune.configuration import PAPER_PRESET_FAMILIES, SinkAwarePruningConfig
from optimum_sinkprune.presets import LLADA_8B_CONFIG_FILE, estimate_model_memory, load_model_config

# VILA-Lab/Sink-Aware-Pruning @ 6ef32c9: main_llada.py / main_dream.py argparse defaults, model.seqlen (LLaDA:
# max_sequence_length = 4096, Dream: 4096), lib/prune_llada.py fasterprune(percdamp=0.01, blocksize=128).
PAPER = dict(num_samples=128, seq_len=4096, seed=0, batch_size=1, diffusion_steps=50, sample_interval=5,
             noise_eps=1e-3, sink_alpha=5.0, sink_std=2.0, dampening=0.01, block_size=128)


@pytest.mark.parametrize("family", ["llada", "mmada", "dream", "Dream"])
@pytest.mark.parametrize("method", ["sink_wanda", "sink_sparsegpt", "wanda", "sparsegpt"])
def test_paper_preset_has_the_papers_settings(family, method):
    config = SinkAwarePruningConfig.paper_preset(family, method, 0.5)
    assert {k: getattr(config, k) for k in PAPER} == PAPER
    assert config.method == method and config.sparsity == 0.5 and config.sampled_steps == list(range(5, 51, 5))
    noise = adapter_for_model_type(family).noise_defaults()
    assert (config.noise_schedule, config.protected_positions) == (noise.schedule, noise.protected)
    assert SinkAwarePruningConfig.from_dict(config.to_dict()) == config  # the resolved noise is recorded


def test_preset_overrides_apply_last():
    config = SinkAwarePruningConfig.paper_preset("llada", "sink_wanda", 0.5, seq_len=64, num_samples=2,
                                                 pattern="2:4")
    assert (config.seq_len, config.num_samples, config.pattern, config.diffusion_steps) == (64, 2, "2:4", 50)


def test_unknown_family_lists_the_known_ones():
    with pytest.raises(ValueError) as err:
        SinkAwarePruningConfig.paper_preset("gpt2", "sink_wanda", 0.5)
    assert "family='gpt2'" in str(err.value)
    assert all(f in str(err.value) for f in PAPER_PRESET_FAMILIES)


def test_structured_method_and_bad_override_are_rejected():
    with pytest.raises(ValueError, match="method='sink_heads' is not covered by the paper preset.*sink_wanda"):
        SinkAwarePruningConfig.paper_preset("llada", "sink_heads", 0.5)
    with pytest.raises(ValueError, match="unknown SinkAwarePruningConfig keys \\['seqlen'\\]"):
        SinkAwarePruningConfig.paper_preset("llada", "sink_wanda", 0.5, seqlen=64)
    with pytest.raises(ValueError, match="sparsity"):
        SinkAwarePruningConfig.paper_preset("llada", "sink_wanda", 1.5)


@pytest.mark.parametrize("field,value", [("noise_schedule", "cosine"), ("protected_positions", "last")])
def test_unknown_noise_values_are_rejected(field, value):
    with pytest.raises(ValueError, match=f"{field}='{value}' is not one of"):
        SinkAwarePruningConfig(**{field: value})


@pytest.mark.slow
def test_llada_8b_memory_estimate_from_its_config():
    config = load_model_config(LLADA_8B_CONFIG_FILE)
    d, layers, mlp, vocab = 4096, 32, 12288, 126464
    expected_params = 2 * vocab * d + layers * (4 * d * d + 3 * d * mlp + 2 * d) + d
    preset = SinkAwarePruningConfig.paper_preset("llada", "sink_sparsegpt", 0.5)
    est = estimate_model_memory(config, preset)
    assert est.parameters == expected_params and est.weight_bytes == 2 * expected_params  # bf16
    # SparseGPT's Hessians of one block: 4 d x d (q, k, v inputs share one; o; gate/up share one; down) ... at least
    # the down projection's mlp x mlp float32 Hessian
    assert est.parts["hessians of one block"] >= mlp * mlp * 4
    assert est.accelerator_bytes == est.weight_bytes + sum(v for k, v in est.parts.items() if k != "host activations")
    wanda = estimate_model_memory(config, SinkAwarePruningConfig.paper_preset("llada", "sink_wanda", 0.5))
    assert wanda.parameters == est.parameters and wanda.parts != est.parts
    assert "GiB on the accelerator" in est.summary()


def test_estimate_calls_the_estimator_on_a_meta_model(monkeypatch, tiny_configs):
    calls = []
    import optimum_sinkprune.calibration.memory as memory

    def spy(model, adapter, targets, *, config, restore_copies=False):
        calls.append({p.device.type for p in model.parameters()})
        return estimate_memory(model, adapter, targets, config=config, restore_copies=restore_copies)

    monkeypatch.setattr(memory, "estimate_memory", spy)
    est = estimate_model_memory(tiny_configs.llada(), SinkAwarePruningConfig.paper_preset("llada", seq_len=32))
    assert calls == [{"meta"}] and est.parameters > 0
