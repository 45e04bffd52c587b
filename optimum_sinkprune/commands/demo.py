# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sinkprune demo [--output DIR] [--quick]`: the whole pipeline on the embedded default model in a few minutes."""

from __future__ import annotations

import argparse

NAME = "demo"
HELP = (
    "Run Sink-Aware Pruning end to end on the embedded tiny LLaDA: generate, analyse attention sinks, prune with "
    "sink_wanda (50%%) and sink_heads (38%% of block parameters), evaluate against the dense model, save both "
    "checkpoints with model cards, print a before/after table"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="sinkprune-demo", help="output folder (default ./sinkprune-demo)")
    parser.add_argument("--model", default=None, help="a DLM folder or Hub id instead of the embedded model")
    parser.add_argument("--quick", action="store_true", help="smoke-sized run (seconds; numbers not meaningful)")
    parser.add_argument("--sparsity", type=float, default=0.5, help="sink_wanda sparsity (default 0.5)")
    parser.add_argument("--param-reduction", type=float, default=0.38,
                        help="fraction of block parameters sink_heads removes (default 0.38)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="reuse a non-empty output folder")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..demo import run_demo

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    result = run_demo(
        args.output, model_path=args.model, quick=args.quick, unstructured_sparsity=args.sparsity,
        structured_reduction=args.param_reduction, seed=args.seed, overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    print(f"\nprompt: ...{result.prompt[-80:]!r}\ndense model continues: {result.generation!r}\n")
    print(result.table)
    print()
    for note in result.notes:
        print(f"- {note}")
    print(f"\nsaved: {', '.join(result.checkpoints.values())}")
    print(f"sink analysis: {result.output_dir}/sink_analysis/  results: {result.output_dir}/results.md")
    print(f"done in {result.wall_time_s:.0f} s")
    return 0
