# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""optimum-sinkprune: Sink-Aware Pruning for diffusion language models.

Importing the package registers our LLaDA, MMaDA and Dream implementations with the transformers Auto classes and the
loading hook that rebuilds structurally pruned native (Llama/Qwen2) checkpoints at their pruned shapes.

The import itself stays cheap (no torch, no transformers: `sinkprune --help` answers at once): when transformers is
already imported, the registration happens right away; otherwise it happens the moment transformers finishes
importing, through a one-shot import hook. Either way `AutoConfig`/`AutoModel.from_pretrained` of a LLaDA, MMaDA or
Dream folder works after `import optimum_sinkprune`, in whichever order the two packages are imported. The public
classes and functions load on first use.
"""

from __future__ import annotations

import importlib.abc
import logging
import sys
from importlib import import_module

from .version import __version__

logger = logging.getLogger(__name__)

_TRANSFORMERS = "transformers"
# importing this module registers the Auto classes and watches native configs (at the end of its own body)
_REGISTERING_MODULE = "optimum_sinkprune.models"


def _register_with_transformers() -> None:
    """Import our model package, whose body registers the Auto classes and the pruned-loading watcher (idempotent).
    Re-entrant: when the import of transformers was itself triggered from inside our model package, the import
    returns the partly initialised package and its body finishes the registration."""
    import_module(_REGISTERING_MODULE)


class _RegisteringLoader(importlib.abc.Loader):
    """Runs transformers' own loader, puts that loader back on the module's spec, then registers our classes."""

    def __init__(self, loader, spec) -> None:
        self._loader = loader
        self._spec = spec

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        try:
            self._loader.exec_module(module)
        finally:
            # the wrapper is gone once transformers exists: importlib.resources, reload and inspect see its loader
            self._spec.loader = self._loader
            for mod in (module, sys.modules.get(_TRANSFORMERS)):  # transformers swaps in a lazy module
                if getattr(mod, "__loader__", None) is self:
                    mod.__loader__ = self._loader
        _remove_hook()  # one shot: transformers is imported now
        _register_with_transformers()

    def __getattr__(self, name):  # get_resource_reader, is_package, ... of the wrapped loader
        if name == "_loader":  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self._loader, name)


class _TransformersImportHook(importlib.abc.MetaPathFinder):
    """A `sys.meta_path` finder that answers only for the top-level `transformers` package: it finds the real spec
    with the other finders and wraps its loader so that our registration runs right after transformers' `__init__`
    has executed. Any import of a transformers submodule imports the package first, so one hook covers them all.

    The hook stays in place until transformers is actually executed: libraries probe for it with
    `importlib.util.find_spec("transformers")` without importing it, and such a probe must not use the hook up."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _TRANSFORMERS:
            return None
        for finder in list(sys.meta_path):  # the other finders, in order, as the import system asks them
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None  # transformers is not installed: its own ImportError follows
        if spec.loader is None or isinstance(spec.loader, _RegisteringLoader):
            return spec
        spec.loader = _RegisteringLoader(spec.loader, spec)
        return spec


def _remove_hook() -> None:
    # rebuilt in place: the import system may be iterating over sys.meta_path right now
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _TransformersImportHook)]


def _install() -> None:
    if _TRANSFORMERS in sys.modules:
        _register_with_transformers()
    elif not any(isinstance(f, _TransformersImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _TransformersImportHook())
        logger.debug("the Auto classes are registered when transformers is imported")


_install()

# Public objects load on first use, so `import optimum_sinkprune` stays cheap.
_LAZY = {
    "DreamConfig": "optimum_sinkprune.models",
    "DreamModel": "optimum_sinkprune.models",
    "LLaDAConfig": "optimum_sinkprune.models",
    "LLaDAModelLM": "optimum_sinkprune.models",
    "MMaDAConfig": "optimum_sinkprune.models",
    "MMaDAModelLM": "optimum_sinkprune.models",
    "register_auto_classes": "optimum_sinkprune.models",
    "register_pruned_loading": "optimum_sinkprune.models.pruned_loading",
    "unregister_pruned_loading": "optimum_sinkprune.models.pruned_loading",
    "watch_native_configs": "optimum_sinkprune.models.pruned_loading",
    "SinkAwarePruningConfig": "optimum_sinkprune.configuration",
    "SinkAwarePruner": "optimum_sinkprune.pruner",
    "PruningReport": "optimum_sinkprune.pruner",
    "QuantizationConfig": "optimum_sinkprune.quantization",
    "SinkAwareQuantizer": "optimum_sinkprune.quantization",
    "get_calibration_dataset": "optimum_sinkprune.calibration.data",
    "CalibrationBatch": "optimum_sinkprune.calibration.data",
    "get_adapter": "optimum_sinkprune.adapters",
    "generate": "optimum_sinkprune.diffusion",
    "elbo_log_likelihood": "optimum_sinkprune.diffusion",
    "attention_mass": "optimum_sinkprune.calibration.attention",
    "SinkReport": "optimum_sinkprune.analysis",
    "build_sink_report": "optimum_sinkprune.analysis",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'optimum_sinkprune' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["__version__", *_LAZY]
