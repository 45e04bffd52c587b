# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`import optimum_sinkprune` is cheap (no torch, no transformers), and still registers our LLaDA / MMaDA / Dream
classes with the Auto classes and the pruned-shape watcher of native configs, in whichever order transformers and
the package are imported. Each case runs in a fresh interpreter: import order is process state."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import optimum_sinkprune

REPO = Path(__file__).resolve().parents[1]
TINY_LLADA = Path(optimum_sinkprune.__file__).parent / "assets" / "tiny-llada"


def _run(script: str, timeout: int = 300) -> subprocess.CompletedProcess:
    # this checkout first on the path (a `tests` package installed in site-packages must not shadow anything here)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=timeout)


def test_import_loads_neither_torch_nor_transformers():
    result = _run("""
        import sys
        import optimum_sinkprune
        from optimum_sinkprune.commands.cli import main
        try:
            main(["--help"])  # the whole command line, every subcommand listed
        except SystemExit as exit_info:
            assert exit_info.code == 0
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers"))
        assert not heavy, heavy
        assert optimum_sinkprune.__version__
        print("cheap")
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("cheap")
    assert "quantize" in result.stdout  # the help lists every subcommand without loading any library code


# What every import order must give: AutoConfig resolves model_type "llada" to our class without remote code, the
# import hook is gone and transformers' own loader is back on its spec, and a native Llama config recording pruned
# heads turns on the pruned-shape loading.
CHECKS = """
import sys
from transformers import AutoConfig, AutoModel
import transformers

config = AutoConfig.from_pretrained({tiny!r})
assert type(config).__module__ == "optimum_sinkprune.models.configuration_llada", type(config)
model = AutoModel.from_pretrained({tiny!r})
assert type(model).__name__ == "LLaDAModelLM" and type(model).__module__.startswith("optimum_sinkprune"), type(model)
assert not [f for f in sys.meta_path if type(f).__module__ == "optimum_sinkprune"], sys.meta_path
assert type(transformers.__spec__.loader).__module__ != "optimum_sinkprune", transformers.__spec__.loader

from transformers import LlamaConfig
from transformers.monkey_patching import get_patch_mapping
assert not [c for c in get_patch_mapping().values() if c.__module__.startswith("optimum_sinkprune")]
LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
            pruned_heads={{"0": [1]}})
assert [c for c in get_patch_mapping().values() if c.__module__.startswith("optimum_sinkprune")]
print("registered")
"""

ORDERS = {
    "transformers first": "import transformers\nimport optimum_sinkprune\n",
    "package first": "import optimum_sinkprune\nimport transformers\n",
    # a library module whose own import pulls in torch (not transformers) before anything registered
    "a submodule first": "import optimum_sinkprune.adapters\n",
    # the model package imports transformers from inside its own first module: the registration re-enters it
    "a lazy class first": "from optimum_sinkprune import LLaDAConfig\n",
    # libraries probe for transformers without importing it; the probe must not use up the hook
    "a probe first": "import importlib.util, optimum_sinkprune\nassert importlib.util.find_spec('transformers')\n"
                     "assert importlib.util.find_spec('transformers')\nimport transformers\n",
}


@pytest.mark.slow  # one fresh interpreter loading torch and transformers per order
@pytest.mark.parametrize("order", list(ORDERS))
def test_registration_in_every_import_order(order):
    result = _run(ORDERS[order] + CHECKS.format(tiny=str(TINY_LLADA)))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("registered")


def test_public_names_are_lazy_attributes():
    """Every name of `__all__` resolves (the classes from the model package, the rest from their modules)."""
    for name in optimum_sinkprune.__all__:
        assert getattr(optimum_sinkprune, name) is not None, name
    from optimum_sinkprune.models import LLaDAConfig

    assert optimum_sinkprune.LLaDAConfig is LLaDAConfig
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        optimum_sinkprune.NoSuchThing  # noqa: B018
