"""The shipped DLM is a self-contained checkpoint: its copied modeling code must be the package's current code."""

import filecmp
from pathlib import Path

import pytest

import optimum_sinkprune
from optimum_sinkprune.assets import default_model_path

MODELS = Path(optimum_sinkprune.__file__).parent / "models"


@pytest.mark.parametrize("name", ["configuration_llada.py", "modeling_llada.py", "modeling_dlm_utils.py"])
def test_shipped_remote_code_matches_the_package(name):
    shipped = Path(default_model_path()) / name
    assert shipped.is_file(), f"{shipped} is missing: the shipped checkpoint must carry its modeling code"
    assert filecmp.cmp(shipped, MODELS / name, shallow=False), (
        f"{shipped} is stale; refresh it with `cp optimum_sinkprune/models/{name} {default_model_path()}/`"
    )
