# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The demo's sizes come from one table (`DEMO_PRESETS`), read by `DemoSettings.preset`."""

import pytest

from optimum_sinkprune.commands.demo import DEMO_PRESETS, DemoSettings
from optimum_sinkprune.evaluation import EvaluationSettings


@pytest.mark.parametrize("name", sorted(DEMO_PRESETS))
def test_every_preset_builds_the_sizes_of_its_row(name):
    row = DEMO_PRESETS[name]
    settings = DemoSettings.preset(name)
    sizes = settings.to_dict()
    assert {k: sizes[k] for k in row if k != "evaluation"} == {k: v for k, v in row.items() if k != "evaluation"}
    assert settings.evaluation == EvaluationSettings(**row["evaluation"])
    assert DemoSettings.preset(name) == settings and "evaluation" in row  # the table is read, never consumed


def test_full_and_quick_are_the_named_rows():
    assert DemoSettings.full() == DemoSettings.preset("full")
    assert DemoSettings.quick() == DemoSettings.preset("quick")
    assert DemoSettings.quick().calibration_samples < DemoSettings.full().calibration_samples


def test_an_unknown_preset_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"name='huge' is not a demo preset; use one of \('full', 'quick'\)"):
        DemoSettings.preset("huge")
