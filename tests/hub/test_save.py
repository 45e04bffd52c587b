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
    """Temporary or set-aside folders a save may have left beside `name` (any hidden entry counts, whatever its
    naming scheme)."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".") and p.name != name)


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
        save_format="dense",  # the shards hold the model's tensors under their own names
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


# ---- interrupted saves: signals, SIGKILL at controlled points, recovery on the next save or load -------------------
# A child interpreter saves an overwrite of `target` and pauses at a chosen point (a hook wrapped around the save's
# steps, in the child only) until the test has sent its signal: after every file is written ("write"), or between the
# two renames of the overwrite ("swap").
CHILD = r"""
import importlib.util
import os
import sys
import time
from pathlib import Path

import torch

from optimum_sinkprune.hub import save as save_module

torch.set_num_threads(1)

target, pause_at, ready, go, here = sys.argv[1:6]
# this test folder as a package (a `tests` package installed elsewhere may shadow ours under its own name)
spec = importlib.util.spec_from_file_location("hub_tests", os.path.join(here, "__init__.py"),
                                              submodule_search_locations=[here])
sys.modules["hub_tests"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sys.modules["hub_tests"])
from hub_tests.conftest import PRUNING_CONFIG, tiny_llada


def wait():
    Path(ready).touch()
    deadline = time.monotonic() + 120
    while not Path(go).exists() and time.monotonic() < deadline:
        time.sleep(0.01)


if pause_at == "write":
    real_fsync = save_module._fsync_tree

    def fsync_then_wait(folder):
        real_fsync(folder)
        wait()

    save_module._fsync_tree = fsync_then_wait
elif pause_at == "swap":
    real_rename = os.rename

    def rename(src, dst):
        real_rename(src, dst)
        if "-old-" in Path(dst).name:  # the old checkpoint was just set aside; the new one is not in place yet
            wait()

    save_module.os.rename = rename
save_module.save_pruned_model(tiny_llada(seed=5), target, pruning_config=PRUNING_CONFIG, overwrite=True)
print("SAVED")
"""

CHILD_SEED = 5


def same_weights(folder, model) -> bool:
    """The checkpoint in `folder`, reloaded, holds exactly `model`'s tensors (whatever its storage format)."""
    reloaded = AutoModel.from_pretrained(folder).state_dict()
    expected = model.state_dict()
    return set(reloaded) == set(expected) and all(torch.equal(reloaded[k], expected[k]) for k in expected)


class PausedSave:
    """A save running in a child process, paused at `pause_at` (see CHILD)."""

    def __init__(self, tmp_path: Path, target: Path, pause_at: str):
        import subprocess
        import sys

        self.ready, self.go = tmp_path / "ready", tmp_path / "go"
        env = dict(os.environ)
        # the repository root first, so `tests.hub` is ours even where another package installed a `tests` package
        repo_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo_root, env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(target), pause_at, str(self.ready), str(self.go),
             str(Path(__file__).parent)], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=os.getcwd(),
        )

    def wait_until_paused(self, timeout: float = 240) -> None:
        import time

        deadline = time.monotonic() + timeout
        while not self.ready.exists():
            if self.proc.poll() is not None:
                raise AssertionError(f"the saving process ended early: {self.proc.stderr.read()[-3000:]}")
            assert time.monotonic() < deadline, "the saving process never reached its pause"
            time.sleep(0.05)

    def resume(self) -> None:
        self.go.touch()

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


def ours(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(save_module.TEMP_PREFIX))


@pytest.mark.slow
@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_termination_signal_while_writing_removes_the_partial_copy(tmp_path, signum):
    import signal

    target = tmp_path / "ck"
    save_pruned_model(tiny_llada(seed=3), target, pruning_config=PRUNING_CONFIG)
    before = tree_digest(target)
    child = PausedSave(tmp_path, target, "write")
    child.wait_until_paused()
    assert len(ours(tmp_path)) == 1  # the new copy, being written
    child.proc.send_signal(getattr(signal, signum))
    code, out, err = child.finish()
    assert "SAVED" not in out
    # SIGTERM ends the process as it would have (after the clean-up); SIGINT is a KeyboardInterrupt
    assert code == (-getattr(signal, signum) if signum != "SIGINT" else 1), err[-2000:]
    if signum == "SIGINT":
        assert "SaveInterrupted" in err and "nothing was published" in err
    assert ours(tmp_path) == []
    assert tree_digest(target) == before  # the old checkpoint, byte for byte


@pytest.mark.slow
def test_sigterm_during_the_swap_lets_it_finish(tmp_path):
    import signal
    import time

    target = tmp_path / "ck"
    save_pruned_model(tiny_llada(seed=3), target, pruning_config=PRUNING_CONFIG)
    child = PausedSave(tmp_path, target, "swap")
    child.wait_until_paused()
    assert not target.exists()  # between the renames
    child.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # delivered (and held back) while the swap is paused
    assert child.proc.poll() is None
    child.resume()
    code, out, err = child.finish()
    assert code == -signal.SIGTERM, err[-2000:]  # the signal still ends the process, once the swap is done
    assert ours(tmp_path) == []
    assert same_weights(target, tiny_llada(seed=CHILD_SEED))  # the new checkpoint, complete
    assert not (target / save_module.SAVE_MARKER_NAME).exists()
    AutoModel.from_pretrained(target)


@pytest.mark.slow
def test_sigkill_between_the_renames_is_recovered_on_load(tmp_path):
    import signal

    from optimum_sinkprune.hub.load import load_model

    target = tmp_path / "ck"
    save_pruned_model(tiny_llada(seed=3), target, pruning_config=PRUNING_CONFIG)
    child = PausedSave(tmp_path, target, "swap")
    child.wait_until_paused()
    child.proc.send_signal(signal.SIGKILL)
    child.finish()
    assert not target.exists()
    left = ours(tmp_path)
    assert len(left) == 2 and any("-old-" in n for n in left) and any("-tmp-" in n for n in left)

    # the new copy had every file on disk (its marker says so): it is the one moved into place
    model = load_model(target)
    assert same_weights(target, tiny_llada(seed=CHILD_SEED))
    assert model.config.sink_pruning_config["method"] == "sink_wanda"
    assert ours(tmp_path) == []
    assert not (target / save_module.SAVE_MARKER_NAME).exists()


@pytest.mark.slow
def test_sigkill_while_writing_leaves_the_old_checkpoint_and_the_next_save_cleans_up(tmp_path):
    import signal

    target = tmp_path / "ck"
    save_pruned_model(tiny_llada(seed=3), target, pruning_config=PRUNING_CONFIG)
    before = tree_digest(target)
    child = PausedSave(tmp_path, target, "write")
    child.wait_until_paused()
    partial = ours(tmp_path)
    # the save is still running: a recovery in another process leaves its folder alone
    live = save_module.recover_interrupted_save(target)
    assert live.running == tuple(partial) and not live.changed and ours(tmp_path) == partial
    child.proc.send_signal(signal.SIGKILL)
    child.finish()
    assert ours(tmp_path) == partial and tree_digest(target) == before

    # the next save of that path removes the dead save's partial copy (even one that fails its own check)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_pruned_model(tiny_llada(seed=8), target, pruning_config=PRUNING_CONFIG)
    assert ours(tmp_path) == [] and tree_digest(target) == before


# ---- recovery rules, on folders laid out as a killed save leaves them ------------------------------------------------
def dead_pid() -> int:
    """The pid of a process that has ended (and was reaped)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def leave(parent: Path, target_name: str, kind: str, pid: int, *, source: Path | None = None,
          complete: bool | None = None, marker_target: str | None = None, nonce: str = "0123abcd") -> Path:
    """A folder as a killed save leaves it: `source` renamed to the hidden name (an old copy set aside or a new copy),
    or a fresh partial copy; `complete` writes the save's marker."""
    folder = parent / save_module.temp_folder_name(target_name, kind, pid, nonce)
    if source is not None:
        os.rename(source, folder)
    else:
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"partial")
    if complete is not None:
        record = {"format": 1, "target": marker_target or target_name, "pid": pid, "complete": complete}
        (folder / save_module.SAVE_MARKER_NAME).write_text(json.dumps(record))
    return folder


def test_old_copy_is_restored_when_the_new_one_is_partial(tmp_path, model):
    target = tmp_path / "ck"
    save_pruned_model(model, target, pruning_config=PRUNING_CONFIG)
    before = tree_digest(target)
    pid = dead_pid()
    leave(tmp_path, "ck", "old", pid, source=target)
    leave(tmp_path, "ck", "tmp", pid, complete=False)
    result = save_module.recover_interrupted_save(target)
    assert result.restored and not result.promoted and len(result.removed) == 1
    assert tree_digest(target) == before and ours(tmp_path) == []
    assert save_module.recover_interrupted_save(target) == save_module.SaveRecovery()  # nothing left to do


def test_complete_new_copy_is_promoted_and_its_marker_removed(tmp_path, model):
    target = tmp_path / "ck"
    save_pruned_model(model, tmp_path / "new", pruning_config=PRUNING_CONFIG)
    new = tree_digest(tmp_path / "new")
    pid = dead_pid()
    leave(tmp_path, "ck", "tmp", pid, source=tmp_path / "new", complete=True)
    target.mkdir()  # an empty folder in its place counts as missing
    result = save_module.recover_interrupted_save(target)
    assert result.promoted and tree_digest(target) == new and ours(tmp_path) == []


def test_leftovers_of_a_finished_overwrite_are_removed(tmp_path, model):
    target = tmp_path / "ck"
    save_pruned_model(model, target, pruning_config=PRUNING_CONFIG)
    save_pruned_model(model, tmp_path / "older", pruning_config=PRUNING_CONFIG)
    pid = dead_pid()
    leave(tmp_path, "ck", "old", pid, source=tmp_path / "older")
    (target / save_module.SAVE_MARKER_NAME).write_text(json.dumps({"target": "ck", "pid": pid, "complete": True}))
    before = tree_digest(target)
    result = save_module.recover_interrupted_save(target)
    assert not result.restored and not result.promoted and len(result.removed) == 1
    assert ours(tmp_path) == []
    assert not (target / save_module.SAVE_MARKER_NAME).exists()
    assert {k: v for k, v in before.items() if k != save_module.SAVE_MARKER_NAME} == tree_digest(target)


def test_folders_that_are_not_ours_are_left_alone(tmp_path, model):
    target = tmp_path / "ck"
    save_pruned_model(model, target, pruning_config=PRUNING_CONFIG)
    pid = dead_pid()
    foreign = [
        leave(tmp_path, "other", "tmp", pid, complete=False),  # another checkpoint's save
        leave(tmp_path, "ck", "tmp", pid, complete=True, marker_target="ck2", nonce="ffff0000"),  # hash look-alike
        leave(tmp_path, "ck", "tmp", 1, complete=False, nonce="11110000"),  # a live process (pid 1)
    ]
    for name in (".ck.backup", ".ck.tmp-1", ".sinkprune-notes", "ck.old-abcd1234"):  # names we never make
        (tmp_path / name).mkdir()
    (tmp_path / (".ck.tmp-" + "a" * 8)).write_text("a file, not a folder")
    everything = sorted(p.name for p in tmp_path.iterdir())
    result = save_module.recover_interrupted_save(target)
    assert result.removed == () and sorted(p.name for p in tmp_path.iterdir()) == everything
    assert foreign[2].name in result.running


def test_folders_left_by_the_previous_naming_are_recovered(tmp_path, model):
    """Earlier versions named their folders `.NAME.tmp-XXXXXXXX` / `.NAME.old-XXXXXXXX` (tempfile.mkdtemp)."""
    target = tmp_path / "ck"
    save_pruned_model(model, target, pruning_config=PRUNING_CONFIG)
    before = tree_digest(target)
    os.rename(target, tmp_path / ".ck.old-k2j3_9x1")
    (tmp_path / ".ck.tmp-a1b2c3d4").mkdir()
    result = save_module.recover_interrupted_save(target)
    assert result.restored and result.removed == (".ck.tmp-a1b2c3d4",)
    assert tree_digest(target) == before and sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


@pytest.mark.parametrize("path", ["GSAI-ML/LLaDA-8B-Base", "", "/", "no/such/folder"])
def test_recovery_is_a_no_op_for_hub_ids_and_odd_paths(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert save_module.recover_interrupted_save(path) == save_module.SaveRecovery()
    assert list(tmp_path.iterdir()) == []


def test_signal_handlers_are_restored_and_the_signal_handed_on(tmp_path, model, monkeypatch):
    """In-process: an application's own SIGTERM handler gets the signal once the save has cleaned up."""
    import signal
    import time

    calls = []

    def app_handler(signum, frame):
        calls.append(signum)

    previous = signal.signal(signal.SIGTERM, app_handler)
    try:
        def terminate(folder):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # interrupted by the handler

        monkeypatch.setattr(save_module, "_fsync_tree", terminate)
        with pytest.raises(save_module.SaveInterrupted, match="SIGTERM") as info:
            save_pruned_model(model, tmp_path / "ck", pruning_config=PRUNING_CONFIG)
        assert isinstance(info.value, KeyboardInterrupt) and info.value.signum == signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) is app_handler
        assert calls == [signal.SIGTERM]  # handed on, once
        assert list(tmp_path.iterdir()) == []
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_during_the_swap_waits_for_it(tmp_path, model, monkeypatch):
    """SIGINT arriving between the two renames: the swap completes, then KeyboardInterrupt."""
    import signal

    target = tmp_path / "ck"
    save_pruned_model(tiny_llada(seed=3), target, pruning_config=PRUNING_CONFIG)
    real_rename = os.rename

    def rename(src, dst):
        real_rename(src, dst)
        if "-old-" in Path(dst).name:
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(1000))  # bytecodes: the Python-level handler runs here

    monkeypatch.setattr(save_module.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        save_pruned_model(model, target, pruning_config=PRUNING_CONFIG, overwrite=True)
    monkeypatch.undo()
    assert same_weights(target, model) and ours(tmp_path) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_save_from_a_worker_thread(tmp_path, model):
    """Signal handlers can only be installed from the main thread: elsewhere the save runs without them."""
    import signal
    import threading

    before = signal.getsignal(signal.SIGTERM)
    errors = []

    def work():
        try:
            save_pruned_model(model, tmp_path / "ck", pruning_config=PRUNING_CONFIG)
        except BaseException as err:  # reported below
            errors.append(err)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive() and errors == []
    assert same_weights(tmp_path / "ck", model) and signal.getsignal(signal.SIGTERM) is before


# ---- permissions, long names, the destination check ----------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_folder_modes_follow_the_umask_like_save_pretrained(tmp_path, model, umask):
    import stat

    old = os.umask(umask)
    try:
        out = Path(save_pruned_model(model, tmp_path / "ck", pruning_config=PRUNING_CONFIG,
                                     plots={"sink": write_png(tmp_path / "p.png")}))
        model.save_pretrained(tmp_path / "plain")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(out) == 0o777 & ~umask == mode(tmp_path / "plain")
    assert mode(out / "plots") == 0o777 & ~umask
    assert mode(out / "config.json") == 0o666 & ~umask == mode(tmp_path / "plain" / "config.json")


def test_overwrite_keeps_the_folder_mode(tmp_path, model):
    import stat

    target = Path(save_pruned_model(model, tmp_path / "ck", pruning_config=PRUNING_CONFIG))
    os.chmod(target, 0o750)
    save_pruned_model(tiny_llada(seed=2), target, pruning_config=PRUNING_CONFIG, overwrite=True)
    assert stat.S_IMODE(target.stat().st_mode) == 0o750


@pytest.mark.parametrize("length", [242, 255])
def test_long_folder_names(tmp_path, model, length):
    name = "n" * length
    save_pruned_model(model, tmp_path / name, pruning_config=PRUNING_CONFIG)
    save_pruned_model(tiny_llada(seed=2), tmp_path / name, pruning_config=PRUNING_CONFIG, overwrite=True)
    assert same_weights(tmp_path / name, tiny_llada(seed=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    # the hidden names are bounded whatever the target's length, and tell targets apart
    names = {save_module.temp_folder_name(n, "old", 4194304, "ffffffff") for n in (name, name[:-1] + "m", "a")}
    assert len(names) == 3 and max(map(len, names)) <= 51


def test_folder_name_longer_than_the_file_system_allows(tmp_path, model):
    with pytest.raises(ValueError, match=r"save_directory=.*256 bytes long.*at most 255 bytes"):
        save_pruned_model(model, tmp_path / "sub" / ("n" * 256), pruning_config=PRUNING_CONFIG)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "setup, kwargs, error, match",
    [
        (lambda p: (p / "ck").write_text("x"), {}, FileExistsError, "save_dir=.*is not a directory"),
        (lambda p: (p / "f").write_text("x"), {"path": "f/ck"}, FileExistsError, "is a file"),
        (lambda p: (p / "ck").mkdir() or (p / "ck" / "a").write_text("x"), {}, FileExistsError,
         "save_dir=.*not empty.*pick another"),
        (None, {"overwrite": "yes"}, ValueError, "overwrite must be True or False, got 'yes'"),
        (None, {"path": 3}, ValueError, "save_dir must be a non-empty path"),
    ],
)
def test_check_save_directory(tmp_path, setup, kwargs, error, match):
    if setup is not None:
        setup(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    path = kwargs.pop("path", "ck")
    path = tmp_path / path if isinstance(path, str) else path
    with pytest.raises(error, match=match):
        save_module.check_save_directory(path, argument="save_dir", remedy="pick another", **kwargs)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert save_module.check_save_directory(tmp_path / "new" / "ck") == (tmp_path / "new" / "ck")
    assert not (tmp_path / "new").exists()  # a check creates nothing


def test_prune_checks_save_dir_before_touching_the_weights(tmp_path, model):
    from optimum_sinkprune import SinkAwarePruner

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pruner = SinkAwarePruner(model)
    with pytest.raises(FileExistsError, match="save_dir=.*not empty.*save_pretrained\\(path, overwrite=True\\)"):
        pruner.prune({"method": "magnitude", "sparsity": 0.9}, save_dir=tmp_path / "out")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
