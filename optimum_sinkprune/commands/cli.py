# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The `sinkprune` command line. Each subcommand lives in its own module of this package and exposes
`NAME`, `HELP`, `add_arguments(parser)` and `run(args) -> int`; the CLI turns arguments into keyword arguments of
library calls (library code never sees an argparse namespace)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

SUBCOMMAND_MODULES = ("analyze", "prune", "eval", "push", "demo")


def _subcommand_modules():
    mods = []
    for name in SUBCOMMAND_MODULES:
        try:
            mods.append(importlib.import_module(f"optimum_sinkprune.commands.{name}"))
        except ModuleNotFoundError as err:  # a subcommand not written yet must not break the others
            if err.name != f"optimum_sinkprune.commands.{name}":
                raise
    return mods


def add_subcommands(parser: argparse.ArgumentParser) -> None:
    """Attach every subcommand to `parser` (used by both `sinkprune` and `optimum-cli sinkprune`)."""
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="sinkprune_command", metavar="COMMAND")
    for mod in _subcommand_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(sinkprune_run=mod.run)


def dispatch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    logging.basicConfig(level=getattr(args, "log_level", "INFO"), format="%(levelname)s %(name)s: %(message)s")
    run = getattr(args, "sinkprune_run", None)
    if run is None:
        parser.print_help()
        return 2
    try:
        return int(run(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, PermissionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sinkprune", description="Sink-Aware Pruning for diffusion language models")
    add_subcommands(parser)
    args = parser.parse_args(argv)
    return dispatch(args, parser)


if __name__ == "__main__":
    raise SystemExit(main())
