# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sinkprune reproduce` end to end on the shipped tiny model with a local lm-eval task (the mechanics: preset →
dense evaluation → pruning → pruned evaluation → the table beside the paper's numbers)."""

from __future__ import annotations

import json

import pytest

from optimum_sinkprune.assets import default_ar_model_path, default_model_path
from optimum_sinkprune.commands.cli import main

from lm_eval_fixtures import lm_eval_task_dir

ROWS = ["", " = Genesis = \n", " In the beginning God created the heaven and the earth .\n", "",
        " And the earth was without form , and void ; and darkness was upon the face of the deep .\n"] * 20


@pytest.fixture
def local_task(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    return lm_eval_task_dir(tmp_path)


@pytest.fixture
def wikitext_copy(tmp_path):
    import datasets

    folder = tmp_path / "wikitext-2-raw-v1"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ROWS})}).save_to_disk(folder)
    return folder


@pytest.mark.slow
def test_reproduce_end_to_end_on_the_shipped_model(local_task, wikitext_copy, tmp_path, capsys):
    results, out = tmp_path / "results", tmp_path / "pruned"
    code = main(["reproduce", default_model_path(), "--method", "sink_wanda", "--sparsity", "0.5", "--tasks",
                 "sinkprune_tiny_mc=arc_challenge", "--include-path", str(local_task), "--data", str(wikitext_copy),
                 "--num-samples", "2", "--seq-len", "32", "--mc-num", "16", "--dtype", "float32", "--device", "cpu",
                 "--results", str(results), "--output", str(out), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.index("memory estimate (sink_wanda, 2 x 32 tokens)") < printed.index("| Model |")
    data = json.loads((results / "reproduce.json").read_text())
    dense, pruned = data["dense"]["sinkprune_tiny_mc"], data["pruned"]["sinkprune_tiny_mc"]
    for score in (dense, pruned):
        assert score["paper_task"] == "arc_challenge" and score["metric"] == "acc,none"
        assert 0.0 <= score["value"] <= 1.0 and score["stderr"] is not None
        # the paper's arc_challenge settings, with the draws replaced by --mc-num
        assert score["model_args"] == {"estimator": "official", "mc_num": 16, "batch_size": 8, "cfg_scale": 0.5,
                                       "is_check_greedy": False}
        assert score["num_fewshot"] == 0
    assert data["config"]["diffusion_steps"] == 50 and data["config"]["seq_len"] == 32
    table = (results / "reproduce.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows[0].split(" | ")[-1].strip(" |") == "sinkprune_tiny_mc"
    assert [r.split(" | ")[1] for r in rows[1:]] == ["dense", "sink_wanda", "dense", "sink_wanda"]
    # the published rows: the arc_challenge column and the published averages of dense and sink Wanda
    assert rows[3].endswith("| 57.93 | 43.00 |") and rows[4].endswith("| 53.18 | 41.38 |")
    assert f"{100 * dense['value']:.2f} ± {100 * dense['stderr']:.2f}" in rows[1]
    assert "mc_num=16 replaces the paper's Monte-Carlo draws" in table
    # the pruned checkpoint was saved, at 50% in the blocks
    saved = json.loads((out / "sink_pruning_config.json").read_text())
    assert saved["method"] == "sink_wanda" and saved["num_samples"] == 2
    assert "--preset paper" in (out / "README.md").read_text()


def test_task_without_paper_settings_lists_the_tasks_that_have_them(capsys):
    code = main(["reproduce", default_model_path(), "--tasks", "lambada_openai"])
    assert code == 2
    err = capsys.readouterr().err
    assert "task 'lambada_openai' has no paper settings" in err and "arc_challenge" in err and "gsm8k" in err


def test_model_family_without_a_preset_is_rejected_before_loading(capsys):
    code = main(["reproduce", default_ar_model_path(), "--tasks", "arc_challenge"])
    assert code == 2
    assert "family='llama' has no paper preset; known families: llada, mmada, dream" in capsys.readouterr().err


def test_structured_methods_are_not_choices(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "m", "--method", "sink_heads"])
    assert "invalid choice: 'sink_heads'" in capsys.readouterr().err


def test_a_task_given_twice_is_rejected(capsys):
    code = main(["reproduce", default_model_path(), "--tasks", "piqa", "piqa=arc_challenge"])
    assert code == 2
    assert "task 'piqa' is given twice" in capsys.readouterr().err


def test_table_sets_ours_beside_the_published_rows():
    from optimum_sinkprune.evaluation.paper_tasks import paper_results
    from optimum_sinkprune.evaluation.reproduce import TaskScore, markdown_table

    def score(task, value, stderr):
        return TaskScore(task=task, paper_task=task, metric="acc,none", value=value, stderr=stderr, num_fewshot=0,
                         model_args={})

    dense = {"piqa": score("piqa", 0.75, 0.01), "mmlu": score("mmlu", 0.60, None)}
    pruned = {"piqa": score("piqa", 0.70, 0.01), "mmlu": score("mmlu", 0.50, None)}
    text = markdown_table(dense, pruned, method="sparsegpt", sparsity=0.5, model="m",
                          table=paper_results("llada_8b_unstructured"))
    rows = text.splitlines()
    assert rows[0] == "| Model | Method | Sparsity | Avg (tasks shown) | Published Avg | piqa | mmlu |"
    assert rows[2] == "| ours: m | dense | 0% | 67.50 | - | 75.00 ± 1.00 | 60.00 |"
    assert rows[3] == "| ours: m | sparsegpt | 50% | 60.00 | - | 70.00 ± 1.00 | 50.00 |"
    assert rows[4] == "| paper: GSAI-ML/LLaDA-8B-Base | dense | 0% | 70.03 | 57.93 | 74.10 | 65.97 |"
    assert rows[5] == "| paper: GSAI-ML/LLaDA-8B-Base | sparsegpt | 50% | 66.59 | 52.34 | 72.20 | 60.97 |"
