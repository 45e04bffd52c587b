#!/usr/bin/env python
# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Reproduce the paper's LLaDA-8B table: prune with the paper preset, evaluate the dense and the pruned model with
lm-eval at the paper's per-task settings, and print a Markdown table beside the published numbers.

The same as `sinkprune reproduce GSAI-ML/LLaDA-8B-Base --method sink_wanda --sparsity 0.5`, written out with the
library calls.

Cost (estimates, see docs/evaluation.md "Reproducing the paper's table"): pruning LLaDA-8B with the preset needs
about 27.6 GiB of GPU memory for sink_wanda (18.0 GiB for sink_sparsegpt, plus 8 GiB of host RAM), from the
library's estimator on a meta-device model; the printed estimate comes first. Pruning itself is a few minutes of
GPU time; the evaluation dominates: the paper's settings draw 128 masks per answer (guided tasks: two forwards
each), and gsm8k generates 1024 tokens in 1024 steps per question, so the six columns take days of single-GPU
time per model. `--limit` and `--mc-num` make a quick, not comparable, run.

Usage:
    python examples/reproduce_paper.py --results results/                       # the paper's six columns
    python examples/reproduce_paper.py --tasks arc_challenge piqa --limit 100    # a quick subset
    python examples/reproduce_paper.py --estimate-only                           # just the memory estimate
"""

from __future__ import annotations

import argparse
import json
import os
import sys

DEFAULT_MODEL = "GSAI-ML/LLaDA-8B-Base"


def main(argv: list[str] | None = None) -> int:
    from optimum_sinkprune.registry import method_names

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"Hub id or folder (default {DEFAULT_MODEL})")
    p.add_argument("--method", default="sink_wanda", choices=method_names(family="unstructured"))
    p.add_argument("--sparsity", type=float, default=0.5)
    p.add_argument("--tasks", nargs="+", default=None, help="NAME or NAME=PAPER_TASK (default: the table's columns)")
    p.add_argument("--data", default=None, help="local copy of wikitext-2 train (default: the datasets cache)")
    p.add_argument("--num-samples", type=int, default=None, help="override the preset's 128 windows")
    p.add_argument("--seq-len", type=int, default=None, help="override the preset's 4096 tokens")
    p.add_argument("--limit", type=float, default=None, help="documents per task (quick, not comparable)")
    p.add_argument("--mc-num", type=int, default=None, help="Monte-Carlo draws (quick, not comparable)")
    p.add_argument("--include-path", default=None, help="folder of extra lm-eval task YAML files")
    p.add_argument("--results", default=None, help="folder for reproduce.md and reproduce.json")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--device", default=None, help="default: the accelerator when there is one, else cpu")
    p.add_argument("--estimate-only", action="store_true", help="print the memory estimate and stop")
    args = p.parse_args(argv)

    from optimum_sinkprune.configuration import SinkAwarePruningConfig
    from optimum_sinkprune.evaluation.reproduce import reproduce_paper
    from optimum_sinkprune.presets import LLADA_8B_CONFIG_FILE, estimate_model_memory, load_model_config, model_family

    overrides = {k: v for k, v in (("num_samples", args.num_samples), ("seq_len", args.seq_len)) if v is not None}
    # 1. the memory estimate, from the config alone (the default model: the shipped copy of its config.json)
    model_config = load_model_config(LLADA_8B_CONFIG_FILE if args.model == DEFAULT_MODEL else args.model)
    config = SinkAwarePruningConfig.paper_preset(model_family(model_config), args.method, args.sparsity, **overrides)
    print("memory estimate:", estimate_model_memory(model_config, config, dtype=args.dtype).summary())
    if args.estimate_only:
        return 0

    # 2. load, then preset → dense evaluation → pruning → pruned evaluation → the table
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import example_utils as utils
    from transformers import AutoModel, AutoTokenizer

    import torch

    model = AutoModel.from_pretrained(args.model, dtype=getattr(torch, args.dtype))
    model = model.to(args.device or utils.default_device()).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    task_manager = None
    if args.include_path:
        from lm_eval.tasks import TaskManager

        task_manager = TaskManager(include_path=args.include_path)
    limit = None if args.limit is None else (int(args.limit) if args.limit >= 1 else args.limit)
    result = reproduce_paper(model, tokenizer, method=args.method, sparsity=args.sparsity, tasks=args.tasks,
                             calibration_data=args.data, config_overrides=overrides, task_manager=task_manager,
                             limit=limit, mc_num=args.mc_num, model_name=args.model)
    print(result.pruning_summary)
    print(result.report())
    if args.results:
        os.makedirs(args.results, exist_ok=True)
        with open(os.path.join(args.results, "reproduce.md"), "w", encoding="utf-8") as fh:
            fh.write(result.report())
        with open(os.path.join(args.results, "reproduce.json"), "w", encoding="utf-8") as fh:
            json.dump(result.to_dict(), fh, indent=2)
        print(f"wrote {args.results}/reproduce.md and reproduce.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
