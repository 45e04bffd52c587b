# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Tiny random models of every supported family for the structured-pruning tests (O(1)-scale weights, so that
logit comparisons are sensitive)."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from optimum_sinkprune import DreamConfig, DreamModel, LLaDAConfig, LLaDAModelLM

VOCAB = 128


def randomize(model, seed: int = 0):
    """Linears ~ N(0, 1/fan_in), biases/embeddings O(1), norm weights 1 ± 0.1: non-trivial logits."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if p.dim() == 2 and ("wte" in name or "embed" in name):
                p.copy_(noise)
            elif p.dim() == 2:
                p.copy_(noise / p.shape[1] ** 0.5)
            elif name.endswith("bias"):
                p.copy_(0.5 * noise)
            else:
                p.copy_(1.0 + 0.1 * noise)
    return model.eval()


def tiny_llada(seed: int = 0, **overrides) -> LLaDAModelLM:
    kwargs = dict(d_model=64, n_heads=4, n_layers=2, mlp_hidden_size=96, vocab_size=VOCAB, embedding_size=VOCAB,
                  mask_token_id=127, eos_token_id=1, pad_token_id=0, max_sequence_length=256)
    kwargs.update(overrides)
    return randomize(LLaDAModelLM(LLaDAConfig(**kwargs)), seed)


def tiny_dream(seed: int = 0, **overrides) -> DreamModel:
    kwargs = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, mask_token_id=127, pad_token_id=0, bos_token_id=1, eos_token_id=1,
                  max_position_embeddings=256)
    kwargs.update(overrides)
    return randomize(DreamModel(DreamConfig(**kwargs)), seed)


def tiny_llama(seed: int = 0, **overrides) -> LlamaForCausalLM:
    kwargs = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=4, intermediate_size=96,
                  num_hidden_layers=2, vocab_size=VOCAB, max_position_embeddings=256)
    kwargs.update(overrides)
    return randomize(LlamaForCausalLM(LlamaConfig(**kwargs)), seed)


def tiny_qwen2(seed: int = 0, **overrides) -> Qwen2ForCausalLM:
    kwargs = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=96,
                  num_hidden_layers=2, vocab_size=VOCAB, max_position_embeddings=256)
    kwargs.update(overrides)
    return randomize(Qwen2ForCausalLM(Qwen2Config(**kwargs)), seed)


FACTORIES = {"llada": tiny_llada, "dream": tiny_dream, "llama": tiny_llama, "qwen2": tiny_qwen2}
GQA = {"dream", "qwen2"}


def logits(model, input_ids) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=input_ids).logits


def valid_heads(family: str) -> dict[int, list[int]]:
    """A legal head request for the family (whole kv groups of 2 under GQA)."""
    return {0: [2, 3]} if family in GQA else {0: [1], 1: [0, 3]}
