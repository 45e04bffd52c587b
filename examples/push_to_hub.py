#!/usr/bin/env python
# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Prune a diffusion LM, save it with its model card (method, budget, measured perplexity vs the dense model), and
push it to the Hugging Face Hub in one commit.

Needs a write token: `--token`, the HF_TOKEN environment variable, or `hf auth login`. The local checkpoint is kept
in `--output`; a failed push can be retried with `sinkprune push OUTPUT REPO_ID`.

Memory: as for pruning (see prune_llada_8b.py: ~19.5 GB for LLaDA-8B with Sink-Aware Wanda on a GPU).

Usage:
    python examples/push_to_hub.py --repo-id your-name/llada-8b-sink-wanda-50
    python examples/push_to_hub.py --model path/to/tiny --repo-id me/tiny-pruned --num-samples 4 --seq-len 48
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
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"Hub id or folder of the dense DLM (default {DEFAULT_MODEL})")
    p.add_argument("--repo-id", required=True, help="namespace/name of the Hub repo to push to")
    p.add_argument("--output", default=None, help="local checkpoint folder (default: ./<repo name>)")
    p.add_argument("--method", default="sink_wanda")
    p.add_argument("--sparsity", type=float, default=0.5)
    p.add_argument("--pattern", default="unstructured")
    p.add_argument("--num-samples", type=int, default=128)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--calibration", default=None)
    p.add_argument("--heldout", default=None)
    p.add_argument("--eval-sequences", type=int, default=8)
    p.add_argument("--eval-seq-len", type=int, default=256)
    p.add_argument("--mc-num", type=int, default=8)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--private", action="store_true")
    p.add_argument("--token", default=None, help="write token (default: HF_TOKEN, then `hf auth login`)")
    p.add_argument("--endpoint", default=None, help="Hub URL (default: HF_ENDPOINT, then huggingface.co)")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)

    from transformers import AutoModel, AutoTokenizer

    from optimum_sinkprune.configuration import SinkAwarePruningConfig
    from optimum_sinkprune.hub import push_to_hub, save_pruned_model, validate_repo_id
    from optimum_sinkprune.pruner import SinkAwarePruner

    validate_repo_id(args.repo_id)  # fail before hours of pruning, not after
    output = args.output or args.repo_id.split("/")[-1]
    utils.ensure_empty(output, args.overwrite)
    device = args.device or utils.default_device()
    model = AutoModel.from_pretrained(args.model, dtype=getattr(torch, args.dtype)).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    heldout = utils.heldout_texts(args.heldout)
    ev = dict(num_sequences=args.eval_sequences, seq_len=args.eval_seq_len, mc_num=args.mc_num)
    dense_ppl, _ = utils.elbo_perplexity(model, tokenizer, heldout, **ev)

    config = SinkAwarePruningConfig(method=args.method, sparsity=args.sparsity, pattern=args.pattern,
                                    num_samples=args.num_samples, seq_len=args.seq_len)
    model, report = SinkAwarePruner(model, tokenizer, base_model=args.model).prune(
        config, utils.calibration_texts(args.calibration))
    ppl, _ = utils.elbo_perplexity(model, tokenizer, heldout, **ev)
    print(f"ELBO perplexity: dense {dense_ppl:.2f} -> pruned {ppl:.2f}")
    path = save_pruned_model(
        model, output, tokenizer=tokenizer, pruning_config=config.to_dict(), report=report.to_dict(),
        base_model=args.model, overwrite=args.overwrite,
        eval_results={"perplexity": {"pruned": ppl, "base": dense_ppl, "dataset": "optimum-sinkprune held-out split",
                                     "unit": "ELBO bound"}},
    )
    url = push_to_hub(path, args.repo_id, private=args.private, token=args.token, endpoint=args.endpoint)
    print(f"pushed {path} -> {url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
