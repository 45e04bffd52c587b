# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Registers `optimum-cli sinkprune ...` through optimum's `optimum.commands.register` namespace (PEP 420: no
__init__.py here). Heavy imports stay inside `run` so that optimum-cli starts fast."""

from optimum.commands.base import BaseOptimumCLICommand, CommandInfo


class SinkPruneCommand(BaseOptimumCLICommand):
    COMMAND = CommandInfo(name="sinkprune", help="Sink-Aware Pruning for diffusion language models")

    @staticmethod
    def parse_args(parser):
        from optimum_sinkprune.commands.cli import add_subcommands

        add_subcommands(parser)

    def run(self):
        from optimum_sinkprune.commands.cli import dispatch

        raise SystemExit(dispatch(self.args, self.parser))


REGISTER_COMMANDS = [SinkPruneCommand]
