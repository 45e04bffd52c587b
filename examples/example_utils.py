# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Helpers shared by the example scripts (kept here so each example reads as the steps it demonstrates)."""

from __future__ import annotations

import os

import torch


def default_device() -> str:
    """The machine's accelerator when there is one (GPU, ...), else "cpu"."""
    if hasattr(torch, "accelerator") and torch.accelerator.is_available():
        return str(torch.accelerator.current_accelerator())
    return "cpu"


def parameter_count_from_config(model_id: str, *, trust_remote_code: bool = False) -> tuple[int, object]:
    """Exact parameter count of a checkpoint from its config alone: the model is built on the meta device (no
    weights are downloaded or allocated). Returns (count, config)."""
    import optimum_sinkprune  # noqa: F401  (registers LLaDA / Dream with the Auto classes)
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(model_id, trust_remote_code=trust_remote_code)
    with torch.device("meta"):
        model = AutoModel.from_config(config, trust_remote_code=trust_remote_code)
    return sum(p.numel() for p in model.parameters()), config


def estimate_memory_gb(
    model_id: str, *, method: str, num_samples: int, seq_len: int, dtype_bytes: int = 2, batch_size: int = 1,
    trust_remote_code: bool = False,
) -> dict[str, float]:
    """Rough peak memory (GB) of pruning `model_id` on one device, from its config:

    * weights: parameters x `dtype_bytes` (bf16 = 2);
    * calibration activations: the inputs and outputs of one block for every sample, float32
      (2 x samples x seq_len x hidden x 4 bytes), as the sequential (block-by-block) methods keep them;
    * statistics: SparseGPT-style methods hold a float32 Hessian (in x in) per linear of one block; Wanda-style
      methods one norm per input feature (negligible);
    * one forward: logits (batch x seq_len x vocab, float32) and attention maps (batch x heads x seq_len^2, float32;
      the sink-aware methods capture every layer's).
    """
    params, config = parameter_count_from_config(model_id, trust_remote_code=trust_remote_code)
    hidden = int(config.hidden_size)
    heads = int(config.num_attention_heads)
    vocab = int(getattr(config, "embedding_size", None) or config.vocab_size)
    mlp = int(getattr(config, "mlp_hidden_size", None) or getattr(config, "intermediate_size", None) or 4 * hidden)
    gb = 1e9
    weights = params * dtype_bytes / gb
    activations = 2 * num_samples * seq_len * hidden * 4 / gb
    if "sparsegpt" in method:
        # q, k, v, gate, up see `hidden` inputs; o sees hidden; down sees `mlp`
        statistics = (6 * hidden**2 + mlp**2) * 4 / gb
    else:
        statistics = (6 * hidden + mlp) * 4 / gb
    layers_captured = int(config.num_hidden_layers) if method.startswith("sink") else 1
    forward = batch_size * (seq_len * vocab + layers_captured * heads * seq_len**2) * 4 / gb
    total = weights + activations + statistics + forward
    return {"parameters_billion": params / 1e9, "weights": weights, "calibration_activations": activations,
            "statistics": statistics, "forward": forward, "total": total}


def format_estimate(estimate: dict[str, float]) -> str:
    return (
        f"{estimate['parameters_billion']:.2f}B parameters -> weights {estimate['weights']:.1f} GB + calibration "
        f"activations {estimate['calibration_activations']:.2f} GB + statistics {estimate['statistics']:.2f} GB + "
        f"one forward {estimate['forward']:.2f} GB = about {estimate['total']:.1f} GB peak (add ~10-20% allocator "
        "overhead)"
    )


def calibration_texts(path: str | None) -> list[str]:
    """Texts from a .jsonl / .txt file, or the calibration split shipped with optimum-sinkprune."""
    if path:
        from optimum_sinkprune.evaluation.data import read_texts

        return read_texts(path)
    from optimum_sinkprune.assets import load_calibration_texts

    return load_calibration_texts()


def heldout_texts(path: str | None) -> list[str]:
    if path:
        from optimum_sinkprune.evaluation.data import read_texts

        return read_texts(path)
    from optimum_sinkprune.assets import load_heldout_texts

    return load_heldout_texts()


def elbo_perplexity(model, tokenizer, texts: list[str], *, num_sequences: int, seq_len: int, mc_num: int,
                    seed: int = 0) -> tuple[float, float]:
    """ELBO perplexity and its MC standard error (in nats/token) on held-out windows (same masks for any model)."""
    from optimum_sinkprune.diffusion import elbo_log_likelihood
    from optimum_sinkprune.evaluation import build_eval_sequences

    bos = getattr(tokenizer, "bos_token_id", None)
    ids = build_eval_sequences(tokenizer, texts, seq_len=seq_len, num_sequences=num_sequences, bos_token_id=bos)
    maskable = torch.ones_like(ids, dtype=torch.bool)
    if bos is not None:
        maskable[:, 0] = False
    res = elbo_log_likelihood(model, ids, mc_num=mc_num, maskable=maskable, seed=seed, batch_size=4)
    return res.perplexity, res.nll_std_err


def ensure_empty(path: str, overwrite: bool) -> None:
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise FileExistsError(f"--output {path!r} exists and is not empty; pass --overwrite")
