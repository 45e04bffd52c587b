# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
import pytest

from optimum_sinkprune.evaluation import build_eval_sequences, build_generation_prompts
from optimum_sinkprune.evaluation.data import SUMMARY_CUE


def test_eval_sequences_are_bos_plus_consecutive_windows_round_robin(tokenizer, texts, tiny):
    seqs = build_eval_sequences(tokenizer, texts[:3], seq_len=40, num_sequences=5, bos_token_id=tiny.BOS)
    assert seqs.shape == (5, 40)
    assert (seqs[:, 0] == tiny.BOS).all()
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts[:3]]
    # round robin: doc0 w0, doc1 w0, doc2 w0, doc0 w1, doc1 w1
    expected = [ids[0][:39], ids[1][:39], ids[2][:39], ids[0][39:78], ids[1][39:78]]
    assert seqs[:, 1:].tolist() == expected


def test_eval_sequences_without_bos_and_errors(tokenizer, texts):
    seqs = build_eval_sequences(tokenizer, texts[:1], seq_len=16, num_sequences=2, bos_token_id=None)
    assert seqs[0].tolist() == tokenizer(texts[0], add_special_tokens=False)["input_ids"][:16]
    with pytest.raises(ValueError, match="num_sequences=1000"):
        build_eval_sequences(tokenizer, texts[:1], seq_len=64, num_sequences=1000)
    with pytest.raises(ValueError, match="seq_len"):
        build_eval_sequences(tokenizer, texts, seq_len=1, num_sequences=1)


def test_generation_prompts_continuation_and_summary(tokenizer, texts, tiny):
    prompts = build_generation_prompts(
        tokenizer, texts, num_prompts=4, prompt_tokens=30, reference_tokens=12, bos_token_id=tiny.BOS
    )
    assert [p.kind for p in prompts] == ["continuation", "summary", "continuation", "summary"]
    cont = prompts[0]
    ids = tokenizer(texts[0], add_special_tokens=False)["input_ids"]
    assert cont.prompt_ids == [tiny.BOS] + ids[:30]
    assert cont.reference == tokenizer.decode(ids[30:42])
    summ = prompts[1]
    lead = texts[1].split(".")[0]
    assert summ.reference.startswith(lead[:10]) and len(summ.reference) < len(texts[1])
    assert summ.prompt_text.endswith(SUMMARY_CUE)
    assert summ.reference not in tokenizer.decode(summ.prompt_ids[1:])  # the lead sentence is held out
    assert summ.prompt_ids[0] == tiny.BOS


def test_generation_prompts_validate(tokenizer, texts):
    with pytest.raises(ValueError, match="kinds"):
        build_generation_prompts(tokenizer, texts, num_prompts=1, prompt_tokens=4, reference_tokens=4, kinds=("x",))
    with pytest.raises(ValueError, match="num_prompts=50"):
        build_generation_prompts(tokenizer, texts, num_prompts=50, prompt_tokens=4, reference_tokens=4)
