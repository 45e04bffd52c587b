# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The shipped tiny lm-eval task (`tests/data/lm_eval_tasks/sinkprune_tiny_mc`), made runnable from any folder."""

from __future__ import annotations

from pathlib import Path

import yaml

TASKS = Path(__file__).resolve().parent / "data" / "lm_eval_tasks"


def lm_eval_task_dir(tmp_path: Path) -> Path:
    """A copy of the shipped task under `tmp_path` with absolute data paths and a private datasets cache."""
    cfg = yaml.safe_load((TASKS / "sinkprune_tiny_mc.yaml").read_text())
    cfg["dataset_kwargs"]["data_files"]["test"] = str(TASKS / "sinkprune_tiny_mc.jsonl")
    cfg["dataset_kwargs"]["cache_dir"] = str(tmp_path / "datasets_cache")
    out = tmp_path / "tasks"
    out.mkdir()
    (out / "sinkprune_tiny_mc.yaml").write_text(yaml.safe_dump(cfg))
    return out
