# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sinkprune quantize MODEL --method gptq --bits 4 --output DIR`: weight-only quantization (round to nearest, GPTQ,
sink-aware GPTQ), optionally with SparseGPT's joint sparsify + quantize pass (`--prune sink_sparsegpt`), saved in
compressed-tensors' quantized layout that transformers loads without this package."""

from __future__ import annotations

import argparse
import shlex
import sys

NAME = "quantize"
HELP = ("Quantize a diffusion LM's linear layers to int4/int8 weights (RTN, GPTQ or sink-aware GPTQ; optionally "
        "pruned in the same pass) and save it in the compressed-tensors layout")

GROUP_SIZE_NONE = "none"  # the --group-size value for one scale per output row


def _group_size(text: str) -> int | None:
    """`--group-size` as the config takes it: a positive integer, or "none" (one scale per output row)."""
    if text.strip().lower() == GROUP_SIZE_NONE:
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--group-size={text!r} is not an integer or {GROUP_SIZE_NONE!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .cli import (add_calibration_output_arguments, add_loading_arguments, add_placement_arguments,
                      model_argument_help)

    # choices and defaults are the library's (the config dataclass, the registry), which import torch: only when this
    # subcommand is used
    from ..hub.compressed import DENSE, QUANTIZED
    from ..methods.rtn import BITS
    from ..quantization import QUANTIZATION_METHODS, QuantizationConfig
    from ..registry import get_method, method_names

    defaults = QuantizationConfig()
    parser.add_argument("model", help=model_argument_help("the model to quantize"))
    parser.add_argument("--method", default=defaults.method, choices=tuple(QUANTIZATION_METHODS),
                        help="'rtn': round to nearest (no calibration); 'gptq': GPTQ on the clean-input Hessians; "
                             "'sink_gptq': GPTQ on the sink-weighted Hessians of sink_sparsegpt")
    parser.add_argument("--bits", type=int, default=defaults.bits, choices=BITS, help="weight bits (symmetric)")
    parser.add_argument("--group-size", type=_group_size, default=defaults.group_size,
                        help=f"input columns sharing one scale; must divide every quantized layer's in_features; "
                             f"{GROUP_SIZE_NONE!r}: one scale per output row")
    parser.add_argument("--block-size", type=int, default=defaults.block_size, help="GPTQ column block")
    parser.add_argument("--dampening", type=float, default=defaults.dampening,
                        help="GPTQ's Hessian dampening (relative to its mean diagonal)")
    parser.add_argument("--num-samples", type=int, default=defaults.num_samples, help="calibration samples (GPTQ)")
    parser.add_argument("--seq-len", type=int, default=defaults.seq_len, help="tokens per calibration sample")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="calibration seed")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="calibration batch size")
    parser.add_argument("--targets", nargs="+", default=defaults.targets, metavar="PATTERN",
                        help="quantize only the block linears matching these patterns (as the pruning config's "
                             "targets; default: every block linear)")
    parser.add_argument("--ignore", nargs="+", default=None, metavar="PATTERN",
                        help="block linears to leave unquantized (default: none)")
    joint = [name for name in method_names(family="unstructured") if get_method(name).reconstruct]
    parser.add_argument("--prune", default=None, choices=joint, metavar="METHOD",
                        help=f"also prune in the same sweep (SparseGPT's joint sparsify + quantize pass), with one of "
                             f"{', '.join(joint)}: sink_sparsegpt pairs with sink_gptq, sparsegpt with gptq")
    parser.add_argument("--sparsity", type=float, default=0.5, help="with --prune: fraction of weights to remove")
    parser.add_argument("--pattern", default="unstructured", help="with --prune: 'unstructured' or N:M, e.g. 2:4")
    add_calibration_output_arguments(parser, saved="quantized model", data_note="; unused by rtn")
    parser.add_argument("--save-format", default=QUANTIZED, choices=(QUANTIZED, DENSE),
                        help=f"{QUANTIZED!r}: int values and scales (compressed-tensors); {DENSE!r}: the rounded "
                             "weights as plain floats")
    add_loading_arguments(parser)
    add_placement_arguments(parser)


def _configs(args: argparse.Namespace):
    """The quantization config and, with `--prune`, the joint pass's pruning config (carrying the same calibration
    settings); both validate their values, so a bad flag fails here, before anything loads."""
    from ..configuration import SinkAwarePruningConfig
    from ..quantization import QuantizationConfig

    calibration = dict(num_samples=args.num_samples, seq_len=args.seq_len, seed=args.seed, batch_size=args.batch_size,
                       block_size=args.block_size, dampening=args.dampening, targets=args.targets,
                       ignore=list(args.ignore or ()))
    config = QuantizationConfig(method=args.method, bits=args.bits, group_size=args.group_size, **calibration)
    pruning = None
    if args.prune is not None:
        pruning = SinkAwarePruningConfig(method=args.prune, sparsity=args.sparsity, pattern=args.pattern,
                                         **calibration)
    return config, pruning


def quantize_command(args: argparse.Namespace) -> str:
    """The portable command that reproduces this run (the model as a Hub id, an embedded name or a folder name, the
    data file by its name, never a path of this machine), for the model card."""
    import os

    from ..hub.model_card import portable_model_name
    from ..quantization import QuantizationConfig

    defaults = QuantizationConfig()
    parts = ["sinkprune", "quantize", portable_model_name(args.model) or "BASE_MODEL", "--method", args.method,
             "--bits", str(args.bits),
             "--group-size", GROUP_SIZE_NONE if args.group_size is None else str(args.group_size)]
    for flag, key in (("--block-size", "block_size"), ("--dampening", "dampening"), ("--num-samples", "num_samples"),
                      ("--seq-len", "seq_len"), ("--seed", "seed"), ("--batch-size", "batch_size")):
        if getattr(args, key) != getattr(defaults, key):
            parts += [flag, str(getattr(args, key))]
    for flag, value in (("--targets", args.targets), ("--ignore", args.ignore)):
        if value:
            parts += [flag, *value]
    if args.prune is not None:
        parts += ["--prune", args.prune, "--sparsity", str(args.sparsity), "--pattern", args.pattern]
    if args.data is not None:
        parts += ["--data", os.path.basename(os.path.normpath(args.data))]
    parts += ["--output", os.path.basename(os.path.normpath(args.output))]
    return " ".join(shlex.quote(p) for p in parts)


def run(args: argparse.Namespace) -> int:
    from ..hub.compressed import QUANTIZED, check_compressed_tensors
    from ..hub.load import load_model_and_tokenizer
    from ..hub.save import check_save_directory
    from ..quantization import SinkAwareQuantizer
    from .cli import default_calibration_texts, placement_kwargs, progress_enabled

    config, pruning = _configs(args)
    placement = placement_kwargs(args)  # refused here, before anything is written or loaded
    check_save_directory(args.output, overwrite=args.overwrite, argument="--output",
                         remedy="pass --overwrite to replace it")
    if args.save_format == QUANTIZED:
        check_compressed_tensors("--save-format quantized")  # before an hour of calibration, not at the save
    model, tokenizer = load_model_and_tokenizer(args.model, trust_remote_code=args.trust_remote_code,
                                                dtype=args.dtype, tokenizer_required=False, **placement)
    # again with the model: the output must not hold the files its disk-offloaded weights are read from
    check_save_directory(args.output, overwrite=args.overwrite, argument="--output",
                         remedy="pass --overwrite to replace it", model=model)
    quantizer = SinkAwareQuantizer(model, tokenizer)
    data = None
    if config.hessian_method is not None:  # RTN reads no data
        data = args.data if args.data is not None else default_calibration_texts()
    try:
        model, report = quantizer.quantize(config, data, pruning=pruning, progress=progress_enabled(args))
    except (FloatingPointError, MemoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    quantizer.save_pretrained(args.output, overwrite=args.overwrite, save_format=args.save_format,
                              base_model=args.model, reproduce_command=quantize_command(args))
    joint = f", pruned jointly with {report.joint_pruning} to sparsity {report.sparsity:.3f}" \
        if report.joint_pruning else ""
    print(f"quantized {len(report.layers)} layers with {report.method} to int{report.bits} (group size "
          f"{report.group_size if report.group_size is not None else 'per row'}){joint}; zeros "
          f"{report.zero_fraction:.3f}, mean relative weight error {report.mean_relative_error:.4f}, "
          f"{report.wall_time_s:.1f} s")
    print(f"saved to {args.output}")
    return 0
