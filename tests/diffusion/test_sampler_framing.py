# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The sampler's prompt opening for families that frame their inputs: pure helpers."""

from __future__ import annotations

import pytest
import torch

from optimum_sinkprune.diffusion.sampler import first_valid_positions, open_prompt


def test_first_valid_positions_of_a_left_padded_batch():
    prompt = torch.zeros(3, 4, dtype=torch.long)
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]])
    assert first_valid_positions(prompt, mask) == [2, 0, 4]
    assert first_valid_positions(prompt, None) == [0, 0, 0]


def test_open_prompt_inserts_after_the_padding_and_extends_the_mask():
    prompt = torch.tensor([[0, 0, 5, 6], [7, 8, 9, 10]])
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    opened, new_mask, added = open_prompt(prompt, mask, [2])
    assert added
    assert opened.tolist() == [[0, 0, 2, 5, 6], [2, 7, 8, 9, 10]]
    assert new_mask.tolist() == [[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]
    again, again_mask, added_again = open_prompt(opened, new_mask, [2])  # already opened: unchanged
    assert not added_again and again is opened and again_mask is new_mask


def test_open_prompt_without_framing_or_with_an_empty_prompt():
    prompt = torch.tensor([[5, 6]])
    assert open_prompt(prompt, None, []) == (prompt, None, False)
    empty, mask, added = open_prompt(torch.zeros(2, 0, dtype=torch.long), None, [2])
    assert added and empty.tolist() == [[2], [2]] and mask is None


def test_open_prompt_refuses_a_mixed_batch():
    with pytest.raises(ValueError, match=r"rows \[1\] begin with the framing ids \[2\] and rows \[0\] do not"):
        open_prompt(torch.tensor([[5, 6], [2, 6]]), None, [2])
