#!/usr/bin/env python
# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Reproduce the tiny default models shipped in `optimum_sinkprune/assets/` (CPU, seeded, step-based schedule).

* `--kind dlm`: a LLaDA masked-diffusion LM (`LLaDAModelLM`), LLaDA's pretraining loss.
* `--kind ar`: a transformers `LlamaForCausalLM` of the same shape, next-token loss (the autoregressive baseline).

Data: the train split of `scripts/build_corpus.py` (KJV chapters + Shakespeare scenes), tokenized with the shipped
byte-level BPE, documents joined by [EOS] into one stream. Every training sequence is [BOS] followed by a contiguous
window of `seq_len - 1` stream tokens at a random offset.

The model is saved (bf16 safetensors, tokenizer, `training_args.json`; `sampler_config.json` for the DLM) into
`--output-dir` every `--save-every-minutes` and at the end, so the run can be stopped at any time and still leave a
usable model. `--max-minutes` bounds the wall-clock time; the cosine schedule runs over `--max-steps`.

Example (the commands used for the shipped weights are in the model cards):
    python scripts/train_tiny_models.py --kind dlm --max-steps 1000 --max-minutes 65 --threads 1 \
        --log-file runs/train_dlm.log
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_corpus  # noqa: E402

import optimum_sinkprune  # noqa: E402,F401  (registers `llada`: AutoTokenizer reads config.json of the DLM folder)

ASSETS = REPO / "optimum_sinkprune" / "assets"
DEFAULT_OUT = {"dlm": ASSETS / "tiny-llada", "ar": ASSETS / "tiny-llama-ar"}
TOKENIZER_DIR = ASSETS / "tiny-llada"
CACHE = REPO / "runs" / "cache"

PAD, BOS, EOS, MASK = 0, 1, 2, 3
VOCAB = 4096
SAMPLER_DEFAULTS = {
    "steps": 64,
    "gen_length": 64,
    "block_length": 32,
    "temperature": 0.0,
    "remasking": "low_confidence",
    "mask_token_id": MASK,
}


def log(msg: str, log_file: Path | None) -> None:
    line = f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {msg}"
    print(line, flush=True)
    if log_file is not None:
        with open(log_file, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def load_tokenizer(path: Path = TOKENIZER_DIR):
    from transformers import AutoTokenizer

    if not (path / "tokenizer.json").is_file():
        raise FileNotFoundError(f"no tokenizer in {path}; run `python scripts/build_corpus.py` first")
    return AutoTokenizer.from_pretrained(path)


def train_stream(tokenizer) -> np.ndarray:
    """Token ids of the train split, documents separated by [EOS] (cached under runs/cache/)."""
    docs = build_corpus.load_documents()
    train, _ = build_corpus.split_documents(docs)
    import hashlib

    tok_digest = hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()[:12]
    CACHE.mkdir(parents=True, exist_ok=True)
    key = CACHE / f"train_stream_{len(train)}docs_{tok_digest}.npy"
    if key.is_file():
        return np.load(key)
    enc = tokenizer.backend_tokenizer.encode_batch([d["text"] for d in train], add_special_tokens=False)
    parts = []
    for e in enc:
        parts.append(np.asarray(e.ids, dtype=np.int16))
        parts.append(np.asarray([EOS], dtype=np.int16))
    stream = np.concatenate(parts)
    np.save(key, stream)
    return stream


def build_model(kind: str, seed: int):
    torch.manual_seed(seed)
    if kind == "dlm":
        from optimum_sinkprune.models import LLaDAConfig, LLaDAModelLM

        config = LLaDAConfig(
            d_model=256,
            n_heads=8,
            n_kv_heads=8,
            n_layers=4,
            mlp_hidden_size=768,
            vocab_size=VOCAB,
            embedding_size=VOCAB,
            max_sequence_length=512,
            rope_theta=10000.0,
            mask_token_id=MASK,
            pad_token_id=PAD,
            eos_token_id=EOS,
            bos_token_id=BOS,
            weight_tying=False,
        )
        return LLaDAModelLM(config)
    if kind == "ar":
        from transformers import LlamaConfig, LlamaForCausalLM

        config = LlamaConfig(
            hidden_size=256,
            num_attention_heads=8,
            num_key_value_heads=8,
            num_hidden_layers=4,
            intermediate_size=768,
            vocab_size=VOCAB,
            max_position_embeddings=512,
            rope_theta=10000.0,
            tie_word_embeddings=False,
            pad_token_id=PAD,
            bos_token_id=BOS,
            eos_token_id=EOS,
        )
        return LlamaForCausalLM(config)
    raise ValueError(f"kind must be one of 'dlm', 'ar', got {kind!r}")


def sample_batch(stream: torch.Tensor, batch_size: int, seq_len: int, gen: torch.Generator) -> torch.LongTensor:
    n = seq_len - 1
    starts = torch.randint(0, len(stream) - n, (batch_size,), generator=gen)
    idx = starts[:, None] + torch.arange(n)[None, :]
    body = stream[idx].long()
    return torch.cat([torch.full((batch_size, 1), BOS, dtype=torch.long), body], dim=1)


def dlm_loss(model, ids: torch.LongTensor, gen: torch.Generator, eps: float = 1e-3) -> torch.Tensor:
    """LLaDA pretraining loss: sum over masked positions of CE / p_mask, divided by batch * seq. BOS is never masked."""
    from optimum_sinkprune.diffusion.forward_process import forward_process

    b, s = ids.shape
    t = torch.rand(b, generator=gen).clamp_min(1e-6)
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, 0] = False
    noisy, is_masked, p_mask = forward_process(ids, t, MASK, eps=eps, generator=gen, maskable=maskable)
    logits = model(input_ids=noisy).logits
    if not is_masked.any():
        return logits.sum() * 0.0
    ce = F.cross_entropy(logits[is_masked].float(), ids[is_masked], reduction="none")
    return (ce / p_mask[is_masked]).sum() / (b * s)


def ar_loss(model, ids: torch.LongTensor) -> torch.Tensor:
    logits = model(input_ids=ids).logits
    return F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def lr_at(step: int, max_steps: int, lr: float, warmup: int, min_ratio: float, time_fraction: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to `min_ratio * lr` over `max_steps`.

    `time_fraction` (elapsed / wall-clock budget) is used by `--time-aware-schedule`: the cosine progress is the larger
    of the step and the time fraction, so the LR is annealed by the deadline even on a slow or shared machine.
    """
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, max((step - warmup) / max(1, max_steps - warmup), time_fraction))
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def _drop_copied_modeling_code(out: Path) -> None:
    """The packaged DLM loads through the plugin's registered classes, so it ships neither the modeling code that
    save_pretrained copies beside the weights nor the `auto_map` pointing to it (one copy of the code, in
    optimum_sinkprune/models/). Checkpoints saved from it get both again at save time."""
    for name in ("modeling_llada.py", "configuration_llada.py", "modeling_dlm_utils.py"):
        (out / name).unlink(missing_ok=True)
    config_path = out / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.pop("auto_map", None)
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def save(model, tokenizer, out: Path, kind: str, state: dict, log_file: Path | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    bf16.config.dtype = "bfloat16"
    tmp = out / ".saving"
    tmp.mkdir(exist_ok=True)
    bf16.save_pretrained(tmp, safe_serialization=True)
    for f in tmp.iterdir():  # move into place file by file so an interrupted save never leaves a half folder
        os.chmod(f, 0o644)
        os.replace(f, out / f.name)
    tmp.rmdir()
    if kind == "dlm":
        _drop_copied_modeling_code(out)
    gen_cfg = out / "generation_config.json"
    if gen_cfg.exists():
        gen_cfg.unlink()
    tokenizer.save_pretrained(out)
    if kind == "dlm":
        (out / "sampler_config.json").write_text(json.dumps(SAMPLER_DEFAULTS, indent=2) + "\n")
    (out / "training_args.json").write_text(json.dumps(state, indent=2) + "\n")
    if log_file is not None and log_file.is_file():
        (out / "training_log.txt").write_text(log_file.read_text(encoding="utf-8"), encoding="utf-8")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", choices=["dlm", "ar"], required=True)
    p.add_argument("--output-dir", type=Path, default=None, help="defaults to the packaged model folder")
    p.add_argument("--max-steps", type=int, default=1000, help="length of the cosine schedule")
    p.add_argument("--max-minutes", type=float, default=65.0, help="wall-clock budget; stops early when reached")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--lr", type=float, default=None, help="peak LR (default 1e-3)")
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--no-bf16", action="store_true", help="disable bf16 autocast")
    p.add_argument(
        "--time-aware-schedule",
        action="store_true",
        help="cosine progress = max(step fraction, wall-clock fraction): always annealed by --max-minutes, but the "
        "realised schedule then depends on machine speed (for exact reproduction rerun with --max-steps set to the "
        "steps_done of training_args.json and without this flag)",
    )
    p.add_argument("--save-every-minutes", type=float, default=5.0)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--log-file", type=Path, default=None)
    args = p.parse_args(argv)
    for name in ("max_steps", "batch_size", "seq_len", "threads"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 2 <= args.seq_len <= 512:
        raise ValueError(f"--seq-len must be in [2, 512] (max_sequence_length), got {args.seq_len}")
    if args.max_minutes <= 0:
        raise ValueError(f"--max-minutes must be > 0, got {args.max_minutes}")
    lr = args.lr if args.lr is not None else 1e-3
    out = args.output_dir or DEFAULT_OUT[args.kind]

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.log_file is not None:
        args.log_file.parent.mkdir(parents=True, exist_ok=True)

    tokenizer = load_tokenizer()
    stream = torch.from_numpy(train_stream(tokenizer).astype(np.int64))
    log(f"kind={args.kind} train tokens={len(stream):,} out={out} threads={args.threads} lr={lr}", args.log_file)

    model = build_model(args.kind, args.seed)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    log(f"parameters: {n_params:,}", args.log_file)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        betas=(0.9, 0.95),
        eps=1e-8,
    )
    data_gen = torch.Generator().manual_seed(args.seed + 1)
    mask_gen = torch.Generator().manual_seed(args.seed + 2)

    t0 = time.time()
    last_save = t0
    losses: list[float] = []
    state = {
        "kind": args.kind,
        "command": "python scripts/train_tiny_models.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "seed": args.seed,
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "peak_lr": lr,
        "warmup_steps": args.warmup_steps,
        "max_steps": args.max_steps,
        "max_minutes": args.max_minutes,
        "threads": args.threads,
        "bf16_autocast": not args.no_bf16,
        "time_aware_schedule": args.time_aware_schedule,
        "num_parameters": n_params,
        "train_tokens_in_stream": int(len(stream)),
    }

    def snapshot(step: int, final: bool) -> dict:
        elapsed = time.time() - t0
        state.update(
            steps_done=step,
            tokens_seen=step * args.batch_size * args.seq_len,
            elapsed_minutes=round(elapsed / 60, 2),
            steps_per_second=round(step / elapsed, 4) if elapsed > 0 else None,
            final_train_loss_avg_last_50=round(float(np.mean(losses[-50:])), 4) if losses else None,
            last_lr=opt.param_groups[0]["lr"],
            finished=final,
        )
        return state

    step = 0
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=not args.no_bf16)
    while step < args.max_steps:
        if time.time() - t0 > args.max_minutes * 60:
            log(f"wall-clock budget of {args.max_minutes} min reached at step {step}", args.log_file)
            break
        for g in opt.param_groups:
            frac = (time.time() - t0) / (args.max_minutes * 60) if args.time_aware_schedule else 0.0
            g["lr"] = lr_at(step, args.max_steps, lr, args.warmup_steps, args.min_lr_ratio, frac)
        ids = sample_batch(stream, args.batch_size, args.seq_len, data_gen)
        with autocast:
            loss = dlm_loss(model, ids, mask_gen) if args.kind == "dlm" else ar_loss(model, ids)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        step += 1
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            raise RuntimeError(f"non-finite loss at step {step}")
        if step % args.log_every == 0 or step == 1:
            el = time.time() - t0
            log(
                f"step {step}/{args.max_steps} loss {losses[-1]:.4f} avg10 {np.mean(losses[-10:]):.4f} "
                f"lr {opt.param_groups[0]['lr']:.2e} gnorm {float(gnorm):.2f} {step / el:.3f} steps/s "
                f"elapsed {el / 60:.1f} min",
                args.log_file,
            )
        if time.time() - last_save > args.save_every_minutes * 60:
            save(model, tokenizer, out, args.kind, snapshot(step, False), args.log_file)
            last_save = time.time()
            log(f"checkpoint saved at step {step} -> {out}", args.log_file)
    log(f"done: {json.dumps(snapshot(step, True))}", args.log_file)
    save(model, tokenizer, out, args.kind, state, args.log_file)


if __name__ == "__main__":
    main()
