# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Auto classes dispatch to our implementations after `import optimum_sinkprune`, and the plugin never turns
`trust_remote_code` on, even for configs whose `auto_map` points to remote modules."""

from __future__ import annotations

import json

import pytest
import transformers
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM

from optimum_sinkprune.models import (
    DreamConfig,
    DreamModel,
    LLaDAConfig,
    LLaDAModelLM,
    MMaDAConfig,
    MMaDAModelLM,
    register_auto_classes,
)

FAMILIES = [
    ("llada", LLaDAConfig, LLaDAModelLM),
    ("mmada", MMaDAConfig, MMaDAModelLM),
    ("Dream", DreamConfig, DreamModel),
]
TINY = {
    "llada": dict(d_model=32, n_heads=2, n_layers=1, mlp_hidden_size=48, vocab_size=64, embedding_size=64,
                  max_sequence_length=32, mask_token_id=63),
    "mmada": dict(d_model=32, n_heads=2, n_layers=1, mlp_hidden_size=48, vocab_size=64, embedding_size=64,
                  max_sequence_length=32, mask_token_id=63, llm_vocab_size=48, codebook_size=16, new_vocab_size=64),
    "Dream": dict(hidden_size=32, num_attention_heads=2, num_key_value_heads=1, num_hidden_layers=1,
                  intermediate_size=48, vocab_size=64, max_position_embeddings=32, mask_token_id=63, pad_token_id=0,
                  bos_token_id=1, eos_token_id=1),
}
REMOTE_AUTO_MAP = {
    "llada": {"AutoConfig": "configuration_llada.LLaDAConfig", "AutoModel": "modeling_llada.LLaDAModelLM",
              "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM"},
    "mmada": {"AutoConfig": "configuration_mmada.MMadaConfig", "AutoModel": "modeling_mmada.MMadaModelLM",
              "AutoModelForCausalLM": "modeling_mmada.MMadaModelLM"},
    "Dream": {"AutoConfig": "configuration_dream.DreamConfig", "AutoModel": "modeling_dream.DreamModel"},
}


@pytest.mark.parametrize("model_type,config_cls,model_cls", FAMILIES)
def test_auto_classes_dispatch(model_type, config_cls, model_cls):
    config = AutoConfig.for_model(model_type, **TINY[model_type])
    assert type(config) is config_cls
    for auto in (AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM):
        assert type(auto.from_config(config)) is model_cls


def test_registration_is_idempotent():
    register_auto_classes()
    register_auto_classes()
    assert type(AutoConfig.for_model("llada", **TINY["llada"])) is LLaDAConfig


@pytest.fixture
def no_remote_code(monkeypatch):
    """Make every path to remote code fail loudly, and record every trust_remote_code decision transformers makes."""
    decisions = []

    def forbidden(*args, **kwargs):
        raise AssertionError(f"remote code was requested: {args} {kwargs}")

    real_resolve = transformers.dynamic_module_utils.resolve_trust_remote_code

    def spy_resolve(trust_remote_code, *args, **kwargs):
        decisions.append(trust_remote_code)
        return real_resolve(trust_remote_code, *args, **kwargs)

    for module in (transformers.dynamic_module_utils, transformers.models.auto.auto_factory,
                   transformers.models.auto.configuration_auto):
        monkeypatch.setattr(module, "get_class_from_dynamic_module", forbidden)
        monkeypatch.setattr(module, "resolve_trust_remote_code", spy_resolve)
    return decisions


@pytest.mark.parametrize("model_type,config_cls,model_cls", FAMILIES)
def test_trust_remote_code_is_never_switched_on(no_remote_code, tmp_path, model_type, config_cls, model_cls):
    # a Hub-style checkpoint: auto_map names remote modules that do not exist in the folder
    model = model_cls(config_cls(**TINY[model_type]))
    model.save_pretrained(tmp_path)
    for name in tmp_path.glob("*.py"):
        name.unlink()
    config = json.loads((tmp_path / "config.json").read_text())
    config["auto_map"] = REMOTE_AUTO_MAP[model_type]
    (tmp_path / "config.json").write_text(json.dumps(config))

    assert type(AutoConfig.from_pretrained(tmp_path)) is config_cls
    assert type(AutoModel.from_pretrained(tmp_path)) is model_cls
    assert type(AutoModelForCausalLM.from_pretrained(tmp_path)) is model_cls
    assert no_remote_code, "transformers did not consult trust_remote_code: the spy is not wired"
    assert all(decision is not True for decision in no_remote_code)



@pytest.mark.parametrize("model_type,config_cls,model_cls", FAMILIES)
def test_user_trust_remote_code_still_loads_our_classes(monkeypatch, tmp_path, model_type, config_cls, model_cls):
    """transformers 5.x prefers explicitly registered classes over an auto_map even when the user opts in."""

    def forbidden(*args, **kwargs):
        raise AssertionError(f"remote code was requested: {args} {kwargs}")

    for module in (transformers.dynamic_module_utils, transformers.models.auto.auto_factory,
                   transformers.models.auto.configuration_auto):
        monkeypatch.setattr(module, "get_class_from_dynamic_module", forbidden)
    model_cls(config_cls(**TINY[model_type])).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["auto_map"] = REMOTE_AUTO_MAP[model_type]
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert type(AutoModel.from_pretrained(tmp_path, trust_remote_code=True)) is model_cls


def test_saved_checkpoints_are_self_contained(tmp_path):
    """A saved checkpoint carries its modeling code: plain transformers (optimum_sinkprune never imported) loads it
    when the *user* passes trust_remote_code=True, and computes the same logits."""
    import os
    import subprocess
    import sys

    import torch

    folders = {}
    ids = torch.arange(2, 12)[None]
    for model_type, config_cls, model_cls in FAMILIES:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = model_cls(config_cls(**TINY[model_type])).eval()
        folder = tmp_path / model_type
        model.save_pretrained(folder)
        with torch.no_grad():
            torch.save(model(input_ids=ids).logits, folder / "expected_logits.pt")
        folders[model_type] = str(folder)
    script = (
        "import sys, torch\n"
        "from transformers import AutoModel\n"
        "for folder in sys.argv[1:]:\n"
        "    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()\n"
        "    assert type(model).__module__.startswith('transformers_modules'), type(model).__module__\n"
        "    with torch.no_grad():\n"
        "        got = model(input_ids=torch.arange(2, 12)[None]).logits\n"
        "    torch.testing.assert_close(got, torch.load(folder + '/expected_logits.pt'), atol=1e-6, rtol=1e-5)\n"
        "    assert 'optimum_sinkprune' not in sys.modules\n"
        "print('ok', len(sys.argv) - 1)\n"
    )
    env = dict(os.environ, HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", script, *folders.values()], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok 3"
