# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Sink analysis: where attention sinks sit across the denoising trajectory of a DLM, and how that compares with an
autoregressive model. See docs/analysis.md for the definitions."""

from .plots import plot_mass_profiles, plot_report, plot_sink_heatmap, plot_variance_distribution
from .report import SinkReport, build_sink_report, summary_markdown
from .statistics import TOKEN_KINDS
from .trajectory import (
    DEFAULT_MOVE_THRESHOLD,
    SinkTrajectory,
    forward_process_trajectory,
    generation_trajectory,
    sampled_steps,
    trajectory_from_inputs,
)

__all__ = [
    "DEFAULT_MOVE_THRESHOLD",
    "TOKEN_KINDS",
    "SinkReport",
    "SinkTrajectory",
    "build_sink_report",
    "forward_process_trajectory",
    "generation_trajectory",
    "plot_mass_profiles",
    "plot_report",
    "plot_sink_heatmap",
    "plot_variance_distribution",
    "sampled_steps",
    "summary_markdown",
    "trajectory_from_inputs",
]
