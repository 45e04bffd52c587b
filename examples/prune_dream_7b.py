#!/usr/bin/env python
# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Prune Dream-7B (Qwen2-layout diffusion LM, grouped-query attention) with Sink-Aware SparseGPT.

Dream's logits at position i predict token i + 1 (it was initialised from an AR model); the adapter shifts them, so
calibration, the sink weights and the ELBO see per-position predictions exactly as for LLaDA.

Hardware (estimate printed from the config before anything is downloaded):
  Dream-v0-Base-7B has 7.62B parameters (hidden 3584, 28 layers, 28 query / 4 KV heads, MLP 18944, vocab 152064),
  i.e. 15.2 GB of bf16 weights; calibration (128 x 512 tokens) adds ~1.9 GB of activations, SparseGPT's Hessians
  ~1.7 GB (the 18944-wide down projection dominates), one forward with captured attention ~1.1 GB: about 20 GB
  peak, so a 24 GB GPU fits and a 40-80 GB one is comfortable. `--method sink_wanda` needs ~1.7 GB less.

Usage:
    python examples/prune_dream_7b.py --output dream-7b-sink-sparsegpt-50
    python examples/prune_dream_7b.py --pattern 2:4 --sparsity 0.5 --output dream-7b-2of4
    python examples/prune_dream_7b.py --model path/to/tiny-dream --num-samples 4 --seq-len 48 --output out
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import example_utils as utils  # noqa: E402

DEFAULT_MODEL = "Dream-org/Dream-v0-Base-7B"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"Hub id or folder (default {DEFAULT_MODEL})")
    p.add_argument("--output", default="dream-7b-sink-sparsegpt", help="folder for the pruned checkpoint")
    p.add_argument("--method", default="sink_sparsegpt")
    p.add_argument("--sparsity", type=float, default=0.5)
    p.add_argument("--pattern", default="unstructured", help="'unstructured' or N:M, e.g. 2:4")
    p.add_argument("--num-samples", type=int, default=128)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--diffusion-steps", type=int, default=50)
    p.add_argument("--sample-interval", type=int, default=5)
    p.add_argument("--calibration", default=None, help=".jsonl/.txt texts (default: the shipped calibration split)")
    p.add_argument("--heldout", default=None, help=".jsonl/.txt texts for the perplexity check (default: shipped)")
    p.add_argument("--eval-sequences", type=int, default=8)
    p.add_argument("--eval-seq-len", type=int, default=256)
    p.add_argument("--mc-num", type=int, default=8)
    p.add_argument("--device", default=None, help="default: the accelerator when there is one, else cpu")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--estimate-only", action="store_true")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)

    dtype = getattr(torch, args.dtype)
    estimate = utils.estimate_memory_gb(args.model, method=args.method, num_samples=args.num_samples,
                                        seq_len=args.seq_len, dtype_bytes=torch.empty(0, dtype=dtype).element_size())
    print("memory estimate:", utils.format_estimate(estimate))
    if args.estimate_only:
        return 0
    utils.ensure_empty(args.output, args.overwrite)

    from transformers import AutoModel, AutoTokenizer

    from optimum_sinkprune.adapters import get_adapter
    from optimum_sinkprune.configuration import SinkAwarePruningConfig
    from optimum_sinkprune.hub import save_pruned_model
    from optimum_sinkprune.pruner import SinkAwarePruner

    device = args.device or utils.default_device()
    model = AutoModel.from_pretrained(args.model, dtype=dtype).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    adapter = get_adapter(model)
    print(f"{adapter.name}: {adapter.num_layers(model)} layers, {adapter.original_num_heads(model)} query / "
          f"{adapter.original_num_kv_heads(model)} KV heads, logits shifted: {adapter.shifts_logits}")
    heldout = utils.heldout_texts(args.heldout)
    ev = dict(num_sequences=args.eval_sequences, seq_len=args.eval_seq_len, mc_num=args.mc_num)
    dense_ppl, _ = utils.elbo_perplexity(model, tokenizer, heldout, **ev)
    print(f"dense ELBO perplexity: {dense_ppl:.2f}")

    config = SinkAwarePruningConfig(method=args.method, sparsity=args.sparsity, pattern=args.pattern,
                                    num_samples=args.num_samples, seq_len=args.seq_len,
                                    diffusion_steps=args.diffusion_steps, sample_interval=args.sample_interval)
    model, report = SinkAwarePruner(model, tokenizer, base_model=args.model).prune(
        config, utils.calibration_texts(args.calibration))
    print(report.summary())
    ppl, se = utils.elbo_perplexity(model, tokenizer, heldout, **ev)
    print(f"pruned ELBO perplexity: {ppl:.2f} (MC se {se:.3f} nats/token; same masks as the dense run)")
    path = save_pruned_model(
        model, args.output, tokenizer=tokenizer, pruning_config=config.to_dict(), report=report.to_dict(),
        base_model=args.model, overwrite=args.overwrite,
        eval_results={"perplexity": {"pruned": ppl, "base": dense_ppl, "dataset": "optimum-sinkprune held-out split",
                                     "unit": "ELBO bound"}},
        reproduce_command="python examples/prune_dream_7b.py " + " ".join(sys.argv[1:] if argv is None else argv),
    )
    print(f"saved to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
