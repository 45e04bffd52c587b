# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The modeling code exists once, in optimum_sinkprune/models/. The shipped tiny LLaDA loads through the plugin's
registered classes, so it carries no copy of that code; every checkpoint saved from it gets the package's current
code and an `auto_map` at save time, and loads in plain transformers without the plugin."""

import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

import optimum_sinkprune
from optimum_sinkprune.assets import default_model_path
from optimum_sinkprune.models import LLaDAModelLM

MODELS = Path(optimum_sinkprune.__file__).parent / "models"
CODE_FILES = ("configuration_llada.py", "structural_record.py", "modeling_llada.py", "modeling_dlm_utils.py")


def test_shipped_checkpoint_has_no_copy_of_the_modeling_code():
    shipped = Path(default_model_path())
    assert not [name for name in CODE_FILES if (shipped / name).exists()]
    config = json.loads((shipped / "config.json").read_text(encoding="utf-8"))
    assert "auto_map" not in config
    model = AutoModelForCausalLM.from_pretrained(shipped)
    assert type(model) is LLaDAModelLM  # the registered class, no remote code involved


@pytest.mark.slow
def test_saved_copy_carries_the_code_and_loads_without_the_plugin(tmp_path):
    model = AutoModelForCausalLM.from_pretrained(default_model_path(), dtype=torch.float32).eval()
    folder = tmp_path / "saved"
    model.save_pretrained(folder)
    for name in CODE_FILES:
        assert filecmp.cmp(folder / name, MODELS / name, shallow=False), f"{name} is not the package's code"
    auto_map = json.loads((folder / "config.json").read_text(encoding="utf-8"))["auto_map"]
    assert auto_map["AutoConfig"] == "configuration_llada.LLaDAConfig"
    assert auto_map["AutoModelForCausalLM"] == "modeling_llada.LLaDAModelLM"

    ids = torch.tensor([[1, 100, 200, 300, 3, 3]])
    with torch.no_grad():
        torch.save(model(input_ids=ids).logits, tmp_path / "expected.pt")
    script = (
        "import sys, torch\n"
        "sys.modules['optimum_sinkprune'] = None  # the plugin is not installed\n"
        "from transformers import AutoModelForCausalLM\n"
        "folder, expected = sys.argv[1], torch.load(sys.argv[2])\n"
        "model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True).eval()\n"
        "assert type(model).__module__.startswith('transformers_modules'), type(model).__module__\n"
        "with torch.no_grad():\n"
        "    got = model(input_ids=torch.tensor([[1, 100, 200, 300, 3, 3]])).logits\n"
        "torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)\n"
        "print('ok')\n"
    )
    env = dict(os.environ, HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", script, str(folder), str(tmp_path / "expected.pt")],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"
