# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Plain-text / Markdown tables of `EvaluationResult`s (used by the CLI, the demo and the benchmark)."""

from __future__ import annotations

import math

from .result import EvaluationResult

def _num(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, fmt)


def _ppl(r: EvaluationResult) -> str:
    if r.nll_std_err is None or not math.isfinite(r.nll_std_err):
        return _num(r.perplexity, ".2f")
    # ±1 standard error of the NLL, propagated to perplexity (delta method: se_ppl = ppl * se_nll)
    return f"{r.perplexity:.2f} ± {r.perplexity * r.nll_std_err:.2f}"


def _delta(r: EvaluationResult) -> str:
    if r.nll_delta_vs_dense is None:
        return "-"
    return f"{r.nll_delta_vs_dense:+.3f} ± {_num(r.nll_delta_std_err, '.3f')}"


def _latency(r: EvaluationResult) -> str:
    if r.speed is None:
        return "-"
    own = f"{r.speed['latency_ms_per_step']:.1f}"
    # the dense latency of the same interleaved run: the speed-up is their ratio
    return own if r.dense_speed is None else f"{own} ({r.dense_speed['latency_ms_per_step']:.1f})"


def _mb(value) -> str:
    return "-" if value is None else f"{value / 1e6:.2f}"


# (header, formatter) per column; a formatter returns "-" for missing values.
COLUMNS = (
    ("model", lambda r: r.name),
    ("params (M)", lambda r: f"{r.nonzero_parameters / 1e6:.2f}/{r.num_parameters / 1e6:.2f}"),
    ("block sparsity", lambda r: _num(None if r.block_sparsity is None else 100 * r.block_sparsity, ".1f") + "%"),
    ("ckpt (MB)", lambda r: _mb(r.checkpoint_bytes)),
    ("ELBO ppl ± se", _ppl),
    ("Δnll vs dense", _delta),
    ("masked acc", lambda r: _num(100 * r.masked_accuracy, ".1f") + "%"),
    ("BLEU ref", lambda r: _num(r.bleu_vs_reference, ".1f")),
    ("ROUGE-L ref", lambda r: _num(r.rouge_l_vs_reference, ".1f")),
    ("BLEU dense", lambda r: _num(r.bleu_vs_dense, ".1f")),
    ("ROUGE-L dense", lambda r: _num(r.rouge_l_vs_dense, ".1f")),
    ("ms/step (dense)", _latency),
    ("speed-up", lambda r: _num(r.speedup_vs_dense, ".2f") + ("x" if r.speedup_vs_dense is not None else "")
     + (" (noisy)" if r.speed is not None and r.speed.get("noisy") else "")),
)


# The short before/after table (the demo prints it; the full one goes to results.md).
COMPACT_COLUMNS = ("model", "params (M)", "ckpt (MB)", "ELBO ppl ± se", "Δnll vs dense", "masked acc", "BLEU ref",
                   "ROUGE-L ref", "BLEU dense", "ROUGE-L dense", "ms/step (dense)", "speed-up")


def format_table(results: list[EvaluationResult], *, markdown: bool = True, compact: bool = False) -> str:
    """One row per result, the columns of `COLUMNS` (`COMPACT_COLUMNS` with `compact=True`); Markdown pipes, or
    aligned plain text with `markdown=False`."""
    if not results:
        raise ValueError("results is empty: nothing to tabulate")
    columns = [c for c in COLUMNS if not compact or c[0] in COMPACT_COLUMNS]
    headers = [h for h, _ in columns]
    rows = [[f(r) for _, f in columns] for r in results]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    return "\n".join([fmt.format(*headers), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows])
