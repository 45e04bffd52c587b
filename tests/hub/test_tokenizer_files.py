# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The tokenizer of a saved checkpoint runs no custom code: its files name a built-in class and no `auto_map`, it
loads in a fresh interpreter without the plugin and without any question about remote code, and it encodes as the
original does.

Why `AutoTokenizer` without the plugin is not one of the calls: it reads config.json first, and transformers asks
about remote code for any config whose `auto_map` names an `AutoConfig` of a model type it does not know — which a
self-contained LLaDA / Dream checkpoint must have for `AutoModel.from_pretrained(..., trust_remote_code=True)`. With
the plugin imported the model type is known and nothing is asked; without it the card loads the tokenizer by class.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import optimum_sinkprune
from optimum_sinkprune.hub import save_pruned_model

from .conftest import PRUNING_CONFIG, tiny_llada

REPO = Path(__file__).resolve().parents[2]
TEXT = "Once upon a time, a small model was pruned."
PROMPT = "custom code"  # in transformers' question ("Do you wish to run the custom code?") and its error


def _loads_in_fresh_interpreter(folder: Path, *, plugin: bool) -> list[int]:
    script = textwrap.dedent(f"""
        import json, sys
        {"import optimum_sinkprune" if plugin else "sys.modules['optimum_sinkprune'] = None  # not installed"}
        from transformers import AutoTokenizer, PreTrainedTokenizerFast
        folder, text = sys.argv[1], sys.argv[2]
        loaders = [lambda: PreTrainedTokenizerFast.from_pretrained(folder)]
        if {plugin!r}:
            loaders.append(lambda: AutoTokenizer.from_pretrained(folder))
        ids = [load()(text)["input_ids"] for load in loaders]
        assert all(i == ids[0] for i in ids), ids
        print(json.dumps(ids[0]))
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    # stdin closed: a question would read EOF, fail and leave its text in the output
    result = subprocess.run([sys.executable, "-c", script, str(folder), TEXT], capture_output=True, text=True,
                            env=env, cwd=folder.parent, stdin=subprocess.DEVNULL, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert PROMPT not in result.stdout and PROMPT not in result.stderr, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # two fresh interpreters
def test_saved_tokenizer_loads_without_remote_code(tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(Path(optimum_sinkprune.__file__).parent / "assets" / "tiny-llada")
    folder = Path(save_pruned_model(tiny_llada(), tmp_path / "ck", tokenizer=tokenizer,
                                    pruning_config=PRUNING_CONFIG))
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert "auto_map" not in tokenizer_config
    assert tokenizer_config["tokenizer_class"] in ("TokenizersBackend", "PreTrainedTokenizerFast")
    assert not list(folder.glob("tokenization_*.py"))  # no tokenizer code beside the weights
    expected = tokenizer(TEXT)["input_ids"]
    assert _loads_in_fresh_interpreter(folder, plugin=False) == expected
    assert _loads_in_fresh_interpreter(folder, plugin=True) == expected
    # the card's plain-transformers snippet loads the tokenizer the same way
    assert "PreTrainedTokenizerFast.from_pretrained(" in (folder / "README.md").read_text()
