# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Monte-Carlo estimates of the masked-diffusion ELBO.

* `elbo_log_likelihood`: Bernoulli masking at t ~ U(0, 1] per draw (ours), for whole sequences, with masked-token
  accuracy;
* `official_continuation_loglikelihood`: the conditional estimators of the families' own lm-eval models: LLaDA's
  (an exact number of answer tokens masked, stratified over the draws of a batch, weight L / l) and Dream's
  (t stratified over the batch, Bernoulli masks, first and last positions kept clean);
* `guided_logits`: classifier-free guidance as both evaluations define it (the unconditional branch masks the
  whole prompt), shared by every estimator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..offload import input_device
from ..records import DictRecord
from .forward_process import forward_process


LIKELIHOOD_PROTOCOLS = ("llada", "dream")


def guided_logits(
    model: nn.Module,
    input_ids: torch.LongTensor,
    *,
    cfg_scale: float = 0.0,
    prompt: torch.Tensor | None = None,
    mask_token_id: int | None = None,
    attention_mask: torch.Tensor | None = None,
    adapter=None,
) -> torch.Tensor:
    """Float logits [b, seq] of `input_ids`, with classifier-free guidance when `cfg_scale > 0`.

    The unconditional branch is `input_ids` with every `prompt` position replaced by the mask token; both branches
    run in one forward pass and combine as `uncond + (cfg_scale + 1) * (cond - uncond)` (LLaDA's convention: 0 is
    no guidance). Dream's logit shift is applied by its adapter before the combination.

    Args:
        model: a supported diffusion LM.
        input_ids: [b, seq] (noisy) token ids.
        cfg_scale: guidance scale, >= 0.
        prompt: bool [seq] or [b, seq], the positions the unconditional branch masks (required when cfg_scale > 0).
        mask_token_id: the mask id (required when cfg_scale > 0).
        attention_mask: optional padding mask [b, seq].
        adapter: the model's adapter (looked up when not given).

    Returns:
        float32 logits [b, seq, vocab].

    Raises:
        ValueError: for a negative or non-finite `cfg_scale`, or guidance without `prompt` / `mask_token_id`.
    """
    if adapter is None:
        from ..adapters import get_adapter

        adapter = get_adapter(model)
    check_cfg_scale(cfg_scale)
    if cfg_scale == 0:
        return adapter.logits(model, input_ids, attention_mask).float()
    if prompt is None or mask_token_id is None:
        raise ValueError("classifier-free guidance (cfg_scale > 0) needs `prompt` positions and `mask_token_id`")
    prompt = prompt.to(device=input_ids.device, dtype=torch.bool).expand(input_ids.shape)
    uncond = input_ids.masked_fill(prompt, mask_token_id)
    both = torch.cat([input_ids, uncond])
    am = None if attention_mask is None else torch.cat([attention_mask, attention_mask])
    cond_logits, uncond_logits = adapter.logits(model, both, am).float().chunk(2)
    return uncond_logits + (cfg_scale + 1.0) * (cond_logits - uncond_logits)


def check_cfg_scale(cfg_scale: float) -> None:
    """Raise a ValueError unless `cfg_scale` is a finite number >= 0."""
    valid = isinstance(cfg_scale, (int, float)) and not isinstance(cfg_scale, bool)
    if not (valid and math.isfinite(cfg_scale) and cfg_scale >= 0):
        raise ValueError(f"cfg_scale must be a finite number >= 0 (0 disables guidance), got {cfg_scale!r}")


def weighted_masked_nll(
    logits: torch.Tensor, targets: torch.LongTensor, is_masked: torch.Tensor, p_mask: torch.Tensor
) -> tuple[torch.Tensor, int, int]:
    """Per-row sum of `cross-entropy / p_mask` over the masked positions (the ELBO's importance weight).

    Args:
        logits: [b, seq, vocab]; targets: clean ids [b, seq]; is_masked: bool [b, seq]; p_mask: [b, seq] masking
            probability of each position (l / L for an exact count l of L).

    Returns:
        `(nll [b] float64, argmax hits, masked count)`.
    """
    nll = torch.zeros(targets.shape[0], dtype=torch.float64, device=logits.device)
    if not bool(is_masked.any()):
        return nll, 0, 0
    rows = is_masked.nonzero(as_tuple=True)[0]
    target = targets[is_masked]
    ce = F.cross_entropy(logits[is_masked], target, reduction="none")
    nll.index_add_(0, rows, (ce / p_mask[is_masked]).double())
    hits = int((logits[is_masked].argmax(-1) == target).sum())
    return nll, hits, int(is_masked.sum())


def exact_mask_counts(target_len: int, draws: int, generator: torch.Generator | None = None) -> torch.LongTensor:
    """LLaDA's stratified mask counts: k ~ U{1..L}, then l_i = ((round(k + i L / b) - 1) mod L) + 1 for the b
    draws of a batch, so the counts cover 1..L evenly (rounding as float32 `torch.linspace` + `torch.round` do).

    Args:
        target_len: L, the number of answer tokens (>= 1).
        draws: b, the draws of one batch (>= 1).
        generator: CPU random generator.

    Returns:
        int64 [b] counts in 1..L.
    """
    if target_len < 1 or draws < 1:
        raise ValueError(f"target_len and draws must be >= 1, got target_len={target_len}, draws={draws}")
    k = int(torch.randint(1, target_len + 1, (), generator=generator))
    x = torch.linspace(float(k), k + (draws - 1) * (target_len / draws), steps=draws).round().long()
    return (x - 1) % target_len + 1


def exact_count_mask(counts: torch.LongTensor, target_len: int, generator: torch.Generator | None = None):
    """bool [b, L]: row i masks `counts[i]` positions chosen uniformly: position j is masked when perm_i[j] <
    counts[i] for a random permutation perm_i, one drawn per row in order (LLaDA's shuffle of a sorted mask row).

    Args:
        counts: int [b] mask counts in 1..L.
        target_len: L.
        generator: CPU random generator.
    """
    out = torch.zeros(len(counts), target_len, dtype=torch.bool)
    for i, count in enumerate(counts.tolist()):
        out[i] = torch.randperm(target_len, generator=generator) < count
    return out


def stratified_times(draws: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dream's stratified diffusion times: u ~ U[0, 1), t_i = (u + i / b) mod 1 for the b draws of a batch. A time
    of exactly 0 is read as 1 (the same point of the circle) so that t stays in (0, 1]."""
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    u = torch.rand(1, generator=generator)
    t = (u + torch.arange(draws, dtype=torch.float32) / draws) % 1.0
    return torch.where(t == 0, torch.ones_like(t), t)


@dataclass
class LikelihoodResult(DictRecord):
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
    cfg_scale: float = 0.0,
    prompt: torch.Tensor | None = None,
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
        cfg_scale: classifier-free guidance scale (0: none; see `guided_logits`).
        prompt: bool [n, seq], the positions the unconditional branch masks; defaults to the unmaskable ones.

    Returns:
        a `LikelihoodResult`.

    Raises:
        ValueError: for mc_num or batch_size < 1, a negative cfg_scale, a malformed `input_ids`, or nothing to score.
    """
    from ..adapters import get_adapter

    if mc_num < 1:
        raise ValueError(f"mc_num must be >= 1, got {mc_num}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if input_ids.dim() != 2 or input_ids.numel() == 0:
        raise ValueError(f"input_ids must be a non-empty [n, seq] tensor, got shape {tuple(input_ids.shape)}")
    check_cfg_scale(cfg_scale)
    adapter = get_adapter(model)
    if mask_token_id is None:
        mask_token_id = adapter.mask_token_id(model)
    device = input_device(model)
    if maskable is None:
        maskable = torch.ones_like(input_ids, dtype=torch.bool)
    if prompt is None:
        prompt = ~maskable.to(torch.bool)
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
            logits = guided_logits(
                model, noisy.to(device), cfg_scale=cfg_scale, prompt=prompt[s : s + batch_size],
                mask_token_id=mask_token_id, attention_mask=am, adapter=adapter,
            )  # fmt: skip
            nll, hits, count = weighted_masked_nll(logits, ids.to(device), is_masked.to(device), p.to(device))
            total += float(nll.sum())
            correct += hits
            masked_total += count
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


@dataclass
class ContinuationLikelihood(DictRecord):
    """One continuation scored by a family's official estimator.

    Attributes:
        logprob: the ELBO estimate of log p(continuation | context), nats (minus the mean over batches of the
            batch's mean weighted masked-token loss).
        std_err: Monte-Carlo standard error of `logprob` across batches (NaN with a single batch; the draws inside
            a batch are stratified, hence not independent).
        num_tokens: continuation length L.
        mc_num: draws used (batches x batch_size).
        batch_size: draws per batch, the strata of the stratification.
        protocol: "llada" or "dream".
    """

    logprob: float
    std_err: float
    num_tokens: int
    mc_num: int
    batch_size: int
    protocol: str


def _draw_official_masks(
    protocol: str, seq: torch.LongTensor, start: int, length: int, mask_token_id: int, eps: float, gen
) -> tuple[torch.Tensor, torch.Tensor]:
    """(is_masked [b, n], p_mask [b, n]) of one batch of draws under `protocol` (see
    `official_continuation_loglikelihood`)."""
    b, n = seq.shape
    if protocol == "llada":
        counts = exact_mask_counts(length, b, gen)
        is_masked = torch.zeros(b, n, dtype=torch.bool)
        is_masked[:, start : start + length] = exact_count_mask(counts, length, gen)
        return is_masked, (counts.float() / length)[:, None].expand(b, n)
    maskable = torch.zeros(b, n, dtype=torch.bool)
    maskable[:, start : start + length] = True
    maskable[:, 0] = False  # Dream never masks the first and last positions (BOS, the appended EOS)
    maskable[:, -1] = False
    _, is_masked, p = forward_process(seq, stratified_times(b, gen), mask_token_id, eps, gen, maskable)
    return is_masked, p


@torch.no_grad()
def official_continuation_loglikelihood(
    model: nn.Module,
    context_ids: list[int],
    continuation_ids: list[int],
    *,
    protocol: str = "llada",
    mc_num: int = 128,
    batch_size: int = 32,
    cfg_scale: float = 0.0,
    seed: int = 0,
    eps: float = 1e-3,
    suffix_ids: list[int] | tuple[int, ...] = (),
    mask_token_id: int | None = None,
) -> ContinuationLikelihood:
    """log p(continuation | context) as the family's own lm-eval model estimates it (context never masked).

    `protocol="llada"` (LLaDA's eval_llada.py): `mc_num / batch_size` batches; in each, k ~ U{1..L} and draw i masks
    exactly l_i = ((round(k + i L / b) - 1) mod L) + 1 answer tokens chosen uniformly, so the counts are stratified
    over the batch; the masked-token loss is weighted by L / l_i. `mc_num` must be a multiple of `batch_size`.

    `protocol="dream"` (Dream's eval/eval.py): `max(mc_num // batch_size, 1)` batches; in each, u ~ U[0, 1) and
    draw i masks each answer token with p = (1 - eps) t_i + eps, t_i = (u + i / b) mod 1; the first and last
    positions of the sequence are never masked (Dream's evaluation appends EOS: pass it as `suffix_ids`).

    Both: the loss of a batch is the sum over draws of the weighted cross-entropy divided by b; the estimate is
    minus its mean over batches. With `cfg_scale > 0` the logits are guided (`guided_logits`, the unconditional
    branch masks the whole context). Masks come from a CPU generator seeded with `seed` for every call, so the same
    seed gives the same masks to every model (a dense and a pruned model are compared on identical draws) and the
    same value for the same model, whatever the device or the requests scored before; the value depends on
    `batch_size` (the strata are the draws of a batch, as in the official code).

    Args:
        model: a supported diffusion LM.
        context_ids: conditioning tokens (BOS included when the model uses one); may be empty.
        continuation_ids: the answer tokens (non-empty).
        protocol: "llada" or "dream".
        mc_num: Monte-Carlo draws (>= 1).
        batch_size: draws per forward pass and per stratification (>= 1).
        cfg_scale: classifier-free guidance scale (>= 0; 0 disables).
        seed: seed of the mask draws.
        eps: minimum masking probability of the "dream" protocol.
        suffix_ids: clean tokens after the continuation, never masked nor scored.
        mask_token_id: defaults to the adapter's.

    Returns:
        a `ContinuationLikelihood`.

    Raises:
        ValueError: for an unknown protocol, mc_num or batch_size < 1, mc_num not a multiple of batch_size
            ("llada"), a negative cfg_scale, eps outside [0, 1) or an empty continuation.
    """
    from ..adapters import get_adapter

    if protocol not in LIKELIHOOD_PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(LIKELIHOOD_PROTOCOLS)}, got {protocol!r}")
    if not isinstance(mc_num, int) or mc_num < 1:
        raise ValueError(f"mc_num must be an integer >= 1, got {mc_num!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if protocol == "llada" and mc_num % batch_size:
        raise ValueError(
            f"mc_num={mc_num} must be a multiple of batch_size={batch_size} for LLaDA's estimator "
            "(each batch is one stratified set of draws)"
        )
    check_cfg_scale(cfg_scale)
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"eps must lie in [0, 1), got {eps}")
    if not continuation_ids:
        raise ValueError("continuation_ids is empty: nothing to score")
    adapter = get_adapter(model)
    if mask_token_id is None:
        mask_token_id = adapter.mask_token_id(model)
    device = input_device(model)
    start, length = len(context_ids), len(continuation_ids)
    seq = torch.tensor([list(context_ids) + list(continuation_ids) + list(suffix_ids)], dtype=torch.long)
    seq = seq.repeat(batch_size, 1)
    prompt = torch.arange(seq.shape[1]) < start
    batches = mc_num // batch_size if protocol == "llada" else max(mc_num // batch_size, 1)
    gen = torch.Generator().manual_seed(seed)
    clean = seq.to(device)
    batch_nll = []
    for _ in range(batches):
        is_masked, p_mask = _draw_official_masks(protocol, seq, start, length, mask_token_id, eps, gen)
        noisy = seq.masked_fill(is_masked, mask_token_id).to(device)
        logits = guided_logits(
            model, noisy, cfg_scale=cfg_scale, prompt=prompt, mask_token_id=mask_token_id, adapter=adapter
        )
        nll, _, _ = weighted_masked_nll(logits, clean, is_masked.to(device), p_mask.to(device))
        batch_nll.append(float(nll.sum()) / batch_size)
    values = torch.tensor(batch_nll, dtype=torch.float64)
    std_err = float(values.std(unbiased=True) / math.sqrt(batches)) if batches > 1 else float("nan")
    return ContinuationLikelihood(
        logprob=-float(values.mean()),
        std_err=std_err,
        num_tokens=length,
        mc_num=batches * batch_size,
        batch_size=batch_size,
        protocol=protocol,
    )
