#!/usr/bin/env python
# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The benchmark table: every pruning method at several budgets on the shipped tiny LLaDA, evaluated against the
dense model in one run.

Rows
  * unstructured 50 / 60 / 70 % and 2:4 for magnitude, wanda, wanda_diffusion, sparsegpt, sink_wanda, sink_sparsegpt;
  * structured (heads + MLP channels removed) 20 / 38 / 50 % of block parameters for sink_heads, magnitude_heads,
    random_heads, activation_heads.

Columns: ELBO perplexity (± MC standard error) and the paired Δnll vs dense (same masks), masked-token accuracy,
BLEU / ROUGE-L vs the held-out text and vs the dense generation, parameters, checkpoint size, latency per denoising
step and speed-up vs dense (timed interleaved with the dense model in the same row).

Outputs (in --output-dir, default benchmarks/results/): results.json (every row, cached: a rerun skips rows already
measured with the same settings, so an interrupted run resumes), results.md (the tables and the noise statement),
quality_unstructured.png, quality_structured.png.

Usage:
    python benchmarks/run_all.py                 # the full table (~25 min on 2 threads)
    python benchmarks/run_all.py --quick         # a smoke run: few rows, tiny settings (into --output-dir)
    python benchmarks/run_all.py --fresh         # ignore cached rows
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import math
import os
import sys
import tempfile
import time
import traceback

logger = logging.getLogger("benchmarks.run_all")

UNSTRUCTURED = ("magnitude", "wanda", "wanda_diffusion", "sparsegpt", "sink_wanda", "sink_sparsegpt")
STRUCTURED = ("sink_heads", "magnitude_heads", "random_heads", "activation_heads")
UNSTRUCTURED_BUDGETS = (0.5, 0.6, 0.7)
STRUCTURED_BUDGETS = (0.2, 0.38, 0.5)
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


# --------------------------------------------------------------------------------------------------- plan
def plan_rows(quick: bool) -> list[dict]:
    """Every row to measure: {key, family, method, budget, pattern}."""
    rows = []
    if quick:
        unstructured, budgets, nm_methods = ("magnitude", "sink_wanda"), (0.5,), ("wanda",)
        structured, s_budgets = ("sink_heads", "random_heads"), (0.38,)
    else:
        unstructured, budgets, nm_methods = UNSTRUCTURED, UNSTRUCTURED_BUDGETS, UNSTRUCTURED
        structured, s_budgets = STRUCTURED, STRUCTURED_BUDGETS
    for budget in budgets:
        for method in unstructured:
            rows.append(dict(key=f"{method}@{budget:.0%}", family="unstructured", method=method, budget=budget,
                             pattern="unstructured"))  # fmt: skip
    for method in nm_methods:
        rows.append(dict(key=f"{method}@2:4", family="2:4", method=method, budget=0.5, pattern="2:4"))
    for budget in s_budgets:
        for method in structured:
            rows.append(dict(key=f"{method}@{budget:.0%}", family="structured", method=method, budget=budget,
                             pattern="structured"))  # fmt: skip
    return rows


def settings_for(quick: bool, calibration_samples: int | None):
    from optimum_sinkprune.evaluation import EvaluationSettings

    if quick:
        evaluation = EvaluationSettings(num_sequences=2, seq_len=48, mc_num=2, batch_size=2, num_prompts=2,
                                        prompt_tokens=16, gen_length=8, steps=4, speed_repeats=1, speed_warmup=0)
        calibration = dict(num_samples=calibration_samples or 4, seq_len=48, diffusion_steps=10, sample_interval=5)
    else:
        evaluation = EvaluationSettings(num_sequences=16, seq_len=128, mc_num=8, batch_size=16, num_prompts=8,
                                        prompt_tokens=48, gen_length=32, steps=32, speed_repeats=3, speed_warmup=1)
        calibration = dict(num_samples=calibration_samples or 16, seq_len=128, diffusion_steps=50, sample_interval=10)
    return evaluation, calibration


def pruning_config(row: dict, calibration: dict, seed: int):
    from optimum_sinkprune.configuration import SinkAwarePruningConfig

    if row["family"] == "structured":
        return SinkAwarePruningConfig(method=row["method"], target_param_reduction=row["budget"],
                                      structured_mode="remove", seed=seed, **calibration)  # fmt: skip
    return SinkAwarePruningConfig(method=row["method"], sparsity=row["budget"], pattern=row["pattern"], seed=seed,
                                  **calibration)  # fmt: skip


# --------------------------------------------------------------------------------------------------- cache
def signature(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_cache(path: str, sig: str, fresh: bool) -> dict:
    empty = {"signature": sig, "rows": {}, "failed": {}}
    if fresh or not os.path.isfile(path):
        return empty
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        logger.warning("ignoring unreadable cache %s (%s)", path, err)
        return empty
    if data.get("signature") != sig:
        logger.info("cached results in %s were measured with other settings; starting afresh", path)
        return empty
    data.setdefault("rows", {})
    data["failed"] = {}  # failed rows are retried
    return data


def write_json(path: str, data: dict) -> None:
    """Atomic write: a crash never leaves a truncated results.json (it is also the resume cache)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".json", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; the results are a public artefact
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------- tables
def _fmt(value, spec: str, missing: str = "-") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    return format(value, spec)


def _model_label(header: dict) -> str:
    """How titles name the benchmarked model."""
    model = header.get("model") or "optimum_sinkprune/assets/tiny-llada"
    return "the shipped tiny LLaDA" if model.rstrip("/").endswith("tiny-llada") else f"`{model}`"


def markdown(cache: dict, rows: list[dict], header: dict) -> str:
    from optimum_sinkprune.evaluation import EvaluationResult

    dense = EvaluationResult.from_dict(cache["dense"])
    results = {k: EvaluationResult.from_dict(v) for k, v in cache["rows"].items()}
    s = header["evaluation"]
    lines = [
        f"# Benchmark: pruning methods at equal budgets on {_model_label(header)}",
        "",
        f"Model: `{header['model']}` ({dense.num_parameters / 1e6:.2f}M parameters, "
        f"{dense.block_parameters / 1e6:.2f}M in prunable block linears). Generated by `benchmarks/run_all.py"
        f"{' --quick' if header['quick'] else ''}` on {header['date']} in {header['wall_minutes']:.1f} min, "
        f"{header['threads']} torch threads, {header['device']}.",
        "",
        "**Noise.** Perplexity is the ELBO bound, exp(NLL/token), estimated with "
        f"{s['mc_num']} Monte-Carlo draws (t, mask) x {s['num_sequences']} held-out sequences of {s['seq_len']} "
        "tokens; draw k uses the same seed for every model, so all rows see identical masks. `± se` is one MC "
        "standard error of that model's own estimate; `Δnll` is the paired per-draw difference to the dense model "
        "(nats/token) with its own standard error, which is what ranks methods: differences within ~2 se of Δnll "
        "are noise. Masked accuracy is over the same masks. BLEU / ROUGE-L (0-100) come from "
        f"{s['num_prompts']} greedy generations ({s['gen_length']} tokens, {s['steps']} steps) on held-out "
        "continuation and summary-style prompts: vs the true text (`ref`) and vs the dense model's output "
        f"(`dense`); with {s['num_prompts']} prompts they move by several points between close methods. Speed: the "
        f"fastest of {s['speed_repeats']} sampler runs (batch {s['speed_batch']}) per model, interleaved with the "
        "dense model inside the row; `ms/step (dense)` shows both, the speed-up is their ratio; timings on a shared "
        "CPU vary by ~10-20 % run to run."
        + (" Only the structured rows were timed (`--speed-rows structured`); the other rows show `-`."
           if header.get("speed_rows") == "structured" else ""),
        "",
        f"**Calibration** (every method that needs it): {header['calibration']['num_samples']} windows of "
        f"{header['calibration']['seq_len']} tokens from the calibration split; diffusion-aware methods use "
        f"{header['calibration']['diffusion_steps']} diffusion steps sampled every "
        f"{header['calibration']['sample_interval']} (fewer than the paper's 128 samples, to fit the time budget). "
        f"Checkpoint sizes are of safetensors saved in the dense checkpoint's dtype ({header['save_dtype']}); "
        "unstructured zeros are stored densely, so only structured pruning shrinks files and latency.",
        "",
    ]
    cols = ("method", "budget", "params (M, nonzero/total)", "ckpt (MB)", "ELBO ppl ± se", "Δnll vs dense",
            "masked acc", "BLEU ref", "ROUGE-L ref", "BLEU dense", "ROUGE-L dense", "ms/step (dense)", "speed-up")

    def line(name: str, budget: str, r: EvaluationResult) -> str:
        ppl = f"{r.perplexity:.2f} ± {r.perplexity * r.nll_std_err:.2f}" if r.nll_std_err == r.nll_std_err else "-"
        delta = "-" if r.nll_delta_vs_dense is None else (
            f"{r.nll_delta_vs_dense:+.3f} ± {_fmt(r.nll_delta_std_err, '.3f')}")
        speed = "-" if r.speed is None else (
            f"{r.speed['latency_ms_per_step']:.1f}" + (f" ({r.dense_speed['latency_ms_per_step']:.1f})"
                                                       if r.dense_speed else ""))
        cells = (name, budget, f"{r.nonzero_parameters / 1e6:.2f}/{r.num_parameters / 1e6:.2f}",
                 _fmt(None if r.checkpoint_bytes is None else r.checkpoint_bytes / 1e6, ".2f"), ppl, delta,
                 f"{100 * r.masked_accuracy:.1f}%", _fmt(r.bleu_vs_reference, ".1f"),
                 _fmt(r.rouge_l_vs_reference, ".1f"), _fmt(r.bleu_vs_dense, ".1f"), _fmt(r.rouge_l_vs_dense, ".1f"),
                 speed, _fmt(r.speedup_vs_dense, ".2f") + ("x" if r.speedup_vs_dense is not None else ""))
        return "| " + " | ".join(cells) + " |"

    families = (("unstructured", "Unstructured (per-layer sparsity)"), ("2:4", "Semi-structured 2:4"),
                ("structured", "Structured: heads and MLP channels removed (fraction of block parameters)"))
    for family, title in families:
        fam_rows = [r for r in rows if r["family"] == family]
        if not fam_rows:
            continue
        lines += [f"## {title}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines.append(line("dense", "0%", dense))
        for row in sorted(fam_rows, key=lambda r: (r["budget"], r["method"])):
            budget = "2:4" if family == "2:4" else f"{row['budget']:.0%}"
            if row["key"] in results:
                lines.append(line(row["method"], budget, results[row["key"]]))
            elif row["key"] in cache.get("failed", {}):
                lines.append(f"| {row['method']} | {budget} | failed: {cache['failed'][row['key']][:120]} |")
        lines.append("")
    best = _best_by_budget(results, rows)
    if best:
        lines += ["## Lowest Δnll per budget", ""]
        lines += [f"- {budget}: {key} (Δnll {d:+.3f} ± {se:.3f})" for budget, (key, d, se) in best.items()]
        lines.append("")
    return "\n".join(lines)


def _best_by_budget(results: dict, rows: list[dict]) -> dict:
    best = {}
    for row in rows:
        r = results.get(row["key"])
        if r is None or r.nll_delta_vs_dense is None:
            continue
        budget = "2:4" if row["family"] == "2:4" else f"{row['family']} {row['budget']:.0%}"
        if budget not in best or r.nll_delta_vs_dense < best[budget][1]:
            best[budget] = (row["key"], r.nll_delta_vs_dense, r.nll_delta_std_err or float("nan"))
    return best


# --------------------------------------------------------------------------------------------------- plots
def _dense_value(title: str, value):
    """The dense model's point at x = 0: its own value, or by definition 1x speed-up / 100 overlap with itself."""
    if value is not None:
        return value
    if "speed-up" in title:
        return 1.0
    if "vs dense" in title:
        return 100.0
    return None


def plot(cache: dict, rows: list[dict], output_dir: str) -> list[str]:
    """quality_unstructured.png and quality_structured.png: metric vs budget, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from optimum_sinkprune.evaluation import EvaluationResult

    dense = EvaluationResult.from_dict(cache["dense"])
    results = {k: EvaluationResult.from_dict(v) for k, v in cache["rows"].items()}
    metrics = (
        ("ELBO perplexity (± 1 se)", lambda r: r.perplexity, lambda r: r.perplexity * r.nll_std_err),
        ("masked-token accuracy (%)", lambda r: 100 * r.masked_accuracy, None),
        ("BLEU vs dense output", lambda r: r.bleu_vs_dense, None),
        ("ROUGE-L vs dense output", lambda r: r.rouge_l_vs_dense, None),
        ("speed-up vs dense (x)", lambda r: r.speedup_vs_dense, None),
        ("checkpoint size (MB)", lambda r: None if r.checkpoint_bytes is None else r.checkpoint_bytes / 1e6, None),
    )
    written = []
    for family, xlabel, fname in (("unstructured", "sparsity of the pruned layers", "quality_unstructured.png"),
                                  ("structured", "fraction of block parameters removed", "quality_structured.png")):
        fam = [r for r in rows if r["family"] == family and r["key"] in results]
        nm = [r for r in rows if r["family"] == "2:4" and r["key"] in results] if family == "unstructured" else []
        if not fam and not nm:
            continue
        fig, axes = plt.subplots(2, 3, figsize=(15, 8))
        methods = sorted({r["method"] for r in fam + nm})
        colors = {m: plt.cm.tab10(i % 10) for i, m in enumerate(methods)}
        for ax, (title, get, err) in zip(axes.flat, metrics):
            for method in methods:
                pts = sorted((r["budget"], results[r["key"]]) for r in fam if r["method"] == method)
                xs = [0.0] + [b for b, _ in pts]
                ys = [_dense_value(title, get(dense))]
                ys += [get(res) for _, res in pts]
                if any(y is None for y in ys):
                    continue
                es = None if err is None else [err(dense)] + [err(res) for _, res in pts]
                ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=method, color=colors[method])
                for r in nm:
                    if r["method"] == method and get(results[r["key"]]) is not None:
                        ax.scatter([0.5], [get(results[r["key"]])], marker="s", facecolors="none",
                                   edgecolors=[colors[method]], s=70)
            ax.set_title(title)
            ax.set_xlabel(xlabel)
            ax.grid(alpha=0.3)
        axes.flat[0].legend(fontsize=8, title="hollow squares: 2:4" if nm else None, title_fontsize=8)
        fig.suptitle(f"{family} pruning of {_model_label(cache.get('header', {}))} (x = 0: dense)")
        fig.tight_layout()
        path = os.path.join(output_dir, fname)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


# --------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="dense DLM folder (default: the shipped tiny LLaDA)")
    parser.add_argument("--heldout", default=None, help="held-out texts (.jsonl/.txt; default: shipped split)")
    parser.add_argument("--calibration", default=None, help="calibration texts (.jsonl/.txt; default: shipped)")
    parser.add_argument("--output-dir", default=RESULTS_DIR, help="where results.json/.md and plots go")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 rows, tiny settings")
    parser.add_argument("--fresh", action="store_true", help="ignore cached rows in results.json")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--calibration-samples", type=int, default=None, help="override calibration windows")
    parser.add_argument("--only", default=None, help="comma-separated row keys or methods to run (others kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--speed-rows", choices=("all", "structured"), default="all",
                        help="rows whose sampler speed is timed: all, or only the structured ones (unstructured and 2:4 "
                             "sparsity keep dense shapes and run at dense speed on CPU; timing them is most of a row)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")

    import torch

    import optimum_sinkprune  # noqa: F401
    from optimum_sinkprune import assets
    from optimum_sinkprune.commands.demo import prune_copy
    from optimum_sinkprune.evaluation import Evaluator
    from optimum_sinkprune.evaluation.data import read_texts
    from optimum_sinkprune.hub.load import load_model_and_tokenizer, resolve_model_path
    from optimum_sinkprune.evaluation.metrics import checkpoint_bytes

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model_path = args.model or assets.default_model_path()
    heldout = read_texts(args.heldout) if args.heldout else assets.load_heldout_texts()
    calibration_texts = read_texts(args.calibration) if args.calibration else assets.load_calibration_texts()
    evaluation, calibration = settings_for(args.quick, args.calibration_samples)
    rows = plan_rows(args.quick)
    if args.only:
        wanted = {w.strip() for w in args.only.split(",") if w.strip()}
        unknown = wanted - {r["key"] for r in rows} - {r["method"] for r in rows}
        if unknown:
            parser.error(f"--only names unknown rows/methods {sorted(unknown)}; rows are {[r['key'] for r in rows]}")
        todo = [r for r in rows if r["key"] in wanted or r["method"] in wanted]
    else:
        todo = rows

    local_path = resolve_model_path(model_path)  # an embedded model's name -> its folder
    dense, tokenizer = load_model_and_tokenizer(model_path)
    save_dtype = next(dense.parameters()).dtype
    dense = dense.float()
    weights_sig = signature({"bytes": checkpoint_bytes(model_path) if os.path.isdir(model_path) else model_path,
                             "mtime": [os.path.getmtime(os.path.join(model_path, f)) for f in sorted(
                                 os.listdir(model_path)) if f.endswith(".safetensors")]
                             if os.path.isdir(model_path) else None})  # fmt: skip
    sig = signature({"model": os.path.abspath(model_path) if os.path.isdir(model_path) else model_path,
                     "weights": weights_sig, "evaluation": evaluation.to_dict(), "calibration": calibration,
                     "seed": args.seed, "quick": args.quick, "threads": args.threads,
                     "texts": signature({"h": heldout, "c": calibration_texts})})  # fmt: skip
    json_path = os.path.join(args.output_dir, "results.json")
    cache = load_cache(json_path, sig, args.fresh)
    header = {
        "model": model_path if not os.path.isdir(model_path) or args.model else "optimum_sinkprune/assets/tiny-llada",
        "quick": args.quick, "threads": args.threads, "device": str(next(dense.parameters()).device),
        "evaluation": evaluation.to_dict(), "calibration": calibration, "seed": args.seed,
        "save_dtype": str(save_dtype).replace("torch.", ""), "speed_rows": args.speed_rows,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    evaluator = Evaluator(tokenizer, texts=heldout, dense_model=dense, settings=evaluation,
                          progress=not args.no_progress)  # fmt: skip
    if "dense" not in cache:
        dense_result = evaluator.evaluate_dense(measure_speed=False)
        dense_result.checkpoint_bytes = checkpoint_bytes(local_path) if os.path.isdir(local_path) else None
        cache["dense"] = dense_result.to_dict()
    elif cache["dense"].get("checkpoint_bytes") is None and os.path.isdir(local_path):
        cache["dense"]["checkpoint_bytes"] = checkpoint_bytes(local_path)
    previous_wall = float(cache.get("wall_seconds", 0.0))
    rows_done = 0
    for i, row in enumerate(todo):
        if row["key"] in cache["rows"]:
            logger.info("[%d/%d] %s: cached", i + 1, len(todo), row["key"])
            continue
        logger.info("[%d/%d] %s: pruning", i + 1, len(todo), row["key"])
        row_start = time.perf_counter()
        try:
            config = pruning_config(row, calibration, args.seed)
            model, report = prune_copy(dense, tokenizer, config, calibration_texts, progress=not args.no_progress)
            timed = args.speed_rows == "all" or row["family"] == "structured"
            result = evaluator.evaluate(model, name=row["key"], measure_speed=timed, extra={
                "method": row["method"], "family": row["family"], "budget": row["budget"], "pattern": row["pattern"],
                "pruning_wall_time_s": round(report.wall_time_s, 2), "structured": report.structured,
            })
            with tempfile.TemporaryDirectory() as tmp:
                copy.deepcopy(model).to(save_dtype).save_pretrained(tmp)
                result.checkpoint_bytes = checkpoint_bytes(tmp)
            result.extra["row_wall_time_s"] = round(time.perf_counter() - row_start, 2)
            cache["rows"][row["key"]] = result.to_dict()
            cache["failed"].pop(row["key"], None)
            rows_done += 1
            logger.info("[%d/%d] %s: ppl %.2f (Δnll %+.3f ± %.3f), %.0f s", i + 1, len(todo), row["key"],
                        result.perplexity, result.nll_delta_vs_dense, result.nll_delta_std_err,
                        time.perf_counter() - row_start)
            del model
        except KeyboardInterrupt:
            raise
        except Exception as err:  # one broken method must not lose the other rows
            logger.error("[%d/%d] %s failed: %s\n%s", i + 1, len(todo), row["key"], err, traceback.format_exc())
            cache["failed"][row["key"]] = f"{type(err).__name__}: {err}"
        cache["wall_seconds"] = previous_wall + time.perf_counter() - start
        cache["header"] = {**header, "wall_minutes": cache["wall_seconds"] / 60}
        write_json(json_path, cache)
    cache["wall_seconds"] = previous_wall + time.perf_counter() - start
    cache["header"] = {**header, "wall_minutes": cache["wall_seconds"] / 60}
    write_json(json_path, cache)
    md = markdown(cache, rows, cache["header"])
    with open(os.path.join(args.output_dir, "results.md"), "w", encoding="utf-8") as f:
        f.write(md + "\n")
    plots = plot(cache, rows, args.output_dir)
    logger.info("measured %d rows (%d cached, %d failed) in %.1f min; wrote %s, results.md, %s", rows_done,
                len(cache["rows"]) - rows_done, len(cache["failed"]), (time.perf_counter() - start) / 60,
                json_path, ", ".join(os.path.basename(p) for p in plots))
    return 1 if cache["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
