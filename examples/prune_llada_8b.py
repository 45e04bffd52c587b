#!/usr/bin/env python
# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Prune LLaDA-8B with Sink-Aware Wanda, check the ELBO perplexity before and after, save with a model card.

By default the run uses the paper's calibration preset (`SinkAwarePruningConfig.paper_preset`: 128 windows of 4096
tokens of wikitext-2 train, 50 diffusion steps sampled every 5, alpha 5, k 2); wikitext-2 comes from the `datasets`
cache, or from a local copy given with `--calibration` (a `save_to_disk` folder, the parquet files, or a .txt file).

Hardware: the memory estimate is printed first, from the model's config on the meta device (for the default model
from the shipped copy of LLaDA-8B-Base's config.json: nothing is downloaded). With the preset it estimates, for
LLaDA-8B-Base in bf16 (8.02B parameters, 14.9 GiB of weights): sink_wanda about 27.6 GiB on the GPU (12 GiB of it
the per-token inputs of one 4096-token forward), sink_sparsegpt / sparsegpt about 18.0 GiB plus 8 GiB of block
activations in host RAM, wanda about 15.6 GiB plus 8 GiB host; so a 40 GB (sink_wanda) or 24 GB GPU. These are
estimates from shapes: allow 10-20% for the allocator.

Usage:
    python examples/prune_llada_8b.py --output llada-8b-sink-wanda-50
    python examples/prune_llada_8b.py --estimate-only                      # just the memory estimate
    python examples/prune_llada_8b.py --model path/to/tiny --num-samples 4 --seq-len 48 --output out  # tiny smoke
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import example_utils as utils  # noqa: E402

DEFAULT_MODEL = "GSAI-ML/LLaDA-8B-Base"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"Hub id or folder (default {DEFAULT_MODEL})")
    p.add_argument("--output", default="llada-8b-sink-wanda", help="folder for the pruned checkpoint")
    p.add_argument("--method", default="sink_wanda", help="pruning method (see `sinkprune prune --help`)")
    p.add_argument("--sparsity", type=float, default=0.5)
    p.add_argument("--pattern", default="unstructured", help="'unstructured' or N:M, e.g. 2:4")
    p.add_argument("--preset", default="paper", choices=["paper", "none"],
                   help="'paper' (default): the paper's calibration; 'none': the library defaults and the shipped "
                        "calibration split")
    p.add_argument("--num-samples", type=int, default=None, help="calibration windows (the paper uses 128)")
    p.add_argument("--seq-len", type=int, default=None, help="tokens per calibration window (the paper: 4096)")
    p.add_argument("--diffusion-steps", type=int, default=None, help="default 50")
    p.add_argument("--sample-interval", type=int, default=None, help="default 5")
    p.add_argument("--calibration", default=None,
                   help="calibration data: with the paper preset a local copy of wikitext-2 (a save_to_disk folder, "
                        "its parquet files, a .txt file; default: the datasets cache); otherwise .jsonl/.txt texts "
                        "(default: the shipped calibration split)")
    p.add_argument("--heldout", default=None, help=".jsonl/.txt texts for the perplexity check (default: shipped)")
    p.add_argument("--eval-sequences", type=int, default=8)
    p.add_argument("--eval-seq-len", type=int, default=256)
    p.add_argument("--mc-num", type=int, default=8)
    p.add_argument("--device", default=None, help="default: the accelerator when there is one, else cpu")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--estimate-only", action="store_true", help="print the memory estimate and stop")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)

    from optimum_sinkprune.configuration import SinkAwarePruningConfig
    from optimum_sinkprune.presets import (
        LLADA_8B_CONFIG_FILE,
        estimate_model_memory,
        load_model_config,
        model_family,
        paper_calibration_data,
    )

    # the shipped copy of LLaDA-8B-Base's config.json: the estimate needs no download
    model_config = load_model_config(LLADA_8B_CONFIG_FILE if args.model == DEFAULT_MODEL else args.model)
    flags = {k: v for k, v in (("num_samples", args.num_samples), ("seq_len", args.seq_len),
                               ("diffusion_steps", args.diffusion_steps), ("sample_interval", args.sample_interval))
             if v is not None}
    if args.preset == "paper":
        config = SinkAwarePruningConfig.paper_preset(model_family(model_config), args.method, args.sparsity,
                                                     pattern=args.pattern, **flags)
    else:
        config = SinkAwarePruningConfig(method=args.method, sparsity=args.sparsity, pattern=args.pattern, **flags)
    print("memory estimate:", estimate_model_memory(model_config, config, dtype=args.dtype).summary())
    if args.estimate_only:
        return 0
    utils.ensure_empty(args.output, args.overwrite)

    from transformers import AutoModel, AutoTokenizer

    from optimum_sinkprune.hub import save_pruned_model
    from optimum_sinkprune.pruner import SinkAwarePruner

    device = args.device or utils.default_device()
    model = AutoModel.from_pretrained(args.model, dtype=getattr(torch, args.dtype)).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    heldout = utils.heldout_texts(args.heldout)
    ev = dict(num_sequences=args.eval_sequences, seq_len=args.eval_seq_len, mc_num=args.mc_num)
    dense_ppl, dense_se = utils.elbo_perplexity(model, tokenizer, heldout, **ev)
    print(f"dense ELBO perplexity: {dense_ppl:.2f} (MC se {dense_se:.3f} nats/token)")

    if args.preset == "paper":
        calibration = paper_calibration_data(tokenizer, config, args.calibration)  # the paper's windows
    else:
        calibration = utils.calibration_texts(args.calibration)
    pruner = SinkAwarePruner(model, tokenizer, base_model=args.model)
    model, report = pruner.prune(config, calibration)
    print(report.summary())

    ppl, se = utils.elbo_perplexity(model, tokenizer, heldout, **ev)
    print(f"pruned ELBO perplexity: {ppl:.2f} (MC se {se:.3f} nats/token; same masks as the dense run)")
    path = save_pruned_model(
        model, args.output, tokenizer=tokenizer, pruning_config=config.to_dict(), report=report.to_dict(),
        base_model=args.model, overwrite=args.overwrite,
        eval_results={"perplexity": {"pruned": ppl, "base": dense_ppl, "dataset": "optimum-sinkprune held-out split",
                                     "unit": "ELBO bound"}},
        reproduce_command="python examples/prune_llada_8b.py " + " ".join(sys.argv[1:] if argv is None else argv),
    )
    print(f"saved to {path} (model card: {os.path.join(path, 'README.md')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
