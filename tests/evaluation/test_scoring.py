# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The continuation ELBO on a model whose logits ignore the input: its expectation is -sum of the constant
log-probabilities of the continuation tokens, whatever the masks."""

import pytest

from optimum_sinkprune.evaluation.scoring import greedy_matches, score_continuation


def test_elbo_is_unbiased_for_the_constant_model(tokenizer, constant_model, constant_log_probs):
    context = tokenizer("Q: ", add_special_tokens=False)["input_ids"]
    cont = tokenizer("abcd", add_special_tokens=False)["input_ids"]
    exact = float(sum(constant_log_probs[t] for t in cont))
    score = score_continuation(constant_model, context, cont, mc_num=512, batch_size=64, seed=0)
    assert score.mc_num == 512 and score.num_tokens == 4
    assert abs(score.logprob - exact) < 4 * score.std_err


def test_same_seed_same_masks_so_equal_length_choices_rank_exactly(tokenizer, constant_model, constant_log_probs):
    context = tokenizer("Pick:", add_special_tokens=False)["input_ids"]
    scores = {
        ch: score_continuation(
            constant_model, context, tokenizer(" " + ch, add_special_tokens=False)["input_ids"], mc_num=8, seed=3
        ).logprob
        for ch in "abcd"
    }
    assert sorted(scores, key=scores.get, reverse=True) == ["b", "d", "c", "a"]


def test_greedy_check(tokenizer, constant_model):
    context = tokenizer("Go", add_special_tokens=False)["input_ids"]
    ids = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert greedy_matches(constant_model, context, ids("bbb"))
    assert not greedy_matches(constant_model, context, ids("bab"))


def test_validation(constant_model):
    with pytest.raises(ValueError, match="empty"):
        score_continuation(constant_model, [2], [])
    with pytest.raises(ValueError, match="mc_num"):
        score_continuation(constant_model, [2], [5], mc_num=0)
