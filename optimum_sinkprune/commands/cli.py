# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The `sinkprune` command line. Each subcommand lives in its own module of this package and exposes
`NAME`, `HELP`, `add_arguments(parser)` and `run(args) -> int`; the CLI turns arguments into keyword arguments of
library calls (library code never sees an argparse namespace). A subcommand module imports nothing but the standard
library at its top: `add_arguments` (run only when that subcommand is used) and `run` import the library, so
`sinkprune --help` loads neither torch nor transformers."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys

SUBCOMMAND_MODULES = ("analyze", "prune", "quantize", "eval", "reproduce", "push", "demo")


def _subcommand_modules():
    return [importlib.import_module(f"optimum_sinkprune.commands.{name}") for name in SUBCOMMAND_MODULES]


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` shows each option's default, except for unset (None) and off (False) ones, whose help says what
    happens instead."""

    def _get_help_string(self, action: argparse.Action) -> str:
        # identity, not equality: a default of 0 (== False) is shown
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


class SubcommandParser(argparse.ArgumentParser):
    """A subcommand's parser whose arguments are added when it is used (parsing or help), not when the command line
    is built: a subcommand's choices and defaults come from library config classes that import torch, and
    `sinkprune --help` needs none of them.

    Args:
        add_arguments (`Callable[[argparse.ArgumentParser], None]`, *optional*): adds the subcommand's arguments.
    """

    def __init__(self, *args, add_arguments=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._pending_arguments = add_arguments

    def add_pending_arguments(self) -> None:
        pending, self._pending_arguments = self._pending_arguments, None
        if pending is not None:
            pending(self)

    def parse_known_args(self, args=None, namespace=None):
        self.add_pending_arguments()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self.add_pending_arguments()
        return super().format_usage()

    def format_help(self) -> str:
        self.add_pending_arguments()
        return super().format_help()


def add_subcommands(parser: argparse.ArgumentParser) -> None:
    """Attach every subcommand to `parser` (used by both `sinkprune` and `optimum-cli sinkprune`). Subcommand
    modules import only argparse-level code at the top and add their arguments when their subcommand is used;
    torch, transformers and the library load when a command runs, so `sinkprune --help` stays fast."""
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="sinkprune_command", metavar="COMMAND", parser_class=SubcommandParser)
    for mod in _subcommand_modules():
        # HELP is plain text: argparse %-formats `help=` (so "%" is escaped there) but prints `description=` as is
        p = sub.add_parser(mod.NAME, help=mod.HELP.replace("%", "%%"), description=mod.HELP,
                           formatter_class=DefaultsHelpFormatter, add_arguments=mod.add_arguments)
        p.set_defaults(sinkprune_run=mod.run)


MODEL_ARGUMENTS = ("model", "ar_baseline", "compare")


def model_argument_help(purpose: str) -> str:
    """Help text of a MODEL argument, naming the embedded models (their one list is in `optimum_sinkprune.assets`)."""
    from ..assets import EMBEDDED_MODELS  # the assets package imports only the standard library

    return f"local folder, Hub id or embedded model name ({', '.join(EMBEDDED_MODELS)}) of {purpose}"


def check_model_arguments(args: argparse.Namespace) -> None:
    """Every model argument of a command (MODEL, --ar-baseline, --compare) is a local folder, an embedded model's
    name or a Hub id that is cached or reachable: checked before anything loads, each failure one line."""
    names = [getattr(args, a) for a in MODEL_ARGUMENTS if isinstance(getattr(args, a, None), str)]
    if not names:
        return
    from ..hub.load import check_model_reachable

    for name in names:
        check_model_reachable(name)


def add_calibration_output_arguments(parser: argparse.ArgumentParser, *, saved: str, data_note: str = "") -> None:
    """`--data`, `--output` and `--overwrite` of a command that calibrates on text and saves the model it changed.

    Args:
        parser (`argparse.ArgumentParser`): the subcommand's parser.
        saved (`str`): what `--output` holds, e.g. "pruned model".
        data_note (`str`, *optional*): appended to `--data`'s help, e.g. "; unused by rtn".
    """
    parser.add_argument("--data", default=None,
                        help="calibration text: a .jsonl file with a 'text' field per line, or a text file with one "
                             "passage per line (default: the shipped calibration texts, or text generated by the "
                             f"model when they are missing){data_note}")
    parser.add_argument("--output", required=True, help=f"folder to save the {saved} in")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")


def add_loading_arguments(parser: argparse.ArgumentParser) -> None:
    """`--dtype`, `--trust-remote-code` and `--no-progress` of a command that loads a model to change it.

    Args:
        parser (`argparse.ArgumentParser`): the subcommand's parser.
    """
    parser.add_argument("--dtype", default=None, help="load dtype, e.g. float32 or bfloat16 (unset: transformers' "
                                                      "default)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow running modeling code shipped with the checkpoint (only for sources you trust)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_placement_arguments(parser: argparse.ArgumentParser) -> None:
    """`--device-map`, `--max-memory` and `--offload-folder`: accelerate's placement of a model larger than one device
    (blocks spread over devices, CPU and disk), passed to `from_pretrained`.

    Args:
        parser (`argparse.ArgumentParser`): the subcommand's parser.
    """
    parser.add_argument("--device-map", default=None,
                        help="accelerate device map: auto, balanced, balanced_low_0, sequential, a device (cpu, "
                             "cuda:0, ...), or a JSON object / .json file of module -> device (unset: one device)")
    parser.add_argument("--max-memory", default=None,
                        help="memory per device for the device map, e.g. '0=20GiB,cpu=40GiB' (device indices or names)")
    parser.add_argument("--offload-folder", default=None,
                        help="folder for the blocks the device map puts on 'disk' (pruning and quantization write "
                             "their changed weights there)")


def _parse_device_map(value: str) -> str | dict:
    text = value.strip()
    if text.endswith(".json") and os.path.isfile(text):
        with open(text, encoding="utf-8") as fh:
            text = fh.read()
    if text.startswith("{"):
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"--device-map={value!r} is not valid JSON ({err.msg}); give a name such as 'auto' or "
                             'a JSON object like \'{"model.embed": "cpu", "model.blocks.0": 0}\'') from None
        if not isinstance(mapping, dict) or not mapping:
            raise ValueError(f"--device-map={value!r} must be a non-empty JSON object of module -> device")
        return mapping
    if not text:
        raise ValueError("--device-map is empty; allowed: auto, balanced, balanced_low_0, sequential, a device, or "
                         "a JSON object / .json file of module -> device")
    return text


def _parse_max_memory(value: str) -> dict:
    out: dict = {}
    for part in value.split(","):
        device, sep, size = part.partition("=")
        device, size = device.strip(), size.strip()
        if not sep or not device or not size:
            raise ValueError(f"--max-memory={value!r}: each entry must be DEVICE=SIZE, e.g. '0=20GiB,cpu=40GiB'")
        out[int(device) if device.isdigit() else device] = int(size) if size.isdigit() else size
    return out


def placement_kwargs(args: argparse.Namespace) -> dict:
    """The `from_pretrained` keyword arguments of `--device-map` / `--max-memory` / `--offload-folder` (only those
    given); the loader checks them (a 'meta' or offload-less 'disk' placement, a folder that is not writable, a
    memory limit below one block) before any weight is read.

    Raises:
        `ValueError`: a malformed value, naming the option.
    """
    kwargs: dict = {}
    if getattr(args, "device_map", None) is not None:
        kwargs["device_map"] = _parse_device_map(args.device_map)
    if getattr(args, "max_memory", None) is not None:
        kwargs["max_memory"] = _parse_max_memory(args.max_memory)
    if getattr(args, "offload_folder", None) is not None:
        kwargs["offload_folder"] = args.offload_folder
    if ("max_memory" in kwargs or "offload_folder" in kwargs) and "device_map" not in kwargs:
        given = "--max-memory" if "max_memory" in kwargs else "--offload-folder"
        raise ValueError(f"{given} needs --device-map (e.g. --device-map auto): without a device map the whole model "
                         "is loaded on one device")
    return kwargs


def default_calibration_texts() -> list[str] | None:
    """The shipped calibration texts, the commands' default `--data`; None for an install without them (the run then
    calibrates on text the model writes)."""
    from ..assets import load_calibration_texts

    try:
        return load_calibration_texts()
    except FileNotFoundError:
        return None


def progress_enabled(args: argparse.Namespace) -> bool:
    """Progress bars only on a terminal: redrawn nested bars leave cursor escape codes in a log file or pipe."""
    return not getattr(args, "no_progress", False) and sys.stderr.isatty()


def set_threads(threads: int | None) -> None:
    """Apply a `--threads` option (None: keep torch's default)."""
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    import torch

    torch.set_num_threads(threads)


def dispatch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    logging.basicConfig(level=getattr(args, "log_level", "INFO"), format="%(levelname)s %(name)s: %(message)s")
    run = getattr(args, "sinkprune_run", None)
    if run is None:
        parser.print_help()
        return 2
    try:
        check_model_arguments(args)
        return int(run(args) or 0)
    # ImportError: an optional package a command needs (its message names the install command)
    except (ValueError, FileNotFoundError, FileExistsError, PermissionError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. a model that is neither a folder, an embedded name nor reachable on the Hub
        print(f"error: {str(err).splitlines()[0] if str(err) else type(err).__name__}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sinkprune", description="Sink-Aware Pruning for diffusion language models")
    add_subcommands(parser)
    args = parser.parse_args(argv)
    return dispatch(args, parser)


if __name__ == "__main__":
    raise SystemExit(main())
