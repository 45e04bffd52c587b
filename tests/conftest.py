# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Shared tiny-model fixtures: a tiny LLaDA, a tiny Dream with grouped-query attention, and tiny native Llama / Qwen2
(the AR baselines). Every model is built from a config in milliseconds, seeded, in eval mode, on CPU.

Models built with transformers' default init (std 0.02) give almost uniform logits, which hides bugs such as an
ignored norm weight; `randomize_weights` fills every parameter with O(1)-scale values for the math tests.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import optimum_sinkprune  # noqa: F401  (registers the Auto classes)
from optimum_sinkprune.models import DreamConfig, DreamModel, LLaDAConfig, LLaDAModelLM

VOCAB = 128
MASK_ID = 127

# Tiny models gain nothing from intra-op threads, and on a shared 2-core machine they lose a lot (thread contention
# made one ELBO test 20x slower).
torch.set_num_threads(1)


def _seeded(seed: int, build):
    """Build under a private RNG state so fixtures never disturb (or depend on) the global torch RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build()
    return model.eval()


def randomize_weights(model: nn.Module, seed: int = 0) -> nn.Module:
    """Overwrite every parameter with O(1)-scale random values: linears ~ N(0, 1/fan_in), biases and embeddings
    ~ N(0, 0.5^2) / N(0, 1), norm weights ~ 1 + N(0, 0.1^2). Deterministic in `seed`."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32).to(p.dtype)
            if p.dim() == 2 and ("wte" in name or "embed" in name):
                p.copy_(noise)
            elif p.dim() == 2:
                p.copy_(noise / p.shape[1] ** 0.5)
            elif name.endswith("bias"):
                p.copy_(0.5 * noise)
            else:  # norm weights
                p.copy_(1.0 + 0.1 * noise)
    return model


def tiny_llada_config(**overrides) -> LLaDAConfig:
    kwargs = dict(
        d_model=64,
        n_heads=4,
        n_layers=2,
        mlp_hidden_size=96,
        vocab_size=VOCAB,
        embedding_size=VOCAB,
        mask_token_id=MASK_ID,
        eos_token_id=1,
        pad_token_id=0,
        max_sequence_length=256,
        rope_theta=10000.0,
    )
    kwargs.update(overrides)
    return LLaDAConfig(**kwargs)


def tiny_dream_config(**overrides) -> DreamConfig:
    kwargs = dict(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,  # grouped-query attention, like Dream-7B (28 q / 4 kv heads)
        max_position_embeddings=256,
        rope_theta=10000.0,
        mask_token_id=MASK_ID,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=1,
    )
    kwargs.update(overrides)
    return DreamConfig(**kwargs)


@pytest.fixture
def llada_config() -> LLaDAConfig:
    return tiny_llada_config()


@pytest.fixture
def dream_config() -> DreamConfig:
    return tiny_dream_config()


@pytest.fixture
def tiny_llada() -> LLaDAModelLM:
    return _seeded(0, lambda: LLaDAModelLM(tiny_llada_config()))


@pytest.fixture
def tiny_dream() -> DreamModel:
    return _seeded(1, lambda: DreamModel(tiny_dream_config()))


@pytest.fixture
def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rope_theta=10000.0,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=1,
    )
    return _seeded(2, lambda: LlamaForCausalLM(config))


@pytest.fixture
def tiny_qwen2():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rope_theta=10000.0,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=1,
    )
    return _seeded(3, lambda: Qwen2ForCausalLM(config))


@pytest.fixture
def randomize():
    """`randomize(model, seed=0)`: see `randomize_weights`."""
    return randomize_weights


@pytest.fixture
def tiny_configs():
    """Builders for the tiny configs with overrides: `tiny_configs.llada(n_kv_heads=2)`, `tiny_configs.dream(...)`."""

    class _Builders:
        llada = staticmethod(tiny_llada_config)
        dream = staticmethod(tiny_dream_config)

    return _Builders()
