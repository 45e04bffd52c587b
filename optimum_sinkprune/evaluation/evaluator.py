# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Evaluate a (pruned) diffusion LM against its dense reference: ELBO perplexity, masked-token accuracy, generation
quality (BLEU / ROUGE-L vs the held-out text and vs the dense output), size and speed, all in one run."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from ..records import DictRecord
from ..validation import check_int_fields, int_field
from . import metrics
from .data import GenerationPrompt, build_eval_sequences, build_generation_prompts
from .result import EvaluationResult
from .speed import SpeedResult, measure_speed, model_device

logger = logging.getLogger(__name__)


@dataclass
class EvaluationSettings(DictRecord):
    """How much to evaluate (more = less noise, more time).

    Args:
        num_sequences (`int`): held-out sequences scored by the ELBO.
        seq_len (`int`): tokens per sequence (BOS included).
        mc_num (`int`): Monte-Carlo draws of (t, mask) per sequence; draw k uses seed `seed + k` for every model.
        seed (`int`): seed of the mask draws.
        batch_size (`int`): sequences per forward pass.
        num_prompts (`int`): generation prompts (alternating continuation / summary-style).
        prompt_tokens (`int`): passage length of a prompt.
        gen_length (`int`): generated tokens per prompt (also the continuation reference length).
        steps (`int`): denoising steps of the sampler.
        block_length (`int`, *optional*): semi-autoregressive block length (defaults to `gen_length`).
        speed_repeats (`int`): timed sampler runs per model (interleaved with the dense model).
        speed_warmup (`int`): untimed runs first.
        speed_batch (`int`): prompts generated at once while timing.
    """

    num_sequences: int = int_field(16)
    seq_len: int = int_field(128)
    mc_num: int = int_field(8)
    seed: int = 0
    batch_size: int = int_field(16)
    num_prompts: int = int_field(8)
    prompt_tokens: int = int_field(48)
    gen_length: int = int_field(32)
    steps: int = int_field(32)
    block_length: int | None = None
    speed_repeats: int = int_field(3)
    speed_warmup: int = int_field(1, minimum=0)
    speed_batch: int = int_field(1)

    def __post_init__(self):
        check_int_fields(self)  # the `int_field`s: all >= 1 but speed_warmup >= 0
        if self.block_length is not None and (self.block_length < 1 or self.gen_length % self.block_length):
            raise ValueError(f"block_length={self.block_length} must be >= 1 and divide gen_length={self.gen_length}")
        if self.speed_batch > self.num_prompts:
            raise ValueError(f"speed_batch={self.speed_batch} must be <= num_prompts={self.num_prompts}")


def mean_and_std_err(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (NaN error for a single value)."""
    n = len(values)
    if n == 0:
        raise ValueError("values is empty")
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def cut_at_token(ids: list[int], stop_ids: set[int]) -> list[int]:
    """`ids` up to (not including) the first id in `stop_ids`."""
    for i, tok in enumerate(ids):
        if tok in stop_ids:
            return ids[:i]
    return ids


@dataclass
class _Likelihood:
    draws: list[float]
    accuracies: list[float]
    num_tokens: int


def _bos_token_id(tokenizer, model: nn.Module) -> int | None:
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        bos = getattr(model.config, "bos_token_id", None)
    return None if bos is None else int(bos)


class Evaluator:
    """Holds the evaluation inputs and the dense reference's outputs, and evaluates any number of models against
    them: every model sees the same sequences, the same masks (per-draw seeds) and the same prompts.

    Args:
        tokenizer: the tokenizer shared by the models.
        texts: held-out documents (e.g. `optimum_sinkprune.assets.load_heldout_texts()`).
        dense_model: the reference (unpruned) model; its results are computed once and cached.
        settings: `EvaluationSettings`.
        progress: show tqdm bars.

    Example:
        ```python
        evaluator = Evaluator(tokenizer, texts=texts, dense_model=dense)
        result = evaluator.evaluate(pruned, name="sink_wanda@50%", checkpoint_dir="out/")
        result.perplexity, result.speedup_vs_dense  # ELBO perplexity bound, speed-up vs the dense model
        ```
    """

    def __init__(
        self,
        tokenizer,
        *,
        texts: list[str],
        dense_model: nn.Module | None = None,
        settings: EvaluationSettings | None = None,
        progress: bool = True,
    ):
        if not texts:
            raise ValueError("texts is empty: give held-out documents to evaluate on")
        self.tokenizer = tokenizer
        self.settings = settings or EvaluationSettings()
        self.dense_model = dense_model
        self.progress = progress
        s = self.settings
        bos = _bos_token_id(tokenizer, dense_model) if dense_model is not None else getattr(tokenizer, "bos_token_id", None)
        self.bos_token_id = bos
        from ..calibration.data import input_framing

        # the model's framing (BERT family: [CLS] … [SEP]), else BOS first: as the calibration windows
        opening, closing = self.framing = input_framing(dense_model, tokenizer, bos_token_id=bos)
        self.sequences = build_eval_sequences(
            tokenizer, texts, seq_len=s.seq_len, num_sequences=s.num_sequences, framing=self.framing
        )
        self.maskable = torch.ones_like(self.sequences, dtype=torch.bool)
        self.maskable[:, : len(opening)] = False  # BOS / [CLS] is never masked in training
        self.maskable[:, self.sequences.shape[1] - len(closing):] = False  # nor [SEP]
        self.prompts: list[GenerationPrompt] = build_generation_prompts(
            tokenizer,
            texts,
            num_prompts=s.num_prompts,
            prompt_tokens=s.prompt_tokens,
            reference_tokens=s.gen_length,
            framing=self.framing,
        )
        self._dense_likelihood: _Likelihood | None = None
        self._dense_outputs: list[str] | None = None
        self._dense_result: EvaluationResult | None = None

    # ---- pieces -------------------------------------------------------------------------------------------------
    def likelihood(self, model: nn.Module) -> _Likelihood:
        """Per-draw ELBO NLL (nats/token) and masked accuracy; draw k is seeded `seed + k` for every model."""
        from ..diffusion import elbo_log_likelihood

        s = self.settings
        draws, accs, num_tokens = [], [], 0
        for k in tqdm(range(s.mc_num), desc="ELBO draws", disable=not self.progress, leave=False):
            res = elbo_log_likelihood(
                model, self.sequences, mc_num=1, maskable=self.maskable, batch_size=s.batch_size, seed=s.seed + k
            )
            draws.append(res.nll_per_token)
            accs.append(res.masked_accuracy)
            num_tokens = res.num_tokens
        return _Likelihood(draws=draws, accuracies=accs, num_tokens=num_tokens)

    def generate_outputs(self, model: nn.Module) -> list[str]:
        """Greedy diffusion generations for every prompt (prompts of equal length are batched), cut at EOS."""
        from ..diffusion import generate

        s = self.settings
        stop = {i for i in (getattr(self.tokenizer, "eos_token_id", None), getattr(model.config, "eos_token_id", None))
                if i is not None}  # fmt: skip
        outputs: dict[int, str] = {}
        groups: dict[int, list[int]] = {}
        for i, p in enumerate(self.prompts):
            groups.setdefault(len(p.prompt_ids), []).append(i)
        device = model_device(model)
        for length, idx in tqdm(groups.items(), desc="generation", disable=not self.progress, leave=False):
            prompt = torch.tensor([self.prompts[i].prompt_ids for i in idx], dtype=torch.long, device=device)
            out = generate(
                model, prompt, steps=s.steps, gen_length=s.gen_length, block_length=s.block_length or s.gen_length,
                tokenizer=self.tokenizer,
            )
            for row, i in enumerate(idx):
                ids = cut_at_token(out.sequences[row, length:].tolist(), stop)
                outputs[i] = self.tokenizer.decode(ids, skip_special_tokens=True)
        return [outputs[i] for i in range(len(self.prompts))]

    def speed(self, models: dict[str, nn.Module]) -> dict[str, SpeedResult]:
        """Interleaved sampler timing of `models` on the first `speed_batch` prompts of equal length."""
        s = self.settings
        first = len(self.prompts[0].prompt_ids)
        same = [p.prompt_ids for p in self.prompts if len(p.prompt_ids) == first][: s.speed_batch]
        device = model_device(next(iter(models.values())))
        prompt = torch.tensor(same, dtype=torch.long, device=device)
        return measure_speed(
            models,
            prompt,
            steps=s.steps,
            gen_length=s.gen_length,
            block_length=s.block_length or s.gen_length,
            repeats=s.speed_repeats,
            warmup=s.speed_warmup,
            progress=self.progress,
            tokenizer=self.tokenizer,
        )

    # ---- dense reference -----------------------------------------------------------------------------------------
    def _require_dense(self) -> nn.Module:
        if self.dense_model is None:
            raise ValueError("this needs a dense reference: pass dense_model= to Evaluator")
        return self.dense_model

    def dense_likelihood(self) -> _Likelihood:
        if self._dense_likelihood is None:
            self._dense_likelihood = self.likelihood(self._require_dense())
        return self._dense_likelihood

    def dense_outputs(self) -> list[str]:
        if self._dense_outputs is None:
            self._dense_outputs = self.generate_outputs(self._require_dense())
        return self._dense_outputs

    def evaluate_dense(self, *, checkpoint_dir=None, measure_speed: bool = True, name: str = "dense") -> EvaluationResult:
        """The dense model's own result (cached when called without a checkpoint folder)."""
        if self._dense_result is not None and checkpoint_dir is None:
            return self._dense_result
        result = self.evaluate(self._require_dense(), name=name, checkpoint_dir=checkpoint_dir,
                               measure_speed=measure_speed, is_dense=True)  # fmt: skip
        if checkpoint_dir is None:
            self._dense_result = result
        return result

    # ---- one model ------------------------------------------------------------------------------------------------
    def evaluate(
        self,
        model: nn.Module,
        *,
        name: str,
        checkpoint_dir=None,
        measure_speed: bool = True,
        extra: dict | None = None,
        is_dense: bool = False,
    ) -> EvaluationResult:
        """Evaluate `model`; with a dense reference, also its paired NLL difference, generation overlap with the
        dense outputs and speed-up (dense and `model` timed interleaved in this call).

        Args:
            model: the model to evaluate.
            name: its label in tables.
            checkpoint_dir: folder of its saved checkpoint, to report the weight files' size.
            measure_speed: time the sampler (interleaved with the dense model when there is one).
            extra: metadata stored in `EvaluationResult.extra`.
            is_dense: `model` is the dense reference itself (no "vs dense" numbers).
        """
        s = self.settings
        start = time.perf_counter()
        model.eval()
        dense = None if is_dense else self.dense_model
        total, nonzero = metrics.count_parameters(model)
        block_total, block_nonzero = metrics.count_block_parameters(model)
        block_sparsity = None
        if self.dense_model is not None:
            dense_block, _ = metrics.count_block_parameters(self.dense_model)
            block_sparsity = 1.0 - block_nonzero / dense_block
        own_reference = is_dense and model is self.dense_model  # reuse (and fill) the dense caches
        lik = self.dense_likelihood() if own_reference else self.likelihood(model)
        nll, se = mean_and_std_err(lik.draws)
        delta = delta_se = None
        if dense is not None:
            dense_draws = self.dense_likelihood().draws
            delta, delta_se = mean_and_std_err([a - b for a, b in zip(lik.draws, dense_draws)])
        ci = (math.exp(nll - 2 * se), math.exp(nll + 2 * se)) if math.isfinite(se) else (math.nan, math.nan)
        outputs = self.dense_outputs() if own_reference else self.generate_outputs(model)
        refs = [p.reference for p in self.prompts]
        bleu_ref, rouge_ref = metrics.corpus_bleu(outputs, refs), metrics.mean_rouge_l(outputs, refs)
        bleu_dense = rouge_dense = None
        if dense is not None:
            dense_out = self.dense_outputs()
            bleu_dense = metrics.corpus_bleu(outputs, dense_out)
            rouge_dense = metrics.mean_rouge_l(outputs, dense_out)
        speed = dense_speed = speedup = None
        if measure_speed:
            models = {name: model} if dense is None else {"__dense__": dense, name: model}
            timed = self.speed(models)
            speed = timed[name].to_dict()
            if dense is not None:
                dense_speed = timed["__dense__"].to_dict()
                speedup = dense_speed["latency_ms_per_step"] / speed["latency_ms_per_step"]
        meta = dict(extra or {})
        meta.setdefault("evaluation_seconds", round(time.perf_counter() - start, 2))
        meta.setdefault("settings", s.to_dict())
        return EvaluationResult(
            name=name,
            num_parameters=total,
            nonzero_parameters=nonzero,
            block_parameters=block_total,
            block_nonzero_parameters=block_nonzero,
            block_sparsity=block_sparsity,
            checkpoint_bytes=None if checkpoint_dir is None else metrics.checkpoint_bytes(checkpoint_dir),
            weight_bytes=metrics.weight_bytes(model),
            perplexity=math.exp(nll),
            perplexity_ci=ci,
            nll_per_token=nll,
            nll_std_err=se,
            nll_delta_vs_dense=delta,
            nll_delta_std_err=delta_se,
            masked_accuracy=sum(lik.accuracies) / len(lik.accuracies),
            mc_num=s.mc_num,
            num_sequences=s.num_sequences,
            seq_len=s.seq_len,
            num_tokens=lik.num_tokens,
            seed=s.seed,
            bleu_vs_reference=bleu_ref,
            rouge_l_vs_reference=rouge_ref,
            bleu_vs_dense=bleu_dense,
            rouge_l_vs_dense=rouge_dense,
            num_prompts=len(self.prompts),
            generations=[
                {"kind": p.kind, "prompt": p.prompt_text, "reference": p.reference, "output": o}
                for p, o in zip(self.prompts, outputs)
            ],
            speed=speed,
            dense_speed=dense_speed,
            speedup_vs_dense=speedup,
            extra=meta,
        )


def evaluate_model(
    model: nn.Module,
    tokenizer,
    *,
    texts: list[str],
    dense_model: nn.Module | None = None,
    settings: EvaluationSettings | None = None,
    name: str = "model",
    checkpoint_dir=None,
    measure_speed: bool = True,
    progress: bool = True,
) -> tuple[EvaluationResult, EvaluationResult | None]:
    """Evaluate `model` (and `dense_model`, when given, as its reference) in one run.

    Returns:
        `(result, dense_result)`; `dense_result` is None without a dense model.
    """
    evaluator = Evaluator(tokenizer, texts=texts, dense_model=dense_model, settings=settings, progress=progress)
    dense_result = evaluator.evaluate_dense(measure_speed=False) if dense_model is not None else None
    result = evaluator.evaluate(model, name=name, checkpoint_dir=checkpoint_dir, measure_speed=measure_speed)
    if dense_result is not None and result.dense_speed is not None:
        dense_result.speed = result.dense_speed
        dense_result.speedup_vs_dense = 1.0
    return result, dense_result
