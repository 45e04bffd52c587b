# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Fixtures: a loopback Hub (`fake_hub`) that the real huggingface_hub client and transformers talk to, tiny random
LLaDA models and saved pruned checkpoints."""

from __future__ import annotations

import os

import pytest
import torch

from optimum_sinkprune import LLaDAConfig, LLaDAModelLM

from .fake_hub import FakeHub

WRITE_TOKEN = "hf_LoopbackWriteToken0123456789abcdef"  # alice
OTHER_TOKEN = "hf_LoopbackOtherToken0123456789abcdef"  # bob: valid, but may not write to alice's namespace
WRONG_TOKEN = "hf_LoopbackWrongToken0123456789abcdef"  # unknown to the server

PRUNING_CONFIG = {
    "method": "sink_wanda",
    "sparsity": 0.5,
    "pattern": "unstructured",
    "num_samples": 4,
    "seq_len": 32,
    "seed": 0,
    "diffusion_steps": 50,
    "sample_interval": 5,
    "noise_eps": 1e-3,
    "sink_std": 2.0,
    "sink_alpha": 5.0,
}


def tiny_llada(seed: int = 0, sparsity: float = 0.5) -> LLaDAModelLM:
    """A tiny random LLaDA with half of every block linear zeroed (stands in for a pruned model)."""
    torch.manual_seed(seed)
    config = LLaDAConfig(d_model=64, n_heads=4, n_layers=2, mlp_hidden_size=96, vocab_size=128, embedding_size=128,
                         mask_token_id=127, eos_token_id=1, pad_token_id=0, max_sequence_length=256)
    model = LLaDAModelLM(config).eval()
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and ".blocks." in name:
                w = module.weight
                k = int(w.numel() * sparsity)
                idx = w.abs().flatten().argsort()[:k]
                w.view(-1)[idx] = 0.0
    return model


@pytest.fixture
def model():
    return tiny_llada()


@pytest.fixture
def saved_checkpoint(tmp_path, model):
    """A pruned checkpoint folder, sharded so that several LFS files are uploaded."""
    from optimum_sinkprune.hub import save_pruned_model

    return save_pruned_model(model, tmp_path / "ckpt", pruning_config=PRUNING_CONFIG, base_model="GSAI-ML/LLaDA-8B-Base",
                             report={"params_before": 86336, "total_sparsity": 0.5}, max_shard_size="100KB")


@pytest.fixture
def hub_env(monkeypatch, tmp_path):
    """Point huggingface_hub and transformers at a fresh cache and no stored token, with Xet disabled.

    huggingface_hub reads HF_ENDPOINT, HF_HUB_DISABLE_XET, HF_HOME and the token path into `constants` at import
    time, so setting the environment is not enough in-process: patch the constants too (and transformers' shared
    `HfApi`, created with the endpoint of its first use)."""
    from huggingface_hub import constants
    from transformers.utils import hub as transformers_hub

    home = tmp_path / "hf_home"
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    # a user's (or CI's) HF_HUB_OFFLINE=1 was read into constants at import: the loopback Hub must still be reachable
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(transformers_hub, "_hf_api", None)
    return home


@pytest.fixture
def fake_hub(hub_env, monkeypatch):
    """The loopback Hub on 127.0.0.1 and a free port, with the client pointed at it through HF_ENDPOINT."""
    from huggingface_hub import constants

    hub = FakeHub(tokens={WRITE_TOKEN: "alice", OTHER_TOKEN: "bob"}, orgs={"alice": ["alice-org"]})
    url = hub.start()
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr("optimum_sinkprune.hub.push._sleep", lambda seconds: hub.requests.append({"sleep": seconds}))
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def subprocess_env(hub_env):
    """Environment for a fresh interpreter that reads everything from the environment at import."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    return env
