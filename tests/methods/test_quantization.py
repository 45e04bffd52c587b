# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Weight-only quantization maths (RTN, GPTQ, SparseGPT's joint pass) and `SinkAwareQuantizer` on tiny models."""

from __future__ import annotations

import pytest
import torch

from optimum_sinkprune.configuration import SinkAwarePruningConfig
from optimum_sinkprune.methods.gptq import gptq_quantize, sparsegpt_quantize
from optimum_sinkprune.methods.rtn import QuantGrid, expand_scales, integers_and_scales, rtn_quantize
from optimum_sinkprune.methods.sparsegpt import sparsegpt_prune
from optimum_sinkprune.quantization import QuantizationConfig, SinkAwareQuantizer, quantized_layers

VOCAB = 128  # the tiny models' vocabulary (tests/conftest.py)


def _layer(seed: int = 0, rows: int = 24, cols: int = 64, n: int = 256):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=g)
    # correlated inputs with a few large features: where GPTQ's error compensation matters
    mix = torch.randn(cols, cols, generator=g) / cols**0.5 + torch.eye(cols)
    x = torch.randn(n, cols, generator=g) @ mix
    x[:, :4] *= 5
    return w, x, 2 * x.T @ x / n


def _output_error(w_q: torch.Tensor, w: torch.Tensor, x: torch.Tensor) -> float:
    """‖(W_q − W) Xᵀ‖²_F: the layer-output error, i.e. the XᵀX-weighted weight error."""
    return float(((w_q - w) @ x.T).square().sum())


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("group_size", [16, None])
def test_gptq_beats_rtn_on_layer_outputs(bits, group_size):
    w, x, h = _layer()
    grid = QuantGrid(bits, group_size)
    rtn, _ = rtn_quantize(w, grid)
    gptq, _ = gptq_quantize(w, h, grid, block_size=32)
    assert _output_error(gptq, w, x) < _output_error(rtn, w, x)


def test_rtn_values_on_the_grid_and_group_scales():
    w, _, _ = _layer(1)
    grid = QuantGrid(4, 16)
    deq, scales = rtn_quantize(w, grid)
    assert scales.shape == (24, 4)
    # each group's scale is its max |w| over 7, so the largest weight of a group lands on ±7
    expected = w.reshape(24, 4, 16).abs().amax(dim=2) / 7
    torch.testing.assert_close(scales, expected)
    ints = integers_and_scales(deq, scales, grid)
    assert int(ints.min()) >= -8 and int(ints.max()) <= 7
    assert (ints.abs().reshape(24, 4, 16).amax(dim=2) == 7).all()
    torch.testing.assert_close(ints.float() * expand_scales(scales, 64), deq, rtol=0, atol=0)
    # round to nearest: no weight moves more than half a step
    assert ((deq - w).abs() <= expand_scales(scales, 64) / 2 + 1e-6).all()


@pytest.mark.parametrize("bits", [4, 8])
def test_gptq_values_within_range_and_on_grid(bits):
    w, _, h = _layer(2)
    grid = QuantGrid(bits, 32)
    deq, scales = gptq_quantize(w, h, grid, block_size=16)  # groups span blocks
    ints = integers_and_scales(deq, scales, grid)
    assert int(ints.min()) >= grid.qmin and int(ints.max()) <= grid.qmax
    torch.testing.assert_close(ints.float() * expand_scales(scales, 64), deq, rtol=0, atol=0)


def test_bf16_scales_match_what_a_loader_dequantizes():
    w, _, h = _layer(3)
    grid = QuantGrid(4, 16, torch.bfloat16)
    deq, scales = gptq_quantize(w, h, grid)
    assert torch.equal(scales.to(torch.bfloat16).float(), scales)  # already rounded to the storage dtype
    ints = integers_and_scales(deq, scales, grid)
    loaded = ints.to(torch.bfloat16) * expand_scales(scales.to(torch.bfloat16), 64)
    assert torch.equal(loaded, deq.to(torch.bfloat16))


@pytest.mark.parametrize("nm,sparsity", [(None, 0.5), ((2, 4), 0.5)])
def test_joint_pass_exact_sparsity_and_grid(nm, sparsity):
    w, x, h = _layer(4)
    grid = QuantGrid(4, 16)
    deq, mask, scales = sparsegpt_quantize(w, h, grid, sparsity=sparsity, nm=nm, block_size=32)
    assert int(mask.sum()) == w.numel() // 2
    assert torch.equal(deq == 0, mask | (deq == 0)) and bool((deq[mask] == 0).all())
    if nm is not None:
        assert bool(((deq != 0).reshape(24, -1, 4).sum(dim=2) <= 2).all())
    ints = integers_and_scales(deq, scales, grid)
    torch.testing.assert_close(ints.float() * expand_scales(scales, 64), deq, rtol=0, atol=0)
    # quantizing inside the sweep is better than pruning first and rounding the result afterwards
    pruned, _ = sparsegpt_prune(w, h, sparsity=sparsity, nm=nm, block_size=32)
    rounded, _ = rtn_quantize(pruned, grid)
    assert _output_error(deq, w, x) < _output_error(rounded, w, x)


def test_gptq_keeps_zeros_of_a_pruned_layer():
    w, _, h = _layer(5)
    pruned, mask = sparsegpt_prune(w, h, sparsity=0.5)
    deq, _ = gptq_quantize(pruned, h, QuantGrid(4, 16))
    assert torch.equal(deq == 0, mask | (deq == 0)) and int((deq == 0).sum()) >= int(mask.sum())


def test_unquantized_sweep_is_sparsegpt():
    w, _, h = _layer(6)
    a, mask_a = sparsegpt_prune(w, h, sparsity=0.5, block_size=32)
    from optimum_sinkprune.methods.sparsegpt import obs_sweep

    b, mask_b, scales = obs_sweep(w, h, sparsity=0.5, block_size=32)
    assert torch.equal(a, b) and torch.equal(mask_a, mask_b) and scales is None


# ---- config and quantizer -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [2, 3, 16, True, "4"])
def test_bits_outside_4_and_8(bits):
    with pytest.raises(ValueError, match=r"bits=.*use one of \(4, 8\)"):
        QuantizationConfig(bits=bits)


def test_unknown_method_and_bad_group_size():
    with pytest.raises(ValueError, match="method='awq'.*rtn"):
        QuantizationConfig(method="awq")
    with pytest.raises(ValueError, match="group_size=0"):
        QuantizationConfig(group_size=0)


def test_group_size_must_divide_in_features_names_layer(tiny_llada):
    before = {k: v.clone() for k, v in tiny_llada.state_dict().items()}
    with pytest.raises(ValueError, match=r"group_size=40 does not divide in_features=64 of layer 'model\.transformer"):
        SinkAwareQuantizer(tiny_llada).quantize(QuantizationConfig(method="rtn", group_size=40))
    assert all(torch.equal(before[k], v) for k, v in tiny_llada.state_dict().items())


def _ids(n=4, seq=16, seed=0):
    return torch.randint(2, VOCAB - 1, (n, seq), generator=torch.Generator().manual_seed(seed))


def test_quantizing_twice_is_refused(tiny_llada):
    SinkAwareQuantizer(tiny_llada).quantize(QuantizationConfig(method="rtn", bits=8, group_size=32), progress=False)
    snapshot = {k: v.clone() for k, v in tiny_llada.state_dict().items()}
    with pytest.raises(ValueError, match="already quantized"):
        SinkAwareQuantizer(tiny_llada).quantize(QuantizationConfig(method="rtn"), progress=False)
    assert all(torch.equal(snapshot[k], v) for k, v in tiny_llada.state_dict().items())


@pytest.mark.parametrize("method", ["gptq", "sink_gptq"])
def test_quantizer_same_seed_same_result(method, tiny_configs):
    from optimum_sinkprune.models import LLaDAModelLM

    def run():
        torch.manual_seed(0)
        model = LLaDAModelLM(tiny_configs.llada()).eval()
        config = QuantizationConfig(method=method, bits=4, group_size=32, num_samples=4, seq_len=16)
        _, report = SinkAwareQuantizer(model).quantize(config, _ids(), progress=False)
        return model, report

    a, report = run()
    b, _ = run()
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    layers = quantized_layers(a)
    assert set(layers) == set(report.layers) and len(layers) == 14
    assert (report.sink is not None) == (method == "sink_gptq")
    grid = QuantGrid(4, 32)
    for layer in layers.values():
        ints = integers_and_scales(layer.weight.detach(), layer.weight_scale.float(), grid)
        torch.testing.assert_close(ints.float() * expand_scales(layer.weight_scale.float(), layer.in_features),
                                   layer.weight.detach(), rtol=0, atol=0)


def test_joint_quantizer_sparsity_exact(tiny_llada):
    pruning = SinkAwarePruningConfig(method="sparsegpt", sparsity=0.5, num_samples=4, seq_len=16)
    _, report = SinkAwareQuantizer(tiny_llada).quantize(QuantizationConfig(method="gptq", group_size=32), _ids(),
                                                        pruning=pruning, progress=False)
    assert report.joint_pruning == "sparsegpt" and report.sparsity == 0.5
    assert report.zero_fraction >= 0.5  # small kept weights may round to zero on the int4 grid
    assert tiny_llada.config.sink_pruning_config["method"] == "sparsegpt"


def test_joint_configs_must_compose(tiny_llada):
    with pytest.raises(ValueError, match="reconstructing pruning method"):
        SinkAwareQuantizer(tiny_llada).quantize(QuantizationConfig(method="gptq"), _ids(),
                                                pruning=SinkAwarePruningConfig(method="sink_wanda"))
    with pytest.raises(ValueError, match="disagree on sink weighting"):
        SinkAwareQuantizer(tiny_llada).quantize(QuantizationConfig(method="gptq"), _ids(),
                                                pruning=SinkAwarePruningConfig(method="sink_sparsegpt"))


def test_torchao_int8_config_or_install_hint():
    import importlib.util

    from optimum_sinkprune.quantization import torchao_int8_config

    if importlib.util.find_spec("torchao") is None:
        with pytest.raises(ImportError, match="pip install torchao"):
            torchao_int8_config()
    else:
        from transformers import TorchAoConfig

        assert isinstance(torchao_int8_config(), TorchAoConfig)
