# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`EvaluationResult`: every number of one model's evaluation, JSON round-trippable."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields


@dataclass
class EvaluationResult:
    """Quality, size and speed of one model, optionally relative to a dense reference evaluated in the same run.

    Attributes:
        name: label of the model (e.g. "dense", "sink_wanda@50%").
        num_parameters / nonzero_parameters: all parameters / those not exactly zero.
        block_parameters / block_nonzero_parameters: the same over the prunable block linears.
        block_sparsity: 1 - block nonzeros / dense block parameters (covers both zeroed weights and removed
            structure); None without a dense reference.
        checkpoint_bytes: size of the saved weight files, when a checkpoint folder was given.
        weight_bytes: in-memory size of the parameters and buffers as evaluated (their dtype).
        perplexity: exp of the ELBO NLL bound per token (an upper bound on perplexity).
        perplexity_ci: (low, high) at ±2 Monte-Carlo standard errors.
        nll_per_token / nll_std_err: ELBO NLL bound (nats/token) and its MC standard error.
        nll_delta_vs_dense / nll_delta_std_err: paired difference to the dense model under the same masks, and the
            standard error of that difference (much smaller than either model's own error).
        masked_accuracy: argmax accuracy on masked tokens (mean over draws).
        mc_num, num_sequences, seq_len, num_tokens, seed: the likelihood estimate's settings.
        bleu_vs_reference / rouge_l_vs_reference: generation vs the held-out text (0-100).
        bleu_vs_dense / rouge_l_vs_dense: generation vs the dense model's generation (0-100; None for the dense).
        num_prompts: generation prompts scored; generations: per prompt {kind, prompt, reference, output}.
        speed: `SpeedResult.to_dict()` of this model; dense_speed: the dense model's, measured interleaved.
        speedup_vs_dense: dense latency per step / this latency per step (same run).
        extra: free-form metadata (method, target sparsity, timings, ...).
    """

    name: str
    num_parameters: int
    nonzero_parameters: int
    block_parameters: int
    block_nonzero_parameters: int
    perplexity: float
    perplexity_ci: tuple[float, float]
    nll_per_token: float
    nll_std_err: float
    masked_accuracy: float
    mc_num: int
    num_sequences: int
    seq_len: int
    num_tokens: int
    seed: int
    block_sparsity: float | None = None
    checkpoint_bytes: int | None = None
    weight_bytes: int | None = None
    nll_delta_vs_dense: float | None = None
    nll_delta_std_err: float | None = None
    bleu_vs_reference: float | None = None
    rouge_l_vs_reference: float | None = None
    bleu_vs_dense: float | None = None
    rouge_l_vs_dense: float | None = None
    num_prompts: int = 0
    generations: list[dict] = field(default_factory=list)
    speed: dict | None = None
    dense_speed: dict | None = None
    speedup_vs_dense: float | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["perplexity_ci"] = list(self.perplexity_ci)
        return _finite(out)

    def to_json(self, **kwargs) -> str:
        kwargs.setdefault("indent", 2)
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict) -> EvaluationResult:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown EvaluationResult keys {unknown}; known keys are {sorted(known)}")
        data = dict(data)
        ci = data.get("perplexity_ci")
        data["perplexity_ci"] = tuple(float("nan") if v is None else v for v in ci) if ci else (math.nan, math.nan)
        for key in ("nll_std_err", "perplexity"):
            if data.get(key) is None:
                data[key] = math.nan
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> EvaluationResult:
        return cls.from_dict(json.loads(text))

    @property
    def speed_ms_per_step(self) -> float | None:
        return None if self.speed is None else self.speed["latency_ms_per_step"]


def _finite(value):
    """JSON has no NaN/inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def card_eval_results(result: EvaluationResult, dense: EvaluationResult | None = None) -> dict[str, dict]:
    """The measured numbers of `result` (and of its dense reference as "base") in the form the model card takes
    (`optimum_sinkprune.hub.save_pruned_model(eval_results=...)`); metrics not measured are left out."""
    dataset = f"held-out split ({result.num_sequences} x {result.seq_len} tokens, {result.mc_num} MC draws)"
    gen_set = f"held-out prompts ({result.num_prompts})"

    def speed(r: EvaluationResult | None, key: str):
        return None if r is None or r.speed is None else r.speed[key]

    dense_speed = None if result.dense_speed is None else result.dense_speed
    entries = {
        "perplexity": (result.perplexity, None if dense is None else dense.perplexity, dataset, "ELBO bound"),
        "masked_accuracy": (result.masked_accuracy, None if dense is None else dense.masked_accuracy, dataset, None),
        "tokens_per_second": (
            speed(result, "tokens_per_second"),
            dense_speed["tokens_per_second"] if dense_speed else speed(dense, "tokens_per_second"),
            "diffusion sampler", "tokens/s",
        ),
        "latency_per_step": (
            speed(result, "latency_ms_per_step"),
            dense_speed["latency_ms_per_step"] if dense_speed else speed(dense, "latency_ms_per_step"),
            "diffusion sampler", "ms",
        ),
        "bleu_vs_reference": (result.bleu_vs_reference, None if dense is None else dense.bleu_vs_reference,
                              gen_set, None),
        "rouge_l_vs_reference": (result.rouge_l_vs_reference, None if dense is None else dense.rouge_l_vs_reference,
                                 gen_set, None),
        "bleu_vs_dense": (result.bleu_vs_dense, None, gen_set, None),
        "rouge_l_vs_dense": (result.rouge_l_vs_dense, None, gen_set, None),
    }
    out = {}
    for metric, (pruned, base, where, unit) in entries.items():
        if pruned is None or (isinstance(pruned, float) and not math.isfinite(pruned)):
            continue
        entry = {"pruned": float(pruned), "dataset": where}
        if base is not None and math.isfinite(base):
            entry["base"] = float(base)
        if unit:
            entry["unit"] = unit
        out[metric] = entry
    return out
