# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Tiny, offline test assets shared by the evaluation, command and example tests: a character-level tokenizer with
the same special-token layout as the shipped model (PAD 0, EOS 1, BOS 2, MASK 127), deterministic pseudo-English
texts, and a tiny random LLaDA. Import with `load_tiny_helpers()` from any test file (tests/ is not a package)."""

from __future__ import annotations

import random
from pathlib import Path

VOCAB = 128
PAD, EOS, BOS, UNK, MASK = 0, 1, 2, 3, 127
CHARS = "\n" + "".join(chr(c) for c in range(32, 127))  # ids 4 .. 99
WORDS = (
    "the lord said unto him and they went forth into the land of light where the king did rest "
    "then spake she thou art my servant hear ye the word of night for the morning cometh soon"
).split()


def build_tokenizer():
    """A character-level PreTrainedTokenizerFast with vocab 128."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": PAD, "[EOS]": EOS, "[BOS]": BOS, "[UNK]": UNK}
    for i, ch in enumerate(CHARS):
        vocab[ch] = 4 + i
    for i in range(4 + len(CHARS), MASK):
        vocab[f"[unused{i}]"] = i
    vocab["[MASK]"] = MASK
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    for special in ("[PAD]", "[EOS]", "[BOS]", "[UNK]", "[MASK]"):
        tok.add_special_tokens([special])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="[BOS]",
        eos_token="[EOS]",
        pad_token="[PAD]",
        unk_token="[UNK]",
        mask_token="[MASK]",
    )


def make_texts(num: int = 12, sentences: int = 12, seed: int = 0) -> list[str]:
    """Deterministic pseudo-English documents (each several sentences long)."""
    rng = random.Random(seed)
    docs = []
    for _ in range(num):
        sents = []
        for _ in range(sentences):
            words = [rng.choice(WORDS) for _ in range(rng.randint(5, 10))]
            sents.append(" ".join(words).capitalize() + rng.choice(".;!?"))
        docs.append(" ".join(sents))
    return docs


def tiny_llada_config(**overrides):
    from optimum_sinkprune.models import LLaDAConfig

    kwargs = dict(
        d_model=64,
        n_heads=4,
        n_layers=2,
        mlp_hidden_size=96,
        vocab_size=VOCAB,
        embedding_size=VOCAB,
        mask_token_id=MASK,
        eos_token_id=EOS,
        pad_token_id=PAD,
        bos_token_id=BOS,
        max_sequence_length=256,
    )
    kwargs.update(overrides)
    return LLaDAConfig(**kwargs)


def build_model(seed: int = 0, **overrides):
    import torch

    from optimum_sinkprune.models import LLaDAModelLM

    torch.manual_seed(seed)
    model = LLaDAModelLM(tiny_llada_config(**overrides))
    model.eval()
    return model


def save_model(path: str | Path, seed: int = 0, **overrides) -> Path:
    """Save a tiny LLaDA with its tokenizer to `path`; returns the path."""
    path = Path(path)
    model = build_model(seed, **overrides)
    model.save_pretrained(path)
    build_tokenizer().save_pretrained(path)
    return path


def write_texts_jsonl(path: str | Path, texts: list[str]) -> Path:
    import json

    path = Path(path)
    path.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(texts)))
    return path




def save_dream_model(path: str | Path, seed: int = 0) -> Path:
    """Save a tiny random Dream (grouped-query attention, shifted logits) with the character tokenizer."""
    import torch

    from optimum_sinkprune.models import DreamConfig, DreamModel

    torch.manual_seed(seed)
    config = DreamConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         rope_theta=10000.0, mask_token_id=MASK, pad_token_id=PAD, bos_token_id=BOS,
                         eos_token_id=EOS)  # fmt: skip
    model = DreamModel(config).eval()
    path = Path(path)
    model.save_pretrained(path)
    build_tokenizer().save_pretrained(path)
    return path
