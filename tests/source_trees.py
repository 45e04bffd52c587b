# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Python source parsed once per test run. Several tests walk every file of the package (the application layering,
the version import, the adapter-only names, the import cycles); parsing the whole package costs about a second, so
they share the trees instead of parsing it again each."""

from __future__ import annotations

import ast
from pathlib import Path


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """`ast.parse(source, filename)`, cached by the text (`filename` only names the file in a syntax error). The tree
    is shared: callers read it and never change it."""
    tree = _TREES.get(source)
    if tree is None:
        tree = _TREES[source] = ast.parse(source, filename=filename)
    return tree


_TREES: dict[str, ast.Module] = {}


def parse_file(path: Path) -> ast.Module:
    """The tree of the file at `path` (read as UTF-8)."""
    return parse(Path(path).read_text(encoding="utf-8"), str(path))
