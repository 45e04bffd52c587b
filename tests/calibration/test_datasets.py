# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The calibration dataset loader (wikitext-2 train from a local copy or the cache, never the network offline) and
the paper's windowing, on tiny local datasets built in the test."""

from __future__ import annotations

import random

import pytest
import torch

from optimum_sinkprune.assets import default_model_path
from optimum_sinkprune.calibration.data import get_calibration_dataset
from optimum_sinkprune.calibration.datasets import (
    WIKITEXT2_TRAIN,
    load_dataset_texts,
    paper_calibration_windows,
    paper_window_starts,
)

ROWS = ["", " = Valkyria Chronicles III = \n", "", " Senjō no Valkyria 3 : Unrecorded Chronicles is a game .\n",
        " The game began development in 2010 , carrying over a large portion of the work .\n", "",
        " It met with positive sales in Japan , and was praised by both Japanese and western critics .\n"] * 6


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(default_model_path())


def _saved_dataset_dict(tmp_path):
    import datasets

    folder = tmp_path / "wikitext-2-raw-v1"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ROWS}),
                          "test": datasets.Dataset.from_dict({"text": ["not the train split"]})}).save_to_disk(folder)
    return folder


def test_save_to_disk_folder_gives_the_train_rows_in_order(tmp_path):
    assert load_dataset_texts(_saved_dataset_dict(tmp_path)) == ROWS


def test_parquet_folder_like_the_dataset_repository(tmp_path):
    import datasets

    (tmp_path / "repo" / "wikitext-2-raw-v1").mkdir(parents=True)
    datasets.Dataset.from_dict({"text": ROWS}).to_parquet(
        str(tmp_path / "repo" / "wikitext-2-raw-v1" / "train-00000-of-00001.parquet"))
    datasets.Dataset.from_dict({"text": ["test split"]}).to_parquet(
        str(tmp_path / "repo" / "wikitext-2-raw-v1" / "test-00000-of-00001.parquet"))
    assert load_dataset_texts(tmp_path / "repo") == ROWS


def test_raw_text_file_keeps_wikitexts_rows(tmp_path):
    raw = tmp_path / "wiki.train.raw"
    raw.write_text("".join(r if r else "\n" for r in ROWS), encoding="utf-8")
    assert load_dataset_texts(raw) == ROWS


def test_saved_dataset_without_the_split_is_a_clear_error(tmp_path):
    import datasets

    folder = tmp_path / "only-test"
    datasets.DatasetDict({"test": datasets.Dataset.from_dict({"text": ["x"]})}).save_to_disk(folder)
    with pytest.raises(ValueError, match="no 'train' split"):
        load_dataset_texts(folder)


def test_missing_path_names_the_dataset_and_the_local_copy(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Salesforce/wikitext.*--data PATH"):
        load_dataset_texts(tmp_path / "nowhere")


def test_offline_without_a_cached_copy_is_a_clear_error_and_no_network(tmp_path, monkeypatch):
    import huggingface_hub
    import huggingface_hub.constants

    import datasets.config

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")

    def no_network(*args, **kwargs):
        raise AssertionError("the loader used the network while offline")

    monkeypatch.setattr(huggingface_hub.file_download, "get_hf_file_metadata", no_network, raising=False)
    with pytest.raises(FileNotFoundError) as err:
        load_dataset_texts(None)
    message = str(err.value)
    assert WIKITEXT2_TRAIN.path in message and WIKITEXT2_TRAIN.name in message and "offline" in message
    assert "save_to_disk" in message and "--data PATH" in message


def _reference_windows(tokenizer, rows, nsamples, seed, seqlen):
    """lib/data.py get_wikitext2 of the paper's code, as written there (global `random`, " ".join)."""
    trainenc = tokenizer(" ".join(rows), return_tensors="pt")
    random.seed(seed)
    out = []
    for _ in range(nsamples):
        i = random.randint(0, trainenc.input_ids.shape[1] - seqlen - 1)
        out.append(trainenc.input_ids[:, i:i + seqlen])
    return torch.cat(out)


@pytest.mark.parametrize("seed", [0, 3])
def test_paper_windows_match_the_papers_get_wikitext2(tokenizer, seed):
    state = random.getstate()
    ref = _reference_windows(tokenizer, ROWS, 5, seed, 24)
    random.seed(1234)
    before = random.random()
    random.seed(1234)
    windows = paper_calibration_windows(tokenizer, ROWS, num_samples=5, seq_len=24, seed=seed)
    assert random.random() == before  # the global random state is not used
    random.setstate(state)
    assert windows.shape == (5, 24) and windows.dtype == torch.long
    assert torch.equal(windows, ref)


def test_paper_windows_differ_by_seed_and_insert_no_bos(tokenizer):
    a = paper_calibration_windows(tokenizer, ROWS, num_samples=8, seq_len=16, seed=0)
    b = paper_calibration_windows(tokenizer, ROWS, num_samples=8, seq_len=16, seed=1)
    assert not torch.equal(a, b)
    assert (a[:, 0] == tokenizer.bos_token_id).float().mean() < 0.5  # windows start anywhere in the stream


def test_too_little_text_for_a_window():
    with pytest.raises(ValueError, match="seq_len=100 need at least 101"):
        paper_window_starts(100, num_samples=1, seq_len=100, seed=0)


def test_the_calibration_reader_accepts_a_dataset_folder(tokenizer, tmp_path):
    folder = _saved_dataset_dict(tmp_path)
    ids = get_calibration_dataset(tokenizer, str(folder), num_samples=3, seq_len=16, seed=0)
    texts = [r for r in ROWS if r.strip()]
    assert torch.equal(ids, get_calibration_dataset(tokenizer, texts, num_samples=3, seq_len=16, seed=0))
