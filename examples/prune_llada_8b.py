#!/usr/bin/env python
# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Prune LLaDA-8B with Sink-Aware Wanda, check the ELBO perplexity before and after, save with a model card.

Hardware (a GPU is assumed; the estimate is printed from the config before anything is downloaded):
  LLaDA-8B-Base has 8.02B parameters (d_model 4096, 32 layers, MLP 12288, vocab 126464, untied LM head), so its bf16
  weights take 16.0 GB. Calibration with the defaults (128 samples x 512 tokens) adds ~2.1 GB of float32 block
  activations, one forward ~0.3 GB of logits + ~1.1 GB of captured attention maps (32 layers): about 19.5 GB peak,
  so plan for a 24 GB GPU (L4 / A10G / RTX 4090: fits; A100 / H100 / L40S: comfortable). `--method sink_sparsegpt`
  adds ~1.0 GB of Hessians (about 20.5 GB). On CPU the same run works but needs ~24 GB of RAM and hours.

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
    p.add_argument("--num-samples", type=int, default=128, help="calibration windows (the paper uses 128)")
    p.add_argument("--seq-len", type=int, default=512, help="tokens per calibration window")
    p.add_argument("--diffusion-steps", type=int, default=50)
    p.add_argument("--sample-interval", type=int, default=5)
    p.add_argument("--calibration", default=None, help=".jsonl/.txt texts (default: the shipped calibration split)")
    p.add_argument("--heldout", default=None, help=".jsonl/.txt texts for the perplexity check (default: shipped)")
    p.add_argument("--eval-sequences", type=int, default=8)
    p.add_argument("--eval-seq-len", type=int, default=256)
    p.add_argument("--mc-num", type=int, default=8)
    p.add_argument("--device", default=None, help="default: the accelerator when there is one, else cpu")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--estimate-only", action="store_true", help="print the memory estimate and stop")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)

    estimate = utils.estimate_memory_gb(args.model, method=args.method, num_samples=args.num_samples,
                                        seq_len=args.seq_len, dtype_bytes=torch.empty(0, dtype=getattr(
                                            torch, args.dtype)).element_size())  # fmt: skip
    print("memory estimate:", utils.format_estimate(estimate))
    if args.estimate_only:
        return 0
    utils.ensure_empty(args.output, args.overwrite)

    from transformers import AutoModel, AutoTokenizer

    from optimum_sinkprune.configuration import SinkAwarePruningConfig
    from optimum_sinkprune.hub import save_pruned_model
    from optimum_sinkprune.pruner import SinkAwarePruner

    device = args.device or utils.default_device()
    model = AutoModel.from_pretrained(args.model, dtype=getattr(torch, args.dtype)).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    heldout = utils.heldout_texts(args.heldout)
    ev = dict(num_sequences=args.eval_sequences, seq_len=args.eval_seq_len, mc_num=args.mc_num)
    dense_ppl, dense_se = utils.elbo_perplexity(model, tokenizer, heldout, **ev)
    print(f"dense ELBO perplexity: {dense_ppl:.2f} (MC se {dense_se:.3f} nats/token)")

    config = SinkAwarePruningConfig(method=args.method, sparsity=args.sparsity, pattern=args.pattern,
                                    num_samples=args.num_samples, seq_len=args.seq_len,
                                    diffusion_steps=args.diffusion_steps, sample_interval=args.sample_interval)
    pruner = SinkAwarePruner(model, tokenizer, base_model=args.model)
    model, report = pruner.prune(config, utils.calibration_texts(args.calibration))
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
