# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Calibration statistics: attention mass (the sink signal) and the soft sink weights derived from it."""

from .attention import AttentionMassProbe, attention_mass, column_mass
from .sink_weights import sink_threshold, sink_threshold_set, sink_weights

__all__ = [
    "AttentionMassProbe",
    "attention_mass",
    "column_mass",
    "sink_threshold",
    "sink_threshold_set",
    "sink_weights",
]
