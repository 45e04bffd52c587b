#!/usr/bin/env python
# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Where do attention sinks sit in a diffusion LM, and do they move while it denoises? (optionally vs an AR model)

For each sampled denoising step t = s / steps of the forward process (and, with --gen-length, along a real sampler
run) the script measures, per head, the position receiving the most attention mass; a head's sink "moves" when that
position spans more than a few tokens over the trajectory. AR models keep theirs on the first token; the paper's
observation is that DLM sinks are transient, which is what Sink-Aware Pruning exploits. Writes sink_report.json,
summary.md and PNG plots (heatmap, variance distribution, mass profiles).

Memory: the model's weights plus one captured attention map per layer (heads x seq^2 float32 per sample); for
LLaDA-8B in bf16 with 8 x 128 tokens that is 16 GB + ~0.1 GB: one 24 GB GPU.

Usage:
    python examples/analyze_sinks.py --output sinks-llada-8b
    python examples/analyze_sinks.py --model GSAI-ML/LLaDA-8B-Base --ar-model meta-llama/Meta-Llama-3-8B --output s
    python examples/analyze_sinks.py --model path/to/tiny --num-samples 2 --seq-len 32 --steps 10 --output out
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
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"Hub id or folder of the DLM (default {DEFAULT_MODEL})")
    p.add_argument("--ar-model", default=None, help="an autoregressive baseline sharing the tokenizer (optional)")
    p.add_argument("--output", default="sink-analysis", help="folder for the report and plots")
    p.add_argument("--data", default=None, help=".jsonl/.txt texts (default: the shipped calibration split)")
    p.add_argument("--num-samples", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--steps", type=int, default=50, help="diffusion steps (t = s / steps)")
    p.add_argument("--sample-interval", type=int, default=5)
    p.add_argument("--gen-length", type=int, default=32, help="also follow a sampler run of this length (0: off)")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None, help="e.g. bfloat16 on a GPU (default: the checkpoint's)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    import optimum_sinkprune  # noqa: F401
    from optimum_sinkprune.analysis import build_sink_report, plot_report, summary_markdown
    from optimum_sinkprune.calibration.data import get_calibration_dataset

    device = args.device or utils.default_device()
    kwargs = {} if args.dtype is None else {"dtype": getattr(torch, args.dtype)}
    model = AutoModel.from_pretrained(args.model, **kwargs).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    ar_model = None
    if args.ar_model:
        ar_model = AutoModelForCausalLM.from_pretrained(args.ar_model, **kwargs).to(device).eval()
    ids = get_calibration_dataset(tokenizer, utils.calibration_texts(args.data), num_samples=args.num_samples,
                                  seq_len=args.seq_len, seed=args.seed, model=model).to(device)
    generation = {}
    if args.gen_length > 0:
        prompt_len = max(2, args.seq_len // 4)
        generation = dict(generation_prompt=ids[:1, :prompt_len],
                          generation_kwargs=dict(steps=args.gen_length, gen_length=args.gen_length,
                                                 block_length=args.gen_length))
    report = build_sink_report(model, ids, ar_model=ar_model, steps=args.steps, sample_interval=args.sample_interval,
                               seed=args.seed, model_name=args.model, ar_model_name=args.ar_model, **generation)
    os.makedirs(args.output, exist_ok=True)
    report.to_json(os.path.join(args.output, "sink_report.json"), indent=1)
    summary = summary_markdown(report)
    with open(os.path.join(args.output, "summary.md"), "w", encoding="utf-8") as f:
        f.write(summary)
    plots = plot_report(report, args.output)
    print(summary)
    print("wrote", ", ".join(["sink_report.json", "summary.md"] + [os.path.basename(v) for v in plots.values()]),
          "to", args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
