# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sinkprune prune --device-map / --max-memory / --offload-folder`: the options' parsing, their refusals (before
any file is written), and a cpu + disk placement pruned end to end with the same weights as a run in memory."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest
import torch

from optimum_sinkprune.commands.cli import main, placement_kwargs

from tiny_llada_checkpoint import save_tiny_llada

BLOCKS = "model.transformer.blocks"
# the saved tiny LLaDA has two blocks: the second goes to disk
CPU_DISK = {"model.transformer.wte": "cpu", f"{BLOCKS}.0": "cpu", f"{BLOCKS}.1": "disk",
            "model.transformer.ln_f": "cpu", "model.transformer.ff_out": "cpu"}


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"device_map": None, "max_memory": None, "offload_folder": None, **kw})


def test_placement_options_parse(tmp_path):
    assert placement_kwargs(_args()) == {}
    assert placement_kwargs(_args(device_map="auto", max_memory="0=20GiB, cpu=40GiB", offload_folder="off")) == {
        "device_map": "auto", "max_memory": {0: "20GiB", "cpu": "40GiB"}, "offload_folder": "off"}
    assert placement_kwargs(_args(device_map=json.dumps(CPU_DISK)))["device_map"] == CPU_DISK
    path = tmp_path / "map.json"
    path.write_text(json.dumps(CPU_DISK))
    assert placement_kwargs(_args(device_map=str(path)))["device_map"] == CPU_DISK
    assert placement_kwargs(_args(device_map="auto", max_memory="cpu=1000"))["max_memory"] == {"cpu": 1000}


@pytest.mark.parametrize("kw, match", [
    (dict(device_map="{not json"), r"--device-map='\{not json' is not valid JSON"),
    (dict(device_map="[]"), None),
    (dict(device_map="{}"), r"non-empty JSON object"),
    (dict(device_map="auto", max_memory="20GiB"), r"--max-memory='20GiB': each entry must be DEVICE=SIZE"),
    (dict(max_memory="cpu=1GiB"), r"--max-memory needs --device-map"),
    (dict(offload_folder="off"), r"--offload-folder needs --device-map"),
])
def test_bad_placement_options_are_named(kw, match):
    if match is None:  # not a JSON object: passed on as a name, which the loader refuses (see the end-to-end test)
        assert placement_kwargs(_args(**kw))["device_map"] == "[]"
        return
    with pytest.raises(ValueError, match=match):
        placement_kwargs(_args(**kw))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("placement")
    path = save_tiny_llada(root / "base")
    text = root / "calib.txt"
    text.write_text("In the beginning God created the heaven and the earth. " * 40)
    return path, text


def _prune(base, text, out, *extra):
    return main(["prune", str(base), "--method", "wanda", "--sparsity", "0.5", "--num-samples", "2", "--seq-len",
                 "32", "--dtype", "float32", "--data", str(text), "--output", str(out), "--no-progress", *extra])


@pytest.mark.slow
def test_cpu_and_disk_placement_prunes_like_memory(checkpoint, tmp_path, capsys):
    from transformers import AutoModel

    base, text = checkpoint
    assert _prune(base, text, tmp_path / "mem") == 0
    assert _prune(base, text, tmp_path / "off", "--device-map", json.dumps(CPU_DISK),
                  "--offload-folder", str(tmp_path / "offload")) == 0, capsys.readouterr().err
    assert any((tmp_path / "offload").iterdir())  # the disk block's pruned weights were written there
    mem = AutoModel.from_pretrained(tmp_path / "mem", dtype=torch.float32).state_dict()
    off = AutoModel.from_pretrained(tmp_path / "off", dtype=torch.float32).state_dict()
    assert mem.keys() == off.keys()
    for name in mem:
        assert torch.equal(mem[name], off[name]), name
    q = off[f"{BLOCKS}.1.q_proj.weight"]
    assert float((q == 0).float().mean()) == pytest.approx(0.5, abs=0.01)


def test_disk_placement_without_folder_fails_before_writing(checkpoint, tmp_path, capsys):
    base, text = checkpoint
    assert _prune(base, text, tmp_path / "o", "--device-map", json.dumps(CPU_DISK)) == 2
    err = capsys.readouterr().err
    assert "on 'disk' but offload_folder is not given" in err and f"{BLOCKS}.1" in err
    assert not (tmp_path / "o").exists()
    assert _prune(base, text, tmp_path / "o", "--max-memory", "cpu=1GiB") == 2
    assert "--max-memory needs --device-map" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_output_holding_the_offloaded_weights_fails_before_pruning(checkpoint, tmp_path, capsys):
    """An in-place prune (`--output` = the model folder) with disk offload would delete the checkpoint file the disk
    block is read from: refused after loading, before any calibration, and the checkpoint is untouched."""
    base, text = checkpoint
    model = shutil.copytree(base, tmp_path / "model")
    before = {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()}
    assert _prune(model, text, model, "--overwrite", "--device-map", json.dumps(CPU_DISK),
                  "--offload-folder", str(tmp_path / "offload")) == 2
    err = capsys.readouterr().err
    assert f"--output='{model}' holds files this model reads its disk-offloaded weights from" in err
    assert f"'{model}/model.safetensors'" in err
    assert {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("method", ["sink_heads", "magnitude_heads"])
def test_structured_method_with_a_disk_block_fails_before_loading(checkpoint, tmp_path, capsys, monkeypatch, method):
    """Removal changes shapes that accelerate's offload maps hold fixed: an explicit device map with a disk block is
    refused before the model is loaded."""
    from optimum_sinkprune.pruner import SinkAwarePruner

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(SinkAwarePruner, "from_pretrained", no_load)
    base, text = checkpoint
    rc = main(["prune", str(base), "--method", method, "--target-param-reduction", "0.2", "--num-samples", "2",
               "--seq-len", "32", "--dtype", "float32", "--data", str(text), "--output", str(tmp_path / "o"),
               "--no-progress", "--device-map", json.dumps(CPU_DISK), "--offload-folder", str(tmp_path / "off")])
    assert rc == 2
    err = capsys.readouterr().err
    assert f"method='{method}' removes parameters and changes layer shapes" in err
    assert f"'{BLOCKS}.1' is placed on 'disk' by device_map" in err
    assert not (tmp_path / "o").exists() and not (tmp_path / "off").exists()
