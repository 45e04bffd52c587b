# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Tiny models for the sink-analysis tests (helpers, no tests here)."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from optimum_sinkprune.models import LLaDAConfig, LLaDAModelLM

MASK_ID, BOS_ID, PAD_ID, VOCAB = 31, 1, 0, 32


def planted_sink_llada(strength: float = 1.0) -> LLaDAModelLM:
    """A LLaDA whose every head attends to [MASK] tokens: a planted sink that moves wherever the masks are.

    Channel 0 of the embedding is non-zero only for [MASK]; k_proj reads channel 0, q_proj is a constant bias, so the
    score of key j is large exactly when token j is [MASK]. attn_out / ff_out are zero, so every layer sees the
    embeddings and behaves the same. No rotary: nothing but the token decides where the sink is.
    """
    config = LLaDAConfig(
        d_model=32, n_heads=2, n_layers=2, mlp_hidden_size=32, vocab_size=VOCAB, embedding_size=VOCAB,
        mask_token_id=MASK_ID, bos_token_id=BOS_ID, pad_token_id=PAD_ID, eos_token_id=2, max_sequence_length=64,
        rope=False, include_qkv_bias=True,
    )
    torch.manual_seed(0)
    model = LLaDAModelLM(config).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        wte = model.model.transformer.wte.weight
        wte.copy_(torch.randn(wte.shape, generator=g))
        wte[:, 0] = 0.0
        wte[MASK_ID] = 0.0
        wte[MASK_ID, 0] = 1.0
        for block in model.model.transformer.blocks:
            block.q_proj.weight.zero_()
            block.q_proj.bias.fill_(strength)
            block.k_proj.weight.zero_()
            block.k_proj.weight[:, 0] = strength
            block.k_proj.bias.zero_()
            block.attn_out.weight.zero_()
            block.ff_out.weight.zero_()
    return model


def tiny_llama_ar() -> LlamaForCausalLM:
    torch.manual_seed(1)
    config = LlamaConfig(
        hidden_size=32, num_attention_heads=2, num_key_value_heads=2, num_hidden_layers=2, intermediate_size=48,
        vocab_size=VOCAB, max_position_embeddings=64, bos_token_id=BOS_ID, pad_token_id=PAD_ID,
    )
    return LlamaForCausalLM(config).eval()


def text_ids(batch: int = 2, seq: int = 24, seed: int = 0) -> torch.LongTensor:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, MASK_ID, (batch, seq), generator=g)
    ids[:, 0] = BOS_ID
    return ids
