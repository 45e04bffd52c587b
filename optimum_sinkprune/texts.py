# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The package's one text-file reader (`read_texts`): calibration, evaluation, the sink analysis and the shipped
splits (`optimum_sinkprune.assets`) all read text files through it. It imports nothing above `validation`, so any
module may use it."""

from __future__ import annotations

import json
import logging
import os

from .validation import read_text_lines

logger = logging.getLogger(__name__)

TEXT_FILE_RULE = (
    "a .jsonl file holds one JSON object with a string 'text' field (or one JSON string) per non-empty line; any other "
    "file (.txt, ...) holds one passage per non-empty line"
)


def read_texts(path: str | os.PathLike, *, limit: int | None = None, what: str = "text") -> list[str]:
    """Texts from a file, by the one rule every reader of the package follows (`TEXT_FILE_RULE`): a `.jsonl` file
    holds one JSON object with a string `"text"` field (or one JSON string) per non-empty line; any other file (`.txt`,
    ...) holds one passage per non-empty line (line ends removed). Blank lines are skipped in both.

    Calibration joins the passages with EOS into one token stream, evaluation windows each passage, the sink analysis
    takes one sample per passage.

    Args:
        path: the file.
        limit: return at most this many texts (in file order).
        what: what the file holds, for error messages ("calibration", "held-out", ...).

    Returns:
        `list[str]`: one string per passage, in file order.

    Raises:
        `FileNotFoundError`: nothing exists at `path`.
        `IsADirectoryError`: `path` is a folder.
        `ValueError`: a bad `limit`, a file that is not UTF-8 (naming the line and byte, with how to convert it), a
            `.jsonl` line that is not a text record, or a file without any text.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be None or a positive int, got {limit!r}")
    # read_text_lines names a folder, a missing file and a non-UTF-8 file (with the line)
    path = os.fspath(path)
    jsonl = path.endswith(".jsonl")
    texts: list[str] = []
    for line_no, line in read_text_lines(path, what=what):
        if not line.strip():
            continue
        if not jsonl:
            texts.append(line.rstrip("\r\n"))
        else:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{line_no} is not a JSON object with a 'text' field ({err})") from err
            text = record.get("text") if isinstance(record, dict) else record
            if not isinstance(text, str):
                raise ValueError(f"{path}:{line_no} is not a JSON object with a 'text' field (a string), got "
                                 f"{line.strip()[:80]!r}")
            texts.append(text)
        if limit is not None and len(texts) >= limit:
            break
    if not texts:
        raise ValueError(f"{what} file {path!r} holds no texts ({TEXT_FILE_RULE})")
    logger.debug("read %d %s texts from %s", len(texts), what, path)
    return texts


__all__ = ["TEXT_FILE_RULE", "read_texts"]
