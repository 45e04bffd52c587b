# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Evaluation inputs built from held-out texts: fixed-length ELBO sequences and generation prompts with references.

Everything here is deterministic (no randomness): the same texts and settings give the same tensors, so two models
evaluated in different processes see the same inputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from ..calibration.data import read_texts  # noqa: F401 - the package's one text-file reader, re-exported here
from ..validation import check_texts

PROMPT_KINDS = ("continuation", "summary")
# Cue appended to a summary-style prompt; the reference is the passage's lead sentence, removed from the prompt.
SUMMARY_CUE = "\n\nIn short:"


@dataclass
class GenerationPrompt:
    """One generation task.

    Attributes:
        kind: "continuation" (continue a passage; reference = the true continuation) or "summary" (the passage
            without its lead sentence, then a cue; reference = the lead sentence, a lead-1 pseudo-summary since the
            held-out split has no human summaries).
        prompt_ids: token ids of the prompt, BOS first when the model uses one.
        prompt_text: the prompt as text (without BOS).
        reference: the reference text.
    """

    kind: str
    prompt_ids: list[int]
    prompt_text: str
    reference: str


def _encode(tokenizer, text: str) -> list[int]:
    # verbose=False: long held-out documents are windowed here, the "longer than model_max_length" warning is noise
    return list(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def _prefix(bos_token_id: int | None) -> list[int]:
    return [] if bos_token_id is None else [int(bos_token_id)]


def _framing(bos_token_id: int | None, framing) -> tuple[list[int], list[int]]:
    """(opening, closing) ids: `framing` when given (`calibration.data.input_framing`), else BOS first."""
    if framing is None:
        return _prefix(bos_token_id), []
    opening, closing = framing
    return [int(i) for i in opening], [int(i) for i in closing]


def build_eval_sequences(
    tokenizer,
    texts: list[str],
    *,
    seq_len: int,
    num_sequences: int,
    bos_token_id: int | None = None,
    framing: tuple[list[int], list[int]] | None = None,
) -> torch.LongTensor:
    """Fixed-length sequences for the ELBO: BOS (when given) then `seq_len - 1` (or `seq_len`) consecutive tokens;
    with `framing`, its opening ids, the tokens, its closing ids (BERT family: [CLS] … [SEP]).

    Windows are non-overlapping and taken round-robin over the documents (first window of every document, then the
    second, ...) so that a small `num_sequences` still covers many documents.

    Args:
        tokenizer: the model's tokenizer.
        texts: held-out documents.
        seq_len: tokens per sequence, BOS included.
        num_sequences: how many sequences to return.
        bos_token_id: prepended to every sequence when not None (and no `framing` is given).
        framing: (opening ids, closing ids) around every sequence, from `calibration.data.input_framing`.

    Returns:
        LongTensor [num_sequences, seq_len].
    """
    if seq_len < 2:
        raise ValueError(f"seq_len must be >= 2, got {seq_len}")
    if num_sequences < 1:
        raise ValueError(f"num_sequences must be >= 1, got {num_sequences}")
    texts = check_texts(texts, argument="texts")  # an empty list or a non-text element is named as such
    opening, closing = _framing(bos_token_id, framing)
    body = seq_len - len(opening) - len(closing)
    if body < 1:
        raise ValueError(f"seq_len={seq_len} leaves no text between the framing ids {opening} ... {closing}")
    windows_per_doc = []
    for text in texts:
        ids = _encode(tokenizer, text)
        windows_per_doc.append([ids[s : s + body] for s in range(0, len(ids) - body + 1, body)])
    out: list[list[int]] = []
    depth = 0
    while len(out) < num_sequences and any(len(w) > depth for w in windows_per_doc):
        for windows in windows_per_doc:
            if depth < len(windows) and len(out) < num_sequences:
                out.append(opening + windows[depth] + closing)
        depth += 1
    if len(out) < num_sequences:
        raise ValueError(
            f"the {len(texts)} texts hold only {len(out)} windows of {seq_len} tokens; asked for num_sequences="
            f"{num_sequences} (lower num_sequences or seq_len, or give more text)"
        )
    return torch.tensor(out, dtype=torch.long)


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?;:])\s+", " ".join(text.split()))
    return [p for p in parts if p]


def build_generation_prompts(
    tokenizer,
    texts: list[str],
    *,
    num_prompts: int,
    prompt_tokens: int,
    reference_tokens: int,
    kinds: tuple[str, ...] = PROMPT_KINDS,
    bos_token_id: int | None = None,
    framing: tuple[list[int], list[int]] | None = None,
) -> list[GenerationPrompt]:
    """Story-continuation and summary-style prompts from held-out documents, alternating kinds over documents.

    Args:
        tokenizer: the model's tokenizer.
        texts: held-out documents (one prompt per document at most).
        num_prompts: prompts to build.
        prompt_tokens: passage length in tokens (without BOS / cue).
        reference_tokens: continuation reference length in tokens (and the generation length to use).
        kinds: prompt kinds to cycle through, from `PROMPT_KINDS`.
        bos_token_id: prepended to every prompt when not None (and no `framing` is given).
        framing: (opening ids, closing ids) of the model's inputs (`calibration.data.input_framing`): the opening
            ids begin every prompt; the sampler closes the canvas itself.
    """
    if num_prompts < 1:
        raise ValueError(f"num_prompts must be >= 1, got {num_prompts}")
    if prompt_tokens < 1 or reference_tokens < 1:
        raise ValueError(f"prompt_tokens and reference_tokens must be >= 1, got {prompt_tokens}, {reference_tokens}")
    bad = [k for k in kinds if k not in PROMPT_KINDS]
    if not kinds or bad:
        raise ValueError(f"kinds={kinds!r} must be a non-empty subset of {PROMPT_KINDS}")
    texts = check_texts(texts, argument="texts")
    prefix, _ = _framing(bos_token_id, framing)
    prompts: list[GenerationPrompt] = []
    for text in texts:
        if len(prompts) >= num_prompts:
            break
        kind = kinds[len(prompts) % len(kinds)]
        prompt = _continuation_prompt(tokenizer, text, prompt_tokens, reference_tokens, prefix)
        if kind == "summary":
            prompt = _summary_prompt(tokenizer, text, prompt_tokens, prefix) or prompt
        if prompt is not None:
            prompts.append(prompt)
    if len(prompts) < num_prompts:
        raise ValueError(
            f"only {len(prompts)} of the {len(texts)} texts are long enough for prompt_tokens={prompt_tokens} + "
            f"reference_tokens={reference_tokens}; asked for num_prompts={num_prompts}"
        )
    return prompts


def _continuation_prompt(tokenizer, text, prompt_tokens, reference_tokens, prefix) -> GenerationPrompt | None:
    ids = _encode(tokenizer, text)
    if len(ids) < prompt_tokens + reference_tokens:
        return None
    head, ref = ids[:prompt_tokens], ids[prompt_tokens : prompt_tokens + reference_tokens]
    return GenerationPrompt(
        kind="continuation",
        prompt_ids=list(prefix) + head,
        prompt_text=tokenizer.decode(head),
        reference=tokenizer.decode(ref, skip_special_tokens=True),
    )


def _summary_prompt(tokenizer, text, prompt_tokens, prefix) -> GenerationPrompt | None:
    sentences = _sentences(text)
    if len(sentences) < 3:
        return None
    lead, rest = sentences[0], " ".join(sentences[1:])
    body = _encode(tokenizer, rest)[:prompt_tokens]
    if len(body) < prompt_tokens:
        return None
    passage = tokenizer.decode(body)
    ids = list(prefix) + body + _encode(tokenizer, SUMMARY_CUE)
    return GenerationPrompt(kind="summary", prompt_ids=ids, prompt_text=passage + SUMMARY_CUE, reference=lead)


def default_heldout_texts() -> list[str]:
    """The shipped held-out split (`optimum_sinkprune.assets.load_heldout_texts`); raises if it is missing."""
    from ..assets import load_heldout_texts

    return load_heldout_texts()
