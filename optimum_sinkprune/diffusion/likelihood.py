# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Monte-Carlo estimate of the masked-diffusion ELBO (LLaDA's estimator) and masked-token accuracy."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .forward_process import forward_process


@dataclass
class LikelihoodResult:
    """ELBO results over a set of sequences.

    Attributes:
        nll_per_token: the ELBO bound on negative log-likelihood, nats per token (mean over MC draws).
        perplexity: exp(nll_per_token), an upper bound on the model's perplexity.
        nll_std_err: standard error of `nll_per_token` across the MC draws (the Monte-Carlo uncertainty).
        perplexity_ci: (low, high) perplexity at ±2 standard errors.
        masked_accuracy: fraction of masked tokens predicted exactly (argmax), over all draws.
        num_tokens: scored tokens per draw; mc_num: number of draws; num_sequences: sequences scored.
    """

    nll_per_token: float
    perplexity: float
    nll_std_err: float
    perplexity_ci: tuple[float, float]
    masked_accuracy: float
    num_tokens: int
    mc_num: int
    num_sequences: int

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def elbo_log_likelihood(
    model: nn.Module,
    input_ids: torch.LongTensor,
    *,
    mc_num: int = 8,
    eps: float = 1e-3,
    maskable: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    mask_token_id: int | None = None,
    batch_size: int = 16,
    seed: int = 0,
    progress: bool = False,
) -> LikelihoodResult:
    """Masked-diffusion ELBO: for each of `mc_num` draws, t ~ U(0, 1] per sequence, mask with p = (1-eps)t + eps and
    score the masked tokens by cross-entropy / p. The sum over tokens bounds -log p(x).

    Draws are made from a generator seeded with `seed` on CPU, so two models scored with the same seed see exactly
    the same masks (the right way to compare a dense and a pruned model).

    Args:
        model: a supported diffusion LM (Dream's shift is applied through its adapter).
        input_ids: [n, seq] token ids.
        mc_num: Monte-Carlo draws.
        eps: minimum masking probability.
        maskable: bool [n, seq]; False positions (BOS, prompt, padding) are never masked and not scored.
        attention_mask: optional padding mask [n, seq].
        mask_token_id: defaults to the adapter's.
        batch_size: sequences per forward pass.
        seed: seed of the mask draws.
        progress: show a tqdm bar.
    """
    from ..adapters import get_adapter

    if mc_num < 1:
        raise ValueError(f"mc_num must be >= 1, got {mc_num}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if input_ids.dim() != 2 or input_ids.numel() == 0:
        raise ValueError(f"input_ids must be a non-empty [n, seq] tensor, got shape {tuple(input_ids.shape)}")
    adapter = get_adapter(model)
    if mask_token_id is None:
        mask_token_id = adapter.mask_token_id(model)
    device = next(model.parameters()).device
    if maskable is None:
        maskable = torch.ones_like(input_ids, dtype=torch.bool)
    if attention_mask is not None:
        maskable = maskable & attention_mask.to(torch.bool)
    scored = int(maskable.sum())
    if scored == 0:
        raise ValueError("no maskable tokens to score")
    gen = torch.Generator().manual_seed(seed)
    draw_nll, correct, masked_total = [], 0, 0
    bar = tqdm(total=mc_num * math.ceil(len(input_ids) / batch_size), desc="ELBO", disable=not progress)
    for _ in range(mc_num):
        total = 0.0
        for s in range(0, len(input_ids), batch_size):
            # masks are drawn on CPU (where `gen` lives) whatever the model's device
            ids = input_ids[s : s + batch_size].cpu()
            t = torch.rand(ids.shape[0], generator=gen).clamp_min(1e-6)
            noisy, is_masked, p = forward_process(ids, t, mask_token_id, eps, gen, maskable[s : s + batch_size].cpu())
            am = None if attention_mask is None else attention_mask[s : s + batch_size].to(device)
            logits = adapter.logits(model, noisy.to(device), am).float()
            is_masked = is_masked.to(device)
            if is_masked.any():
                target = ids.to(device)[is_masked]
                ce = F.cross_entropy(logits[is_masked], target, reduction="none")
                total += float((ce / p.to(device)[is_masked]).sum())
                correct += int((logits[is_masked].argmax(-1) == target).sum())
                masked_total += int(is_masked.sum())
            bar.update(1)
        draw_nll.append(total / scored)
    bar.close()
    nll = torch.tensor(draw_nll, dtype=torch.float64)
    mean = float(nll.mean())
    se = float(nll.std(unbiased=True) / math.sqrt(mc_num)) if mc_num > 1 else float("nan")
    ci = (math.exp(mean - 2 * se), math.exp(mean + 2 * se)) if mc_num > 1 else (float("nan"), float("nan"))
    return LikelihoodResult(
        nll_per_token=mean,
        perplexity=math.exp(mean),
        nll_std_err=se,
        perplexity_ci=ci,
        masked_accuracy=correct / max(masked_total, 1),
        num_tokens=scored,
        mc_num=mc_num,
        num_sequences=len(input_ids),
    )


def elbo_perplexity(model: nn.Module, input_ids: torch.LongTensor, **kwargs) -> float:
    """Shorthand: the ELBO perplexity bound of `model` on `input_ids` (see `elbo_log_likelihood`)."""
    return elbo_log_likelihood(model, input_ids, **kwargs).perplexity
