# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The README's Python code runs as written: every ```python block, in order, in one fresh interpreter, in an empty
temporary folder, on the embedded model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def readme_python_blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def test_readme_has_python_blocks_using_the_embedded_model():
    blocks = readme_python_blocks()
    assert len(blocks) >= 2
    assert 'model_id = "tiny-llada"' in blocks[0]
    # the 8B model is the one-line change, in a comment on that line
    line = next(l for l in blocks[0].splitlines() if l.startswith("model_id ="))
    assert "GSAI-ML/LLaDA-8B-Base" in line.split("#", 1)[1]
    # the structured snippet starts from a fresh pruner, not from the unstructured model above
    assert blocks[1].lstrip().startswith("pruner = SinkAwarePruner.from_pretrained(model_id")


@pytest.mark.slow
def test_readme_python_blocks_run_verbatim(tmp_path):
    code = "\n\n".join(readme_python_blocks())
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    run = subprocess.run([sys.executable, "-c", "import torch; torch.set_num_threads(1)\n" + code], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    # both summaries are text; the plots, both checkpoints and their cards exist
    assert "| statistic |" in run.stdout and "method sink_wanda" in run.stdout and "method sink_heads" in run.stdout
    assert {p.name for p in (tmp_path / "sink-analysis").iterdir()} >= {"sink_heatmap.png", "mass_profiles.png"}
    for name in ("llada-sink-wanda-50", "llada-sink-heads-38"):
        assert (tmp_path / name / "README.md").is_file()
    card = (tmp_path / "llada-sink-heads-38" / "README.md").read_text(encoding="utf-8")
    assert "starting from the dense model" in card and "sink_wanda" not in card.split("## Reproduce")[0]
