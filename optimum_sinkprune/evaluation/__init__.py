# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Evaluation of (pruned) diffusion LMs: ELBO perplexity with Monte-Carlo uncertainty, masked-token accuracy,
generation quality (BLEU / ROUGE-L), size and speed against the dense model; an lm-evaluation-harness model
(`optimum_sinkprune.evaluation.lm_eval_model`, imported on demand since lm-eval is an optional dependency)."""

from .data import PROMPT_KINDS, GenerationPrompt, build_eval_sequences, build_generation_prompts
from .evaluator import EvaluationSettings, Evaluator, cut_at_token, evaluate_model, mean_and_std_err
from .metrics import (
    checkpoint_bytes,
    corpus_bleu,
    count_block_parameters,
    count_parameters,
    mean_rouge_l,
    weight_bytes,
)
from .result import EvaluationResult, card_eval_results
from .speed import SpeedResult, measure_speed, model_device
from .table import format_table

__all__ = [
    "PROMPT_KINDS",
    "EvaluationResult",
    "EvaluationSettings",
    "Evaluator",
    "GenerationPrompt",
    "SpeedResult",
    "build_eval_sequences",
    "build_generation_prompts",
    "card_eval_results",
    "checkpoint_bytes",
    "corpus_bleu",
    "count_block_parameters",
    "count_parameters",
    "cut_at_token",
    "evaluate_model",
    "format_table",
    "mean_and_std_err",
    "mean_rouge_l",
    "measure_speed",
    "model_device",
    "weight_bytes",
]
