# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Only adapters (optimum_sinkprune/adapters/) and our model classes (optimum_sinkprune/models/) know module paths and
attribute names. This walks every other package source file and fails on such a name used as code: an attribute
access (`block.self_attn`), a string literal (`"q_proj"`, `"model.layers.0"`), a keyword argument
(`intermediate_size=...`) or the name argument of getattr/setattr/hasattr/get_submodule. Docstrings and comments may
mention the names. The forbidden names come from the adapters themselves (`ModelAdapter.known_names`), so the list
follows what the adapters know."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import optimum_sinkprune
from optimum_sinkprune.adapters import DreamAdapter, LLaDAAdapter, LlamaAdapter, Qwen2Adapter
from optimum_sinkprune.adapters.registry import REGISTRY
from source_trees import parse

PACKAGE = Path(optimum_sinkprune.__file__).parent
ALLOWED_DIRS = ("adapters", "models", "assets")
# Names with an underscore that are also our own field and parameter names (`HeadGeometry.num_heads`,
# `probe.num_heads`, a report's `layer_types`). They are still forbidden as the name argument of
# getattr/setattr/hasattr/get_submodule, which is how code reaches into a model's modules.
GENERIC = frozenset({"num_heads", "num_kv_heads", "layer_types"})
REFLECTIVE_CALLS = frozenset({"getattr", "setattr", "hasattr", "delattr", "get_submodule", "get_parameter"})
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def known_names() -> dict[str, str]:
    """{module path or attribute name: adapter method to use instead}, over every registered adapter."""
    out: dict[str, str] = {}
    for adapter_cls in REGISTRY._adapters:
        for name, method in adapter_cls.known_names().items():
            out.setdefault(name, method)
    return out


NAMES = known_names()
# The adapter's own layout tables: reading them outside adapters/ is parsing module names by hand.
ADAPTER_TABLES = {"layout": "locate(name) / projection(block, role)", "blocks_path": "locate(name) / block_name(index)"}
LEAVES = {name: method for name, method in NAMES.items() if "." not in name}
PATHS = {name: method for name, method in NAMES.items() if "." in name}
# Plain words among the leaves ("mlp", "attention", "dense", "scaling", ...) read as English elsewhere; they are
# checked as whole dotted paths and as getattr/setattr/... names, not as every attribute or word in a string.
DISTINCT = {name: method for name, method in LEAVES.items() if "_" in name and name not in GENERIC}


def _source_files() -> list[Path]:
    return sorted(
        p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] not in ALLOWED_DIRS
    )


def _docstring_nodes(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            value = first.value if isinstance(first, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                out.add(id(value))
    return out


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _hits_in_text(text: str, *, every_leaf: bool) -> list[tuple[str, str]]:
    hits = []
    for path, method in PATHS.items():
        if re.search(rf"(?<![A-Za-z0-9_]){re.escape(path)}(?![A-Za-z0-9_])", text):
            hits.append((path, method))
    leaves = LEAVES if every_leaf else DISTINCT
    for token in set(IDENTIFIER.findall(text)):
        if token in leaves:
            hits.append((token, leaves[token]))
    return hits


def violations(source: str, filename: str) -> list[str]:
    """'filename:line: uses NAME; use adapter.METHOD instead' for every forbidden use in `source`."""
    tree = parse(source, filename)
    docstrings = _docstring_nodes(tree)
    reflective: set[int] = set()
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in REFLECTIVE_CALLS:
                for arg in node.args[:2]:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        reflective.add(id(arg))
                        found += [(arg.lineno, n, m) for n, m in _hits_in_text(arg.value, every_leaf=True)]
            for kw in node.keywords:
                if kw.arg in DISTINCT:
                    found.append((node.lineno, kw.arg, DISTINCT[kw.arg]))
        elif isinstance(node, ast.Attribute):
            if node.attr in DISTINCT:
                found.append((node.lineno, node.attr, DISTINCT[node.attr]))
            if node.attr in ADAPTER_TABLES:
                found.append((node.lineno, node.attr, ADAPTER_TABLES[node.attr]))
            dotted = _dotted(node)
            if dotted:
                found += [(node.lineno, n, m) for n, m in _hits_in_text(dotted, every_leaf=False) if n in PATHS]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings and id(node) not in reflective:
                found += [(node.lineno, n, m) for n, m in _hits_in_text(node.value, every_leaf=False)]
    return [f"{filename}:{line}: uses {name!r}; use adapter.{method} instead"
            for line, name, method in sorted(set(found))]


def test_forbidden_names_come_from_every_adapter():
    names = set(NAMES)
    # what the adapters know today, so the walk below is not vacuous
    assert {"self_attn", "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "ff_proj",
            "ff_out", "attn_out", "num_key_value_heads", "num_key_value_groups", "intermediate_size", "q_norm",
            "k_norm", "clip_qkv", "model.transformer.blocks", "model.layers"} <= names
    for adapter_cls in (LLaDAAdapter, DreamAdapter, LlamaAdapter, Qwen2Adapter):
        assert adapter_cls in REGISTRY._adapters
        assert adapter_cls.blocks_path in names
        for path in adapter_cls.layout.projections.values():
            assert set(path.split(".")) <= names


def test_walk_finds_every_kind_of_use():
    """The checker itself: each kind of use is reported with its line and the adapter method; docstrings are not."""
    source = '''"""Docstrings may say q_proj and model.layers."""
def f(block, model, geometry):
    a = block.self_attn.q_proj
    b = getattr(block, "k_norm", None)
    c = model.get_submodule("model.transformer.blocks.0")
    d = dict(intermediate_size=3)
    e = hasattr(block, "num_heads")
    g = geometry.num_heads
    return "ff_out", int(name[len(adapter.blocks_path) + 1:].split(".")[0])
'''
    text = "\n".join(violations(source, "probe.py"))
    assert ":3: uses 'self_attn'; use adapter.attention_module(block)" in text
    assert ":3: uses 'q_proj'; use adapter.projection(block, role)" in text
    assert ":4: uses 'k_norm'; use adapter.qk_postprocess(block, q, k)" in text
    assert ":5: uses 'model.transformer.blocks'; use adapter.blocks(model)" in text
    assert ":6: uses 'intermediate_size'; use adapter.set_mlp_width(block, width)" in text
    assert ":7: uses 'num_heads'; use adapter.set_head_count(block, n_heads, n_kv_heads)" in text
    assert ":9: uses 'ff_out'" in text
    assert ":9: uses 'blocks_path'; use adapter.locate(name)" in text
    assert ":1:" not in text and ":8:" not in text  # docstring; our own dataclass field


@pytest.mark.parametrize("path", _source_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_paths_or_attribute_names_outside_adapters(path):
    found = violations(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE.parent)))
    assert not found, "module paths / attribute names outside adapters/ and models/:\n" + "\n".join(found)


# ---------------------------------------------------------------------------------------------------------------------
# import cycles
# ---------------------------------------------------------------------------------------------------------------------
# Module-level imports run when a module is first imported, so a cycle among them makes the import order matter (a
# name read from a half-initialised module). Importing `a.b.c` also runs the `__init__` of `a.b` (unless the importer
# sits inside it, which is then already running), so that counts as an import of `a.b` too. Imports inside functions
# run later and are not counted; `if TYPE_CHECKING:` blocks never run.
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]) -> set[str]:
    """The package modules an import statement of `module` runs: the imported module (`from pkg import name` loads
    pkg.name when that is a module, else pkg) and the packages above it that `module` is not inside."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join(package + ([base] if base else []))
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
    out = set()
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        parts = name.split(".") if name else []
        for depth in range(1, len(parts) + 1):
            target = ".".join(parts[:depth])
            # the importer's own enclosing packages are already initialising: importing them runs nothing new
            if target in known and target != module and not module.startswith(target + "."):
                out.add(target)
    return out


def module_import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """{module: package modules it imports at module level} for `sources` = {module: (source, is_package)}."""
    known = set(sources)
    graph: dict[str, set[str]] = {}

    def visit(module: str, is_package: bool, node: ast.AST, edges: set[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                edges |= _imported_modules(module, is_package, child, known)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            elif isinstance(child, ast.If) and getattr(child.test, "id", getattr(child.test, "attr", None)) == (
                    "TYPE_CHECKING"):
                visit(module, is_package, ast.Module(body=child.orelse, type_ignores=[]), edges)
            else:
                visit(module, is_package, child, edges)

    for module, (source, is_package) in sources.items():
        graph[module] = set()
        visit(module, is_package, parse(source), graph[module])
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return cycles


def test_cycle_finder_resolves_relative_imports_and_ignores_function_level_ones():
    sources = {
        "pkg": ("", True),
        "pkg.a": ("from .b import x\n", False),
        "pkg.b": ("from . import c\nx = 1\n", False),
        "pkg.c": ("import pkg.a\n", False),
        "pkg.d": ("def f():\n    from .e import y\n", False),
        "pkg.e": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import f\nfrom .d import f\n",
                  False),
        "pkg.sub": ("from .. import d\n", True),
        "pkg.sub.f": ("from ..a import x\n", False),
        "pkg.low": ("from pkg.sub.f import x\n", True),  # runs pkg.sub's __init__ too
        "pkg.low.g": ("from ..low import h\n", False),  # inside pkg.low: its __init__ is already running
    }
    graph = module_import_graph(sources)
    assert graph["pkg.b"] == {"pkg.c"} and graph["pkg.d"] == set() and graph["pkg.e"] == {"pkg.d"}
    assert graph["pkg.sub"] == {"pkg.d"} and graph["pkg.sub.f"] == {"pkg.a"}
    assert graph["pkg.low"] == {"pkg.sub", "pkg.sub.f"} and graph["pkg.low.g"] == set()
    assert import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
    sources["pkg.sub"] = ("from ..low import g\n", True)  # pkg.low -> pkg.sub -> pkg.low.g -> (nothing new)
    assert import_cycles(module_import_graph(sources)) == [["pkg.a", "pkg.b", "pkg.c"], ["pkg.low", "pkg.sub"]]


def test_no_module_level_import_cycles():
    sources = {_module_name(p): (p.read_text(encoding="utf-8"), p.name == "__init__.py")
               for p in PACKAGE.rglob("*.py")}
    cycles = import_cycles(module_import_graph(sources))
    assert not cycles, "module-level import cycles (move the shared piece into a lower module):\n" + "\n".join(
        " <-> ".join(group) for group in cycles)
