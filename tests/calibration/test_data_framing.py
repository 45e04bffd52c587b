# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The one framing rule of every input cut from text (`input_framing`), and the proof that families without a framing
of their own (the shipped LLaDA, the tiny AR Llama) get exactly the inputs they got before the rule existed: hashes
of the calibration windows, the paper windows, the held-out sequences and prompts and the sink-analysis inputs,
taken from the code before the change."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from optimum_sinkprune.calibration.data import frame_windows, get_calibration_dataset, input_framing

# sha256 (first 16 hex digits) of the int64 bytes, and the shape, of each tensor before framing was introduced
BEFORE = {
    "calibration": "7ee10d6810372f7f(8, 64)",
    "calibration_no_bos": "9a35b567d101dc04(8, 64)",
    "paper": "c38eeaf734bc849e(4, 64)",
    "analyze": "fdbbe90473201ff5(4, 40)7379ff516f2f39ab(4, 40)",
    "eval_sequences": "6cdfb29d2a7ffcd6(4, 64)40745c8094691894(4, 64)",
    "eval_prompts": "e3fc0adc13afb93c",
}


def _hash(t) -> str:
    t = torch.as_tensor(t)
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()[:16] + str(tuple(t.shape))


def test_without_a_model_or_framing_family_inputs_open_with_bos():
    assert input_framing(None, None, bos_token_id=5) == ([5], [])
    assert input_framing(None, None) == ([], [])
    body = torch.arange(6).reshape(2, 3)
    assert frame_windows(body, [9], [8, 7]).tolist() == [[9, 0, 1, 2, 8, 7], [9, 3, 4, 5, 8, 7]]
    assert torch.equal(frame_windows(body, [], []), body)


@pytest.fixture(scope="module")
def shipped():
    from optimum_sinkprune import assets
    from optimum_sinkprune.hub.load import load_model_and_tokenizer

    return (load_model_and_tokenizer(assets.default_model_path()), load_model_and_tokenizer(assets.default_ar_model_path()),
            assets.load_calibration_texts(), assets.load_heldout_texts())


@pytest.mark.parametrize("which", [0, 1], ids=["tiny-llada", "tiny-llama-ar"])
def test_families_without_framing_keep_their_inputs_byte_for_byte(shipped, which):
    from optimum_sinkprune.calibration.datasets import paper_calibration_windows
    from optimum_sinkprune.commands.analyze import tokenize_texts

    (model, tokenizer), calibration, heldout = shipped[which], shipped[2], shipped[3]
    assert input_framing(model, tokenizer, bos_token_id=tokenizer.bos_token_id) == ([tokenizer.bos_token_id], [])
    ids = get_calibration_dataset(tokenizer, calibration, num_samples=8, seq_len=64, seed=0, model=model)
    assert _hash(ids) == BEFORE["calibration"]
    assert _hash(get_calibration_dataset(tokenizer, calibration, num_samples=8, seq_len=64, seed=1, add_bos=False,
                                         model=model)) == BEFORE["calibration_no_bos"]
    for kwargs in ({"model": model}, {}):
        windows = paper_calibration_windows(tokenizer, calibration[:200], num_samples=4, seq_len=64, seed=0, **kwargs)
        assert _hash(windows) == BEFORE["paper"]
    ids, mask = tokenize_texts(tokenizer, heldout, num_samples=4, seq_len=40, model=model)
    assert _hash(ids) + _hash(mask) == BEFORE["analyze"]


def test_the_shipped_llada_evaluation_inputs_are_unchanged(shipped):
    from optimum_sinkprune.evaluation.evaluator import EvaluationSettings, Evaluator

    (model, tokenizer), heldout = shipped[0], shipped[3]
    evaluator = Evaluator(tokenizer, texts=heldout, dense_model=model, progress=False,
                          settings=EvaluationSettings(num_sequences=4, seq_len=64, num_prompts=4))
    assert _hash(evaluator.sequences) + _hash(evaluator.maskable) == BEFORE["eval_sequences"]
    prompts = json.dumps([p.prompt_ids for p in evaluator.prompts]).encode()
    assert hashlib.sha256(prompts).hexdigest()[:16] == BEFORE["eval_prompts"]


def test_the_sampler_adds_nothing_for_llada(shipped):
    from optimum_sinkprune.diffusion import generate

    model, tokenizer = shipped[0]
    prompt = torch.tensor([[tokenizer.bos_token_id, 40, 41, 42]])
    mask = torch.tensor([[1, 1, 1, 1]])
    outs = [generate(model, prompt, steps=4, gen_length=8, block_length=4, return_trajectory=True,
                     attention_mask=mask, **kwargs)
            for kwargs in ({}, {"tokenizer": tokenizer}, {"tokenizer": tokenizer, "keep_framing": True})]
    for out in outs:
        assert out.sequences.shape == (1, 12)
        assert torch.equal(out.sequences, outs[0].sequences)
        assert all(torch.equal(a, b) for a, b in zip(out.trajectory, outs[0].trajectory))
        assert torch.equal(out.attention_mask, torch.ones(1, 12, dtype=mask.dtype))
