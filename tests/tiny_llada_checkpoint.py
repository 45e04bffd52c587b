# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""A tiny LLaDA checkpoint on disk with the shipped model's tokenizer, for commands that take a model folder."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer

from optimum_sinkprune.assets import default_model_path
from optimum_sinkprune.models import LLaDAConfig, LLaDAModelLM


def save_tiny_llada(path: Path) -> Path:
    """Saves a 2-layer, width-64 LLaDA (built after `torch.manual_seed(0)`) and the shipped tokenizer to `path`."""
    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    config = LLaDAConfig(d_model=64, n_heads=4, n_layers=2, mlp_hidden_size=96, vocab_size=len(tokenizer),
                         embedding_size=len(tokenizer), mask_token_id=tokenizer.mask_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, max_sequence_length=128)
    torch.manual_seed(0)
    LLaDAModelLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
