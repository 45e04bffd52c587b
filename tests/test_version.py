# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The version lives in optimum_sinkprune/version.py only: pyproject reads it from there and no module takes it
from the package root."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import optimum_sinkprune
from optimum_sinkprune import version
from source_trees import parse_file

PACKAGE = Path(optimum_sinkprune.__file__).parent


def test_one_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+)?", version.__version__)
    assert optimum_sinkprune.__version__ == version.__version__
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert 'version = { attr = "optimum_sinkprune.version.__version__" }' in pyproject
    assert not re.search(r'^version\s*=\s*"', pyproject, flags=re.M)


def test_nothing_takes_the_version_from_the_package_root():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(parse_file(path)):
            if isinstance(node, ast.ImportFrom) and any(a.name == "__version__" for a in node.names):
                root = node.module in (None, "optimum_sinkprune") or (node.level > 0 and not node.module)
                if root and path != PACKAGE / "__init__.py":
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders
