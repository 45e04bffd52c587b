# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
from __future__ import annotations

import json

import pytest
import torch

from optimum_sinkprune.calibration.data import get_calibration_dataset


class CharTokenizer:
    """One token per character (ids 3..), BOS 1, EOS 2."""

    bos_token_id = 1
    eos_token_id = 2
    mask_token_id = 127

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [3 + (ord(c) % 100) for c in text]}


TEXTS = ["hello world, " * 5, "the quick brown fox " * 4]


def test_from_texts_windows_with_bos():
    ids = get_calibration_dataset(CharTokenizer(), TEXTS, num_samples=5, seq_len=12, seed=1)
    assert ids.shape == (5, 12) and ids.dtype == torch.long
    assert (ids[:, 0] == 1).all()
    stream = []
    for t in TEXTS:
        stream += CharTokenizer()(t)["input_ids"] + [2]
    joined = ",".join(map(str, stream))
    for row in ids:
        assert ",".join(map(str, row[1:].tolist())) in joined  # a real window of the stream
    assert torch.equal(ids, get_calibration_dataset(CharTokenizer(), TEXTS, num_samples=5, seq_len=12, seed=1))
    no_bos = get_calibration_dataset(CharTokenizer(), TEXTS, num_samples=5, seq_len=12, seed=1, add_bos=False)
    assert (no_bos[:, 0] != 1).any()


def test_from_files(tmp_path):
    txt = tmp_path / "a.txt"
    txt.write_text("".join(TEXTS))
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": t}) for t in TEXTS) + "\n")
    assert get_calibration_dataset(CharTokenizer(), str(txt), num_samples=2, seq_len=8).shape == (2, 8)
    assert get_calibration_dataset(CharTokenizer(), jsonl, num_samples=2, seq_len=8).shape == (2, 8)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"txt": 1}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        get_calibration_dataset(CharTokenizer(), bad, num_samples=1, seq_len=4)
    with pytest.raises(FileNotFoundError):
        get_calibration_dataset(CharTokenizer(), str(tmp_path / "none.txt"), num_samples=1, seq_len=4)


def test_from_tokens():
    stream = torch.arange(100)
    ids = get_calibration_dataset(None, stream, num_samples=4, seq_len=10, seed=0)
    assert ids.shape == (4, 10)
    assert all(torch.equal(r, torch.arange(int(r[0]), int(r[0]) + 10)) for r in ids)
    rows = torch.arange(60).reshape(3, 20)
    assert torch.equal(get_calibration_dataset(None, rows, num_samples=2, seq_len=8), rows[:2, :8])


def test_datasets_dataset():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"text": TEXTS})
    assert get_calibration_dataset(CharTokenizer(), ds, num_samples=3, seq_len=8).shape == (3, 8)


@pytest.mark.parametrize("data,kwargs,match", [
    (["short"], dict(seq_len=64), "fewer than one sample needs"),
    (torch.arange(5), dict(seq_len=8), "holds 5 tokens"),
    (torch.zeros(2, 4, dtype=torch.long), dict(seq_len=8), "fewer than seq_len=8"),
    (torch.zeros(4, 4), dict(seq_len=4), "integer ids"),
    (TEXTS, dict(seq_len=300, max_length=256), "seq_len=300 exceeds"),
    (TEXTS, dict(num_samples=0), "num_samples=0"),
    (42, dict(), "not supported"),
    (None, dict(), "data-free"),
])
def test_errors(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        get_calibration_dataset(CharTokenizer(), data, **{"num_samples": 2, "seq_len": 8, **kwargs})


def test_data_free_mode_generates_with_the_model(tiny_llada):
    ids = get_calibration_dataset(CharTokenizer(), None, model=tiny_llada, num_samples=2, seq_len=16, seed=0,
                                  generation_steps=4)
    assert ids.shape == (2, 16) and (ids[:, 0] == 1).all()
    assert not (ids == 127).any()  # every position generated
    again = get_calibration_dataset(CharTokenizer(), None, model=tiny_llada, num_samples=2, seq_len=16, seed=0,
                                    generation_steps=4)
    assert torch.equal(ids, again)


def test_data_free_needs_a_diffusion_model(tiny_llama):
    with pytest.raises(ValueError, match="not diffusion models"):
        get_calibration_dataset(CharTokenizer(), None, model=tiny_llama, num_samples=1, seq_len=8)
