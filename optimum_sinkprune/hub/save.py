# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Atomic saving of a pruned checkpoint: weights (safetensors), config with the pruning config, tokenizer, sampler
defaults, sink report and plots, pruning report and the generated model card, all written into a temporary directory
beside the target and renamed into place at the end."""

from __future__ import annotations

import errno
import inspect
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from torch import nn

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

    from .. import __version__

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
    if not adapter.is_diffusion:
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


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(parameters, non-zero parameters) of `model`, each tensor counted once (tied weights)."""
    seen, total, nonzero = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        nonzero += int((p.detach() != 0).sum().item())
    return total, nonzero


def checkpoint_weight_bytes(folder: str | os.PathLike) -> int:
    """Bytes of the weight files (safetensors) in a checkpoint folder."""
    return sum(f.stat().st_size for f in Path(folder).glob("*.safetensors"))


def _validate_inputs(save_directory, pruning_config, sink_report_json, plots, max_shard_size, overwrite) -> Path:
    if not isinstance(save_directory, (str, os.PathLike)) or not str(save_directory):
        raise ValueError(f"save_directory must be a non-empty path, got {save_directory!r}")
    target = Path(save_directory).expanduser().absolute()
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"save_directory={str(target)!r} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise FileExistsError(
            f"save_directory={str(target)!r} already holds files; pass overwrite=True (CLI: --overwrite) to replace "
            "it (the old checkpoint is only removed once the new one is complete)"
        )
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
    return target


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
    license, eval_results, reproduce_command,
) -> None:
    from .model_card import build_model_card

    model.save_pretrained(tmp, max_shard_size=max_shard_size)
    stray = [p.name for p in tmp.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl")]
    if stray:  # we promise safetensors only (no pickle)
        raise RuntimeError(f"save_pretrained wrote non-safetensors weights {stray}; refusing to publish them")

    config_path = tmp / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config[CONFIG_KEY] = stamp_pruning_config(pruning_config)
    _write_text(config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")
    # the PEFT-style JSON beside the weights (SinkAwarePruningConfig.from_pretrained reads it), inside the atomic save
    _write_text(tmp / PRUNING_CONFIG_NAME, json.dumps(dict(pruning_config), indent=2, sort_keys=True) + "\n")

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
    params, nonzero = count_parameters(model)
    card_report = {**(report or {}), "params_after": params, "nonzero_params_after": nonzero,
                   "checkpoint_bytes_after": checkpoint_weight_bytes(tmp)}
    card = build_model_card(
        pruning_config=config[CONFIG_KEY],
        report=card_report,
        base_model=base_model,
        eval_results=eval_results,
        sink_plot=sink_plot,
        reproduce_command=reproduce_command,
        license=license if license is not None else _base_model_license(base_model),
    )
    _write_text(tmp / "README.md", str(card))


def _publish(tmp: Path, target: Path, overwrite: bool) -> None:
    """Move the finished `tmp` to `target`. With an existing checkpoint: rename it aside, rename the new one in,
    then delete the old one; if the second rename fails the old one is put back."""
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    if not target.exists():
        os.rename(tmp, target)
        return
    if not overwrite:  # appeared while we were writing
        raise FileExistsError(
            f"save_directory={str(target)!r} appeared while saving; pass overwrite=True to replace it"
        )
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    aside.rmdir()
    os.rename(target, aside)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


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
) -> str:
    r"""Save a pruned model as a self-describing, Hub-ready checkpoint, atomically.

    Everything is written into a temporary directory beside `save_directory` (same file system) and renamed into
    place at the end, so an interrupted or failed save (disk full, crash, Ctrl-C) leaves no half-written checkpoint
    and never touches an existing one. With `overwrite=True` the existing folder is renamed aside, the new one renamed
    in, and only then is the old one deleted.

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

    Returns:
        `str`: the absolute path of the saved checkpoint.

    Raises:
        `FileExistsError`: `save_directory` holds files and `overwrite` is False.
        `ValueError` / `FileNotFoundError`: invalid arguments (raised before anything is written).
        `OSError`: writing failed (e.g. `errno.ENOSPC`); nothing was published and any existing checkpoint is intact.
    """
    target = _validate_inputs(save_directory, pruning_config, sink_report_json, plots, max_shard_size, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    published = False
    try:
        _write_checkpoint(
            model, tmp, tokenizer=tokenizer, pruning_config=pruning_config, report=report,
            sink_report_json=sink_report_json, plots=plots, base_model=base_model, max_shard_size=max_shard_size,
            license=license, eval_results=eval_results, reproduce_command=reproduce_command,
        )
        _fsync_tree(tmp)
        _publish(tmp, target, overwrite)
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
        if not published:
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("saved pruned checkpoint to %s", target)
    return str(target)
