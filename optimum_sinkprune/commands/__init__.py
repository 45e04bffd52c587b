# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The application layer: the command line (`sinkprune ...` and `optimum-cli sinkprune ...`, same subcommands) and
the demo pipeline (`commands/demo.py`).

Everything here sits above the library: it parses arguments, prints and picks sizes, then calls library functions
with keyword arguments. Nothing in `optimum_sinkprune` outside this package imports it (a test checks), so the
library never sees an argparse namespace. The demo lives here rather than in an `app/` package because the CLI is its
only caller and one application package is easier to find than two.
"""
