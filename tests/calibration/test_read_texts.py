# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The one text-file rule (`read_texts`): `.jsonl` = a "text" record per line, any other file = one passage per
non-empty line; calibration, evaluation, the CLI and the shipped splits all read files through it."""

from __future__ import annotations

import json

import pytest
import torch

from optimum_sinkprune import assets
from optimum_sinkprune.calibration.data import get_calibration_dataset, read_texts
from optimum_sinkprune.evaluation import data as evaluation_data


class WordTokenizer:
    bos_token_id, eos_token_id = 1, 2

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [10 + len(w) for w in text.split()]}


def test_text_files_hold_one_passage_per_line(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("first passage here\n\n  \nsecond one\r\nthird\n", encoding="utf-8")
    assert read_texts(path) == ["first passage here", "second one", "third"]
    assert read_texts(path, limit=2) == ["first passage here", "second one"]
    other = tmp_path / "texts.md"  # any extension but .jsonl follows the plain-text rule
    other.write_text("a\nb\n", encoding="utf-8")
    assert read_texts(other) == ["a", "b"]


def test_jsonl_files_hold_one_record_per_line(tmp_path):
    path = tmp_path / "texts.jsonl"
    path.write_text(json.dumps({"text": "one\ntwo lines", "id": 1}) + "\n\n" + json.dumps("bare string") + "\n")
    assert read_texts(path) == ["one\ntwo lines", "bare string"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "ok"}) + "\n" + json.dumps({"text": 5}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:2 .*'text' field"):
        read_texts(bad)
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n")
    with pytest.raises(ValueError, match="broken.jsonl:1"):
        read_texts(broken)


def test_missing_empty_and_bad_limit(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_texts(tmp_path / "none.txt", what="calibration")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    with pytest.raises(ValueError, match="holds no texts"):
        read_texts(empty)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="limit"):
            read_texts(empty, limit=bad)


def test_every_reader_follows_the_rule(tmp_path):
    path = tmp_path / "texts.txt"
    lines = ["alpha beta gamma delta", "epsilon zeta eta", "theta iota kappa lambda mu"]
    path.write_text("\n".join(lines) + "\n")
    assert evaluation_data.read_texts is read_texts
    from_file = get_calibration_dataset(WordTokenizer(), str(path), num_samples=3, seq_len=5, seed=0)
    from_list = get_calibration_dataset(WordTokenizer(), lines, num_samples=3, seq_len=5, seed=0)
    assert torch.equal(from_file, from_list)  # each line is one passage, joined with EOS like a list of texts
    assert assets.load_calibration_texts(limit=3) == read_texts(assets.CALIBRATION_FILE, limit=3)
