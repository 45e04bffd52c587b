# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sinkprune eval MODEL [--compare DENSE]`: ELBO perplexity, masked accuracy, generation BLEU / ROUGE-L, size and
speed of a model (and of its dense reference, timed in the same run); prints a table and writes JSON."""

from __future__ import annotations

import argparse
import json
import os

from .cli import add_placement_arguments

NAME = "eval"
HELP = (
    "Evaluate a diffusion LM (ELBO perplexity with Monte-Carlo error, masked-token accuracy, generation BLEU / "
    "ROUGE-L, parameters, checkpoint size, speed), optionally against its dense model in the same run"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="local folder, Hub id or embedded model name of the "
                                                       "(pruned) model")
    parser.add_argument("--compare", metavar="DENSE", default=None, help="the dense model to compare against")
    parser.add_argument("--data", metavar="FILE", default=None,
                        help="held-out texts (.jsonl with 'text', or one passage per line); default: shipped split")
    parser.add_argument("--mc-num", type=int, default=8, help="Monte-Carlo draws of the ELBO (default 8)")
    parser.add_argument("--num-sequences", type=int, default=16, help="sequences scored by the ELBO (default 16)")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per sequence (default 128)")
    parser.add_argument("--num-prompts", type=int, default=8, help="generation prompts (default 8)")
    parser.add_argument("--prompt-tokens", type=int, default=48, help="prompt passage length (default 48)")
    parser.add_argument("--gen-length", type=int, default=32, help="generated tokens per prompt (default 32)")
    parser.add_argument("--steps", type=int, default=32, help="denoising steps (default 32)")
    parser.add_argument("--speed-repeats", type=int, default=3, help="timed sampler runs per model (default 3)")
    parser.add_argument("--no-speed", action="store_true", help="skip the timing")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mask draws (default 0)")
    parser.add_argument("--dtype", default="float32",
                        help="compute dtype (default float32, exact on CPU; bfloat16 halves memory on a GPU)")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow modeling code from the checkpoint")
    parser.add_argument("--output", metavar="FILE", default=None, help="write the results as JSON here")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_placement_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..evaluation import EvaluationSettings, Evaluator, format_table
    from ..evaluation.data import default_heldout_texts, read_texts
    from ..hub.load import load_model_and_tokenizer
    from .cli import placement_kwargs, progress_enabled, set_threads

    set_threads(args.threads)
    settings = EvaluationSettings(
        num_sequences=args.num_sequences, seq_len=args.seq_len, mc_num=args.mc_num, seed=args.seed,
        num_prompts=args.num_prompts, prompt_tokens=args.prompt_tokens, gen_length=args.gen_length, steps=args.steps,
        speed_repeats=args.speed_repeats,
    )
    texts = read_texts(args.data) if args.data else default_heldout_texts()
    placement = placement_kwargs(args)  # malformed options refused before anything loads
    load = dict(dtype=args.dtype, trust_remote_code=args.trust_remote_code)
    model, tokenizer = load_model_and_tokenizer(args.model, **load, **placement)
    # the dense model has the same module names (unless structurally pruned: then a strategy such as auto fits both)
    dense = load_model_and_tokenizer(args.compare, **load, **placement)[0] if args.compare else None
    evaluator = Evaluator(tokenizer, texts=texts, dense_model=dense, settings=settings, progress=progress_enabled(args))
    results = []
    if dense is not None:
        results.append(evaluator.evaluate_dense(checkpoint_dir=_folder(args.compare), measure_speed=False))
    result = evaluator.evaluate(model, name=os.path.basename(os.path.normpath(args.model)) or args.model,
                                checkpoint_dir=_folder(args.model), measure_speed=not args.no_speed)  # fmt: skip
    if dense is not None and result.dense_speed is not None:
        results[0].speed, results[0].speedup_vs_dense = result.dense_speed, 1.0  # the same interleaved run
    results.append(result)
    print(format_table(results, markdown=False))
    print(
        f"\nELBO: {settings.mc_num} MC draws x {settings.num_sequences} sequences of {settings.seq_len} tokens "
        f"(same masks for every model, seed {settings.seed}); generation: {len(evaluator.prompts)} prompts, "
        f"{settings.gen_length} tokens, {settings.steps} steps; threads {torch.get_num_threads()}"
    )
    if args.output:
        payload = {
            "settings": settings.to_dict(),
            "threads": torch.get_num_threads(),
            "model": args.model,
            "compare": args.compare,
            "results": [r.to_dict() for r in results],
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2)
        print(f"wrote {args.output}")
    return 0


def _folder(path: str) -> str | None:
    """The checkpoint folder when `path` is a local folder (or an embedded model's name) with weight files (None for
    a Hub id)."""
    from ..hub.load import resolve_model_path

    path = resolve_model_path(path)
    if os.path.isdir(path) and any(f.endswith((".safetensors", ".bin")) for f in os.listdir(path)):
        return path
    return None
