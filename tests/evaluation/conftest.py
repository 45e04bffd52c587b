# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Fixtures of the evaluation tests: the tiny character tokenizer / LLaDA / texts of tests/data/tiny_dlm.py, and a
"constant-logit" LLaDA whose predictions ignore the input (final norm zeroed, logits = the LM-head bias), so the
ELBO's expectation and the greedy output are known in closed form."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

DATA = Path(__file__).resolve().parents[1] / "data"
# Logit bias of the constant-logit model: 'b' > 'd' > 'c' > 'a', every other token 0 - 6.
CONSTANT_BIAS = {"b": 3.0, "d": 2.0, "c": 1.0, "a": 0.5}


def load_tiny():
    spec = importlib.util.spec_from_file_location("sinkprune_tests_tiny_dlm", DATA / "tiny_dlm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny():
    return load_tiny()


@pytest.fixture(scope="session")
def tokenizer(tiny):
    return tiny.build_tokenizer()


@pytest.fixture(scope="session")
def texts(tiny):
    return tiny.make_texts()


@pytest.fixture
def dense(tiny):
    return tiny.build_model(0)


@pytest.fixture
def constant_model(tiny, tokenizer):
    model = tiny.build_model(0, include_bias=True)
    with torch.no_grad():
        model.model.transformer.ln_f.weight.zero_()
        bias = model.model.transformer.ff_out.bias
        bias.fill_(-6.0)
        for ch, value in CONSTANT_BIAS.items():
            bias[tokenizer.convert_tokens_to_ids(ch)] = value
    return model


@pytest.fixture
def constant_bias() -> dict[str, float]:
    return dict(CONSTANT_BIAS)


@pytest.fixture
def constant_log_probs(constant_model):
    """log-softmax of the constant logits [vocab]."""
    return torch.log_softmax(constant_model.model.transformer.ff_out.bias.detach().double(), dim=-1)
