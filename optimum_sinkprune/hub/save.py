# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Atomic saving of a pruned checkpoint: weights (safetensors), config with the pruning config, tokenizer, sampler
defaults, sink report and plots, pruning report and the generated model card, all written into a temporary directory
beside the target and renamed into place at the end.

A save killed at any point (SIGKILL, power loss) is finished or undone by `recover_interrupted_save`, which every save
and the model loader run first; SIGINT, SIGTERM and SIGHUP during a save remove the partial copy before the signal
takes its course."""

from __future__ import annotations

import errno
import hashlib
import inspect
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from .compressed import resolve_save_format

from ..configuration import write_pruning_config
from ..counting import count_parameters
from ..offload import offload_sources

logger = logging.getLogger(__name__)

CONFIG_KEY = "sink_pruning_config"
PRUNING_CONFIG_NAME = "sink_pruning_config.json"
SAMPLER_CONFIG_NAME = "sampler_config.json"
SINK_REPORT_NAME = "sink_report.json"
PRUNING_REPORT_NAME = "pruning_report.json"
PLOTS_DIR = "plots"
# generate() arguments that are per-call data, not sampler defaults worth shipping
_NON_DEFAULT_SAMPLER_ARGS = ("model", "prompt", "attention_mask", "generator", "progress", "return_trajectory")
_PLOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def package_versions() -> dict[str, str]:
    """Versions of the packages a pruned checkpoint depends on (stamped into its pruning config)."""
    import huggingface_hub
    import torch
    import transformers

    from ..version import __version__

    return {
        "optimum_sinkprune": __version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "huggingface_hub": huggingface_hub.__version__,
    }


def stamp_pruning_config(pruning_config: Mapping) -> dict:
    """The pruning config as stored in config.json: the caller's dict plus package versions (the caller's own
    `versions` entries win, e.g. the versions that ran the pruning)."""
    out = json.loads(json.dumps(dict(pruning_config)))  # deep copy, and proves it is JSON-serialisable
    out["versions"] = {**package_versions(), **dict(out.get("versions") or {})}
    return out


def sampler_defaults(model: nn.Module, tokenizer=None) -> dict | None:
    """The diffusion sampler defaults shipped as `sampler_config.json`: `generate()`'s keyword defaults plus the mask
    token. None for models that are not diffusion LMs (nothing to sample with)."""
    from ..adapters import UnsupportedModelError, get_adapter
    from ..diffusion import generate

    try:
        adapter = get_adapter(model)
    except UnsupportedModelError:
        return None
    if not adapter.is_diffusion or adapter.own_sampler:
        return None
    defaults = {
        name: p.default
        for name, p in inspect.signature(generate).parameters.items()
        if name not in _NON_DEFAULT_SAMPLER_ARGS and p.default is not inspect.Parameter.empty and p.default is not None
    }
    return {
        "sampler": "optimum_sinkprune.diffusion.generate",
        "mask_token_id": adapter.mask_token_id(model, tokenizer),
        **defaults,
    }


def checkpoint_weight_bytes(folder: str | os.PathLike) -> int:
    """Bytes of the weight files (safetensors) in a checkpoint folder."""
    return sum(f.stat().st_size for f in Path(folder).glob("*.safetensors"))


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows) or no such setting: the common limit
        return 255


def _save_target(save_directory, argument: str = "save_directory") -> Path:
    """`save_directory` as an absolute path, refused when the file system could never hold it (a name too long)."""
    if not isinstance(save_directory, (str, os.PathLike)) or not os.fspath(save_directory):
        raise ValueError(f"{argument} must be a non-empty path (str or os.PathLike), got {save_directory!r}")
    target = Path(save_directory).expanduser().absolute()
    existing = target
    while not os.path.exists(existing) and existing != existing.parent:  # False, not ENAMETOOLONG, for a long name
        existing = existing.parent
    limit = _name_max(existing if existing.is_dir() else existing.parent)
    for part in target.relative_to(existing).parts:  # the names this save creates
        if len(os.fsencode(part)) > limit:
            raise ValueError(
                f"{argument}={str(save_directory)!r}: the folder name {part[:40]!r}... is {len(os.fsencode(part))} "
                f"bytes long; this file system allows names of at most {limit} bytes"
            )
    return target


def check_save_directory(
    save_directory: str | os.PathLike,
    *,
    overwrite: bool = False,
    argument: str = "save_directory",
    remedy: str | None = None,
    model: nn.Module | None = None,
) -> Path:
    r"""Check that a checkpoint can be saved to `save_directory`: the check `save_pruned_model` makes, for callers to
    run before any long work (pruning, calibration) so that a bad destination fails first.

    A save of this path that was killed earlier is first finished or undone ([`recover_interrupted_save`]), so the
    answer is about the checkpoint really there.

    Args:
        save_directory (`str` or `os.PathLike`): the checkpoint folder to create or replace.
        overwrite (`bool`, defaults to `False`): whether an existing non-empty folder may be replaced.
        argument (`str`, defaults to `"save_directory"`): how the caller names the destination in its messages
            (`"save_dir"`, `"--output"`).
        remedy (`str`, *optional*): what the message tells the user to do about a non-empty folder; defaults to
            passing `overwrite=True` (CLI: `--overwrite`).
        model (`nn.Module`, *optional*): the model to be saved; a folder that holds files its disk-offloaded weights
            are read from (its offload folder, or the checkpoint it was offloaded from in place) is refused, since
            replacing the folder would delete them while the model still uses them.

    Returns:
        `Path`: the absolute path of the destination.

    Raises:
        `ValueError`: not a path, a folder name longer than the file system allows, or a folder that holds files
            `model` reads its disk-offloaded weights from.
        `FileExistsError`: the path is a file, a parent is a file, or the folder is not empty and `overwrite` is False.
        `PermissionError`: the folder that would hold the checkpoint is not writable.
    """
    target = _save_target(save_directory, argument)
    if not isinstance(overwrite, bool):
        raise ValueError(f"overwrite must be True or False, got {overwrite!r}")
    if model is not None:
        _check_not_read_from(model, target, argument)
    recover_interrupted_save(target)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{argument}={str(target)!r} exists and is not a directory; choose a folder path")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        remedy = remedy or (
            "pass overwrite=True (CLI: --overwrite) to replace it (the old checkpoint is only removed once the new "
            "one is complete)"
        )
        raise FileExistsError(f"{argument}={str(target)!r} exists and is not empty (it holds files); {remedy}")
    holder = target.parent
    while not holder.exists() and holder != holder.parent:
        holder = holder.parent
    if not holder.is_dir():
        raise FileExistsError(f"{argument}={str(target)!r}: {str(holder)!r} is a file, so no folder can be made there")
    if not os.access(holder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"{argument}={str(target)!r}: the folder {str(holder)!r} is not writable")
    return target


def _check_not_read_from(model: nn.Module, target: Path, argument: str) -> None:
    """Refuse a destination that holds files the model reads its disk-offloaded weights from: the save replaces the
    folder (the old one is deleted), so the model's next forward would find them gone."""
    roots = (target, target.resolve())  # the folder by its own name and through any link
    inside = [path for path in offload_sources(model)
              if any(Path(path).is_relative_to(root) or Path(path).resolve().is_relative_to(root) for root in roots)]
    if inside:
        more = f" and {len(inside) - 3} more" if len(inside) > 3 else ""
        shown = ", ".join(repr(path) for path in inside[:3]) + more
        raise ValueError(
            f"{argument}={str(target)!r} holds files this model reads its disk-offloaded weights from on every use "
            f"({shown}); saving there would replace the folder and delete them. Save to another folder."
        )


def _validate_arguments(pruning_config, sink_report_json, plots, max_shard_size) -> None:
    if not isinstance(pruning_config, Mapping):
        raise ValueError(f"pruning_config must be a dict, got {type(pruning_config).__name__}")
    if not isinstance(pruning_config.get("method"), str) or not pruning_config["method"]:
        raise ValueError(f"pruning_config must name its 'method' (a string), got {pruning_config.get('method')!r}")
    try:
        json.dumps(dict(pruning_config))
    except (TypeError, ValueError) as err:
        raise ValueError(f"pruning_config must be JSON-serialisable: {err}") from err
    if sink_report_json is not None:
        _read_sink_report(sink_report_json)  # validates
    for name, path in (plots or {}).items():
        if not isinstance(name, str) or not _PLOT_NAME.match(name) or ".." in name:
            raise ValueError(f"plots key {name!r} must be a plain file name (letters, digits, '_', '-', '.')")
        if not Path(path).is_file():
            raise FileNotFoundError(f"plots[{name!r}]={str(path)!r} is not a file")
        if Path(path).suffix.lower() != ".png":
            raise ValueError(f"plots[{name!r}]={str(path)!r} must be a PNG file")
    from transformers.utils.hub import convert_file_size_to_int

    try:
        if convert_file_size_to_int(max_shard_size) <= 0:
            raise ValueError
    except (ValueError, TypeError, AttributeError):
        raise ValueError(
            f"max_shard_size={max_shard_size!r} is not a size; use an int (bytes) or a string like '2GB' or '500MB'"
        ) from None


def _read_sink_report(sink_report_json: str) -> str:
    """`sink_report_json` is the report's JSON text (`SinkReport.to_json()`) or the path of a JSON file."""
    if not isinstance(sink_report_json, (str, os.PathLike)):
        raise ValueError(f"sink_report_json must be JSON text or a path, got {type(sink_report_json).__name__}")
    text = str(sink_report_json)
    if not text.lstrip().startswith(("{", "[")):
        if not Path(text).is_file():
            raise FileNotFoundError(f"sink_report_json={text[:200]!r} is neither JSON text nor an existing file")
        text = Path(text).read_text(encoding="utf-8")
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"sink_report_json is not valid JSON: {err}") from err
    return text


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _fsync_tree(folder: Path) -> None:
    """Flush every file and the folders to disk, so the rename publishes complete files even after a crash."""
    for root, _, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        dfd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _base_model_license(base_model: str | None) -> str | None:
    """The base model's license from its model card, when available offline (a local folder, or the HF cache)."""
    if not base_model:
        return None
    from huggingface_hub import ModelCard, try_to_load_from_cache

    card_path = Path(base_model) / "README.md"
    if not card_path.is_file():
        try:
            cached = try_to_load_from_cache(base_model, "README.md")
        except Exception:  # not a repo id: nothing cached to read
            cached = None
        if not isinstance(cached, str):
            return None
        card_path = Path(cached)
    try:
        return ModelCard.load(card_path, ignore_metadata_errors=True).data.license
    except Exception as err:  # a base card we cannot parse must not block saving
        logger.debug("could not read the base model's license from %s: %s", card_path, err)
        return None


def _write_checkpoint(
    model, tmp: Path, *, tokenizer, pruning_config, report, sink_report_json, plots, base_model, max_shard_size,
    license, eval_results, reproduce_command, storage=("dense", None),
) -> None:
    from .compressed import DENSE, storage_description, strip_sparsity_config, write_compressed_checkpoint
    from .model_card import build_model_card

    save_format, sparse_plan = storage
    if save_format == DENSE:
        model.save_pretrained(tmp, max_shard_size=max_shard_size)
    else:
        write_compressed_checkpoint(model, tmp, sparse_plan, max_shard_size=max_shard_size)
    stray = [p.name for p in tmp.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl")]
    if stray:  # we promise safetensors only (no pickle)
        raise RuntimeError(f"save_pretrained wrote non-safetensors weights {stray}; refusing to publish them")

    config_path = tmp / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if save_format == DENSE:  # a model loaded from a compressed checkpoint keeps its sparsity config
        config = strip_sparsity_config(config)
    config[CONFIG_KEY] = stamp_pruning_config(pruning_config)
    _write_text(config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")
    # the PEFT-style JSON beside the weights (SinkAwarePruningConfig.from_pretrained reads it), inside the atomic save
    write_pruning_config(tmp, pruning_config)

    if tokenizer is not None:
        tokenizer.save_pretrained(tmp)
    sampler = sampler_defaults(model, tokenizer)
    if sampler is not None:
        _write_text(tmp / SAMPLER_CONFIG_NAME, json.dumps(sampler, indent=2) + "\n")
    if sink_report_json is not None:
        _write_text(tmp / SINK_REPORT_NAME, _read_sink_report(sink_report_json))
    sink_plot = None
    if plots:
        (tmp / PLOTS_DIR).mkdir()
        for name, src in plots.items():
            dest_name = name if name.lower().endswith(".png") else f"{name}.png"
            shutil.copyfile(src, tmp / PLOTS_DIR / dest_name)
        names = sorted(p.name for p in (tmp / PLOTS_DIR).iterdir())
        sink_plot = f"{PLOTS_DIR}/" + next((n for n in names if "sink" in n.lower()), names[0])
    if report is not None:
        _write_text(tmp / PRUNING_REPORT_NAME, json.dumps(report, indent=2, default=str) + "\n")

    # measured on what was written: the card's "after" numbers are facts about this checkpoint
    counts = count_parameters(model)
    params, nonzero = counts.params, counts.nonzero
    card_report = {**(report or {}), "params_after": params, "nonzero_params_after": nonzero,
                   "checkpoint_bytes_after": checkpoint_weight_bytes(tmp),
                   "storage": storage_description(save_format, sparse_plan)}
    card = build_model_card(
        pruning_config=config[CONFIG_KEY],
        report=card_report,
        base_model=base_model,
        eval_results=eval_results,
        sink_plot=sink_plot,
        reproduce_command=reproduce_command,
        license=license if license is not None else _base_model_license(base_model),
        history=config.get("sink_pruning_history"),
    )
    _write_text(tmp / "README.md", str(card))


# ---- temporary folders, interrupted saves -------------------------------------------------------------------------
# A save writes into `.sinkprune-<key>-tmp-<pid>-<nonce>` beside the target; an overwrite sets the old checkpoint
# aside as `.sinkprune-<key>-old-<pid>-<nonce>`. The names are short whatever the target's name (itself up to the
# file system's limit), tied to the target by <key> (a hash of its name) and to the saving process by <pid>, so that
# `recover_interrupted_save` touches only our own folders, and never those of a save still running.
TEMP_PREFIX = ".sinkprune-"
SAVE_MARKER_NAME = ".sinkprune-save.json"
_TEMP_NAME = re.compile(
    r"^\.sinkprune-(?P<key>[0-9a-f]{16})-(?P<kind>tmp|old)-(?P<pid>[1-9][0-9]{0,9})-(?P<nonce>[0-9a-f]{8})$"
)


def _target_key(name: str) -> str:
    return hashlib.sha256(os.fsencode(name)).hexdigest()[:16]


def temp_folder_name(target_name: str, kind: str, pid: int, nonce: str) -> str:
    """The hidden folder beside a checkpoint named `target_name` that a save uses: `kind` "tmp" (the new copy being
    written) or "old" (the previous checkpoint set aside during an overwrite). At most 51 characters."""
    if kind not in ("tmp", "old"):
        raise ValueError(f"kind must be 'tmp' or 'old', got {kind!r}")
    return f"{TEMP_PREFIX}{_target_key(target_name)}-{kind}-{pid}-{nonce}"


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of process `pid` from /proc, or None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()  # the command name before ")" may hold spaces
        return fields[0].decode(), fields[19].decode()
    except (OSError, IndexError, UnicodeDecodeError):
        return None


def _process_alive(pid: int, marker: Mapping | None) -> bool:
    """Whether the save that made a folder (process `pid`, described by its marker) may still be running. When in
    doubt (another host, another user's process) it is treated as running and its folders are left alone."""
    if marker is not None and marker.get("host") not in (None, socket.gethostname()):
        return True
    if pid == os.getpid():
        return True  # a save in another thread of this process (a failed save of ours cleans up in `finally`)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OverflowError:
        return False
    except OSError:  # EPERM: it exists but belongs to someone else
        pass
    proc = _proc_stat(pid)
    if proc is None:
        return not os.path.isdir("/proc")  # no /proc: trust kill(); with /proc, no entry means it just ended
    state, started = proc
    if state == "Z":  # ended, not yet reaped
        return False
    return marker is None or marker.get("started") in (None, started)  # a different start time: the pid was reused


def _save_record(target: Path, complete: bool) -> dict:
    proc = _proc_stat(os.getpid())
    return {"format": 1, "target": target.name, "pid": os.getpid(), "host": socket.gethostname(),
            "started": proc[1] if proc else None, "complete": complete}


def _write_marker(folder: Path, record: Mapping) -> None:
    """Write the save's marker file atomically (a reader sees the old marker or the new one, never a partial one)."""
    part = folder / (SAVE_MARKER_NAME + ".part")
    with open(part, "w", encoding="utf-8") as f:
        json.dump(dict(record), f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, folder / SAVE_MARKER_NAME)
    _fsync_dir(folder)


def _read_marker(folder: Path) -> dict | None:
    try:
        record = json.loads((folder / SAVE_MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows, where folders cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _make_temp_folder(target: Path) -> Path:
    """Create the hidden folder for the new copy, with the mode a plain `save_pretrained` folder gets (0o777 less the
    umask; `tempfile.mkdtemp` would force 0o700), or the mode of the folder it replaces."""
    for _ in range(100):
        tmp = target.parent / temp_folder_name(target.name, "tmp", os.getpid(), secrets.token_hex(4))
        try:
            os.mkdir(tmp)
        except FileExistsError:
            continue
        if target.is_dir():
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        return tmp
    raise FileExistsError(errno.EEXIST, f"could not create a temporary folder beside {str(target)!r}")


def _occupied(target: Path) -> bool:
    """Something other than an empty folder is at `target` (a rename may replace an empty folder)."""
    if not os.path.lexists(target):
        return False
    if target.is_symlink() or not target.is_dir():
        return True
    return any(target.iterdir())


def _is_real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


@dataclass(frozen=True)
class SaveRecovery:
    """What [`recover_interrupted_save`] did for one path.

    Attributes:
        restored (`bool`): the previous checkpoint, set aside by an overwrite that was killed, was put back.
        promoted (`bool`): a new checkpoint whose writing had finished was moved into place.
        removed (`tuple[str, ...]`): names of the leftover folders deleted.
        running (`tuple[str, ...]`): names of folders of saves still running in a live process (left alone).
    """

    restored: bool = False
    promoted: bool = False
    removed: tuple[str, ...] = ()
    running: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.restored or self.promoted or bool(self.removed)


def _move(src: Path, dst: Path) -> bool:
    try:
        os.rename(src, dst)
    except OSError as err:
        logger.warning("could not move %s to %s: %s", src, dst, err)
        return False
    return True


def _remove(folder: Path) -> bool:
    try:
        shutil.rmtree(folder)
    except FileNotFoundError:
        return True
    except OSError as err:
        logger.warning("could not remove the leftover folder %s: %s", folder, err)
        return False
    return True


def recover_interrupted_save(path: str | os.PathLike) -> SaveRecovery:
    r"""Finish or undo a save of `path` that was killed (SIGKILL, a crash, power loss) and remove what it left.

    A save writes the new checkpoint into a hidden folder beside `path`, marks it complete once every file is on
    disk, and renames it into place; an overwrite first renames the old checkpoint aside. Killed in between, `path`
    can be missing. Every save and the model loader run this first. When `path` is missing (or an empty folder), a
    complete new copy is moved into place, else the old copy is put back; then the remaining leftovers of that path
    are deleted: partial copies, old copies of an overwrite that had finished, the marker inside `path`. Only folders
    this module names for `path` are touched (and those of earlier versions, `.NAME.tmp-XXXXXXXX` and
    `.NAME.old-XXXXXXXX`), never those of a save still running in a live process.

    Args:
        path (`str` or `os.PathLike`): a checkpoint folder. A Hub id, or a path with nothing of ours beside it, is
            left as it is.

    Returns:
        [`SaveRecovery`]: what was done. File system errors are logged, not raised (loading then reports what is
        missing).
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        return SaveRecovery()
    target = Path(path).expanduser().absolute()
    name, parent = target.name, target.parent
    if not name:
        return SaveRecovery()
    try:
        entries = os.listdir(parent)
    except OSError:  # no such folder (a Hub id), not a folder, not readable: nothing of ours to find
        return SaveRecovery()
    key = _target_key(name)
    legacy_name = re.compile(rf"^\.{re.escape(name)}\.(?P<kind>tmp|old)-[a-z0-9_]{{8}}$")
    saves: dict[tuple[int, str], dict[str, Path]] = {}
    legacy: dict[str, list[Path]] = {"tmp": [], "old": []}
    for entry in entries:
        match = _TEMP_NAME.match(entry)
        if match and match["key"] == key and _is_real_dir(parent / entry):
            saves.setdefault((int(match["pid"]), match["nonce"]), {})[match["kind"]] = parent / entry
        elif entry.startswith(f".{name}.") and (match := legacy_name.match(entry)) and _is_real_dir(parent / entry):
            legacy[match["kind"]].append(parent / entry)
    stray_marker = _is_real_dir(target) and (target / SAVE_MARKER_NAME).is_file()
    if not saves and not legacy["tmp"] and not legacy["old"] and not stray_marker:
        return SaveRecovery()

    restored = promoted = False
    removed, running = [], []

    def mtime(folder: Path) -> float:
        try:
            return folder.stat().st_mtime
        except OSError:  # removed meanwhile (e.g. by a recovery in another process)
            return 0.0

    def newest_first(folders: list[Path]) -> list[Path]:
        return sorted(folders, key=mtime, reverse=True)

    # the most recent interrupted save of this path first: it is the one put in place if several are left
    groups = sorted(saves.items(), key=lambda item: max(map(mtime, item[1].values())), reverse=True)
    for (pid, _nonce), kinds in groups:
        tmp, old = kinds.get("tmp"), kinds.get("old")
        marker = _read_marker(tmp) if tmp is not None else None
        if marker is not None and marker.get("target") != name:
            continue  # another checkpoint whose name hashes alike: not ours
        if _process_alive(pid, marker):
            running += [p.name for p in (tmp, old) if p is not None]
            continue
        complete = marker is not None and marker.get("complete") is True
        if not _occupied(target):
            if tmp is not None and complete and _move(tmp, target):
                logger.warning("%s: moved the complete checkpoint of an interrupted save (process %d) into place",
                               target, pid)
                promoted, tmp = True, None
            elif old is not None and _move(old, target):
                logger.warning("%s: put back the checkpoint that an interrupted overwrite (process %d) had set aside",
                               target, pid)
                restored, old = True, None
        occupied = _occupied(target)
        # a partial copy is garbage; a complete one or an old copy only once the path holds a checkpoint again
        for leftover, disposable in ((tmp, not complete or occupied), (old, occupied)):
            if leftover is not None and disposable and _remove(leftover):
                removed.append(leftover.name)

    if not _occupied(target):
        for old in newest_first(legacy["old"]):
            if _move(old, target):
                logger.warning("%s: put back the checkpoint that an interrupted overwrite had set aside", target)
                restored = True
                legacy["old"].remove(old)
                break
    occupied = _occupied(target)
    for leftover in legacy["tmp"] + (legacy["old"] if occupied else []):
        if _remove(leftover):
            removed.append(leftover.name)

    if _is_real_dir(target) and (target / SAVE_MARKER_NAME).is_file():
        marker = _read_marker(target)
        pid = marker.get("pid") if marker else None
        if not (isinstance(pid, int) and pid > 0 and _process_alive(pid, marker)):
            (target / SAVE_MARKER_NAME).unlink(missing_ok=True)  # published by a save killed just after its rename
    if removed:
        logger.info("%s: removed leftovers of interrupted saves: %s", target, ", ".join(removed))
    return SaveRecovery(restored=restored, promoted=promoted, removed=tuple(removed), running=tuple(running))


# ---- signals -------------------------------------------------------------------------------------------------------
class SaveInterrupted(KeyboardInterrupt):
    """A signal (SIGINT, SIGTERM, SIGHUP) arrived while saving: the partial copy was removed and nothing was
    published. A `KeyboardInterrupt`, so code that stops on Ctrl-C stops on it too.

    Attributes:
        signum (`int`): the signal.
    """

    def __init__(self, signum: int):
        super().__init__(f"saving was interrupted by {signal.Signals(signum).name}; nothing was published")
        self.signum = signum


class _SaveSignals:
    """While a save runs (main thread only: Python installs signal handlers there alone), SIGINT, SIGTERM and SIGHUP
    raise [`SaveInterrupted`] so that the save's `finally` removes its partial copy; inside `deferred()` (the rename
    swap, the clean-up) they are only recorded, so the swap is never cut in half. On exit the previous handlers come
    back and a recorded signal is handed to them: the default action of SIGTERM still ends the process, after the
    clean-up. Signals that were ignored (`nohup`) stay ignored."""

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")

    def __init__(self) -> None:
        self._previous: dict[int, object] = {}
        self._deferring = 0
        self.received: int | None = None

    def __enter__(self) -> _SaveSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        for name in self.SIGNALS:
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            previous = signal.getsignal(signum)
            if previous in (signal.SIG_IGN, None):  # ignored on purpose, or a handler set outside Python: keep it
                continue
            signal.signal(signum, self._handle)
            self._previous[signum] = previous
        return self

    def _handle(self, signum, frame) -> None:
        if self.received is not None:
            return  # already interrupting, or deferred: handled once, on exit
        self.received = signum
        if not self._deferring:
            raise SaveInterrupted(signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1

    def __exit__(self, exc_type, exc, tb) -> bool:
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signum = self.received
        if signum is not None and signum in previous:
            already_raised = isinstance(exc, SaveInterrupted) and exc.signum == signum
            if not (already_raised and previous[signum] is signal.default_int_handler):
                logger.warning("%s received while saving; handing it on now that the save has %s",
                               signal.Signals(signum).name, "cleaned up" if exc is not None else "finished")
                signal.raise_signal(signum)  # the previous handler's turn (the default for SIGTERM: exit)
        return False


def _publish(tmp: Path, target: Path, overwrite: bool) -> Path | None:
    """Move the finished `tmp` to `target`. With an existing checkpoint: rename it aside, rename the new one in (if
    that fails the old one is put back). Returns the set-aside old checkpoint, for the caller to delete."""
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    aside = None
    if not target.exists():
        os.rename(tmp, target)
    elif not overwrite:  # appeared while we were writing
        raise FileExistsError(
            f"save_directory={str(target)!r} appeared while saving; pass overwrite=True to replace it"
        )
    else:
        aside = tmp.with_name(tmp.name.replace("-tmp-", "-old-", 1))
        os.rename(target, aside)
        try:
            os.rename(tmp, target)
        except BaseException:
            os.rename(aside, target)
            raise
    (target / SAVE_MARKER_NAME).unlink(missing_ok=True)
    _fsync_dir(target.parent)
    return aside


def save_pruned_model(
    model: nn.Module,
    save_directory: str | os.PathLike,
    *,
    tokenizer=None,
    pruning_config: dict,
    report: dict | None = None,
    sink_report_json: str | None = None,
    plots: dict[str, str] | None = None,
    overwrite: bool = False,
    base_model: str | None = None,
    max_shard_size: str = "2GB",
    license: str | None = None,
    eval_results: dict | None = None,
    reproduce_command: str | None = None,
    save_format: str | None = None,
) -> str:
    r"""Save a pruned model as a self-describing, Hub-ready checkpoint, atomically.

    Everything is written into a temporary directory beside `save_directory` (same file system) and renamed into
    place at the end, so an interrupted or failed save (disk full, crash, Ctrl-C) leaves no half-written checkpoint
    and never touches an existing one. With `overwrite=True` the existing folder is renamed aside, the new one renamed
    in, and only then is the old one deleted. SIGINT, SIGTERM and SIGHUP (caught in the main thread) remove the
    partial copy, then take their usual course; one arriving during the final swap waits until the swap is done. A
    save killed outright (SIGKILL, power loss) is finished or undone by the next save or load of the same path (see
    [`recover_interrupted_save`]). The folder gets the usual permissions (0o777 less the umask), or those of the
    folder it replaces.

    Contents: weights as safetensors (sharded above `max_shard_size`; LLaDA/Dream also get their modeling code and an
    `auto_map`), `config.json` with `sink_pruning_config` (the pruning config plus package versions), the tokenizer,
    `sampler_config.json` (diffusion sampler defaults, for diffusion LMs), `sink_report.json` and `plots/*.png`,
    `pruning_report.json`, and the generated model card `README.md`.

    Args:
        model (`nn.Module`): the pruned model (a transformers `PreTrainedModel`).
        save_directory (`str` or `os.PathLike`): the checkpoint folder to create.
        tokenizer (*optional*): saved with `tokenizer.save_pretrained`.
        pruning_config (`dict`): the pruning config (`SinkAwarePruningConfig.to_dict()`); must name its `method`.
        report (`dict`, *optional*): the pruning report (`PruningReport.to_dict()`); read by the card for
            `params_before`, `nonzero_params_before`, `checkpoint_bytes_before`, `total_sparsity`, `wall_time_s`.
        sink_report_json (`str`, *optional*): the sink report as JSON text (`SinkReport.to_json()`) or a JSON file path.
        plots (`dict[str, str]`, *optional*): plot name -> PNG path, copied to `plots/<name>.png`; a name containing
            "sink" is shown in the card.
        overwrite (`bool`, defaults to `False`): replace an existing non-empty `save_directory`.
        base_model (`str`, *optional*): the Hub id (or local path) of the dense model.
        max_shard_size (`str`, defaults to `"2GB"`): shard the weights above this size.
        license (`str`, *optional*): the card's license; defaults to the base model's when its card is available
            offline (a local folder or the Hugging Face cache).
        eval_results (`dict`, *optional*): measured quality/speed, see [`build_model_card`].
        reproduce_command (`str`, *optional*): the command that produced this checkpoint, shown in the card.
        save_format (`str`, *optional*): `"compressed"` stores the pruned linears sparse in the compressed-tensors
            layout (bitmask, or 2:4 for 2:4 models; loading needs `compressed-tensors`), `"quantized"` stores the
            linears `SinkAwareQuantizer` quantized as integers and scales (compressed-tensors `pack-quantized`, or
            `sinkprune-pack-quantized` for packed expert tensors and shared weights, which `load_model` reads),
            `"dense"` stores every tensor densely. Defaults to quantized for a quantized model, compressed for a
            sparse LLaDA / MMaDA / Dream model, dense otherwise.

    Returns:
        `str`: the absolute path of the saved checkpoint.

    Raises:
        `FileExistsError`: `save_directory` holds files and `overwrite` is False (see [`check_save_directory`]).
        `ValueError` / `FileNotFoundError`: invalid arguments, or a `save_directory` that holds files the model
            reads its disk-offloaded weights from (raised before anything is written).
        `OSError`: writing failed (e.g. `errno.ENOSPC`); nothing was published and any existing checkpoint is intact.
        [`SaveInterrupted`]: a signal stopped the save; nothing was published.
    """
    target = _save_target(save_directory)
    _validate_arguments(pruning_config, sink_report_json, plots, max_shard_size)
    storage = resolve_save_format(model, save_format)  # before anything is written
    with _SaveSignals() as signals:
        # finishes or undoes an earlier interrupted save first
        check_save_directory(target, overwrite=overwrite, model=model)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _make_temp_folder(target)
        published, aside = False, None
        try:
            _write_marker(tmp, _save_record(target, complete=False))
            _write_checkpoint(
                model, tmp, tokenizer=tokenizer, pruning_config=pruning_config, report=report,
                sink_report_json=sink_report_json, plots=plots, base_model=base_model, max_shard_size=max_shard_size,
                license=license, eval_results=eval_results, reproduce_command=reproduce_command, storage=storage,
            )
            _fsync_tree(tmp)
            # only now, with every file on disk, may a recovery publish this copy in place of the old one
            _write_marker(tmp, _save_record(target, complete=True))
            with signals.deferred():
                aside = _publish(tmp, target, overwrite)
                published = True
        except OSError as err:
            if err.errno == errno.ENOSPC:
                raise OSError(
                    errno.ENOSPC,
                    f"No space left on the device while saving to {str(target)!r}; nothing was published"
                    + (" and the existing checkpoint is untouched" if target.exists() else "")
                    + ". Free some space and save again.",
                ) from err
            raise
        finally:
            with signals.deferred():  # a second signal must not cut the clean-up short
                leftover = aside if published else tmp
                if leftover is not None:
                    shutil.rmtree(leftover, ignore_errors=True)
    logger.info("saved pruned checkpoint to %s", target)
    return str(target)
