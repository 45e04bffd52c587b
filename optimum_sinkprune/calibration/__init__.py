# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Calibration: the noise module (`noise`), the one pipeline (`pipeline`) feeding observers (`observers`), the
engine that picks a method's order (`engine`), the memory estimate (`memory`), and the statistics themselves:
attention mass (the sink signal) and the soft sink weights derived from it."""

from .attention import AttentionMassProbe, attention_mass, column_mass
from .noise import NoiseSchedule
from .pipeline import CalibrationPipeline
from .sink_weights import sink_threshold, sink_threshold_set, sink_weights

__all__ = [
    "AttentionMassProbe",
    "CalibrationPipeline",
    "NoiseSchedule",
    "attention_mass",
    "column_mass",
    "sink_threshold",
    "sink_threshold_set",
    "sink_weights",
]
