# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The one parameter counter: tied weights once, zeros, bytes; the report, the card, the evaluation table and the
structured budget all count with it."""

from __future__ import annotations

import torch
from torch import nn

from optimum_sinkprune.counting import ParameterCount, count_parameters
from optimum_sinkprune.evaluation.metrics import count_parameters as evaluation_count


def test_counts_tied_weights_once_with_zeros_and_bytes():
    embed = nn.Embedding(10, 4)
    head = nn.Linear(4, 10, bias=False)
    head.weight = embed.weight  # tied
    model = nn.Sequential(embed, nn.Linear(4, 3).to(torch.float16), head)
    with torch.no_grad():
        model[1].weight.zero_()
    counts = count_parameters(model)
    assert counts == ParameterCount(params=40 + 12 + 3, zeros=12 + int((model[1].bias == 0).sum()),
                                    nbytes=40 * 4 + 15 * 2)
    assert counts.nonzero == counts.params - counts.zeros
    assert evaluation_count(model) == (counts.params, counts.nonzero)


def test_structured_budget_counts_the_blocks(tiny_llada):
    from optimum_sinkprune.adapters import get_adapter
    from optimum_sinkprune.structured.removal import block_parameter_count, nonzero_block_parameter_count

    blocks = get_adapter(tiny_llada).blocks(tiny_llada)
    assert block_parameter_count(tiny_llada) == sum(p.numel() for p in blocks.parameters())
    with torch.no_grad():
        next(blocks.parameters()).zero_()
    assert nonzero_block_parameter_count(tiny_llada) == count_parameters(blocks).nonzero
