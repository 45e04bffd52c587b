# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The `sinkprune` command line. Each subcommand lives in its own module of this package and exposes
`NAME`, `HELP`, `add_arguments(parser)` and `run(args) -> int`; the CLI turns arguments into keyword arguments of
library calls (library code never sees an argparse namespace)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

SUBCOMMAND_MODULES = ("analyze", "prune", "eval", "reproduce", "push", "demo")


def _subcommand_modules():
    return [importlib.import_module(f"optimum_sinkprune.commands.{name}") for name in SUBCOMMAND_MODULES]


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` shows each option's default, except for unset (None) and off (False) ones, whose help says what
    happens instead."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def add_subcommands(parser: argparse.ArgumentParser) -> None:
    """Attach every subcommand to `parser` (used by both `sinkprune` and `optimum-cli sinkprune`). Subcommand
    modules import only argparse-level code at the top; torch, transformers and the library load when a command
    runs, so `--help` stays fast."""
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="sinkprune_command", metavar="COMMAND")
    for mod in _subcommand_modules():
        # HELP is plain text: argparse %-formats `help=` (so "%" is escaped there) but prints `description=` as is
        p = sub.add_parser(mod.NAME, help=mod.HELP.replace("%", "%%"), description=mod.HELP,
                           formatter_class=DefaultsHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(sinkprune_run=mod.run)


MODEL_ARGUMENTS = ("model", "ar_baseline", "compare")


def check_model_arguments(args: argparse.Namespace) -> None:
    """Every model argument of a command (MODEL, --ar-baseline, --compare) is a local folder, an embedded model's
    name or a Hub id that is cached or reachable: checked before anything loads, each failure one line."""
    names = [getattr(args, a) for a in MODEL_ARGUMENTS if isinstance(getattr(args, a, None), str)]
    if not names:
        return
    from ..hub.load import check_model_reachable

    for name in names:
        check_model_reachable(name)


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
    except (ValueError, FileNotFoundError, FileExistsError, PermissionError) as err:
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
