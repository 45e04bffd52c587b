# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Pruned checkpoints reload at their pruned shapes with identical logits: Auto classes, native classes, and the
self-contained remote code of LLaDA/Dream without optimum-sinkprune importable."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.models.pruned_loading import register_pruned_loading
from optimum_sinkprune.structured import remove_heads, remove_mlp_channels

from structured_models import FACTORIES, logits, valid_heads


@pytest.fixture(autouse=True)
def _pruned_loading():
    register_pruned_loading()  # the lead wires this into `import optimum_sinkprune`; idempotent


def _pruned(family):
    model = FACTORIES[family]()
    remove_heads(model, valid_heads(family))
    remove_mlp_channels(model, {0: [0, 3, 50], 1: list(range(20, 40))})
    return model


def test_auto_reload_identical_logits(family, ids, tmp_path):
    model = _pruned(family)
    expected = logits(model, ids)
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert type(reloaded) is type(model)
    torch.testing.assert_close(logits(reloaded, ids), expected, atol=0, rtol=0)
    adapter = get_adapter(reloaded)
    assert adapter.pruned_heads(reloaded) == valid_heads(family)
    assert [adapter.mlp_width(reloaded, i) for i in range(2)] == [93, 76]
    # the bare trunk (AutoModel) also builds the pruned shapes
    base = AutoModel.from_pretrained(tmp_path)
    names = {n: p.shape for n, p in base.named_parameters()}
    pruned_shapes = {n: p.shape for n, p in reloaded.named_parameters()}
    for name, shape in names.items():
        matches = [s for n, s in pruned_shapes.items() if n.endswith(name)]
        assert shape in matches, name


def test_saved_config_round_trips(family, tmp_path):
    model = _pruned(family)
    model.save_pretrained(tmp_path)
    raw = json.loads((tmp_path / "config.json").read_text())
    assert raw["pruned_heads"] == {str(k): v for k, v in valid_heads(family).items()}
    config = AutoConfig.from_pretrained(tmp_path)
    assert {int(k): v for k, v in config.pruned_heads.items()} == valid_heads(family)
    widths_key = {"llada": "mlp_hidden_sizes"}.get(family, "intermediate_sizes")
    assert getattr(config, widths_key) == [93, 76] == raw[widths_key]
    # saving the reloaded model again writes the same structure
    again = AutoModelForCausalLM.from_pretrained(tmp_path)
    again.save_pretrained(tmp_path / "again")
    raw2 = json.loads((tmp_path / "again" / "config.json").read_text())
    assert raw2["pruned_heads"] == raw["pruned_heads"] and raw2[widths_key] == raw[widths_key]


def test_composition_survives_reload(ids, tmp_path):
    model = _pruned("llada")
    model.save_pretrained(tmp_path / "a")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "a")
    remove_heads(reloaded, {0: [0], 1: [1]})
    remove_heads(model, {0: [0], 1: [1]})
    assert reloaded.config.pruned_heads == {0: [0, 1], 1: [0, 1, 3]}
    reloaded.save_pretrained(tmp_path / "b")
    final = AutoModelForCausalLM.from_pretrained(tmp_path / "b")
    torch.testing.assert_close(logits(final, ids), logits(model, ids), atol=0, rtol=0)


REMOTE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["optimum_sinkprune"] = None  # the plugin cannot be imported
    import torch
    from transformers import AutoModelForCausalLM
    path, ids_path, out_path = sys.argv[1:4]
    model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True).eval()
    assert "optimum_sinkprune" not in type(model).__module__, type(model).__module__
    with torch.no_grad():
        out = model(input_ids=torch.load(ids_path)).logits
    torch.save(out, out_path)
    print(type(model).__module__)
    """
)


@pytest.mark.parametrize("family", ["llada", "dream"])
def test_self_contained_remote_code_reload(family, ids, tmp_path):
    model = _pruned(family)
    expected = logits(model, ids)
    model.save_pretrained(tmp_path / "ckpt")
    assert "auto_map" in json.loads((tmp_path / "ckpt" / "config.json").read_text())
    torch.save(ids, tmp_path / "ids.pt")
    script = tmp_path / "load.py"
    script.write_text(REMOTE_SCRIPT)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "ckpt"), str(tmp_path / "ids.pt"), str(tmp_path / "out.pt")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "transformers_modules" in done.stdout
    torch.testing.assert_close(torch.load(tmp_path / "out.pt"), expected, atol=0, rtol=0)
