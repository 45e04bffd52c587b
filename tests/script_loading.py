# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Load a script of the repository (a benchmark, an example, a training script) as a module, for its tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_script(path: str | Path, name: str) -> ModuleType:
    """Execute the file at `path` as module `name`, registered in `sys.modules` first (dataclasses with postponed
    annotations look their module up there)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
