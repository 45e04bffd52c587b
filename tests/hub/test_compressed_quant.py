# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Quantized checkpoints in compressed-tensors' `pack-quantized` layout: transformers loads them natively (a fresh
interpreter without optimum_sinkprune) with the logits of the in-memory fake-quantized model.

Tolerance: the saved integers times the saved scales (both in the model dtype) reproduce the in-memory weights bit
for bit (tests/methods/test_quantization.py checks this on the grid), so the loaded model runs the same weights
through the same modules; float32 logits are compared with `torch.equal`, bf16 ones to within one bf16 step of the
logit scale in case a kernel orders a reduction differently.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from optimum_sinkprune.configuration import SinkAwarePruningConfig
from optimum_sinkprune.hub import save_pruned_model
from optimum_sinkprune.hub.compressed import PACK_QUANTIZED, resolve_save_format
from optimum_sinkprune.quantization import QuantizationConfig, SinkAwareQuantizer

from .conftest import PRUNING_CONFIG, tiny_llada

pytestmark = pytest.mark.slow  # subprocess loads and whole-checkpoint saves

IDS = torch.randint(2, 126, (2, 16), generator=torch.Generator().manual_seed(0))


def _llama(dtype=torch.float32):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(2)
    config = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, pad_token_id=0,
                         bos_token_id=1, eos_token_id=1)
    return LlamaForCausalLM(config).eval().to(dtype)


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).logits


def _load_in_plain_transformers(tmp_path: Path, folders: dict[str, tuple[str, bool]]) -> dict[str, dict]:
    """Load each saved folder in one fresh interpreter where optimum_sinkprune cannot be imported; return per name
    the logits on IDS, the zero count of the quantized linears' dequantized weights and the model's class module."""
    torch.save(IDS, tmp_path / "ids.pt")
    script = f"""
import sys
sys.modules["optimum_sinkprune"] = None  # the plugin is not installed
import json, torch
from transformers import AutoModelForCausalLM
folders = json.loads({json.dumps(json.dumps(folders))})
ids = torch.load({str(tmp_path / "ids.pt")!r})
out = {{}}
for name, (path, remote) in folders.items():
    kwargs = {{"trust_remote_code": True}} if remote else {{}}
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs).eval()
    targets = set(json.load(open(path + "/config.json"))["quantization_config"]["config_groups"]["group_0"]["targets"])
    with torch.no_grad():  # the packed weights are decompressed on the first forward
        logits = model(ids).logits
    zeros = sum(int((m.weight == 0).sum()) for n, m in model.named_modules() if n in targets)
    out[name] = {{"logits": logits, "zeros": zeros, "module": type(model).__module__}}
torch.save(out, {str(tmp_path / "out.pt")!r})
"""
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"),
           "HF_HOME": str(tmp_path / "hf_home"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600,
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(tmp_path / "out.pt")


def _weight_bytes(folder: str) -> int:
    return sum(p.stat().st_size for p in Path(folder).glob("*.safetensors"))


def _zeros(model, names) -> int:
    modules = dict(model.named_modules())
    return sum(int((modules[n].weight == 0).sum()) for n in names)


def test_quantized_checkpoints_load_natively(tmp_path):
    """LLaDA (our class, saved with its modeling code: trust_remote_code) and a native Llama (no remote code), int4
    and int8, GPTQ / RTN, float32 and bf16, a joint sparse + quantized model: all load in plain transformers."""
    ids = torch.randint(2, 126, (4, 16), generator=torch.Generator().manual_seed(1))  # calibration
    cases = {}
    expected = {}
    # LLaDA int4 GPTQ, float32
    llada = tiny_llada(sparsity=0.0)
    quantizer = SinkAwareQuantizer(llada)
    quantizer.quantize(QuantizationConfig(method="gptq", bits=4, group_size=32, num_samples=4, seq_len=16), ids,
                       progress=False)
    cases["llada_gptq4"] = (quantizer.save_pretrained(tmp_path / "llada_gptq4"), True)
    expected["llada_gptq4"] = (_logits(llada), 0)
    # LLaDA joint sparsegpt 2:4 + int8: the zeros are kept as integer zeros
    llada = tiny_llada(seed=1, sparsity=0.0)
    quantizer = SinkAwareQuantizer(llada)
    _, report = quantizer.quantize(
        QuantizationConfig(method="gptq", bits=8, group_size=None), ids, progress=False,
        pruning=SinkAwarePruningConfig(method="sparsegpt", sparsity=0.5, pattern="2:4", num_samples=4, seq_len=16))
    cases["llada_joint8"] = (quantizer.save_pretrained(tmp_path / "llada_joint8"), True)
    expected["llada_joint8"] = (_logits(llada), _zeros(llada, report.layers))
    assert expected["llada_joint8"][1] >= sum(llada.get_submodule(n).weight.numel() for n in report.layers) // 2
    # native Llama, RTN int8 float32 and int4 bf16
    for name, bits, dtype in (("llama_rtn8", 8, torch.float32), ("llama_rtn4_bf16", 4, torch.bfloat16)):
        llama = _llama(dtype)
        quantizer = SinkAwareQuantizer(llama)
        quantizer.quantize(QuantizationConfig(method="rtn", bits=bits, group_size=16), progress=False)
        cases[name] = (quantizer.save_pretrained(tmp_path / name), False)
        expected[name] = (_logits(llama), 0)

    for name, (folder, _) in cases.items():
        qconfig = json.loads((Path(folder) / "config.json").read_text())["quantization_config"]
        assert qconfig["format"] == PACK_QUANTIZED and qconfig["quant_method"] == "compressed-tensors"
    loaded = _load_in_plain_transformers(tmp_path, cases)
    for name, (logits, zeros) in expected.items():
        got = loaded[name]
        if name.endswith("bf16"):
            step = float(logits.abs().max()) * 2**-7
            torch.testing.assert_close(got["logits"].float(), logits.float(), rtol=0, atol=step)
        else:
            assert torch.equal(got["logits"], logits), name
        assert got["zeros"] >= zeros
    assert loaded["llada_gptq4"]["module"].startswith("transformers_modules")
    assert loaded["llama_rtn8"]["module"].startswith("transformers.models.llama")


def test_int4_checkpoint_is_smaller(tmp_path):
    dense = save_pruned_model(tiny_llada(sparsity=0.0), tmp_path / "dense", pruning_config=PRUNING_CONFIG)
    model = tiny_llada(sparsity=0.0)
    quantizer = SinkAwareQuantizer(model)
    quantizer.quantize(QuantizationConfig(method="rtn", bits=4, group_size=32), progress=False)
    packed = quantizer.save_pretrained(tmp_path / "q")
    # the embeddings and head stay float32; the block linears shrink ~7x (4 bits + one fp32 scale per 32 weights)
    block = sum(m.weight.numel() for m in model.modules() if hasattr(m, "weight_scale"))
    saved = _weight_bytes(dense) - _weight_bytes(packed)
    assert saved >= block * 4 * (1 - (0.5 + 4 / 32) / 4) * 0.95


def test_quantized_format_errors_before_writing(tmp_path):
    with pytest.raises(ValueError, match="save_format='quantized' needs a quantized model"):
        save_pruned_model(tiny_llada(), tmp_path / "a", pruning_config=PRUNING_CONFIG, save_format="quantized")
    model = tiny_llada()
    SinkAwareQuantizer(model).quantize(QuantizationConfig(method="rtn", bits=8, group_size=32), progress=False)
    with pytest.raises(ValueError, match="save_format='compressed' stores sparsity only"):
        save_pruned_model(model, tmp_path / "b", pruning_config=PRUNING_CONFIG, save_format="compressed")
    assert list(tmp_path.iterdir()) == []
    assert resolve_save_format(model, None)[0] == "quantized"
    assert resolve_save_format(model, "dense") == ("dense", None)


def test_quantized_save_without_compressed_tensors_names_the_package(tmp_path, monkeypatch):
    model = tiny_llada(sparsity=0.0)
    quantizer = SinkAwareQuantizer(model)
    quantizer.quantize(QuantizationConfig(method="rtn", bits=4, group_size=32), progress=False)
    monkeypatch.setitem(sys.modules, "compressed_tensors.quantization", None)
    with pytest.raises(ImportError, match="pip install compressed-tensors"):
        quantizer.save_pretrained(tmp_path / "q")
    assert list(tmp_path.iterdir()) == []
