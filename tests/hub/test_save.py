# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
import errno
import hashlib
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModel

import optimum_sinkprune  # noqa: F401
from optimum_sinkprune.hub import save_pruned_model
from optimum_sinkprune.hub import save as save_module

from .conftest import PRUNING_CONFIG, tiny_llada


def tree_digest(folder) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file()
    }


def leftovers(parent: Path, name: str) -> list[str]:
    """Temporary or set-aside folders a save may have left beside `name`."""
    return [p.name for p in parent.iterdir() if p.name.startswith(f".{name}.")]


def write_png(path: Path) -> str:
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    return str(path)


def test_contents_and_reload(tmp_path, model):
    tokenizer_dir = Path(optimum_sinkprune.__file__).parent / "assets" / "tiny-llada"
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    sink_report = json.dumps({"dominant_sink_position": [0, 3, 3], "num_steps": 3})
    plots = {"sink_dynamics": write_png(tmp_path / "a.png"), "mass_heatmap": write_png(tmp_path / "b.png")}
    report = {"params_before": 90000, "total_sparsity": 0.5}
    out = save_pruned_model(
        model, tmp_path / "out", tokenizer=tokenizer, pruning_config=PRUNING_CONFIG, report=report,
        sink_report_json=sink_report, plots=plots, base_model="GSAI-ML/LLaDA-8B-Base", max_shard_size="100KB",
    )
    folder = Path(out)
    assert folder == (tmp_path / "out").absolute()
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {"config.json", "README.md", "sampler_config.json", "sink_report.json", "pruning_report.json",
            "plots/sink_dynamics.png", "plots/mass_heatmap.png", "model.safetensors.index.json",
            "tokenizer.json", "modeling_llada.py", "configuration_llada.py"} <= names
    shards = sorted(n for n in names if n.endswith(".safetensors"))
    assert len(shards) > 1  # sharded above max_shard_size
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth"))]
    assert leftovers(tmp_path, "out") == []

    config = json.loads((folder / "config.json").read_text())
    stored = config["sink_pruning_config"]
    assert {k: stored[k] for k in PRUNING_CONFIG} == PRUNING_CONFIG
    assert set(stored["versions"]) >= {"optimum_sinkprune", "transformers", "torch"}
    assert stored["versions"]["torch"] == torch.__version__
    assert json.loads((folder / "sink_report.json").read_text()) == json.loads(sink_report)
    assert json.loads((folder / "pruning_report.json").read_text()) == report
    assert (folder / "plots" / "sink_dynamics.png").read_bytes() == Path(plots["sink_dynamics"]).read_bytes()
    sampler = json.loads((folder / "sampler_config.json").read_text())
    assert sampler["mask_token_id"] == 127 and sampler["remasking"] == "low_confidence"
    assert "plots/sink_dynamics.png" in (folder / "README.md").read_text()

    # every tensor in the shards equals the model's, and the reloaded model gives identical logits
    state = model.state_dict()
    for shard in shards:
        with safe_open(folder / shard, "pt") as f:
            for key in f.keys():
                assert torch.equal(f.get_tensor(key), state[key])
    reloaded = AutoModel.from_pretrained(folder).eval()
    assert reloaded.config.sink_pruning_config["method"] == "sink_wanda"
    ids = torch.randint(0, 127, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(reloaded(ids).logits, model(ids).logits)


def test_sink_report_from_file_and_versions_kept(tmp_path, model):
    path = tmp_path / "sink.json"
    path.write_text('{"a": 1}')
    cfg = {**PRUNING_CONFIG, "versions": {"torch": "2.99-pruned-with"}}
    out = Path(save_pruned_model(model, tmp_path / "o", pruning_config=cfg, sink_report_json=str(path)))
    assert json.loads((out / "sink_report.json").read_text()) == {"a": 1}
    stored = json.loads((out / "config.json").read_text())["sink_pruning_config"]
    assert stored["versions"]["torch"] == "2.99-pruned-with"  # the pruning run's versions win
    assert stored["versions"]["transformers"]


def test_existing_checkpoint_needs_overwrite(tmp_path, model):
    first = save_pruned_model(model, tmp_path / "ck", pruning_config=PRUNING_CONFIG)
    before = tree_digest(first)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_pruned_model(tiny_llada(seed=1), tmp_path / "ck", pruning_config=PRUNING_CONFIG)
    assert tree_digest(first) == before
    assert leftovers(tmp_path, "ck") == []

    save_pruned_model(tiny_llada(seed=1), tmp_path / "ck", pruning_config=PRUNING_CONFIG, overwrite=True)
    assert tree_digest(first) != before
    assert leftovers(tmp_path, "ck") == []
    # an existing empty folder is not "a checkpoint": no overwrite needed
    (tmp_path / "empty").mkdir()
    save_pruned_model(model, tmp_path / "empty", pruning_config=PRUNING_CONFIG)
    assert (tmp_path / "empty" / "config.json").is_file()


def _disk_full_during_weights(monkeypatch):
    """Disk fills while the first shard is being written: part of the file exists, then ENOSPC."""
    import transformers.modeling_utils as modeling_utils

    def fill_disk(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\0" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device", filename)

    monkeypatch.setattr(modeling_utils, "safe_save_file", fill_disk)


def _disk_full_during_card(monkeypatch):
    """Disk fills at the last file (the card), after the weights and everything else were written."""
    real = save_module._write_text

    def write(path, text):
        if Path(path).name == "README.md":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, text)

    monkeypatch.setattr(save_module, "_write_text", write)


@pytest.mark.parametrize("fail", [_disk_full_during_weights, _disk_full_during_card])
@pytest.mark.parametrize("existing", [False, True])
def test_disk_full_leaves_nothing_half_written(tmp_path, model, monkeypatch, fail, existing):
    target = tmp_path / "ck"
    if existing:
        save_pruned_model(tiny_llada(seed=3), target, pruning_config=PRUNING_CONFIG)
    before = tree_digest(target) if existing else None
    fail(monkeypatch)
    with pytest.raises(OSError, match="No space left") as info:
        save_pruned_model(model, target, pruning_config=PRUNING_CONFIG, overwrite=True)
    assert info.value.errno == errno.ENOSPC
    assert "nothing was published" in str(info.value)
    assert leftovers(tmp_path, "ck") == []
    if existing:
        assert tree_digest(target) == before  # the old checkpoint survives, byte for byte
    else:
        assert not target.exists()


def test_failed_swap_restores_the_old_checkpoint(tmp_path, model, monkeypatch):
    target = tmp_path / "ck"
    save_pruned_model(tiny_llada(seed=3), target, pruning_config=PRUNING_CONFIG)
    before = tree_digest(target)
    real_rename, calls = os.rename, []

    def rename(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:  # old -> aside succeeded; new -> target fails
            raise OSError(errno.EIO, "I/O error")
        real_rename(src, dst)

    monkeypatch.setattr(save_module.os, "rename", rename)
    with pytest.raises(OSError, match="I/O error"):
        save_pruned_model(model, target, pruning_config=PRUNING_CONFIG, overwrite=True)
    assert tree_digest(target) == before
    assert leftovers(tmp_path, "ck") == []


def test_interrupt_cleans_up(tmp_path, model, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(save_module, "_fsync_tree", interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_pruned_model(model, tmp_path / "ck", pruning_config=PRUNING_CONFIG)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"pruning_config": {"sparsity": 0.5}}, ValueError, "'method'"),
        ({"pruning_config": {"method": "wanda", "x": object()}}, ValueError, "JSON-serialisable"),
        ({"pruning_config": ["method"]}, ValueError, "must be a dict"),
        ({"max_shard_size": "lots"}, ValueError, "max_shard_size='lots'"),
        ({"sink_report_json": "{not json"}, ValueError, "not valid JSON"),
        ({"sink_report_json": "missing.json"}, FileNotFoundError, "neither JSON text nor an existing file"),
        ({"plots": {"sink": "nope.png"}}, FileNotFoundError, "plots\\['sink'\\]"),
        ({"plots": {"../evil": "x.png"}}, ValueError, "plain file name"),
    ],
)
def test_bad_input_raises_before_writing(tmp_path, model, kwargs, error, match):
    kwargs = {"pruning_config": PRUNING_CONFIG, **kwargs}
    with pytest.raises(error, match=match):
        save_pruned_model(model, tmp_path / "ck", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_plot_must_be_png(tmp_path, model):
    (tmp_path / "p.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match="PNG"):
        save_pruned_model(model, tmp_path / "ck", pruning_config=PRUNING_CONFIG, plots={"sink": str(tmp_path / "p.jpg")})
    assert not (tmp_path / "ck").exists()


def test_target_is_a_file(tmp_path, model):
    (tmp_path / "f").write_text("x")
    with pytest.raises(FileExistsError, match="not a directory"):
        save_pruned_model(model, tmp_path / "f", pruning_config=PRUNING_CONFIG, overwrite=True)
    assert (tmp_path / "f").read_text() == "x"


def test_license_read_from_local_base_model_card(tmp_path, model):
    base = tmp_path / "base"
    base.mkdir()
    (base / "README.md").write_text("---\nlicense: apache-2.0\n---\n# base\n")
    out = save_pruned_model(model, tmp_path / "ck", pruning_config=PRUNING_CONFIG, base_model=str(base))
    from huggingface_hub import ModelCard

    card = ModelCard.load(Path(out) / "README.md")
    assert card.data.license == "apache-2.0"
    assert card.data.base_model is None  # a local path is not valid Hub metadata
    assert str(tmp_path) not in card.text  # nor is the local path leaked into the card


def test_card_usage_snippet_runs(tmp_path):
    """The card's "with the plugin" snippet, run as written on the saved folder."""
    from transformers import AutoTokenizer

    from optimum_sinkprune import LLaDAConfig, LLaDAModelLM

    tokenizer = AutoTokenizer.from_pretrained(Path(optimum_sinkprune.__file__).parent / "assets" / "tiny-llada")
    torch.manual_seed(0)
    config = LLaDAConfig(d_model=32, n_heads=2, n_layers=1, mlp_hidden_size=48, vocab_size=len(tokenizer),
                         embedding_size=len(tokenizer), mask_token_id=3, eos_token_id=2, pad_token_id=0,
                         max_sequence_length=256)
    out = save_pruned_model(LLaDAModelLM(config), tmp_path / "ck", tokenizer=tokenizer, pruning_config=PRUNING_CONFIG)
    readme = (Path(out) / "README.md").read_text()
    snippet = readme.split("```python\n")[1].split("```")[0].replace("<repo-or-folder>", out)
    namespace = {}
    exec(compile(snippet, "card-snippet", "exec"), namespace)
    assert namespace["out"].sequences.shape[1] == namespace["prompt"].shape[1] + namespace["sampler"]["gen_length"]
