# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Text-overlap metrics (BLEU through sacrebleu, ROUGE-L through rouge-score) and parameter / checkpoint counts."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from torch import nn

EVAL_EXTRA_HINT = 'install the evaluation extra: pip install "optimum-sinkprune[eval]"'


def _require(module: str, package: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{package} is needed for this metric but is not installed; {EVAL_EXTRA_HINT}") from err


def _paired_backend(hypotheses: list[str], references: list[str], module: str, package: str):
    """The metric's backend `module` (installed as `package`), once `hypotheses` and `references` pair up: bad input
    is reported before a missing package."""
    if len(hypotheses) != len(references):
        raise ValueError(
            f"hypotheses and references must have the same length, got {len(hypotheses)} and {len(references)}"
        )
    if not hypotheses:
        raise ValueError("hypotheses is empty: need at least one (hypothesis, reference) pair")
    return _require(module, package)


def corpus_bleu(hypotheses: list[str], references: list[str]) -> float:
    """Corpus BLEU (sacrebleu defaults: 13a tokenisation, exponential smoothing) on a 0-100 scale.

    Args:
        hypotheses: generated texts.
        references: one reference text per hypothesis.
    """
    sacrebleu = _paired_backend(hypotheses, references, "sacrebleu", "sacrebleu")
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


def mean_rouge_l(hypotheses: list[str], references: list[str]) -> float:
    """Mean ROUGE-L F1 (rouge-score, no stemming) over the pairs, on a 0-100 scale.

    Args:
        hypotheses: generated texts.
        references: one reference text per hypothesis.
    """
    rouge_scorer = _paired_backend(hypotheses, references, "rouge_score.rouge_scorer", "rouge-score")
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.WARNING)  # rouge-score logs "Using default tokenizer" at INFO on every scorer
    try:
        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
        scores = [scorer.score(ref, hyp)["rougeL"].fmeasure for hyp, ref in zip(hypotheses, references)]
    finally:
        absl_logger.setLevel(level)
    return 100.0 * sum(scores) / len(scores)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, nonzero) parameter counts of `model` (`optimum_sinkprune.counting.count_parameters`)."""
    from ..counting import count_parameters as count

    counts = count(model)
    return counts.params, counts.nonzero


def count_block_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, nonzero) weight counts of the prunable block linears (the adapter's `linear_layers`)."""
    from ..adapters import get_adapter
    from ..counting import count_zeros
    from ..methods import read_weight

    total = nonzero = 0
    for layer in get_adapter(model).linear_layers(model).values():
        weight = read_weight(layer)  # an accelerate-offloaded weight is a meta tensor on the layer
        total += weight.numel()
        nonzero += weight.numel() - count_zeros(weight)
    return total, nonzero


def checkpoint_bytes(path: str | os.PathLike) -> int:
    """Bytes of the weight files (`*.safetensors`, `*.bin`) in a saved checkpoint folder."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"checkpoint folder {str(folder)!r} does not exist")
    files = [f for f in folder.iterdir() if f.is_file() and f.suffix in (".safetensors", ".bin")]
    if not files:
        raise FileNotFoundError(f"no *.safetensors or *.bin weight files in {str(folder)!r}")
    return sum(f.stat().st_size for f in files)


def weight_bytes(model: nn.Module) -> int:
    """In-memory bytes of the parameters and buffers of `model`."""
    tensors = {id(t): t for t in list(model.parameters()) + list(model.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values())
