# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""What the sink plots say: titles, which sample they show, readable step ticks, coinciding AR lines named."""

from __future__ import annotations

import pytest
import torch
from sink_test_models import planted_sink_llada, text_ids, tiny_llama_ar

from optimum_sinkprune.analysis import build_sink_report, plots

pytest.importorskip("matplotlib")
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def report():
    ids = text_ids(batch=2, seq=16)
    return build_sink_report(planted_sink_llada(), ids, ar_model=tiny_llama_ar(), steps=40, sample_interval=1,
                             seed=3, model_name="planted", ar_model_name="ar", progress=False)


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions build, by file name. They are kept, not rasterised, and not laid out (the
    layout only places the axes, and measuring every text for it is most of a plot's time): these tests read the
    figures' texts and lines; `test_save_writes_a_png` checks the writer and tests/analysis/test_sink_report.py
    (slow) lays out and writes every plot of a report as a PNG."""
    from matplotlib.figure import Figure

    saved = {}
    monkeypatch.setattr(Figure, "tight_layout", lambda self, *args, **kwargs: None)

    def keep(fig, path):
        saved[str(path).rsplit("/", 1)[-1]] = fig
        return str(path)

    monkeypatch.setattr(plots, "_save", keep)
    return saved


def test_save_writes_a_png(tmp_path):
    fig = plots._figure(1.0, 1.0)
    fig.add_subplot(1, 1, 1).set_title("t")
    path = plots._save(fig, tmp_path / "made" / "p.png")  # the folder is created
    assert path == str(tmp_path / "made" / "p.png")
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_every_plot_has_a_title_and_names_its_sample(report, figures, tmp_path):
    paths = plots.plot_report(report, tmp_path, sample=1)
    assert paths == {name: str(tmp_path / f"{name}.png") for name in plots.PLOT_NAMES}
    heatmap, variance, mass = (figures[n] for n in ("sink_heatmap.png", "variance_distribution.png",
                                                       "mass_profiles.png"))
    assert "sample 1 of 2" in heatmap._suptitle.get_text()
    assert "sample 1 of 2" in mass._suptitle.get_text()
    assert variance.axes[0].get_title()


def test_step_ticks_stay_readable(report, figures, tmp_path):
    plots.plot_sink_heatmap(report, tmp_path / "h.png")
    axes = [ax for ax in figures["h.png"].axes if ax.get_xlabel().startswith("step")]
    assert report.trajectory.num_steps == 40
    for ax in axes:
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert 2 <= len(labels) <= 12 and labels[0] == str(report.trajectory.steps[0])


def test_coinciding_ar_lines_are_said_to_coincide(report, figures, tmp_path):
    plots.plot_mass_profiles(report, tmp_path / "m.png")
    dlm, ar = figures["m.png"].axes
    assert "coincide" in ar.get_title() and "coincide" not in dlm.get_title()
    styles = {line.get_linestyle() for line in ar.get_lines()}
    assert len(styles) == 3  # drawn distinguishably even though they overlap
