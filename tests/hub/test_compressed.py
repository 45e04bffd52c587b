# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Compressed sparse checkpoints: the compressed-tensors layout, save -> reload round trips with identical logits
(with the plugin, and in plain transformers with the shipped modeling code), smaller files, dense on request, errors."""

import builtins
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModel, AutoModelForCausalLM

import optimum_sinkprune  # noqa: F401
from optimum_sinkprune.hub import save_pruned_model
from optimum_sinkprune.hub.compressed import plan_sparse_storage, resolve_save_format
from optimum_sinkprune.hub.save import checkpoint_weight_bytes
from optimum_sinkprune.models.modeling_sparse_storage import (
    FORMAT_PARAMS,
    bitmask_compress,
    decompress_weight,
    is_two_four,
    pack_bitmask,
    two_four_compress,
    unpack_bitmask,
)

from .conftest import PRUNING_CONFIG, tiny_llada

# transformers builds its compressed-tensors quantizer for these checkpoints, which needs the package
needs_compressed_tensors = pytest.mark.skipif(
    importlib.util.find_spec("compressed_tensors") is None,
    reason="compressed-tensors is not installed (pip install 'optimum-sinkprune[compressed]')",
)
IDS = torch.tensor([[5, 17, 127, 127, 42, 9, 127, 3]])


def two_four_llada(seed: int = 0):
    """A tiny random LLaDA whose block linears are 2:4 sparse (the two largest of every four input columns kept)."""
    model = tiny_llada(seed=seed, sparsity=0.0)
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and ".blocks." in name:
                groups = module.weight.view(module.weight.shape[0], -1, 4)
                keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(2, groups.abs().topk(2, dim=2).indices, 1)
                groups[~keep] = 0.0
    return model


def logits(model, ids=IDS):
    with torch.no_grad():
        return model(ids).logits


def stored_names(folder) -> set[str]:
    names = set()
    for file in Path(folder).glob("*.safetensors"):
        with safe_open(file, "pt") as f:
            names.update(f.keys())
    return names


# ---- the layout ------------------------------------------------------------------------------------------------


def test_bitmask_packs_least_significant_bit_first_and_round_trips():
    mask = torch.zeros(2, 11, dtype=torch.bool)
    mask[0, 0] = mask[0, 9] = mask[1, 7] = True
    packed = pack_bitmask(mask)
    assert packed.dtype == torch.uint8 and packed.shape == (2, 2)
    assert packed.tolist() == [[1, 2], [128, 0]]
    assert torch.equal(unpack_bitmask(packed, (2, 11)), mask)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_bitmask_weight_round_trip(dtype):
    torch.manual_seed(0)
    w = torch.randn(7, 13).to(dtype)
    w[torch.rand(7, 13) < 0.6] = 0
    w[3] = 0  # an empty row
    stored = bitmask_compress(w)
    assert set(stored) == set(FORMAT_PARAMS["sparse-bitmask"])
    assert stored["compressed"].dtype == dtype and stored["compressed"].numel() == int((w != 0).sum())
    assert stored["row_offsets"].tolist() == (torch.cumsum((w != 0).sum(1), 0) - (w != 0).sum(1)).tolist()
    assert torch.equal(decompress_weight("sparse-bitmask", stored), w)


def test_two_four_round_trip_and_refuses_other_patterns():
    w = two_four_llada().model.transformer.blocks[0].q_proj.weight.detach()
    w[0, :4] = torch.tensor([0.0, 0.0, 0.0, 1.5])  # a group with a single survivor still fits the layout
    assert is_two_four(w)
    stored = two_four_compress(w)
    assert stored["compressed"].shape == (w.shape[0], w.shape[1] // 2)
    assert stored["shape"].tolist() == [[w.shape[0]], [w.shape[1]]]
    assert torch.equal(decompress_weight("sparse-24-bitmask", stored), w)
    w[0, :4] = 1.0
    with pytest.raises(ValueError, match="not 2:4"):
        two_four_compress(w)


def test_plan_picks_the_format_from_the_weights():
    unstructured, two_four = plan_sparse_storage(tiny_llada()), plan_sparse_storage(two_four_llada())
    assert unstructured.format == "sparse-bitmask" and unstructured.structure == "unstructured"
    assert two_four.format == "sparse-24-bitmask" and two_four.structure == "2:4"
    assert len(unstructured.targets) == 14 and all(".blocks." in t for t in unstructured.targets)
    assert unstructured.sparsity == pytest.approx(0.5, abs=0.01)
    assert plan_sparse_storage(tiny_llada(sparsity=0.0)) is None


# ---- save -> reload --------------------------------------------------------------------------------------------


@needs_compressed_tensors
@pytest.mark.parametrize("build,layout", [(tiny_llada, "sparse-bitmask"), (two_four_llada, "sparse-24-bitmask")])
def test_compressed_save_reloads_identical_logits(tmp_path, build, layout):
    model = build().to(torch.bfloat16)
    out = save_pruned_model(model, tmp_path / "c", pruning_config=PRUNING_CONFIG)  # compressed by default
    config = json.loads((Path(out) / "config.json").read_text())
    qconfig = config["quantization_config"]
    assert qconfig["quant_method"] == "compressed-tensors"
    assert qconfig["sparsity_config"]["format"] == layout
    targets = qconfig["sparsity_config"]["targets"]
    names = stored_names(out)
    # only the pruned linears are stored sparse; embeddings, norms and the LM head stay dense
    assert all(f"{t}.compressed" in names and f"{t}.weight" not in names for t in targets)
    assert "model.transformer.wte.weight" in names and "model.transformer.ln_f.weight" in names
    for loader in (AutoModel, AutoModelForCausalLM):
        reloaded = loader.from_pretrained(out).eval()
        assert reloaded.dtype == torch.bfloat16
        assert torch.equal(logits(reloaded), logits(model))
        for name, tensor in model.state_dict().items():
            assert torch.equal(reloaded.state_dict()[name], tensor), name
    assert "compressed-tensors" in (Path(out) / "README.md").read_text()


@needs_compressed_tensors
def test_compressed_is_smaller_and_dense_stays_available(tmp_path):
    model = tiny_llada().to(torch.bfloat16)
    compressed = save_pruned_model(model, tmp_path / "c", pruning_config=PRUNING_CONFIG)
    dense = save_pruned_model(model, tmp_path / "d", pruning_config=PRUNING_CONFIG, save_format="dense")
    assert checkpoint_weight_bytes(compressed) < checkpoint_weight_bytes(dense)
    dense_config = json.loads((Path(dense) / "config.json").read_text())
    assert "quantization_config" not in dense_config
    assert not any(n.endswith(".compressed") for n in stored_names(dense))
    assert torch.equal(logits(AutoModel.from_pretrained(dense)), logits(model))
    # a model loaded from a compressed checkpoint saves dense again without a stale sparsity config
    again = save_pruned_model(AutoModel.from_pretrained(compressed), tmp_path / "d2", pruning_config=PRUNING_CONFIG,
                              save_format="dense")
    assert "quantization_config" not in json.loads((Path(again) / "config.json").read_text())
    assert torch.equal(logits(AutoModel.from_pretrained(again)), logits(model))


@needs_compressed_tensors
def test_sharded_compressed_checkpoint_reloads(tmp_path):
    model = tiny_llada()
    out = save_pruned_model(model, tmp_path / "c", pruning_config=PRUNING_CONFIG, max_shard_size="40KB")
    assert len(list(Path(out).glob("*.safetensors"))) > 1
    assert torch.equal(logits(AutoModel.from_pretrained(out)), logits(model))


@pytest.mark.slow
@needs_compressed_tensors
def test_plain_transformers_loads_the_compressed_checkpoint(tmp_path):
    """In a fresh interpreter where optimum_sinkprune cannot be imported, the modeling code saved next to the weights
    (trust_remote_code, enabled here by the test as a user would) decompresses the sparse weights."""
    model = tiny_llada()
    out = save_pruned_model(model, tmp_path / "c", pruning_config=PRUNING_CONFIG)
    assert (Path(out) / "modeling_sparse_storage.py").is_file()
    torch.save(IDS, tmp_path / "ids.pt")
    script = f"""
import sys
sys.modules["optimum_sinkprune"] = None  # the plugin is not installed
import torch
from transformers import AutoModel
model = AutoModel.from_pretrained({out!r}, trust_remote_code=True).eval()
assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
with torch.no_grad():
    torch.save(model(torch.load({str(tmp_path / "ids.pt")!r})).logits, {str(tmp_path / "logits.pt")!r})
"""
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"),
           "HF_HOME": str(tmp_path / "hf_home")}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert torch.equal(torch.load(tmp_path / "logits.pt"), logits(model))


# ---- errors ----------------------------------------------------------------------------------------------------


def test_compressed_format_for_a_dense_model_is_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match="save_format='compressed' needs a model with sparsity"):
        save_pruned_model(tiny_llada(sparsity=0.0), tmp_path / "c", pruning_config=PRUNING_CONFIG,
                          save_format="compressed")
    assert list(tmp_path.iterdir()) == []
    # the default falls back to dense for a model without sparsity
    out = save_pruned_model(tiny_llada(sparsity=0.0), tmp_path / "d", pruning_config=PRUNING_CONFIG)
    assert "quantization_config" not in json.loads((Path(out) / "config.json").read_text())


def test_unknown_save_format_names_the_choices(tmp_path):
    with pytest.raises(ValueError, match=r"save_format='zip'.*\['compressed', 'dense', 'quantized'\]"):
        save_pruned_model(tiny_llada(), tmp_path / "c", pruning_config=PRUNING_CONFIG, save_format="zip")
    assert list(tmp_path.iterdir()) == []


def test_classes_that_cannot_load_it_back_are_saved_dense():
    from transformers import LlamaConfig, LlamaForCausalLM

    llama = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, vocab_size=64))
    with torch.no_grad():
        for module in llama.model.layers.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight[:, ::2] = 0
    assert resolve_save_format(llama, None) == ("dense", None)
    with pytest.raises(ValueError, match="not available for LlamaForCausalLM"):
        resolve_save_format(llama, "compressed")


def test_loading_without_compressed_tensors_names_the_package(tmp_path, monkeypatch):
    out = save_pruned_model(tiny_llada(), tmp_path / "c", pruning_config=PRUNING_CONFIG)
    import transformers.quantizers.auto as quantizers_auto
    import transformers.utils.quantization_config as quantization_config

    real_import = builtins.__import__

    def no_compressed_tensors(name, *args, **kwargs):
        if name == "compressed_tensors" or name.startswith("compressed_tensors."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    # as if the package were not installed: transformers' availability check and any import of it fail
    monkeypatch.setattr(builtins, "__import__", no_compressed_tensors)
    monkeypatch.setattr(quantization_config, "is_compressed_tensors_available", lambda *a, **k: False)
    if hasattr(quantizers_auto, "is_compressed_tensors_available"):
        monkeypatch.setattr(quantizers_auto, "is_compressed_tensors_available", lambda *a, **k: False)
    with pytest.raises(ImportError, match=r"pip install compressed-tensors"):
        AutoModel.from_pretrained(out)
