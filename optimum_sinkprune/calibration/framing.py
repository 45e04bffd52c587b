# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The tokens that open and close every model input cut from text (`input_framing`) and the pure function that
puts them around token windows (`frame_windows`): the one framing rule of calibration windows (`calibration.data`,
`calibration.datasets`), held-out evaluation sequences and prompts, and the sink-analysis inputs."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def input_framing(model=None, tokenizer=None, *, bos_token_id: int | None = None) -> tuple[list[int], list[int]]:
    """The tokens that open and close every model input cut from text: the one rule of the calibration windows, the
    held-out evaluation sequences and prompts, and the sink-analysis inputs.

    A family with a framing of its own (`adapter.sequence_framing`; BERT family: [CLS] … [SEP], RoBERTa <s> … </s>)
    gets it; any other (LLaDA, Dream, Llama, or no `model` given) opens with `bos_token_id` when there is one and
    closes with nothing.

    Args:
        model (*optional*): the model the inputs are for.
        tokenizer (*optional*): its tokenizer (the framing ids are asked of it first).
        bos_token_id (`int`, *optional*): the BOS the caller's rule gives for a family without framing.

    Returns:
        `tuple[list[int], list[int]]`: (opening ids, closing ids).

    Raises:
        `ValueError`: a framing family whose [CLS] / [SEP] ids neither the tokenizer nor the config names.
    """
    framing = None
    if model is not None:
        from ..adapters import get_adapter

        framing = get_adapter(model).sequence_framing(model, tokenizer)
    if framing is None:
        return ([] if bos_token_id is None else [int(bos_token_id)]), []
    return [int(i) for i in framing[0]], [int(i) for i in framing[1]]


def frame_windows(body: torch.Tensor, opening: Sequence[int], closing: Sequence[int]) -> torch.LongTensor:
    """`body` windows [n, length] with `opening` ids before and `closing` ids after each row: [n, length + both].
    Pure."""
    def block(ids: Sequence[int]) -> torch.Tensor:
        return torch.tensor(list(ids), dtype=torch.long, device=body.device).expand(body.shape[0], -1)

    return torch.cat([block(opening), body.long(), block(closing)], dim=1)


__all__ = ["frame_windows", "input_framing"]
