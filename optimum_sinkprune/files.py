# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Small file helpers shared by the library and the commands."""

from __future__ import annotations

import os


def write_text_atomic(path: str | os.PathLike, text: str) -> str:
    """Write `text` (UTF-8) to `path` through a temporary file beside it and `os.replace`, so readers see the old
    file or the new one, never a half-written one; the temporary file is removed on any failure.

    Returns:
        `str`: the path written.
    """
    path = os.fspath(path)
    tmp = path + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
