# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The masked-diffusion ELBO estimator on models whose output is known.

With per-token predictive probability q for the true token, every masked token costs -log q and is weighted by 1/p,
so E[sum over masked of CE / p] = L * (-log q): the estimate must equal -log q per token within its Monte-Carlo error.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from transformers import PretrainedConfig

from optimum_sinkprune.adapters import DreamAdapter, LLaDAAdapter, get_adapter
from optimum_sinkprune.diffusion import LikelihoodResult, elbo_log_likelihood, elbo_perplexity

V = 128
MASK = 127


class StubConfig(PretrainedConfig):
    model_type = "llada"


class KnownOutputDLM(nn.Module):
    """A stub the LLaDA (or Dream) adapter accepts: the module tree the adapter recognises, with logits fixed in
    advance, `log_probs[position]` for every sequence, whatever the input (masks included)."""

    def __init__(self, log_probs: torch.Tensor, model_type: str = "llada"):
        super().__init__()
        self.config = StubConfig(mask_token_id=MASK, max_sequence_length=512)
        self.config.model_type = model_type
        trunk = nn.Module()
        if model_type == "llada":
            trunk.transformer = nn.ModuleDict({"blocks": nn.ModuleList()})
        else:
            trunk.layers = nn.ModuleList()
        self.model = trunk
        self.anchor = nn.Parameter(torch.zeros(1))  # the estimator takes the device from the parameters
        self.register_buffer("log_probs", log_probs)
        self.calls = 0

    def forward(self, input_ids, attention_mask=None):
        self.calls += 1
        b, s = input_ids.shape
        return SimpleNamespace(logits=self.log_probs[:s].expand(b, s, -1).clone())


def peaked_log_probs(targets: torch.Tensor, q: float) -> torch.Tensor:
    """[len(targets), V] log-probabilities with mass q on targets[i] and the rest spread evenly."""
    probs = torch.full((len(targets), V), (1 - q) / (V - 1))
    probs[torch.arange(len(targets)), targets] = q
    return probs.log()


def _within_mc_error(result: LikelihoodResult, expected: float, sigmas: float = 4.0) -> bool:
    return abs(result.nll_per_token - expected) <= sigmas * result.nll_std_err


def test_stub_is_served_by_the_adapters():
    assert isinstance(get_adapter(KnownOutputDLM(torch.zeros(4, V))), LLaDAAdapter)
    assert isinstance(get_adapter(KnownOutputDLM(torch.zeros(4, V), "Dream")), DreamAdapter)


def test_uniform_real_llada_gives_log_vocab(tiny_llada):
    """A real tiny LLaDA whose output layer is zeroed predicts uniformly: CE = log V on every masked token."""
    with torch.no_grad():
        tiny_llada.model.transformer.ff_out.weight.zero_()
    ids = torch.randint(0, 120, (16, 32), generator=torch.Generator().manual_seed(0))
    result = elbo_log_likelihood(tiny_llada, ids, mc_num=16, seed=0)
    assert result.num_tokens == 16 * 32 and result.mc_num == 16 and result.num_sequences == 16
    assert 0 < result.nll_std_err < 0.1 * math.log(V)
    assert _within_mc_error(result, math.log(V)), (result.nll_per_token, math.log(V), result.nll_std_err)
    assert result.perplexity == pytest.approx(math.exp(result.nll_per_token))
    low, high = result.perplexity_ci
    assert low < result.perplexity < high


@pytest.mark.parametrize("q,eps", [(0.5, 1e-3), (0.9, 1e-3), (0.2, 0.2)])
def test_known_peaked_output(q, eps):
    ids = torch.full((32, 24), 7)
    model = KnownOutputDLM(peaked_log_probs(torch.full((24,), 7), q))
    result = elbo_log_likelihood(model, ids, mc_num=16, eps=eps, seed=1, batch_size=8)
    assert model.calls == 16 * 4
    assert _within_mc_error(result, -math.log(q)), (result.nll_per_token, -math.log(q), result.nll_std_err)
    assert result.masked_accuracy == 1.0  # the true token is the argmax everywhere


def test_maskable_positions_are_never_scored():
    """Positions 0..3 hold a token the stub gives probability ~1e-3: scoring any of them would blow the estimate up."""
    seq = torch.full((24,), 7)
    seq[:4] = 9
    ids = seq.expand(16, -1).clone()
    model = KnownOutputDLM(peaked_log_probs(torch.full((24,), 7), 0.6))
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, :4] = False
    result = elbo_log_likelihood(model, ids, mc_num=8, seed=2, maskable=maskable)
    assert result.num_tokens == 16 * 20
    assert _within_mc_error(result, -math.log(0.6))
    assert result.masked_accuracy == 1.0
    # padding through attention_mask is excluded the same way
    padded = elbo_log_likelihood(model, ids, mc_num=8, seed=2, attention_mask=maskable.long())
    assert padded.nll_per_token == result.nll_per_token and padded.num_tokens == result.num_tokens


def test_dream_shift_is_applied():
    """Raw Dream output at i predicts token i + 1: after the adapter's shift, position i sees the prediction for i."""
    tokens = torch.arange(24) % 5 + 10  # 10, 11, 12, 13, 14, 10, ...
    raw_targets = torch.roll(tokens, -1)  # raw row i is peaked on token i + 1
    model = KnownOutputDLM(peaked_log_probs(raw_targets, 0.7), "Dream")
    ids = tokens.expand(16, -1).clone()
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, 0] = False  # position 0 keeps its own raw row, which predicts token 1
    result = elbo_log_likelihood(model, ids, mc_num=8, seed=3, maskable=maskable)
    assert _within_mc_error(result, -math.log(0.7))
    assert result.masked_accuracy == 1.0
    # without the shift every scored token would cost -log(0.3 / 127) ~ 6.05 nats
    assert result.nll_per_token < 1.0


def test_same_seed_same_result_and_seed_matters(tiny_llada):
    ids = torch.randint(0, 120, (4, 16), generator=torch.Generator().manual_seed(4))
    a = elbo_log_likelihood(tiny_llada, ids, mc_num=3, seed=11)
    b = elbo_log_likelihood(tiny_llada, ids, mc_num=3, seed=11)
    c = elbo_log_likelihood(tiny_llada, ids, mc_num=3, seed=12)
    assert a == b
    assert a.nll_per_token != c.nll_per_token
    assert elbo_perplexity(tiny_llada, ids, mc_num=3, seed=11) == a.perplexity


def test_batch_size_does_not_change_the_draws_for_one_batch(tiny_llada):
    ids = torch.randint(0, 120, (4, 16), generator=torch.Generator().manual_seed(5))
    a = elbo_log_likelihood(tiny_llada, ids, mc_num=2, seed=0, batch_size=4)
    b = elbo_log_likelihood(tiny_llada, ids, mc_num=2, seed=0, batch_size=16)
    assert a.nll_per_token == pytest.approx(b.nll_per_token, rel=1e-6)


def test_single_draw_has_no_error_bar(tiny_llada):
    result = elbo_log_likelihood(tiny_llada, torch.ones(2, 8, dtype=torch.long), mc_num=1)
    assert math.isnan(result.nll_std_err) and all(math.isnan(x) for x in result.perplexity_ci)
    assert set(result.to_dict()) >= {"nll_per_token", "perplexity", "nll_std_err", "masked_accuracy"}


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(mc_num=0), "mc_num"),
        (dict(batch_size=0), "batch_size"),
        (dict(input_ids=torch.ones(8, dtype=torch.long)), "input_ids"),
        (dict(maskable=torch.zeros(2, 8, dtype=torch.bool)), "no maskable tokens"),
        (dict(eps=1.5), "eps"),
    ],
)
def test_bad_arguments(tiny_llada, kwargs, match):
    args = dict(input_ids=torch.ones(2, 8, dtype=torch.long), mc_num=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        elbo_log_likelihood(tiny_llada, **args)
