# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Quantized DiffusionGemma checkpoints: the packed expert tensors (`experts.gate_up_proj` / `down_proj`, quantized
expert slice by expert slice) and the weights the encoder and decoder stacks share are stored as integers and
scales in the `sinkprune-pack-quantized` layout, the file is smaller than the dense one, and `load_model` restores
the exact quantized weights (identical denoiser logits) with their scales."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

import diffusion_gemma_fixtures as fx
from optimum_sinkprune import QuantizationConfig, SinkAwarePruner, SinkAwarePruningConfig, SinkAwareQuantizer
from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.hub import save_pruned_model
from optimum_sinkprune.hub.compressed import (
    SINK_PACK_QUANTIZED,
    STORAGE_KEY,
    pack_parameter,
    plan_quantized_storage,
    unpack_parameter,
)
from optimum_sinkprune.hub.load import load_model
from optimum_sinkprune.hub.save import checkpoint_weight_bytes
from optimum_sinkprune.quantized import is_quantized, quantized_packed_tensors

pytest.importorskip("compressed_tensors")


def _logits(model):
    ctx, canvas = fx.text_ids(2, 10, seed=7), fx.text_ids(2, fx.DG_CANVAS, seed=8)
    with torch.no_grad():
        return get_adapter(model).denoiser_logits(model, ctx, canvas)


def _params(model):
    return dict(model.named_parameters(remove_duplicate=False))


def _weight_keys(folder):
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        return set(f.keys())


@pytest.fixture
def dense_dir(tmp_path):
    """The tiny DiffusionGemma saved dense (what the quantized checkpoints are compared with)."""
    return save_pruned_model(fx.tiny_diffusion_gemma(), tmp_path / "dense", pruning_config={"method": "dense"})


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("bits", "group_size"), [(4, 8), (8, None)])
def test_quantized_experts_are_stored_as_integers_and_reload_with_identical_logits(dense_dir, tmp_path, dtype, bits,
                                                                                   group_size):
    model = load_model(dense_dir, dtype=dtype)
    quantizer = SinkAwareQuantizer(model)
    _, report = quantizer.quantize(QuantizationConfig(method="rtn", bits=bits, group_size=group_size),
                                   progress=False)
    assert sum(".experts." in name for name in report.layers) == 16  # 2 layers x 4 experts x (gate_up, down)
    packed = quantized_packed_tensors(model)
    assert len(packed) == 4 and all(not torch.isnan(s.float()).any() for _, _, s in packed.values())
    plan = plan_quantized_storage(model)
    assert plan.format == SINK_PACK_QUANTIZED and plan.layers == 29
    out = tmp_path / "q"
    quantizer.save_pretrained(out)

    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config  # transformers would misread the layout: ours names it
    storage = config[STORAGE_KEY]
    assert storage["format"] == SINK_PACK_QUANTIZED and storage["bits"] == bits
    keys = _weight_keys(out)
    for layer in (0, 1):
        for attr in ("gate_up_proj", "down_proj"):
            stem = f"model.decoder.layers.{layer}.experts.{attr}"
            assert {f"{stem}_packed", f"{stem}_scale", f"{stem}_shape"} <= keys and stem not in keys
            assert not any(k.startswith(f"model.encoder.language_model.layers.{layer}.experts.") for k in keys)
    text = [k for k in keys if k.startswith(("model.decoder.layers.", "model.encoder.language_model.layers."))]
    assert not any(k.endswith((".gate_proj.weight", ".q_proj.weight", ".down_proj.weight")) for k in text), text
    card = (out / "README.md").read_text()
    assert "sinkprune-pack-quantized" in card and "load_model" in card and "loads it natively" not in card
    ratio = checkpoint_weight_bytes(out) / checkpoint_weight_bytes(dense_dir)
    assert ratio < (0.75 if bits == 4 else 0.85) if dtype == torch.float32 else ratio < 0.9

    reloaded = load_model(out)
    assert next(reloaded.parameters()).dtype == dtype
    before, after = _params(model), _params(reloaded)
    assert set(before) == set(after) and all(torch.equal(before[n], after[n]) for n in before)
    assert torch.equal(_logits(reloaded), _logits(model))
    # the scales come back: the reloaded model is quantized, saves quantized again, and is not quantized twice
    assert is_quantized(reloaded)
    with pytest.raises(ValueError, match="already quantized"):
        SinkAwareQuantizer(reloaded).quantize(QuantizationConfig(method="rtn", bits=4, group_size=8),
                                              progress=False)
    again = save_pruned_model(reloaded, tmp_path / "again", pruning_config={"method": "rtn-again"})
    assert checkpoint_weight_bytes(again) == checkpoint_weight_bytes(out)
    assert torch.equal(_logits(load_model(again)), _logits(model))


def test_pack_and_unpack_a_packed_3d_parameter_round_trip():
    from optimum_sinkprune.methods.rtn import QuantGrid, rtn_quantize

    gen = torch.Generator().manual_seed(0)
    packed = torch.randn(3, 6, 16, generator=gen)
    grid = QuantGrid(4, 8, torch.bfloat16)
    slices = [rtn_quantize(packed[e], grid) for e in range(3)]
    weight = torch.stack([w for w, _ in slices]).to(torch.bfloat16)
    scales = torch.stack([s for _, s in slices]).to(torch.bfloat16)
    tensors = pack_parameter(weight, scales, 4, 8)
    assert tensors["_packed"].dtype == torch.int32 and tuple(tensors["_packed"].shape) == (3, 6, 2)
    assert tensors["_shape"].tolist() == [3, 6, 16]
    assert torch.equal(unpack_parameter(tensors["_packed"], tensors["_scale"], tensors["_shape"], 4), weight)


def test_pruned_then_quantized_experts_keep_their_zeros_after_reload(dense_dir, tmp_path):
    model = load_model(dense_dir)
    SinkAwarePruner(model).prune(SinkAwarePruningConfig(method="magnitude", sparsity=0.5), progress=False)
    zeros = {n: p == 0 for n, p in _params(model).items() if ".experts." in n}
    quantizer = SinkAwareQuantizer(model)
    quantizer.quantize(QuantizationConfig(method="rtn", bits=4, group_size=8), progress=False)
    out = quantizer.save_pretrained(tmp_path / "pq")
    reloaded = load_model(out)
    after = _params(reloaded)
    assert all(bool((after[n][mask] == 0).all()) for n, mask in zeros.items())
    assert torch.equal(_logits(reloaded), _logits(model))


def test_experts_quantized_in_part_are_stored_dense_and_still_reload_exactly(dense_dir, tmp_path):
    model = load_model(dense_dir)
    quantizer = SinkAwareQuantizer(model)
    quantizer.quantize(QuantizationConfig(method="rtn", bits=4, group_size=8, targets=["q", "*.experts.0.*"]),
                       progress=False)
    plan = plan_quantized_storage(model)
    assert plan.format == SINK_PACK_QUANTIZED and plan.packed_targets == ()  # q_proj is shared by the two stacks
    out = quantizer.save_pretrained(tmp_path / "part")
    keys = _weight_keys(tmp_path / "part")
    assert "model.decoder.layers.0.experts.gate_up_proj" in keys  # dense: only expert 0 of 4 is on the grid
    assert "model.decoder.layers.0.self_attn.q_proj.weight_packed" in keys
    assert torch.equal(_logits(load_model(out)), _logits(model))


@pytest.mark.slow
def test_sink_gptq_on_the_experts_saves_and_reloads_exactly(dense_dir, tmp_path):
    model = load_model(dense_dir)
    quantizer = SinkAwareQuantizer(model)
    _, report = quantizer.quantize(
        QuantizationConfig(method="sink_gptq", bits=4, group_size=8, num_samples=4, seq_len=24),
        fx.text_ids(4, 24), progress=False)
    assert sum(".experts." in name for name in report.layers) == 16
    out = quantizer.save_pretrained(tmp_path / "gptq")
    assert json.loads((tmp_path / "gptq" / "config.json").read_text())[STORAGE_KEY]["format"] == SINK_PACK_QUANTIZED
    assert torch.equal(_logits(load_model(out)), _logits(model))


def test_a_malformed_storage_entry_or_missing_tensors_are_named(dense_dir, tmp_path):
    model = load_model(dense_dir)
    quantizer = SinkAwareQuantizer(model)
    quantizer.quantize(QuantizationConfig(method="rtn", bits=8, group_size=None), progress=False)
    out = tmp_path / "q"
    quantizer.save_pretrained(out)
    config_path = out / "config.json"
    config = json.loads(config_path.read_text())
    config[STORAGE_KEY]["format"] = "zip-quantized"
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="format='zip-quantized' is not a known storage"):
        load_model(out)
    config[STORAGE_KEY]["format"] = SINK_PACK_QUANTIZED
    config[STORAGE_KEY]["tensors"].append("model.decoder.layers.0.experts.no_such_proj")
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="no_such_proj.*lacks"):
        load_model(out)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_pruned_diffusion_gemma_is_dense_by_default_and_compressed_on_request(dense_dir, tmp_path, dtype):
    from optimum_sinkprune.hub.compressed import SINK_SPARSE_BITMASK, resolve_save_format

    model = load_model(dense_dir, dtype=dtype)
    SinkAwarePruner(model).prune(SinkAwarePruningConfig(method="magnitude", sparsity=0.5), progress=False)
    assert resolve_save_format(model, None) == ("dense", None)  # plain from_pretrained loads the default
    fmt, plan = resolve_save_format(model, "compressed")
    assert fmt == "compressed" and plan.format == SINK_SPARSE_BITMASK
    assert sum(".experts." in name for name in plan.targets) == 4  # the packed tensors, each stored once
    out = save_pruned_model(model, tmp_path / "c", pruning_config={"method": "magnitude"}, save_format="compressed")
    config = json.loads((tmp_path / "c" / "config.json").read_text())
    assert config[STORAGE_KEY]["format"] == SINK_SPARSE_BITMASK and "quantization_config" not in config
    keys = _weight_keys(tmp_path / "c")
    assert "model.decoder.layers.0.experts.gate_up_proj_bitmask" in keys
    assert "model.decoder.layers.0.experts.gate_up_proj" not in keys
    assert "sinkprune-sparse-bitmask" in (tmp_path / "c" / "README.md").read_text()
    dense = save_pruned_model(model, tmp_path / "d", pruning_config={"method": "magnitude"})
    assert checkpoint_weight_bytes(out) < checkpoint_weight_bytes(dense)
    reloaded = load_model(out)
    before, after = _params(model), _params(reloaded)
    assert all(torch.equal(before[n], after[n]) for n in before)
    assert torch.equal(_logits(reloaded), _logits(model))
    assert not hasattr(reloaded.config, STORAGE_KEY)
    # saved dense again, the reloaded model is a plain checkpoint
    again = save_pruned_model(reloaded, tmp_path / "e", pruning_config={"method": "magnitude"})
    assert STORAGE_KEY not in json.loads((tmp_path / "e" / "config.json").read_text())
    assert torch.equal(_logits(load_model(again)), _logits(model))


def test_a_model_reloaded_from_the_quantized_layout_saves_dense_as_a_plain_checkpoint(dense_dir, tmp_path):
    model = load_model(dense_dir)
    quantizer = SinkAwareQuantizer(model)
    quantizer.quantize(QuantizationConfig(method="rtn", bits=4, group_size=8), progress=False)
    reloaded = load_model(quantizer.save_pretrained(tmp_path / "q"))
    out = save_pruned_model(reloaded, tmp_path / "d", pruning_config={"method": "rtn"}, save_format="dense")
    assert STORAGE_KEY not in json.loads((tmp_path / "d" / "config.json").read_text())
    assert torch.equal(_logits(load_model(out)), _logits(model))
