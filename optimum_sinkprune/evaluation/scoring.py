# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Conditional scoring of a continuation with a diffusion LM, as LLaDA's own evaluation does: the context stays
unmasked, the continuation tokens are masked by the forward process at Monte-Carlo times t, and the ELBO bounds
log p(continuation | context). Also the greedy check (does the sampler reproduce the continuation?)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..offload import input_device


@dataclass
class ContinuationScore:
    """ELBO score of one continuation.

    Attributes:
        logprob: ELBO lower bound on log p(continuation | context), nats (sum over the continuation tokens).
        std_err: Monte-Carlo standard error of `logprob` (NaN with a single draw).
        num_tokens: continuation length in tokens.
        mc_num: forward-process samples used.
    """

    logprob: float
    std_err: float
    num_tokens: int
    mc_num: int


def score_continuation(
    model: nn.Module,
    context_ids: list[int],
    continuation_ids: list[int],
    *,
    mc_num: int = 32,
    batch_size: int = 16,
    seed: int = 0,
    mask_token_id: int | None = None,
    cfg_scale: float = 0.0,
    suffix_ids: list[int] | tuple[int, ...] = (),
) -> ContinuationScore:
    """ELBO of `continuation_ids` given `context_ids` (context never masked), averaged over `mc_num` samples.

    The sequence is replicated `min(batch_size, mc_num)` times per forward pass (each copy draws its own t and mask),
    so `mc_num` is rounded up to a multiple of that batch. The same `seed` gives the same masks for every model and,
    for two continuations of equal length after equal-length contexts, the same masked positions.

    Args:
        model: a supported diffusion LM.
        context_ids: conditioning tokens (BOS included when the model uses one); may be empty.
        continuation_ids: tokens to score (non-empty).
        mc_num: Monte-Carlo samples of (t, mask).
        batch_size: samples per forward pass.
        seed: seed of the mask draws.
        mask_token_id: defaults to the adapter's.
        cfg_scale: classifier-free guidance scale (0: none); the unconditional branch masks the context.
        suffix_ids: clean tokens after the continuation, never masked nor scored (the BERT family's [SEP]).
    """
    from ..diffusion import elbo_log_likelihood

    if not continuation_ids:
        raise ValueError("continuation_ids is empty: nothing to score")
    if mc_num < 1 or batch_size < 1:
        raise ValueError(f"mc_num and batch_size must be >= 1, got mc_num={mc_num}, batch_size={batch_size}")
    copies = min(batch_size, mc_num)
    draws = math.ceil(mc_num / copies)
    seq = torch.tensor([list(context_ids) + list(continuation_ids) + list(suffix_ids)], dtype=torch.long)
    maskable = torch.zeros_like(seq, dtype=torch.bool)
    maskable[:, len(context_ids) : len(context_ids) + len(continuation_ids)] = True
    res = elbo_log_likelihood(
        model,
        seq.repeat(copies, 1),
        mc_num=draws,
        maskable=maskable.repeat(copies, 1),
        batch_size=copies,
        seed=seed,
        mask_token_id=mask_token_id,
        cfg_scale=cfg_scale,
    )
    n = len(continuation_ids)
    if draws > 1:
        std_err = res.nll_std_err * n
    else:
        std_err = math.nan
    return ContinuationScore(logprob=-res.nll_per_token * n, std_err=std_err, num_tokens=n, mc_num=draws * copies)


def greedy_matches(
    model: nn.Module,
    context_ids: list[int],
    continuation_ids: list[int],
    *,
    mask_token_id: int | None = None,
    cfg_scale: float = 0.0,
    tokenizer=None,
) -> bool:
    """True when the greedy sampler (one token revealed per step, low-confidence remasking, optionally guided with
    `cfg_scale`) regenerates exactly `continuation_ids` after `context_ids` (LLaDA's `is_check_greedy`); `tokenizer`
    names framing ids the config does not (`generate`)."""
    from ..diffusion import generate

    n = len(continuation_ids)
    if n == 0:
        raise ValueError("continuation_ids is empty")
    device = input_device(model)
    prompt = torch.tensor([list(context_ids)], dtype=torch.long, device=device)
    out = generate(
        model, prompt, steps=n, gen_length=n, block_length=n, mask_token_id=mask_token_id, cfg_scale=cfg_scale,
        tokenizer=tokenizer,
    )
    return out.sequences[0, len(context_ids) :].tolist() == list(continuation_ids)
