# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The package version, in a module of its own: reading it imports nothing else (importing the package root
registers the Auto classes and the pruned-checkpoint loading hook, which a version lookup must not trigger)."""

__version__ = "0.1.0"
