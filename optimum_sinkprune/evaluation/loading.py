# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Load a model folder or Hub id with its tokenizer for evaluation."""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)


def load_model_and_tokenizer(
    model_path: str, *, dtype: str | None = None, device: str | None = None, trust_remote_code: bool = False
):
    """`(model, tokenizer)` from a local folder or Hub id (our LLaDA / Dream classes through the Auto classes).

    Args:
        model_path: folder or Hub id.
        dtype: torch dtype name ("float32", "bfloat16", ...); the checkpoint's when None.
        device: where to move the model (default: where it loads, the CPU).
        trust_remote_code: allow modeling code shipped with the checkpoint.
    """
    import optimum_sinkprune  # noqa: F401  (registers the Auto classes)
    from transformers import AutoModel, AutoTokenizer

    kwargs = {"trust_remote_code": trust_remote_code}
    if dtype is not None:
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ValueError(f"dtype={dtype!r} is not a torch dtype name (e.g. 'float32', 'bfloat16')")
        kwargs["dtype"] = getattr(torch, dtype)
    model = AutoModel.from_pretrained(model_path, **kwargs)
    if device is not None:
        model = model.to(device)
    tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    model.eval()
    return model, tokenizer
