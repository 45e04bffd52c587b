# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Command line: `sinkprune ...` and `optimum-cli sinkprune ...` (same subcommands)."""
