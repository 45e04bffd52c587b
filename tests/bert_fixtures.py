# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Tiny random BERT / RoBERTa / ModernBERT masked LMs (native transformers classes) for the BERT-family tests."""

from __future__ import annotations

import copy
import functools

import torch

VOCAB = 64
MASK_ID = 4
CLS_ID = 2
SEP_ID = 3
PAD_ID = 0
HIDDEN = 32
HEADS = 4
MLP = 48
LAYERS = 2
MAX_POS = 64
FAMILIES = ("bert", "roberta", "modernbert")


def tiny_config(family: str, *, mask_token_id: int | None = MASK_ID, sliding: bool = False):
    """A tiny config of `family`; `mask_token_id` goes into the config as an extra key (None: no mask token)."""
    from transformers import BertConfig, ModernBertConfig, RobertaConfig

    extra = {} if mask_token_id is None else {"mask_token_id": mask_token_id}
    if family in ("bert", "roberta"):
        cls = BertConfig if family == "bert" else RobertaConfig
        return cls(
            vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
            intermediate_size=MLP, max_position_embeddings=MAX_POS, pad_token_id=PAD_ID if family == "bert" else 1,
            type_vocab_size=2 if family == "bert" else 1, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
            **extra,
        )
    if family == "modernbert":
        return ModernBertConfig(
            vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=3 if sliding else LAYERS,
            num_attention_heads=HEADS, intermediate_size=MLP, max_position_embeddings=MAX_POS, pad_token_id=PAD_ID,
            cls_token_id=CLS_ID, sep_token_id=SEP_ID, bos_token_id=CLS_ID, eos_token_id=SEP_ID,
            global_attn_every_n_layers=2 if sliding else 1, local_attention=8,
            attention_bias=True, mlp_bias=True, norm_bias=True,  # biases everywhere, like BERT
            **extra,
        )
    raise ValueError(f"family={family!r} is not one of {FAMILIES}")


def tiny_masked_lm(family: str, *, seed: int = 0, mask_token_id: int | None = MASK_ID, sliding: bool = False):
    """A randomly initialised `<Family>ForMaskedLM` in eval mode, float32 (a fresh copy on every call)."""
    return copy.deepcopy(_cached_masked_lm(family, seed, mask_token_id, sliding))


@functools.lru_cache(maxsize=None)
def _cached_masked_lm(family: str, seed: int, mask_token_id: int | None, sliding: bool):
    # the classes themselves, not `from_config`: its module-patch scan costs seconds per build on a busy machine
    from transformers import BertForMaskedLM, ModernBertForMaskedLM, RobertaForMaskedLM

    cls = {"bert": BertForMaskedLM, "roberta": RobertaForMaskedLM, "modernbert": ModernBertForMaskedLM}[family]
    torch.manual_seed(seed)
    model = cls(tiny_config(family, mask_token_id=mask_token_id, sliding=sliding))
    with torch.no_grad():  # untrained heads give near-uniform attention; sharpen it so sinks exist at all
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(3.0)
    return model.eval()


def framed_ids(batch: int, seq: int, *, seed: int = 0) -> torch.Tensor:
    """[batch, seq] ids framed [CLS] … [SEP] with body tokens drawn from the ordinary vocabulary."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(8, VOCAB, (batch, seq), generator=gen)
    ids[:, 0] = CLS_ID
    ids[:, -1] = SEP_ID
    return ids
