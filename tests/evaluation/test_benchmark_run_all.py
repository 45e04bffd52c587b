# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""benchmarks/run_all.py in --quick mode on a tiny LLaDA: the table, the plots and the per-row resume cache."""

import json
from pathlib import Path

import pytest
import torch

from script_loading import load_script

pytest.importorskip("matplotlib", reason="matplotlib (plot / test extra) is needed for the benchmark plots")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "run_all.py"


@pytest.fixture
def run_all():
    module = load_script(SCRIPT, "sinkprune_benchmark_run_all")
    threads = torch.get_num_threads()
    yield module
    torch.set_num_threads(threads)


def test_quick_benchmark_writes_table_plots_and_resumes(tmp_path, tiny, texts, run_all):
    model = tiny.save_model(tmp_path / "tiny", 0)
    data = tiny.write_texts_jsonl(tmp_path / "texts.jsonl", texts)
    out = tmp_path / "results"
    argv = ["--quick", "--model", str(model), "--heldout", str(data), "--calibration", str(data), "--output-dir",
            str(out), "--threads", "1", "--no-progress"]  # fmt: skip
    assert run_all.main(argv) == 0
    first = json.loads((out / "results.json").read_text())
    keys = [r["key"] for r in run_all.plan_rows(quick=True)]
    assert sorted(first["rows"]) == sorted(keys) and not first["failed"]
    assert {"quality_unstructured.png", "quality_structured.png"} <= {p.name for p in out.iterdir()}
    md = (out / "results.md").read_text()
    assert all(f"| {r['method']} |" in md for r in run_all.plan_rows(quick=True))
    assert "same seed for every model" in md
    for key, row in first["rows"].items():
        assert row["extra"]["family"] in ("unstructured", "2:4", "structured")
        assert row["speed"] is not None and row["dense_speed"] is not None and row["checkpoint_bytes"] > 0
    structured = first["rows"]["sink_heads@38%"]
    assert structured["checkpoint_bytes"] < first["dense"]["checkpoint_bytes"]

    # resume: drop one row; a rerun measures only that one and keeps the others byte for byte
    dropped = "wanda@2:4"
    cached = dict(first)
    cached["rows"] = {k: v for k, v in first["rows"].items() if k != dropped}
    (out / "results.json").write_text(json.dumps(cached))
    assert run_all.main(argv) == 0
    second = json.loads((out / "results.json").read_text())
    assert sorted(second["rows"]) == sorted(keys)
    for key in keys:
        if key != dropped:
            assert second["rows"][key] == first["rows"][key]
    # the re-measured row has the same (deterministic) quality numbers
    assert second["rows"][dropped]["perplexity"] == pytest.approx(first["rows"][dropped]["perplexity"])


def test_plan_covers_every_method_and_budget(run_all):
    rows = run_all.plan_rows(quick=False)
    assert len(rows) == 6 * 3 + 6 + 4 * 3
    assert {r["method"] for r in rows if r["family"] == "2:4"} == set(run_all.UNSTRUCTURED)
    assert {r["budget"] for r in rows if r["family"] == "structured"} == {0.2, 0.38, 0.5}
    assert len({r["key"] for r in rows}) == len(rows)
