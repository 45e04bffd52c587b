# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sinkprune prune MODEL --method sink_wanda --sparsity 0.5 --output DIR`: prune and save a model."""

from __future__ import annotations

import argparse
import copy
import sys

NAME = "prune"
HELP = "Prune a diffusion LM's linear layers (Sink-Aware Pruning and baselines) and save it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .cli import (add_calibration_output_arguments, add_loading_arguments, add_placement_arguments,
                      model_argument_help)

    # choices and defaults come from the library (the noise module, the config, the registry), which imports torch:
    # only when this subcommand is used
    from ..calibration.noise import PROTECTED_POSITIONS, SCHEDULES
    from ..configuration import SinkAwarePruningConfig
    from ..presets import PRESETS
    from ..registry import method_names

    parser.add_argument("model", help=model_argument_help("the model to prune"))
    parser.add_argument("--method", default=SinkAwarePruningConfig.method, choices=method_names(),
                        help="pruning method")
    parser.add_argument("--sparsity", type=float, default=0.5, help="fraction of weights to remove, in [0, 1)")
    parser.add_argument("--pattern", default="unstructured", help="'unstructured' or N:M, e.g. 2:4 (sparsity 1-N/M)")
    parser.add_argument("--preset", default=None, choices=PRESETS,
                        help="'paper': the paper's calibration (128 windows of 4096 tokens of wikitext-2 train, "
                             "batch 1, 50 steps every 5, alpha 5, k 2, damping 0.01, block 128, the family's noise); "
                             "--data then gives a local copy of wikitext-2 (default: the datasets cache); the flags "
                             "below override it")
    defaults = SinkAwarePruningConfig()
    parser.add_argument("--num-samples", type=int, default=None,
                        help=f"calibration samples (default {defaults.num_samples})")
    parser.add_argument("--seq-len", type=int, default=None,
                        help=f"tokens per calibration sample (default {defaults.seq_len}; the paper preset: 4096)")
    parser.add_argument("--seed", type=int, default=None, help=f"calibration seed (default {defaults.seed})")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"calibration batch size (default {defaults.batch_size})")
    parser.add_argument("--diffusion-steps", type=int, default=None,
                        help=f"diffusion steps K of the noising ladder (default {defaults.diffusion_steps})")
    parser.add_argument("--sample-interval", type=int, default=None,
                        help=f"calibrate at every n-th step (default {defaults.sample_interval})")
    parser.add_argument("--noise-schedule", default=None, choices=SCHEDULES,
                        help="t per sampled step: 'ladder' (s/K) or 'uniform' (U(0,1), stratified in a batch); "
                             "default: the model family's (LLaDA/MMaDA ladder, Dream uniform)")
    parser.add_argument("--protected-positions", default=None, choices=PROTECTED_POSITIONS,
                        help="window positions never masked; default: the family's (LLaDA/MMaDA none, Dream "
                             "first_last)")
    parser.add_argument("--target-param-reduction", type=float, default=None,
                        help="structured methods: fraction of block parameters to remove")
    parser.add_argument("--expert-ratio", type=float, default=None,
                        help="expert methods (reap_experts, sink_experts): fraction of each layer's experts to remove")
    add_calibration_output_arguments(parser, saved="pruned model")
    add_loading_arguments(parser)
    add_placement_arguments(parser)
    parser.add_argument("--evaluate", action="store_true",
                        help="after pruning, measure ELBO perplexity, masked accuracy, generation BLEU/ROUGE-L and "
                             "speed against the dense model (the embedded held-out split) and record them in the "
                             "model card")


def _calibration_flags(args: argparse.Namespace) -> dict:
    names = ("num_samples", "seq_len", "seed", "batch_size", "diffusion_steps", "sample_interval", "noise_schedule",
             "protected_positions")
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _paper_plan(args: argparse.Namespace):
    """The paper preset's config for the model's family, with the memory estimate printed before any loading."""
    from ..configuration import SinkAwarePruningConfig
    from ..hub.load import resolve_model_path
    from ..presets import estimate_model_memory, load_model_config, model_family

    model_config = load_model_config(resolve_model_path(args.model))
    config = SinkAwarePruningConfig.paper_preset(model_family(model_config), args.method, args.sparsity,
                                                 pattern=args.pattern, **_calibration_flags(args))
    estimate = estimate_model_memory(model_config, config, dtype=args.dtype or "bfloat16")
    print(f"memory estimate ({config.method}, {config.num_samples} x {config.seq_len} tokens): {estimate.summary()}")
    return config


def run(args: argparse.Namespace) -> int:
    from ..configuration import SinkAwarePruningConfig
    from ..hub.model_card import prune_command
    from .cli import default_calibration_texts, placement_kwargs, progress_enabled
    from ..hub.save import check_save_directory
    from ..offload import check_device_map
    from ..pruner import SinkAwarePruner

    check_save_directory(args.output, overwrite=args.overwrite, argument="--output",
                         remedy="pass --overwrite to replace it")
    if args.preset == "paper":
        config = _paper_plan(args)
    else:
        config = SinkAwarePruningConfig(
            method=args.method, sparsity=args.sparsity, pattern=args.pattern,
            target_param_reduction=args.target_param_reduction, expert_ratio=args.expert_ratio,
            **_calibration_flags(args),
        )
    load_kwargs = {"dtype": args.dtype} if args.dtype else {}
    load_kwargs.update(placement_kwargs(args))
    if config.is_structured or config.is_expert_pruning:  # removal needs the blocks in memory: refused before loading
        check_device_map(load_kwargs.get("device_map"), load_kwargs.get("offload_folder"),
                         in_memory_for=f"method={config.method!r}")
    pruner = SinkAwarePruner.from_pretrained(args.model, trust_remote_code=args.trust_remote_code, **load_kwargs)
    # again with the model: the output must not hold the files its disk-offloaded weights are read from
    check_save_directory(args.output, overwrite=args.overwrite, argument="--output",
                         remedy="pass --overwrite to replace it", model=pruner.model)
    dense = copy.deepcopy(pruner.model) if args.evaluate else None  # the reference, timed beside the pruned model
    if args.preset == "paper":
        from ..presets import paper_calibration_data

        data = paper_calibration_data(pruner.tokenizer, config, args.data)
    else:
        data = args.data if args.data is not None else default_calibration_texts()
    try:
        model, report = pruner.prune(config, data, progress=progress_enabled(args))
    except (FloatingPointError, MemoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    # the same builder as the Python API's cards: portable names, no paths of this machine
    command = prune_command(config.to_dict(), args.model, data=args.data, preset=args.preset)
    card = {"reproduce_command": command}
    if dense is not None:
        card["eval_results"] = _evaluate(model, dense, pruner.tokenizer, progress=progress_enabled(args))
    pruner.save_pretrained(args.output, overwrite=args.overwrite, **card)
    print(report.summary())
    print(f"saved to {args.output}")
    return 0


def _evaluate(model, dense, tokenizer, *, progress: bool) -> dict:
    """Quality and speed of `model` against `dense` in one run (the evaluator's defaults, the held-out split), in
    the form the model card takes; prints the table."""
    from ..evaluation import EvaluationSettings, Evaluator, card_eval_results, format_table
    from ..evaluation.data import default_heldout_texts

    evaluator = Evaluator(tokenizer, texts=default_heldout_texts(), dense_model=dense, settings=EvaluationSettings(),
                          progress=progress)
    dense_result = evaluator.evaluate_dense(measure_speed=False)
    result = evaluator.evaluate(model, name="pruned")
    if result.dense_speed is not None:
        dense_result.speed, dense_result.speedup_vs_dense = result.dense_speed, 1.0
    print(format_table([dense_result, result], markdown=False))
    return card_eval_results(result, dense_result)
