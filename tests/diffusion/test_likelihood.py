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


# ---- the official LLaDA / Dream estimators ------------------------------------------------------------------------
from optimum_sinkprune.diffusion import (  # noqa: E402
    ContinuationLikelihood,
    guided_logits,
    official_continuation_loglikelihood,
)
from optimum_sinkprune.diffusion.likelihood import (  # noqa: E402
    exact_count_mask,
    exact_mask_counts,
    stratified_times,
)


def reference_llada(model, prefix, target, *, mc_num, batch_size, cfg, seed):
    """LLaDA's eval_llada.py loglikelihood written out step by step, on a seeded CPU generator."""
    gen = torch.Generator().manual_seed(seed)
    b, L = batch_size, len(target)
    seq = torch.tensor(prefix + target)[None, :].repeat(b, 1)
    prompt_index = torch.arange(seq.shape[1]) < len(prefix)
    losses = []
    for _ in range(mc_num // b):
        k = torch.randint(1, L + 1, (), generator=gen)
        x = torch.round(torch.linspace(float(k), k + (b - 1) * (L / b), steps=b)).long()
        x = ((x - 1) % L) + 1
        is_mask = torch.arange(L).repeat(b, 1) < x.unsqueeze(1)
        for i in range(b):
            is_mask[i] = is_mask[i][torch.randperm(L, generator=gen)]
        is_mask = torch.cat([torch.zeros(b, len(prefix), dtype=torch.bool), is_mask], dim=1)
        noisy = torch.where(is_mask, MASK, seq)
        p_mask = (x / L).unsqueeze(1).repeat(1, seq.shape[1])
        batch = noisy
        if cfg > 0:
            un = noisy.clone()
            un[prompt_index.unsqueeze(0).repeat(b, 1)] = MASK
            batch = torch.cat([noisy, un])
        logits = model(input_ids=batch).logits.float()
        if cfg > 0:
            cond, uncond = torch.chunk(logits, 2, dim=0)
            logits = uncond + (cfg + 1) * (cond - uncond)
        loss = torch.nn.functional.cross_entropy(logits[is_mask], seq[is_mask], reduction="none") / p_mask[is_mask]
        losses.append(loss.sum().item() / b)
    return -sum(losses) / len(losses)


def reference_dream(model, prefix, target, *, mc_num, batch_size, seed, eps=1e-3):
    """Dream's eval.py `_eval_target_nll_mc` (log_type ftb, EOS already in `target`) written out step by step."""
    gen = torch.Generator().manual_seed(seed)
    b = batch_size
    seq = torch.tensor(prefix + target)[None, :].repeat(b, 1)
    n = seq.shape[1]
    losses = []
    for _ in range(max(mc_num // b, 1)):
        u0 = torch.rand(1, generator=gen)
        t = (u0 + torch.arange(b).float() / b) % 1
        p_mask = ((1 - eps) * t + eps)[:, None].repeat(1, n)
        mask = torch.rand((b, n), generator=gen) < p_mask
        mask[:, 0] = False
        mask[:, -1] = False
        perturbed = seq.clone()
        perturbed[:, -len(target) :] = torch.where(mask, MASK, seq)[:, -len(target) :]
        is_mask = perturbed == MASK
        logits = model(input_ids=perturbed).logits.float()
        logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
        loss = torch.nn.functional.cross_entropy(logits[is_mask], seq[is_mask], reduction="none") / p_mask[is_mask]
        losses.append(loss.sum().item() / b)
    return -sum(losses) / len(losses)


def _ids(seed, n, low=4, high=100):
    return torch.randint(low, high, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


@pytest.mark.parametrize("cfg", [0.0, 0.5, 2.0])
def test_llada_estimator_equals_the_reference(tiny_llada, randomize, cfg):
    model = randomize(tiny_llada, seed=1)
    prefix, target = _ids(0, 7), _ids(1, 5)
    got = official_continuation_loglikelihood(model, prefix, target, mc_num=12, batch_size=4, cfg_scale=cfg, seed=7)
    want = reference_llada(model, prefix, target, mc_num=12, batch_size=4, cfg=cfg, seed=7)
    assert isinstance(got, ContinuationLikelihood)
    assert got.logprob == pytest.approx(want, rel=1e-5, abs=1e-5)
    assert (got.mc_num, got.batch_size, got.num_tokens, got.protocol) == (12, 4, 5, "llada")
    again = official_continuation_loglikelihood(model, prefix, target, mc_num=12, batch_size=4, cfg_scale=cfg, seed=7)
    assert again == got  # same seed, same value
    other = official_continuation_loglikelihood(model, prefix, target, mc_num=12, batch_size=4, cfg_scale=cfg, seed=8)
    assert other.logprob != got.logprob


def test_dream_estimator_equals_the_reference(tiny_dream, randomize):
    model = randomize(tiny_dream, seed=2)
    prefix, target = [2] + _ids(2, 6), _ids(3, 4)
    eos = 1
    got = official_continuation_loglikelihood(
        model, prefix, target, protocol="dream", mc_num=12, batch_size=4, seed=5, suffix_ids=[eos], mask_token_id=MASK
    )
    want = reference_dream(model, prefix, target + [eos], mc_num=12, batch_size=4, seed=5)
    assert got.logprob == pytest.approx(want, rel=1e-5, abs=1e-5)
    assert got.protocol == "dream" and got.num_tokens == 4
    # Dream's count of batches: max(mc_num // batch_size, 1)
    short = official_continuation_loglikelihood(model, prefix, target, protocol="dream", mc_num=3, batch_size=4)
    assert short.mc_num == 4


def test_exact_count_weighting_is_exact_on_a_known_output():
    """Every masked token costs -log q and l masked tokens weigh L / l: each draw gives L * (-log q) exactly."""
    q, L = 0.3, 6
    model = KnownOutputDLM(peaked_log_probs(torch.full((10,), 7), q))
    res = official_continuation_loglikelihood(model, [7] * 4, [7] * L, mc_num=16, batch_size=4, seed=0)
    assert res.logprob == pytest.approx(L * math.log(q), rel=1e-6)
    assert res.std_err == pytest.approx(0.0, abs=1e-6)


def test_mask_counts_are_stratified_and_masks_exact():
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        counts = exact_mask_counts(5, 5, gen)
        assert sorted(counts.tolist()) == [1, 2, 3, 4, 5]  # b = L: every count once per batch
        mask = exact_count_mask(counts, 5, gen)
        assert mask.sum(1).tolist() == counts.tolist()
    counts = exact_mask_counts(3, 7, gen)
    assert counts.min() >= 1 and counts.max() <= 3
    t = stratified_times(4, gen)
    gaps = torch.diff(torch.sort(t).values)
    assert torch.all((t > 0) & (t <= 1)) and torch.allclose(gaps, torch.full((3,), 0.25), atol=1e-6)


def test_guidance_combines_the_two_branches(tiny_llada, randomize):
    model = randomize(tiny_llada, seed=3)
    ids = torch.tensor([_ids(4, 9)])
    prompt = torch.arange(9) < 4
    plain = guided_logits(model, ids)
    assert torch.equal(plain, model(input_ids=ids).logits.float())
    un = ids.masked_fill(prompt, MASK)
    expected = model(input_ids=un).logits + 1.5 * (plain - model(input_ids=un).logits)
    got = guided_logits(model, ids, cfg_scale=0.5, prompt=prompt, mask_token_id=MASK)
    assert torch.allclose(got, expected, atol=1e-4)
    with pytest.raises(ValueError, match="prompt"):
        guided_logits(model, ids, cfg_scale=0.5)


def test_bernoulli_and_exact_count_agree_at_cfg_0_and_guidance_moves_the_value(tiny_llada, randomize):
    """Both estimate the same ELBO (sum over l of 1/l E[masked CE] either way); guidance changes the quantity."""
    model = randomize(tiny_llada, seed=4)
    prefix, target = _ids(5, 6), _ids(6, 8)
    exact = official_continuation_loglikelihood(model, prefix, target, mc_num=512, batch_size=8, seed=0)
    seq = torch.tensor([prefix + target]).repeat(8, 1)
    maskable = torch.zeros_like(seq, dtype=torch.bool)
    maskable[:, len(prefix) :] = True
    bern = elbo_log_likelihood(model, seq, mc_num=64, maskable=maskable, batch_size=8, seed=1)
    bern_logprob, bern_se = -bern.nll_per_token * len(target), bern.nll_std_err * len(target)
    assert 0 < exact.std_err < bern_se  # the stratified exact-count estimator has the smaller error
    assert abs(exact.logprob - bern_logprob) <= 4 * math.hypot(exact.std_err, bern_se), (exact, bern_logprob, bern_se)
    guided = official_continuation_loglikelihood(model, prefix, target, mc_num=512, batch_size=8, seed=0, cfg_scale=0.5)
    assert abs(guided.logprob - exact.logprob) > 6 * math.hypot(exact.std_err, guided.std_err), (guided, exact)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(protocol="smdm"), "protocol"),
        (dict(mc_num=0), "mc_num"),
        (dict(batch_size=0), "batch_size"),
        (dict(mc_num=6, batch_size=4), "multiple of batch_size"),
        (dict(cfg_scale=-0.5), "cfg_scale"),
        (dict(cfg_scale=float("nan")), "cfg_scale"),
        (dict(protocol="dream", eps=1.5), "eps"),
        (dict(continuation_ids=[]), "continuation_ids"),
    ],
)
def test_official_estimator_bad_arguments(tiny_llada, kwargs, match):
    args = dict(context_ids=[5, 6], continuation_ids=[7, 8], mc_num=4, batch_size=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        official_continuation_loglikelihood(tiny_llada, **args)


def test_bernoulli_estimator_rejects_negative_guidance(tiny_llada):
    with pytest.raises(ValueError, match="cfg_scale"):
        elbo_log_likelihood(tiny_llada, torch.ones(2, 8, dtype=torch.long), mc_num=2, cfg_scale=-1.0)


def test_bernoulli_estimator_with_guidance_masks_the_unmaskable_positions(tiny_llada, randomize):
    model = randomize(tiny_llada, seed=5)
    ids = torch.tensor([_ids(7, 12)]).repeat(4, 1)
    maskable = torch.zeros_like(ids, dtype=torch.bool)
    maskable[:, 5:] = True
    plain = elbo_log_likelihood(model, ids, mc_num=4, maskable=maskable, seed=0)
    guided = elbo_log_likelihood(model, ids, mc_num=4, maskable=maskable, seed=0, cfg_scale=0.5)
    explicit = elbo_log_likelihood(model, ids, mc_num=4, maskable=maskable, seed=0, cfg_scale=0.5, prompt=~maskable)
    assert guided.nll_per_token != pytest.approx(plain.nll_per_token)
    assert guided.nll_per_token == explicit.nll_per_token
