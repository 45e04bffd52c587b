# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sinkprune quantize` on the shipped tiny LLaDA: the saved checkpoint reloads with the weights the Python API
computes, the joint sparsify + quantize pass keeps its zeros, and bad input fails before anything loads or is
written."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from huggingface_hub import ModelCard

from optimum_sinkprune.commands.cli import main

IDS = torch.randint(4, 4000, (1, 24), generator=torch.Generator().manual_seed(0))


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS).logits


def _never_load(monkeypatch):
    """Make any model load fail loudly: the checks under test must come before it."""
    from optimum_sinkprune.hub import load

    def fail(*args, **kwargs):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(load, "load_model_and_tokenizer", fail)


@pytest.mark.slow
def test_rtn_checkpoint_reloads_with_the_api_weights(tmp_path, capsys):
    from transformers import AutoModel

    from optimum_sinkprune.hub.load import load_model_and_tokenizer
    from optimum_sinkprune.quantization import QuantizationConfig, SinkAwareQuantizer

    out = tmp_path / "llada-rtn-int8"
    argv = ["quantize", "tiny-llada", "--method", "rtn", "--bits", "8", "--group-size", "32", "--output", str(out),
            "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "with rtn to int8 (group size 32)" in printed and f"saved to {out}" in printed

    config = json.loads((out / "config.json").read_text())
    assert config["quantization_config"]["format"] == "pack-quantized"
    assert config["sink_quantization_config"]["method"] == "rtn" and config["sink_quantization_config"]["bits"] == 8
    card = (out / "README.md").read_text()
    assert "sinkprune quantize tiny-llada --method rtn --bits 8 --group-size 32 --output llada-rtn-int8" in card
    assert str(tmp_path) not in card  # portable: no path of this machine
    assert "# tiny-llada quantized with rtn (int8, group size 32)" in card
    tags = ModelCard.load(out / "README.md").data.tags
    assert {"quantized", "int8"} <= set(tags) and not {"pruned", "sparse"} & set(tags)  # nothing was pruned

    model, tokenizer = load_model_and_tokenizer("tiny-llada")
    SinkAwareQuantizer(model, tokenizer).quantize(QuantizationConfig(method="rtn", bits=8, group_size=32),
                                                  progress=False)
    reloaded = AutoModel.from_pretrained(out).eval()
    assert torch.equal(_logits(reloaded), _logits(model))

    # the output folder exists now: a second run needs --overwrite, and nothing is replaced without it
    before = sorted(p.name for p in out.iterdir())
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before


@pytest.mark.slow
def test_joint_sink_gptq_keeps_its_zeros(tmp_path, capsys):
    from transformers import AutoModel

    out = tmp_path / "joint"
    assert main(["quantize", "tiny-llada", "--method", "sink_gptq", "--bits", "4", "--group-size", "64",
                 "--prune", "sink_sparsegpt", "--sparsity", "0.5", "--num-samples", "2", "--seq-len", "32",
                 "--output", str(out), "--no-progress"]) == 0
    assert "pruned jointly with sink_sparsegpt to sparsity 0.500" in capsys.readouterr().out
    tags = set(ModelCard.load(out / "README.md").data.tags)
    assert {"pruned", "sparse", "quantized", "int4", "sink-sparsegpt"} <= tags
    config = json.loads((out / "config.json").read_text())
    assert config["sink_pruning_config"]["method"] == "sink_sparsegpt"
    assert config["sink_pruning_config"]["quantization"]["method"] == "sink_gptq"
    targets = config["quantization_config"]["config_groups"]["group_0"]["targets"]
    model = AutoModel.from_pretrained(out).eval()
    _logits(model)  # the packed weights are decompressed on the first forward
    modules = dict(model.named_modules())
    weights = [modules[name].weight for name in targets]
    zeros = sum(int((w == 0).sum()) for w in weights)
    assert zeros >= 0.5 * sum(w.numel() for w in weights)
    for w in weights:  # int4, 64 columns per scale: at most 16 distinct values per group
        groups = w.float().reshape(w.shape[0], -1, 64)
        assert max(len(torch.unique(g)) for g in groups[:4].reshape(-1, 64)) <= 16


@pytest.mark.parametrize("flags, message", [
    (["--group-size", "0"], "group_size=0"),
    (["--num-samples", "0"], "num_samples=0"),
    (["--prune", "sparsegpt", "--sparsity", "1.5"], "sparsity=1.5"),
])
def test_bad_values_fail_before_loading(flags, message, tmp_path, monkeypatch, capsys):
    _never_load(monkeypatch)
    out = tmp_path / "out"
    assert main(["quantize", "tiny-llada", "--output", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("flags", [["--bits", "3"], ["--method", "awq"], ["--prune", "wanda"],
                                   ["--group-size", "abc"], ["--save-format", "compressed"]])
def test_values_outside_the_choices_are_refused_by_the_parser(flags, tmp_path, monkeypatch, capsys):
    _never_load(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        main(["quantize", "tiny-llada", "--output", str(tmp_path / "out"), *flags])
    assert exit_info.value.code == 2
    assert flags[0] in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_an_existing_output_fails_before_loading(tmp_path, monkeypatch, capsys):
    _never_load(monkeypatch)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["quantize", "tiny-llada", "--output", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"


def test_missing_compressed_tensors_is_named_before_loading(tmp_path, monkeypatch, capsys):
    _never_load(monkeypatch)
    monkeypatch.setitem(sys.modules, "compressed_tensors.quantization", None)
    assert main(["quantize", "tiny-llada", "--output", str(tmp_path / "out")]) == 2
    assert "pip install compressed-tensors" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_group_size_that_does_not_divide_names_the_layer(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["quantize", "tiny-llada", "--method", "rtn", "--group-size", "48", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "48" in err and "model.transformer.blocks.0" in err
    assert not out.exists()


def test_quantize_help_shows_the_config_defaults(capsys):
    from optimum_sinkprune.quantization import QuantizationConfig

    with pytest.raises(SystemExit):
        main(["quantize", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    defaults = QuantizationConfig()
    assert f"(default: {defaults.method})" in text and f"(default: {defaults.bits})" in text
    assert f"(default: {defaults.group_size})" in text and "(default: 0)" in text  # the seed
    for flag in ("--prune", "--save-format", "--trust-remote-code", "--no-progress", "--overwrite"):
        assert flag in text


# the 2-block tiny LLaDA of tiny_llada_checkpoint: the second block goes to disk
_BLOCKS = "model.transformer.blocks"
_CPU_DISK = {"model.transformer.wte": "cpu", f"{_BLOCKS}.0": "cpu", f"{_BLOCKS}.1": "disk",
             "model.transformer.ln_f": "cpu", "model.transformer.ff_out": "cpu"}


def _quantize_small(base, text, out, *extra):
    return main(["quantize", str(base), "--method", "gptq", "--bits", "4", "--group-size", "32", "--num-samples", "2",
                 "--seq-len", "32", "--dtype", "float32", "--data", str(text), "--output", str(out), "--no-progress",
                 *extra])


@pytest.mark.slow
def test_cpu_and_disk_placement_quantizes_like_memory(tmp_path, capsys):
    from tiny_llada_checkpoint import save_tiny_llada

    base = save_tiny_llada(tmp_path / "base")
    text = tmp_path / "calib.txt"
    text.write_text("In the beginning God created the heaven and the earth. " * 40)
    assert _quantize_small(base, text, tmp_path / "mem") == 0
    assert _quantize_small(base, text, tmp_path / "off", "--device-map", json.dumps(_CPU_DISK),
                           "--offload-folder", str(tmp_path / "offload")) == 0, capsys.readouterr().err
    assert any((tmp_path / "offload").iterdir())  # the disk block's quantized weights were written there
    assert (tmp_path / "off" / "model.safetensors").read_bytes() == (tmp_path / "mem" / "model.safetensors").read_bytes()

    # a disk placement without a folder is refused before anything is written
    assert _quantize_small(base, text, tmp_path / "o", "--device-map", json.dumps(_CPU_DISK)) == 2
    err = capsys.readouterr().err
    assert "on 'disk' but offload_folder is not given" in err and f"{_BLOCKS}.1" in err
    assert not (tmp_path / "o").exists()
    assert _quantize_small(base, text, tmp_path / "o", "--offload-folder", str(tmp_path / "x")) == 2
    assert "--offload-folder needs --device-map" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "x").exists()


def test_output_holding_the_offloaded_weights_fails_before_quantizing(tmp_path, capsys):
    """`--output` = the model folder with a disk block read from its checkpoint file: refused after loading, before
    any calibration; the checkpoint is untouched."""
    from tiny_llada_checkpoint import save_tiny_llada

    base = save_tiny_llada(tmp_path / "base")
    text = tmp_path / "calib.txt"
    text.write_text("In the beginning God created the heaven and the earth. " * 40)
    before = {p.name: p.read_bytes() for p in base.iterdir() if p.is_file()}
    assert _quantize_small(base, text, base, "--overwrite", "--device-map", json.dumps(_CPU_DISK),
                           "--offload-folder", str(tmp_path / "offload")) == 2
    err = capsys.readouterr().err
    assert f"--output='{base}' holds files this model reads its disk-offloaded weights from" in err
    assert {p.name: p.read_bytes() for p in base.iterdir() if p.is_file()} == before
