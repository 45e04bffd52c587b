# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Sink statistics over trajectories: a planted moving sink is found where it was planted; AR sinks do not move."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sink_test_models import BOS_ID, MASK_ID, planted_sink_llada, text_ids, tiny_llama_ar

from optimum_sinkprune.adapters import MissingMaskTokenError
from optimum_sinkprune.analysis import (
    TOKEN_KINDS,
    forward_process_trajectory,
    generation_trajectory,
    sampled_steps,
    trajectory_from_inputs,
)
from optimum_sinkprune.analysis.statistics import classify_positions, position_range, position_variance, sink_share

torch.set_num_threads(1)


def test_planted_moving_sink_is_tracked_exactly():
    model = planted_sink_llada()
    base = text_ids(batch=2, seq=20)
    planted = [[3, 10, 5, 12, 7], [15, 15, 2, 19, 4]]  # one [MASK] per step and sample
    inputs = []
    for s in range(5):
        x = base.clone()
        for b in range(2):
            x[b, planted[b][s]] = MASK_ID
        inputs.append(x)
    traj = trajectory_from_inputs(
        model, inputs, steps=list(range(1, 6)), t=[0.2 * s for s in range(1, 6)], mask_token_id=MASK_ID, top_k=2
    )
    expected = torch.tensor(planted).T  # [steps, batch]
    assert traj.dominant.shape == (5, 2, 2, 2)
    assert torch.equal(traj.dominant, expected[:, :, None, None].expand(5, 2, 2, 2))
    assert torch.all(traj.token_kind == TOKEN_KINDS.index("mask"))
    assert torch.all(traj.share > 0.99)  # the planted sink takes nearly all attention
    assert torch.all(traj.sink_set_size == 1)
    # variance / range over steps, averaged over the batch (independent numpy computation)
    var = np.var(np.array(planted, dtype=np.float64), axis=1).mean()
    rng = np.ptp(np.array(planted), axis=1).mean()
    torch.testing.assert_close(traj.per_head_position_variance(), torch.full((2, 2), var, dtype=torch.float32))
    torch.testing.assert_close(traj.per_head_position_range(), torch.full((2, 2), float(rng)))
    assert traj.moving_head_fraction(3) == 1.0
    assert traj.moving_head_fraction(16) == 0.5  # sample 0 spans 9 positions, sample 1 spans 17
    assert traj.token_kind_frequencies() == {"first": 0.0, "mask": 1.0, "real": 0.0}
    # mass summed over layers and heads: every query row gives ~1 to the sink, in 2 layers x 2 heads
    assert torch.allclose(traj.mass[0, 0, 3], torch.tensor(4.0 * 20), rtol=1e-3)


def test_forward_process_trajectory_sink_follows_the_masks():
    model = planted_sink_llada()
    ids = text_ids(batch=3, seq=24)
    traj = forward_process_trajectory(model, ids, steps=10, sample_interval=2, seed=7, protected="first",
                                      progress=False)
    assert traj.steps == [2, 4, 6, 8, 10]
    assert traj.t == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert torch.all(traj.tokens[:, :, 0] == BOS_ID)  # protected="first": BOS at position 0 is never masked
    masked = traj.tokens == MASK_ID  # [S, b, seq]
    assert masked[-1, :, 1:].all()  # t = 1 masks everything else
    checked = 0
    for s in range(traj.num_steps):
        for b in range(3):
            if masked[s, b].any():
                assert masked[s, b][traj.dominant[s, b]].all()  # every head's sink is a masked position
                checked += 1
    assert checked >= 12
    # seeded: the same seed gives the same noised inputs, another seed different ones
    again = forward_process_trajectory(model, ids, steps=10, sample_interval=2, seed=7, protected="first",
                                       progress=False)
    other = forward_process_trajectory(model, ids, steps=10, sample_interval=2, seed=8, protected="first",
                                       progress=False)
    assert torch.equal(again.tokens, traj.tokens)
    assert not torch.equal(other.tokens, traj.tokens)
    # maskable overrides the default: nothing maskable -> clean text at every step
    clean = forward_process_trajectory(
        model, ids, steps=4, sample_interval=1, maskable=torch.zeros_like(ids, dtype=torch.bool), progress=False
    )
    assert torch.all(clean.tokens == ids)


def test_ar_baseline_repeats_clean_text_and_sink_is_stable():
    model = tiny_llama_ar()
    ids = text_ids(batch=2, seq=16)
    traj = forward_process_trajectory(model, ids, steps=10, sample_interval=5, progress=False)
    assert not traj.is_diffusion and traj.mask_token_id is None
    assert torch.all(traj.tokens == ids)
    assert torch.all(traj.per_head_position_variance() == 0)
    assert traj.moving_head_fraction() == 0.0
    assert traj.token_kind_frequencies()["mask"] == 0.0


def test_padding_never_hosts_a_sink_and_first_valid_token_kind():
    model = planted_sink_llada()
    ids = text_ids(batch=2, seq=12)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    traj = forward_process_trajectory(model, ids, attention_mask=mask, steps=4, sample_interval=1, progress=False)
    assert torch.all(traj.tokens[:, 1, 8:] == ids[1, 8:])  # padding is not maskable by default
    assert torch.all(traj.dominant[:, 1] < 8)
    assert torch.all(traj.mass[:, 1, 8:] == 0)


def test_generation_trajectory_from_all_mask():
    model = planted_sink_llada()
    prompt = text_ids(batch=1, seq=6)
    traj = generation_trajectory(model, prompt, steps=4, gen_length=8, block_length=8, progress=False)
    assert traj.kind == "generation"
    assert traj.steps == [0, 1, 2, 3, 4]
    assert traj.t == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    assert torch.all(traj.tokens[0, :, 6:] == MASK_ID) and torch.all(traj.tokens[0, :, :6] == prompt)
    assert not (traj.tokens[-1] == MASK_ID).any()
    for s in range(4):  # while masks remain, the planted sink sits on one of them
        assert torch.all(traj.tokens[s, 0][traj.dominant[s, 0]] == MASK_ID)
    sub = generation_trajectory(model, prompt, steps=4, gen_length=8, block_length=8, sample_interval=3, progress=False)
    assert sub.steps == [0, 3, 4]
    with pytest.raises(ValueError, match="autoregressive"):
        generation_trajectory(tiny_llama_ar(), prompt, steps=4, gen_length=8, block_length=8)


def test_statistics_helpers_against_naive():
    g = torch.Generator().manual_seed(0)
    dom = torch.randint(0, 30, (6, 2, 3, 4), generator=g)
    np.testing.assert_allclose(position_variance(dom).numpy(), np.var(dom.numpy().astype(float), axis=0), rtol=1e-5)
    np.testing.assert_array_equal(position_range(dom).numpy(), np.ptp(dom.numpy(), axis=0))
    m = torch.tensor([[1.0, 5.0, 2.0, 2.0]])
    torch.testing.assert_close(sink_share(m, 2), torch.tensor([0.7]))
    tokens = torch.tensor([[0, 7, MASK_ID, 9]])
    valid = torch.tensor([[False, True, True, True]])
    kinds = classify_positions(torch.tensor([[1, 2, 3]]), tokens, valid, MASK_ID)
    assert [TOKEN_KINDS[k] for k in kinds[0].tolist()] == ["first", "mask", "real"]


def test_bad_input():
    model = planted_sink_llada()
    ids = text_ids()
    with pytest.raises(ValueError, match="sample_interval"):
        forward_process_trajectory(model, ids, steps=4, sample_interval=5)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        forward_process_trajectory(model, ids, steps=0)
    with pytest.raises(ValueError, match="longer than the model's maximum"):
        forward_process_trajectory(model, torch.ones(1, 65, dtype=torch.long), steps=4, sample_interval=1)
    with pytest.raises(ValueError, match="empty"):
        forward_process_trajectory(model, torch.ones(1, 0, dtype=torch.long), steps=4, sample_interval=1)
    with pytest.raises(ValueError, match="maskable"):
        forward_process_trajectory(model, ids, steps=4, sample_interval=1, maskable=torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="inputs is empty"):
        trajectory_from_inputs(model, [], steps=[], t=[])
    model.config.mask_token_id = None
    with pytest.raises(MissingMaskTokenError, match="mask_token_id"):
        forward_process_trajectory(model, ids, steps=4, sample_interval=1)
    assert sampled_steps(10, 3) == [3, 6, 9, 10]


def test_generation_trajectory_with_left_padded_prompts():
    model = planted_sink_llada()
    prompt = text_ids(batch=2, seq=6)
    prompt_mask = torch.ones_like(prompt)
    prompt[1, :2] = 0
    prompt_mask[1, :2] = 0
    traj = generation_trajectory(
        model, prompt, steps=2, gen_length=4, block_length=4, attention_mask=prompt_mask, progress=False
    )
    assert traj.valid.shape == (2, 10)
    assert not traj.valid[1, :2].any() and traj.valid[1, 2:].all() and traj.valid[0].all()
    assert torch.all(traj.mass[:, 1, :2] == 0)
    # the first valid position of the padded prompt is its "first" token
    assert torch.all(traj.dominant[:, 1] >= 2)
