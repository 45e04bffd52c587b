# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""PNG plots of a `SinkReport` (matplotlib, Agg canvas; install the `plot` extra).

Figures are built with `matplotlib.figure.Figure` + the Agg canvas, so the global pyplot backend of the caller's
process is left alone.
"""

from __future__ import annotations

import logging
import os

import torch

from .report import SinkReport
from .trajectory import SinkTrajectory

logger = logging.getLogger(__name__)

PLOT_NAMES = ("sink_heatmap", "variance_distribution", "mass_profiles")


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:  # optional dependency
        raise ImportError(
            "plotting needs matplotlib: install it with `pip install optimum-sinkprune[plot]` (or `pip install matplotlib`)"
        ) from err
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | os.PathLike) -> str:
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    logger.info("wrote %s", path)
    return path


def _step_ticks(ax, steps: list[int], *, max_labels: int = 12) -> None:
    """At most `max_labels` readable step labels (every n-th step when there are more)."""
    every = max(1, -(-len(steps) // max_labels))
    positions = list(range(0, len(steps), every))
    ax.set_xticks(positions)
    ax.set_xticklabels([str(steps[i]) for i in positions], fontsize=7)


def _head_ticks(ax, num_heads: int) -> None:
    every = max(1, -(-num_heads // 8))
    ax.set_yticks(range(0, num_heads, every))
    ax.tick_params(axis="y", labelsize=7)


def _series(report: SinkReport, *, sample: int | None = None) -> list[tuple[str, SinkTrajectory]]:
    """(name, trajectory) of the analysed model, then of the AR baseline when the report has one; with `sample`,
    raise `ValueError` unless every trajectory holds that sample."""
    series = [(report.model_name, report.trajectory)]
    if report.ar_trajectory is not None:
        series.append((f"AR: {report.ar_model_name}", report.ar_trajectory))
    for _, traj in series:
        batch = int(traj.dominant.shape[1])
        if sample is not None and not 0 <= sample < batch:
            raise ValueError(f"sample={sample} is out of range for a trajectory of {batch} samples")
    return series


def plot_sink_heatmap(report: SinkReport, path: str | os.PathLike, *, sample: int = 0) -> str:
    """Dominant sink position (colour) per head (rows) and step (columns), one panel per layer; the AR baseline's
    panels, when present, form a second row.

    Returns:
        `str`: the PNG path.
    """
    rows = _series(report, sample=sample)
    layers = max(t.num_layers for _, t in rows)
    fig = _figure(3.2 * layers + 1.0, 3.2 * len(rows) + 0.9)
    fig.subplots_adjust(hspace=0.75, top=0.88 if len(rows) > 1 else 0.8)
    batch = int(report.trajectory.dominant.shape[1])
    fig.suptitle(f"Dominant attention-sink position per head across denoising steps (sample {sample} of {batch}: "
                 f"sequence {sample} of the analysed batch)", fontsize=10)
    vmax = max(int(t.valid[sample].sum()) - 1 for _, t in rows)
    image = None
    for r, (name, traj) in enumerate(rows):
        dom = traj.dominant[:, sample].to(torch.float32)  # [S, L, H]
        dom[:, ~traj.heads_present] = float("nan")
        for layer in range(traj.num_layers):
            ax = fig.add_subplot(len(rows), layers, r * layers + layer + 1)
            image = ax.imshow(
                dom[:, layer].T.numpy(), aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=vmax
            )
            ax.set_title(f"{name}\nlayer {layer}" if layer == 0 else f"layer {layer}", fontsize=8)
            _step_ticks(ax, list(traj.steps))
            _head_ticks(ax, dom.shape[2])
            ax.set_xlabel("step" if traj.kind == "generation" else "step s (t = s/steps)", fontsize=7)
            if layer == 0:
                ax.set_ylabel("head", fontsize=7)
    if image is not None:
        fig.colorbar(image, ax=fig.axes, label="dominant sink position", shrink=0.8)
    return _save(fig, path)


def plot_variance_distribution(report: SinkReport, path: str | os.PathLike) -> str:
    """Histogram of the per-head variance of the dominant sink position across steps: the DLM vs the AR baseline.

    Returns:
        `str`: the PNG path.
    """
    series = _series(report)
    values = []
    for _, traj in series:
        v = traj.per_head_position_variance()
        values.append(v[traj.heads_present].numpy())
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    hi = max(float(v.max()) if v.size else 0.0 for v in values)
    bins = [i * (hi + 1e-6) / 20 for i in range(21)] if hi > 0 else [-0.5, 0.5]
    for (name, _), v in zip(series, values):
        ax.hist(v, bins=bins, alpha=0.6, label=f"{name} (median {float(torch.tensor(v).median()):.1f})")
    ax.set_title("How far each head's dominant sink moves across denoising steps", fontsize=10)
    ax.set_xlabel("per-head variance of the dominant sink position across steps (all samples)")
    ax.set_ylabel("heads")
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_mass_profiles(report: SinkReport, path: str | os.PathLike, *, sample: int = 0) -> str:
    """Attention mass (summed over layers and heads) vs position at the early, middle and late sampled steps;
    masked positions of the DLM input are marked.

    Returns:
        `str`: the PNG path.
    """
    series = _series(report, sample=sample)
    fig = _figure(7.0, 2.8 * len(series) + 0.4)
    batch = int(report.trajectory.dominant.shape[1])
    fig.suptitle(f"Attention mass received per position at early / middle / late steps (sample {sample} of {batch})",
                 fontsize=10)
    styles = ({"ls": "-"}, {"ls": "--", "lw": 1.5}, {"ls": ":", "lw": 2.5})  # no markers: dots mean [MASK]
    for r, (name, traj) in enumerate(series):
        ax = fig.add_subplot(len(series), 1, r + 1)
        picks = sorted({0, traj.num_steps // 2, traj.num_steps - 1})
        valid = traj.valid[sample]
        profiles = [traj.mass[i, sample][valid] for i in picks]
        coincide = len(profiles) > 1 and all(torch.allclose(p, profiles[0]) for p in profiles[1:])
        for k, (i, mass) in enumerate(zip(picks, profiles)):
            m = mass.numpy()
            label = {0: "early", traj.num_steps - 1: "late"}.get(i, "middle")
            style = {"lw": 1, **styles[k % len(styles)]}
            line = ax.plot(range(len(m)), m, label=f"{label}: step {traj.steps[i]} (t={traj.t[i]:.2f})", **style)
            if traj.mask_token_id is not None:
                masked = (traj.tokens[i, sample][valid] == traj.mask_token_id).nonzero().flatten().numpy()
                ax.scatter(masked, m[masked], s=4, color=line[0].get_color())
        # an AR model sees the same clean text at every step, so its profiles are one line drawn three times
        ax.set_title(name + (" (the steps' lines coincide: the input is the same at every step)" if coincide else ""),
                     fontsize=8)
        ax.set_xlabel("position" + (" (dots: [MASK] tokens)" if traj.mask_token_id is not None else ""))
        ax.set_ylabel("attention mass")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return _save(fig, path)


def plot_report(report: SinkReport, output_dir: str | os.PathLike, *, sample: int = 0) -> dict[str, str]:
    """All plots of `report` into `output_dir` (`sink_heatmap.png`, `variance_distribution.png`,
    `mass_profiles.png`). Returns {name: path}."""
    output_dir = os.fspath(output_dir)
    return {
        "sink_heatmap": plot_sink_heatmap(report, os.path.join(output_dir, "sink_heatmap.png"), sample=sample),
        "variance_distribution": plot_variance_distribution(report, os.path.join(output_dir, "variance_distribution.png")),
        "mass_profiles": plot_mass_profiles(report, os.path.join(output_dir, "mass_profiles.png"), sample=sample),
    }


__all__ = ["PLOT_NAMES", "plot_mass_profiles", "plot_report", "plot_sink_heatmap", "plot_variance_distribution"]
