# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The application (CLI subcommands, the demo) sits above the library: no module outside
optimum_sinkprune/commands/ imports it."""

from __future__ import annotations

import ast
from pathlib import Path

import optimum_sinkprune
from source_trees import parse_file

PACKAGE = Path(optimum_sinkprune.__file__).parent


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `path`."""
    package = ".".join(("optimum_sinkprune", *path.relative_to(PACKAGE).parent.parts))
    found = []
    for node in ast.walk(parse_file(path)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def test_library_never_imports_the_application():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "commands":
            continue
        for line, module in _imported_modules(path):
            if module == "optimum_sinkprune.commands" or module.startswith("optimum_sinkprune.commands."):
                offenders.append(f"{path.relative_to(PACKAGE)}:{line} imports {module}")
    assert not offenders, offenders


def test_the_resolver_sees_relative_imports():
    """The check above would pass vacuously if relative imports were misread: the CLI's own imports resolve."""
    modules = {m for _, m in _imported_modules(PACKAGE / "commands" / "demo.py")}
    assert "optimum_sinkprune.hub.load" in modules and "optimum_sinkprune.evaluation" in modules


def test_the_demo_is_not_in_the_package_root():
    assert not (PACKAGE / "demo.py").exists()
    from optimum_sinkprune.commands import demo

    assert callable(demo.run_demo) and demo.NAME == "demo"
