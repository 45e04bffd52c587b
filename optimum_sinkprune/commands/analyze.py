# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sinkprune analyze MODEL --output DIR`: sink dynamics over the denoising trajectory (sink_report.json + PNG
plots)."""

from __future__ import annotations

import argparse
import logging
import os

from .cli import add_placement_arguments, model_argument_help, placement_kwargs, progress_enabled

logger = logging.getLogger(__name__)

DTYPES = ("auto", "bfloat16", "float16", "float32")

# the file name the demo and saved checkpoints use too
SINK_REPORT_NAME = "sink_report.json"

NAME = "analyze"
HELP = (
    "Measure where attention sinks sit across the denoising trajectory of a diffusion LM (optionally next to an "
    "autoregressive baseline); writes sink_report.json, summary.md and PNG plots."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help=model_argument_help("a supported DLM"))
    parser.add_argument("--output", required=True, help="output folder (created if missing)")
    parser.add_argument("--ar-baseline", default=None, metavar="MODEL", help="an autoregressive model to compare with")
    parser.add_argument("--steps", type=int, default=50, help="diffusion steps; t = s/steps (default 50)")
    parser.add_argument("--sample-interval", type=int, default=5, help="analyse every n-th step (default 5)")
    parser.add_argument("--num-samples", type=int, default=8, help="calibration sequences (default 8)")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per sequence, BOS included (default 128)")
    parser.add_argument(
        "--data", default=None, metavar="FILE",
        help="texts: .jsonl with a 'text' field, or plain text with one passage per line "
        "(default: the packaged calibration passages)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the forward-process masks (default 0)")
    parser.add_argument("--top-k", type=int, default=3, help="top positions per head for the sink share (default 3)")
    parser.add_argument("--k-std", type=float, default=2.0, help="sink-set threshold: mean + k·std (default 2)")
    parser.add_argument(
        "--gen-length", type=int, default=0,
        help="also analyse a sampler run generating this many tokens after a prompt cut from each sample (0: off)",
    )
    parser.add_argument("--prompt-len", type=int, default=16, help="prompt tokens for --gen-length (default 16)")
    parser.add_argument(
        "--dtype", default="float32", choices=DTYPES,
        help="weights dtype (default float32; attention mass is always computed in float32)",
    )
    parser.add_argument("--no-plots", action="store_true", help="write the JSON report only")
    parser.add_argument(
        "--trust-remote-code", action="store_true",
        help="allow running modeling code shipped with the checkpoint (only for sources you trust)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_placement_arguments(parser)


def tokenize_texts(
    tokenizer, texts: list[str], *, num_samples: int, seq_len: int, model=None
) -> tuple[torch.LongTensor, torch.LongTensor]:
    """[num_samples, seq_len] ids (BOS first when the tokenizer has one; for a `model` whose family frames its
    inputs, [CLS] … [SEP] around each text; right-padded) and the padding mask."""
    import torch

    from ..calibration.data import input_framing, pad_rows

    opening, closing = input_framing(model, tokenizer, bos_token_id=getattr(tokenizer, "bos_token_id", None))
    pad = getattr(tokenizer, "pad_token_id", None)
    pad = 0 if pad is None else pad
    rows = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids = opening + list(ids)[: max(0, seq_len - len(opening) - len(closing))] + closing
        if len(ids) >= 2:
            rows.append(ids)
        if len(rows) == num_samples:
            break
    if not rows:
        raise ValueError("no text produced at least 2 tokens; check --data")
    if len(rows) < num_samples:
        logger.warning("only %d of the requested %d samples are available", len(rows), num_samples)
    batch = pad_rows([torch.tensor(r, dtype=torch.long) for r in rows], pad)
    return batch.input_ids, batch.attention_mask


def _check_args(args: argparse.Namespace) -> None:
    for name in ("steps", "sample_interval", "num_samples", "seq_len", "top_k", "prompt_len"):
        value = getattr(args, name)
        if value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.sample_interval > args.steps:
        raise ValueError(f"--sample-interval {args.sample_interval} must be <= --steps {args.steps}")
    if args.gen_length < 0:
        raise ValueError(f"--gen-length must be >= 0, got {args.gen_length}")


def run(args: argparse.Namespace) -> int:
    from ..adapters import get_adapter
    from ..analysis import build_sink_report, plot_report, summary_markdown

    _check_args(args)
    if not args.no_plots:
        try:  # fail before the analysis, not after it
            import matplotlib  # noqa: F401
        except ImportError as err:
            raise ValueError(
                "plots need matplotlib: `pip install optimum-sinkprune[plot]`, or pass --no-plots"
            ) from err
    if args.data is not None:
        from ..evaluation.data import read_texts

        texts = read_texts(args.data)
    else:
        from ..assets import load_calibration_texts

        texts = load_calibration_texts()
    from ..hub.load import load_model_and_tokenizer

    placement = placement_kwargs(args)  # malformed options refused before anything loads
    model, tokenizer = load_model_and_tokenizer(args.model, trust_remote_code=args.trust_remote_code, dtype=args.dtype,
                                                **placement)
    adapter = get_adapter(model)
    if not adapter.is_diffusion:
        logger.warning("%s is autoregressive: its input does not change across steps", args.model)
    ids, mask = tokenize_texts(tokenizer, texts, num_samples=args.num_samples, seq_len=args.seq_len, model=model)
    ar_model = ar_ids = ar_mask = None
    if args.ar_baseline:
        # a strategy ("auto", ...) places the baseline too; a module map names MODEL's modules only
        ar_placement = placement if isinstance(placement.get("device_map"), str) else {}
        ar_model, ar_tok = load_model_and_tokenizer(
            args.ar_baseline, trust_remote_code=args.trust_remote_code, dtype=args.dtype, **ar_placement
        )
        get_adapter(ar_model)
        ar_ids, ar_mask = tokenize_texts(ar_tok, texts, num_samples=args.num_samples, seq_len=args.seq_len,
                                         model=ar_model)
    generation_prompt = generation_kwargs = None
    if args.gen_length > 0:
        generation_prompt = ids[:, : min(args.prompt_len, ids.shape[1])]
        steps = max(1, min(args.steps, args.gen_length))
        generation_kwargs = dict(steps=steps, gen_length=args.gen_length, block_length=args.gen_length)
        prompt_mask = mask[:, : generation_prompt.shape[1]]
        if not bool(prompt_mask.all()):
            generation_kwargs["attention_mask"] = prompt_mask
    report = build_sink_report(
        model, ids, attention_mask=mask if not bool(mask.all()) else None,
        ar_model=ar_model, ar_input_ids=ar_ids, ar_attention_mask=None if ar_mask is None or bool(ar_mask.all()) else ar_mask,
        steps=args.steps, sample_interval=args.sample_interval, seed=args.seed, top_k=args.top_k, k_std=args.k_std,
        generation_prompt=generation_prompt, generation_kwargs=generation_kwargs,
        generation_sample_interval=max(1, args.sample_interval // 2),
        model_name=args.model, ar_model_name=args.ar_baseline, progress=progress_enabled(args),
    )
    os.makedirs(args.output, exist_ok=True)
    report.to_json(os.path.join(args.output, SINK_REPORT_NAME))
    table = summary_markdown(report)
    with open(os.path.join(args.output, "summary.md"), "w", encoding="utf-8") as f:
        f.write(table)
    if not args.no_plots:
        plot_report(report, args.output)
    print(table)
    print(f"wrote {os.path.join(os.path.abspath(args.output), SINK_REPORT_NAME)}" + ("" if args.no_plots else " and plots"))
    return 0
