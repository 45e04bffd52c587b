# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sinkprune reproduce MODEL --method sink_wanda --sparsity 0.5 [--tasks ...]`: prune with the paper preset,
evaluate the dense and the pruned model with lm-eval at the paper's settings, print a table beside the paper's
published numbers."""

from __future__ import annotations

import argparse
import json
import os

from ..files import write_text_atomic

NAME = "reproduce"
HELP = ("Reproduce the paper's table: prune with the paper preset, evaluate dense and pruned with lm-eval at the "
        "paper's settings, compare with the published numbers")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..registry import method_names

    parser.add_argument("model", metavar="MODEL", help="Hub id or local folder of the dense model")
    parser.add_argument("--method", default="sink_wanda", choices=method_names(family="unstructured"),
                        help="pruning method (default sink_wanda)")
    parser.add_argument("--sparsity", type=float, default=0.5, help="fraction of weights to remove (default 0.5)")
    parser.add_argument("--tasks", nargs="+", default=None, metavar="TASK",
                        help="lm-eval tasks, each NAME or NAME=PAPER_TASK (run NAME with PAPER_TASK's settings); "
                             "default: the paper table's columns (mmlu arc_challenge piqa winogrande gsm8k "
                             "hellaswag)")
    parser.add_argument("--data", default=None,
                        help="a local copy of wikitext-2 train (a save_to_disk folder, its parquet files or a .txt "
                             "file); default: the datasets cache")
    parser.add_argument("--num-samples", type=int, default=None, help="override the preset's 128 windows")
    parser.add_argument("--seq-len", type=int, default=None, help="override the preset's 4096 tokens per window")
    parser.add_argument("--limit", type=float, default=None,
                        help="documents per task (a fraction if < 1), for a quick, not comparable, run")
    parser.add_argument("--mc-num", type=int, default=None,
                        help="replace the paper's Monte-Carlo draws (quick, not comparable, runs only)")
    parser.add_argument("--include-path", default=None, help="folder of extra lm-eval task YAML files")
    parser.add_argument("--output", default=None, help="also save the pruned checkpoint in this folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output folder")
    parser.add_argument("--results", default=None, metavar="DIR",
                        help="write reproduce.md (table and notes) and reproduce.json here")
    parser.add_argument("--dtype", default="bfloat16", help="load dtype (default bfloat16)")
    parser.add_argument("--device", default=None, help="where to run (default: the accelerator if any, else cpu)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _default_device() -> str:
    import torch

    if hasattr(torch, "accelerator") and torch.accelerator.is_available():
        return str(torch.accelerator.current_accelerator())
    return "cpu"


def run(args: argparse.Namespace) -> int:
    from ..adapters.registry import adapter_for_model_type
    from ..configuration import SinkAwarePruningConfig
    from ..evaluation.reproduce import default_tasks, reproduce_paper, resolve_tasks
    from ..hub.load import load_model_and_tokenizer, resolve_model_path
    from ..hub.model_card import prune_command
    from ..hub.save import check_save_directory
    from ..presets import estimate_model_memory, load_model_config, model_family

    overrides = {k: v for k, v in (("num_samples", args.num_samples), ("seq_len", args.seq_len)) if v is not None}
    limit = None if args.limit is None else (int(args.limit) if args.limit >= 1 else args.limit)
    if limit is not None and limit <= 0:
        raise ValueError(f"--limit={args.limit} must be > 0")
    # everything that can be checked without the weights is checked first
    path = resolve_model_path(args.model)
    model_config = load_model_config(path)
    family = model_family(model_config)
    config = SinkAwarePruningConfig.paper_preset(family, args.method, args.sparsity, **overrides)
    protocol = getattr(adapter_for_model_type(family), "likelihood_protocol", "llada")
    tasks = args.tasks or list(default_tasks())
    resolve_tasks(tasks, protocol)
    if args.output is not None:
        check_save_directory(args.output, overwrite=args.overwrite, argument="--output",
                             remedy="pass --overwrite to replace it")
    estimate = estimate_model_memory(model_config, config, dtype=args.dtype)
    print(f"memory estimate ({config.method}, {config.num_samples} x {config.seq_len} tokens): {estimate.summary()}")

    task_manager = None
    if args.include_path is not None:
        from lm_eval.tasks import TaskManager

        if not os.path.isdir(args.include_path):
            raise FileNotFoundError(f"--include-path {args.include_path!r} is not a folder")
        task_manager = TaskManager(include_path=args.include_path, include_defaults=False)
        names = {t.name for t in resolve_tasks(tasks, protocol)}
        if not names <= set(task_manager.all_tasks):  # lm-eval's own tasks are needed too (indexing them is slow)
            task_manager = TaskManager(include_path=args.include_path)
    model, tokenizer = load_model_and_tokenizer(path, dtype=args.dtype, device=args.device or _default_device())

    def save(pruner) -> None:
        if args.output is None:
            return
        command = prune_command(config.to_dict(), args.model, data=args.data, output=args.output, preset="paper")
        pruner.save_pretrained(args.output, overwrite=args.overwrite, reproduce_command=command)
        print(f"saved the pruned model to {args.output}")

    result = reproduce_paper(model, tokenizer, method=args.method, sparsity=args.sparsity, tasks=tasks,
                             calibration_data=args.data, config_overrides=overrides, task_manager=task_manager,
                             limit=limit, mc_num=args.mc_num, model_name=args.model, progress=not args.no_progress,
                             pruner_callback=save)
    print(result.pruning_summary)
    print(result.report())
    if args.results is not None:
        os.makedirs(args.results, exist_ok=True)
        for name, text in (("reproduce.md", result.report()),
                           ("reproduce.json", json.dumps(result.to_dict(), indent=2) + "\n")):
            write_text_atomic(os.path.join(args.results, name), text)
        print(f"wrote {os.path.join(args.results, 'reproduce.md')} and reproduce.json")
    return 0
