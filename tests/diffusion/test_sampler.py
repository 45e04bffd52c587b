# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""LLaDA's diffusion sampler on tiny LLaDA and Dream models: every mask filled, blocks decoded in order, the reveal
schedule, low-confidence selection, seeded determinism, classifier-free guidance, the Dream shift, bad arguments."""

from __future__ import annotations

import pytest
import torch

from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.diffusion import generate, num_transfer_tokens

MASK = 127


def _prompt(batch=2, length=4, seed=0):
    return torch.randint(2, 120, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def llada(tiny_llada, randomize):
    return randomize(tiny_llada, seed=40)


@pytest.fixture
def dream(tiny_dream, randomize):
    return randomize(tiny_dream, seed=41)


@pytest.mark.parametrize("family", ["llada", "dream"])
@pytest.mark.parametrize("remasking", ["low_confidence", "random"])
def test_fills_every_mask_and_keeps_prompt(family, remasking, request):
    model = request.getfixturevalue(family)
    prompt = _prompt()
    out = generate(model, prompt, steps=6, gen_length=12, block_length=4, remasking=remasking,
                   generator=torch.Generator().manual_seed(0))
    assert out.sequences.shape == (2, 16)
    assert not (out.sequences == MASK).any()
    assert torch.equal(out.sequences[:, :4], prompt)
    assert out.steps_taken == 6
    assert out.trajectory == []


@pytest.mark.parametrize("remasking", ["low_confidence", "random"])
def test_trajectory_respects_blocks_and_schedule(llada, remasking):
    prompt = _prompt()
    steps, gen_length, block_length = 9, 12, 4
    out = generate(llada, prompt, steps=steps, gen_length=gen_length, block_length=block_length,
                   remasking=remasking, return_trajectory=True, generator=torch.Generator().manual_seed(1))
    traj = out.trajectory
    assert len(traj) == steps + 1
    assert (traj[0][:, 4:] == MASK).all() and torch.equal(traj[0][:, :4], prompt)
    assert torch.equal(traj[-1], out.sequences)
    per_block = steps // (gen_length // block_length)
    expected = num_transfer_tokens(torch.ones(1, block_length, dtype=torch.bool), per_block)[0]
    for step in range(1, steps + 1):
        before, after = traj[step - 1][:, 4:], traj[step][:, 4:]
        block = (step - 1) // per_block
        revealed = (before == MASK) & (after != MASK)
        # only the current block changes, by exactly the scheduled number of tokens, and revealed tokens stay
        assert not revealed[:, : block * block_length].any()
        assert not revealed[:, (block + 1) * block_length :].any()
        assert torch.equal(revealed.sum(1), torch.full((2,), int(expected[(step - 1) % per_block])))
        assert torch.equal(after[before != MASK], before[before != MASK])
        # earlier blocks are fully decoded before a later block changes
        if step % per_block == 0:
            assert not (after[:, : (block + 1) * block_length] == MASK).any()
        assert (after[:, (block + 1) * block_length :] == MASK).all()


def test_num_transfer_tokens_sums_to_block():
    for masked, steps in ((8, 4), (7, 3), (5, 5), (3, 8), (32, 7)):
        mask = torch.zeros(2, 40, dtype=torch.bool)
        mask[0, :masked] = True
        mask[1, 3 : 3 + max(masked - 2, 0)] = True
        counts = num_transfer_tokens(mask, steps)
        assert counts.shape == (2, steps)
        assert torch.equal(counts.sum(1), mask.sum(1))
        assert torch.all(counts.max(1).values - counts.min(1).values <= 1)  # as even as possible per row
        assert torch.all(counts[:, :-1] >= counts[:, 1:])  # the remainder goes to the first steps


def test_low_confidence_reveals_most_confident_positions(llada):
    """First step, greedy: the revealed positions are the top-k of max softmax probability in the block."""
    prompt = _prompt(batch=1)
    out = generate(llada, prompt, steps=4, gen_length=8, block_length=8, return_trajectory=True)
    canvas = out.trajectory[0]
    with torch.no_grad():
        probs = torch.softmax(llada(input_ids=canvas).logits.double(), -1)
    conf, pred = probs.max(-1)
    k = int(num_transfer_tokens(torch.ones(1, 8, dtype=torch.bool), 4)[0, 0])
    top = set((torch.topk(conf[0, 4:], k).indices + 4).tolist())
    revealed = set(torch.nonzero(out.trajectory[1][0] != canvas[0]).flatten().tolist())
    assert revealed == top
    assert torch.equal(out.trajectory[1][0, sorted(top)], pred[0, sorted(top)])


def test_dream_sampler_uses_shifted_logits(dream):
    """Dream's prediction for position i is its raw output at i - 1: the first revealed tokens must come from there."""
    prompt = _prompt(batch=1)
    out = generate(dream, prompt, steps=4, gen_length=8, block_length=8, return_trajectory=True)
    canvas = out.trajectory[0]
    with torch.no_grad():
        raw = dream(input_ids=canvas).logits
    shifted = torch.cat([raw[:, :1], raw[:, :-1]], 1)
    conf, pred = torch.softmax(shifted.double(), -1).max(-1)
    revealed = torch.nonzero(out.trajectory[1][0] != canvas[0]).flatten()
    assert torch.equal(out.trajectory[1][0, revealed], pred[0, revealed])
    assert set(revealed.tolist()) == set((torch.topk(conf[0, 4:], len(revealed)).indices + 4).tolist())


@pytest.mark.parametrize("kwargs", [dict(temperature=1.0), dict(remasking="random"),
                                    dict(temperature=0.7, remasking="random")])
def test_seeded_generator_is_deterministic(llada, kwargs):
    prompt = _prompt()
    run = lambda seed: generate(llada, prompt, steps=4, gen_length=8, block_length=4,  # noqa: E731
                                generator=torch.Generator().manual_seed(seed), **kwargs).sequences
    first, again = run(5), run(5)
    assert torch.equal(first, again)
    assert any(not torch.equal(first, run(seed)) for seed in (6, 7, 8))


def test_greedy_is_deterministic_without_generator(llada):
    prompt = _prompt()
    a = generate(llada, prompt, steps=4, gen_length=8, block_length=8).sequences
    b = generate(llada, prompt, steps=4, gen_length=8, block_length=8).sequences
    assert torch.equal(a, b)


def test_classifier_free_guidance_runs(llada):
    prompt = _prompt()
    out = generate(llada, prompt, steps=4, gen_length=8, block_length=4, cfg_scale=2.0, return_trajectory=True)
    assert not (out.sequences == MASK).any() and len(out.trajectory) == 5
    # the first step follows uncond + (s + 1) (cond - uncond), the unconditional pass masking the prompt
    canvas = out.trajectory[0]
    uncond_in = canvas.clone()
    uncond_in[:, :4] = MASK
    with torch.no_grad():
        cond, uncond = llada(input_ids=canvas).logits, llada(input_ids=uncond_in).logits
    guided = uncond + 3.0 * (cond - uncond)
    revealed = out.trajectory[1] != canvas
    assert torch.equal(out.trajectory[1][revealed], guided.argmax(-1)[revealed])


def test_left_padded_prompt_batch(llada):
    prompt = _prompt()
    prompt[0, :2] = 0
    mask = torch.ones_like(prompt)
    mask[0, :2] = 0
    out = generate(llada, prompt, steps=4, gen_length=4, block_length=4, attention_mask=mask)
    assert not (out.sequences == MASK).any()


def test_empty_prompt(llada):
    out = generate(llada, torch.zeros(1, 0, dtype=torch.long), steps=2, gen_length=4, block_length=4)
    assert out.sequences.shape == (1, 4) and not (out.sequences == MASK).any()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(gen_length=0), "gen_length"),
        (dict(block_length=3), "block_length=3"),
        (dict(block_length=0), "block_length=0"),
        (dict(steps=3), "steps=3"),
        (dict(steps=0), "steps=0"),
        (dict(temperature=-1.0), "temperature"),
        (dict(cfg_scale=-0.5), "cfg_scale"),
        (dict(remasking="top_p"), "remasking='top_p'"),
        (dict(gen_length=256, block_length=256, steps=2), "maximum sequence length"),
    ],
)
def test_bad_arguments_give_clear_errors(llada, kwargs, match):
    args = dict(steps=4, gen_length=8, block_length=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        generate(llada, _prompt(), **args)


def test_bad_prompt_and_missing_mask_token(llada):
    with pytest.raises(ValueError, match="prompt must be"):
        generate(llada, torch.zeros(4, dtype=torch.long), steps=2, gen_length=4, block_length=4)
    llada.config.mask_token_id = None
    with pytest.raises(ValueError, match="tokenizer"):
        generate(llada, _prompt(), steps=2, gen_length=4, block_length=4)
    out = generate(llada, _prompt(), steps=2, gen_length=4, block_length=4, mask_token_id=MASK)
    assert not (out.sequences == MASK).any()
    assert get_adapter(llada).is_diffusion
