# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Calibration text from a dataset: wikitext-2's train split (the paper's calibration data) loaded with `datasets`
from the user's cache or a local copy, and the paper's way of cutting it into windows.

Where the rows come from (`load_dataset_texts`):

* no path: the `datasets` / Hub cache of `Salesforce/wikitext` (`wikitext-2-raw-v1`, split `train`). When the
  machine is offline (`HF_HUB_OFFLINE` / `HF_DATASETS_OFFLINE`) only the caches are read, never the network; a
  dataset missing from them is a `FileNotFoundError` that says how to give a local copy;
* a folder written by `datasets.save_to_disk` (a `Dataset`, or a `DatasetDict` with a `train` split);
* a folder holding the split's parquet files, as in a download of the dataset repository
  (`wikitext-2-raw-v1/train-00000-of-00001.parquet`, or the parquet files directly);
* a text file (`wiki.train.raw`, `.txt`): one row per line, line ends kept and blank lines as empty rows, which
  are wikitext's rows; a `.jsonl` file: its `text` fields (`calibration.data.read_texts`).

`paper_calibration_windows` then cuts windows as the paper's `lib/data.py` (`get_wikitext2`) does: the rows are
joined with single spaces, tokenized once (with the tokenizer's special tokens), and each of the `num_samples`
windows starts at `random.randint(0, n_tokens - seq_len - 1)` of Python's `random` seeded with `seed`; no BOS
is inserted into a window.
"""

from __future__ import annotations

import glob
import logging
import os
import random
from dataclasses import dataclass

import torch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextDatasetSource:
    """A text dataset on the Hub: repository id, config name, split and text column."""

    path: str
    name: str
    split: str
    column: str = "text"

    @property
    def label(self) -> str:
        return f"{self.path} ({self.name}, split {self.split!r})"


WIKITEXT2_TRAIN = TextDatasetSource(path="Salesforce/wikitext", name="wikitext-2-raw-v1", split="train")
# names that select the cached wikitext-2 train split wherever calibration data is given as a string
DATASET_ALIASES = {"wikitext2": WIKITEXT2_TRAIN, "wikitext-2": WIKITEXT2_TRAIN, "wikitext-2-raw-v1": WIKITEXT2_TRAIN}
_TRUE = ("1", "true", "yes", "on")


def is_offline() -> bool:
    """True when the user asked the Hugging Face libraries not to use the network (`HF_HUB_OFFLINE` or
    `HF_DATASETS_OFFLINE`, read now and as the libraries read them at import)."""
    if any(os.environ.get(var, "").strip().lower() in _TRUE for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")):
        return True
    try:
        import huggingface_hub.constants as hub_constants

        if hub_constants.HF_HUB_OFFLINE:
            return True
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        pass
    try:
        import datasets.config

        return bool(datasets.config.HF_HUB_OFFLINE)
    except (ImportError, AttributeError):
        return False


def _missing_message(source: TextDatasetSource, detail: str) -> str:
    return (
        f"the calibration dataset {source.label} is not available: {detail}. Give a local copy instead: a folder "
        f"saved with `datasets.load_dataset({source.path!r}, {source.name!r}, split={source.split!r})"
        f".save_to_disk(PATH)`, a folder with the dataset repository's {source.name}/{source.split}-*.parquet "
        "files, or the raw text as a .txt file (one row per line, e.g. wiki.train.raw); pass its path as the "
        "calibration data (`--data PATH` on the command line)"
    )


def _rows_of(dataset, source: TextDatasetSource, where: str) -> list[str]:
    columns = list(getattr(dataset, "column_names", None) or [])
    if source.column not in columns:
        raise ValueError(f"{where} has no {source.column!r} column (columns: {columns})")
    return list(dataset[source.column])


def _parquet_files(folder: str, source: TextDatasetSource) -> list[str]:
    for pattern in (os.path.join(folder, source.name, f"{source.split}-*.parquet"),
                    os.path.join(folder, f"{source.split}-*.parquet"),
                    os.path.join(folder, "*.parquet")):
        files = sorted(glob.glob(pattern))
        if files:
            return files
    return []


def _load_folder(folder: str, source: TextDatasetSource) -> list[str]:
    import datasets

    saved = any(os.path.isfile(os.path.join(folder, f)) for f in ("dataset_dict.json", "state.json"))
    if saved:
        data = datasets.load_from_disk(folder)
        if isinstance(data, datasets.DatasetDict):
            if source.split not in data:
                raise ValueError(f"the saved dataset at {folder!r} has no {source.split!r} split (splits: "
                                 f"{sorted(data)})")
            data = data[source.split]
        return _rows_of(data, source, f"the saved dataset at {folder!r}")
    files = _parquet_files(folder, source)
    if not files:
        texts = sorted(os.path.basename(f) for f in glob.glob(os.path.join(folder, "*"))
                       if f.endswith((".txt", ".jsonl", ".raw")) and os.path.isfile(f))
        holds = f" (this one holds {', '.join(texts[:3])}{', ...' if len(texts) > 3 else ''})" if texts else ""
        raise FileNotFoundError(
            f"calibration data {folder!r} is a folder, but neither one saved with datasets' save_to_disk nor one with "
            f"{source.name}/{source.split}-*.parquet files; to calibrate on a text file, pass the file's own path"
            f"{holds}. For wikitext-2: " + _missing_message(source, "no local copy found")
        )
    data = datasets.load_dataset("parquet", data_files={source.split: files}, split=source.split)
    return _rows_of(data, source, f"the parquet files {files}")


def _load_text_file(path: str) -> list[str]:
    if path.endswith(".jsonl"):
        from ..texts import read_texts

        return read_texts(path, what="calibration")
    from ..validation import read_text_lines  # a non-UTF-8 file is named with its line

    rows = [line if line.strip() else "" for _, line in read_text_lines(path, what="calibration")]  # wikitext's rows
    if not any(rows):
        raise ValueError(f"calibration file {path!r} holds no text")
    return rows


def _load_hub_cache(source: TextDatasetSource) -> list[str]:
    """The split from the caches only (the Hub's file cache, then `datasets`' own when it is in offline mode)."""
    errors = []
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(repo_id=source.path, repo_type="dataset", local_files_only=True,
                                   allow_patterns=[f"{source.name}/{source.split}-*.parquet"])
        if _parquet_files(folder, source):
            return _load_folder(folder, source)
        errors.append("the Hub cache holds no parquet files of the split")
    except Exception as err:  # noqa: BLE001 - every miss of the cache reads as "not cached"
        errors.append(f"not in the Hub cache ({type(err).__name__})")
    import datasets.config

    if datasets.config.HF_HUB_OFFLINE:  # datasets itself will not use the network: its cache may be read
        try:
            return _rows_of(datasets.load_dataset(source.path, source.name, split=source.split), source, source.label)
        except Exception as err:  # noqa: BLE001
            errors.append(f"not in the datasets cache ({type(err).__name__})")
    raise FileNotFoundError(_missing_message(source, "the machine is offline and " + "; ".join(errors)))


def load_dataset_texts(path: str | os.PathLike | None = None, *,
                       source: TextDatasetSource = WIKITEXT2_TRAIN) -> list[str]:
    """The text rows of a calibration dataset (by default wikitext-2's train split), in dataset order.

    Args:
        path: a local copy (a `save_to_disk` folder, a folder of the split's parquet files, a `.txt` / raw text
            file or a `.jsonl` file), or None for the user's cache (the network only when not offline).
        source: which Hub dataset the cache lookup (and the error message) is about.

    Returns:
        `list[str]`: the rows (wikitext's include empty rows; the paper joins all of them).

    Raises:
        FileNotFoundError: `path` does not exist, or the dataset is not cached on an offline machine (the message
            names the dataset and how to give a local copy).
        ValueError: a local copy without the split or the text column, or without any text.
    """
    if path is not None:
        path = os.fspath(path)
        if os.path.isdir(path):
            rows = _load_folder(path, source)
        elif os.path.isfile(path):
            rows = _load_text_file(path)
        else:
            raise FileNotFoundError(_missing_message(source, f"{path!r} does not exist"))
    elif is_offline():
        rows = _load_hub_cache(source)
    else:
        import datasets

        try:
            rows = _rows_of(datasets.load_dataset(source.path, source.name, split=source.split), source, source.label)
        except (ConnectionError, OSError) as err:
            raise FileNotFoundError(_missing_message(source, f"loading it failed ({err})")) from err
    if not any(r.strip() for r in rows):
        raise ValueError(f"the calibration dataset {path or source.label!r} holds no text")
    logger.info("calibration dataset %s: %d rows", path or source.label, len(rows))
    return rows


def dataset_texts_or_none(data: str | os.PathLike) -> list[str] | None:
    """Rows for calibration data named as a dataset: an alias such as "wikitext2" (the cached train split) or a
    dataset folder (`save_to_disk` or parquet files); None for anything else (files are read by
    `calibration.data.read_texts`)."""
    text = os.fspath(data)
    if text in DATASET_ALIASES and not os.path.exists(text):
        return load_dataset_texts(None, source=DATASET_ALIASES[text])
    if os.path.isdir(text):
        return load_dataset_texts(text)
    return None


def paper_token_stream(tokenizer, rows: list[str]) -> torch.Tensor:
    """The rows joined with single spaces and tokenized once, as the paper's `get_wikitext2` does (the tokenizer's
    own special tokens included). Returns a 1-D LongTensor."""
    if tokenizer is None:
        raise ValueError("tokenizer is None; a tokenizer is needed to turn calibration texts into tokens")
    ids = tokenizer(" ".join(rows), verbose=False)["input_ids"]  # one long text, as the paper: no length warning
    return torch.tensor(ids, dtype=torch.long)


def paper_window_starts(num_tokens: int, *, num_samples: int, seq_len: int, seed: int) -> list[int]:
    """Window starts as the paper draws them: `random.seed(seed)`, then `random.randint(0, num_tokens - seq_len - 1)`
    per window (a private `random.Random`, so the global state is untouched). Pure.

    Raises:
        ValueError: fewer than `seq_len + 1` tokens.
    """
    if num_tokens < seq_len + 1:
        raise ValueError(f"the calibration data holds {num_tokens} tokens; windows of seq_len={seq_len} need at least "
                         f"{seq_len + 1}: give more text or lower seq_len")
    rng = random.Random(seed)
    return [rng.randint(0, num_tokens - seq_len - 1) for _ in range(num_samples)]


def paper_calibration_windows(
    tokenizer, rows: list[str], *, num_samples: int = 128, seq_len: int = 4096, seed: int = 0, model=None
) -> torch.LongTensor:
    """Calibration windows [num_samples, seq_len] cut as the paper does (`paper_token_stream`,
    `paper_window_starts`), for `SinkAwarePruner.prune`.

    Args:
        tokenizer: the model's tokenizer.
        rows: the dataset's text rows (`load_dataset_texts`).
        num_samples, seq_len, seed: the config's (`SinkAwarePruningConfig.paper_preset`: 128, 4096, 0).
        model (*optional*): the model; a family with a framing of its own (BERT family) gets its windows framed
            [CLS] … [SEP] (`calibration.data.input_framing`; the starts are drawn for the shorter body). The paper's
            families (LLaDA, Dream, MMaDA) have none: their windows are the stream's tokens, no BOS inserted.

    Raises:
        ValueError: a bad count or length, or too little text for one window.
    """
    from .framing import frame_windows, input_framing

    for name, value, minimum in (("num_samples", num_samples, 1), ("seq_len", seq_len, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name}={value!r} is not allowed; it must be an integer >= {minimum}")
    opening, closing = input_framing(model, tokenizer)  # no BOS: the paper inserts none
    body = seq_len - len(opening) - len(closing)
    if body < 1:
        raise ValueError(f"seq_len={seq_len} is not allowed; framed windows need seq_len >= "
                         f"{len(opening) + len(closing) + 1}")
    stream = paper_token_stream(tokenizer, rows)
    starts = paper_window_starts(stream.numel(), num_samples=num_samples, seq_len=body, seed=seed)
    return frame_windows(torch.stack([stream[s:s + body] for s in starts]), opening, closing)


__all__ = [
    "DATASET_ALIASES",
    "WIKITEXT2_TRAIN",
    "TextDatasetSource",
    "dataset_texts_or_none",
    "is_offline",
    "load_dataset_texts",
    "paper_calibration_windows",
    "paper_token_stream",
    "paper_window_starts",
]
