#!/usr/bin/env python
# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Evaluate a (pruned) diffusion LM with lm-evaluation-harness through the `sinkprune-dlm` model.

Loglikelihoods are LLaDA's ELBO estimate: the answer tokens are masked at Monte-Carlo times t with the question
unmasked (`--mc-num` samples per choice; LLaDA's paper uses 128), so multiple-choice accuracy carries MC noise on top
of the usual sampling error. Generation tasks use the diffusion sampler. Needs `pip install "optimum-sinkprune[eval]"`.

The default task is a small offline cloze task built from the shipped held-out split (examples/lm_eval_tasks/);
any lm-eval task name works too (e.g. `--tasks hellaswag,arc_easy`, which download their data sets).

Memory: the model plus `--batch-size` copies of one sequence per forward (LLaDA-8B bf16: 16 GB + ~1 GB at batch 16).

Usage:
    python examples/evaluate_with_lm_eval.py --model ./llada-8b-sink-wanda --mc-num 128
    python examples/evaluate_with_lm_eval.py --model path/to/tiny --limit 4 --mc-num 4 --output results.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import example_utils as utils  # noqa: E402

DEFAULT_MODEL = "GSAI-ML/LLaDA-8B-Base"
LOCAL_TASKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lm_eval_tasks")


def localized_task_dir(include_path: str, out_dir: str, cache_dir: str | None = None) -> str:
    """Copy the task YAMLs of `include_path` into `out_dir` with relative `data_files` made absolute (lm-eval
    resolves them against the working directory), and the `datasets` cache set to `cache_dir` when given."""
    import yaml

    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(include_path):
        if not name.endswith((".yaml", ".yml")):
            continue
        with open(os.path.join(include_path, name), encoding="utf-8") as f:
            cfg = yaml.safe_load(f)
        files = (cfg.get("dataset_kwargs") or {}).get("data_files")
        if isinstance(files, dict):
            for split, rel in files.items():
                if isinstance(rel, str) and not os.path.isabs(rel):
                    files[split] = os.path.join(os.path.abspath(include_path), rel)
        if cache_dir is not None and cfg.get("dataset_path") in ("json", "csv", "text", "parquet"):
            cfg.setdefault("dataset_kwargs", {})["cache_dir"] = cache_dir
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            yaml.safe_dump(cfg, f)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"Hub id or folder (default {DEFAULT_MODEL})")
    p.add_argument("--tasks", default="sinkprune_heldout_cloze", help="comma-separated lm-eval task names")
    p.add_argument("--include-path", default=LOCAL_TASKS, help="folder of extra task YAMLs (default: ours)")
    p.add_argument("--limit", type=int, default=None, help="documents per task (for quick checks)")
    p.add_argument("--mc-num", type=int, default=32, help="Monte-Carlo samples per loglikelihood")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--gen-length", type=int, default=64, help="generate_until tasks: tokens to generate")
    p.add_argument("--steps", type=int, default=64, help="generate_until tasks: denoising steps")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None)
    p.add_argument("--num-fewshot", type=int, default=None)
    p.add_argument("--datasets-cache", default=None, help="cache folder for the local tasks' data (default: HF's)")
    p.add_argument("--output", default=None, help="write lm-eval's results dict as JSON")
    args = p.parse_args(argv)

    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
    except ImportError as err:
        raise SystemExit(f"lm-eval is not installed ({err}); pip install \"optimum-sinkprune[eval]\"") from err
    import optimum_sinkprune.evaluation.lm_eval_model  # noqa: F401  (registers "sinkprune-dlm")

    model_args = dict(pretrained=args.model, mc_num=args.mc_num, batch_size=args.batch_size,
                      gen_length=args.gen_length, steps=args.steps, device=args.device or utils.default_device())
    if args.dtype:
        model_args["dtype"] = args.dtype
    with tempfile.TemporaryDirectory() as tmp:
        tasks_dir = (localized_task_dir(args.include_path, os.path.join(tmp, "tasks"), args.datasets_cache)
                     if args.include_path else None)
        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
        # indexing lm-eval's thousands of built-in tasks takes a while: only when a task is not one of ours
        manager = TaskManager(include_path=tasks_dir, include_defaults=False) if tasks_dir else None
        if manager is None or not set(tasks) <= set(manager.all_tasks):
            manager = TaskManager(include_path=tasks_dir)
        results = lm_eval.simple_evaluate(
            model="sinkprune-dlm", model_args=model_args, tasks=tasks, limit=args.limit,
            num_fewshot=args.num_fewshot, task_manager=manager, log_samples=False,
        )
    for task, metrics in results["results"].items():
        shown = ", ".join(f"{k.split(',')[0]} {v:.4f}" for k, v in metrics.items()
                          if isinstance(v, float) and not k.endswith("stderr,none"))  # fmt: skip
        print(f"{task}: {shown}")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump({"results": results["results"], "config": {k: str(v) for k, v in results["config"].items()}},
                      f, indent=2)
        print("wrote", args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
