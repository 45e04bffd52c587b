# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The paper's per-task lm-eval settings and published table, shipped as data."""

import pytest

from optimum_sinkprune.evaluation.paper_tasks import (
    paper_families,
    paper_results,
    paper_task_names,
    paper_task_settings,
)


@pytest.mark.parametrize(
    "task,shots,cfg,mc_num,batch",
    [
        ("gpqa_main_n_shot", 5, 0.5, 128, 8),
        ("truthfulqa_mc2", 0, 2.0, 128, 8),
        ("arc_challenge", 0, 0.5, 128, 8),
        ("hellaswag", 0, 0.5, 128, 8),
        ("piqa", 0, 0.5, 128, 8),
        ("winogrande", 5, 0.0, 128, 8),
        ("mmlu", 5, 0.0, 1, 1),
        ("cmmlu", 5, 0.0, 1, 1),
        ("ceval-valid", 5, 0.0, 1, 1),
    ],
)
def test_llada_likelihood_tasks_as_eval_llada_sh_sets_them(task, shots, cfg, mc_num, batch):
    s = paper_task_settings(task)
    assert (s.output_type, s.num_fewshot) == ("loglikelihood", shots)
    assert s.model_args == {
        "estimator": "official", "mc_num": mc_num, "batch_size": batch, "cfg_scale": cfg, "is_check_greedy": False,
    }  # fmt: skip
    assert s.source["repository"] == "VILA-Lab/Sink-Aware-Pruning" and len(s.source["commit"]) == 40


@pytest.mark.parametrize("task", ["bbh", "gsm8k", "minerva_math", "humaneval", "mbpp"])
def test_llada_generation_tasks(task):
    s = paper_task_settings(task)
    assert s.output_type == "generate_until" and s.num_fewshot is None
    assert s.model_args["gen_length"] == s.model_args["steps"] == s.model_args["block_length"] == 1024
    assert s.model_args["use_max_gen_toks"] is False
    assert s.confirm_run_unsafe_code is (task in ("humaneval", "mbpp"))


def test_alias_and_model_args_string_round_trip(tokenizer, dense):
    from lm_eval.utils import simple_parse_args_string

    from optimum_sinkprune.evaluation.lm_eval_model import SinkPruneDLM

    s = paper_task_settings("gpqa")
    assert s.task == "gpqa_main_n_shot" and s.num_fewshot == 5
    args = simple_parse_args_string(s.model_args_string())
    assert args == s.model_args
    lm = SinkPruneDLM(model=dense, tokenizer=tokenizer, progress=False, **args)
    assert (lm.cfg_scale, lm.mc_num, lm.batch_size, lm.is_check_greedy) == (0.5, 128, 8, False)


def test_dream_settings_from_dreams_own_evaluation():
    assert paper_families() == ("llada", "dream")
    assert paper_task_names("dream") == (
        "mmlu", "arc_easy", "arc_challenge", "hellaswag", "piqa", "gpqa_main_n_shot", "winogrande", "race",
    )  # fmt: skip
    s = paper_task_settings("winogrande", "dream")
    assert s.num_fewshot == 5 and s.model_args["cfg_scale"] == 0.0 and s.model_args["mc_num"] == 128
    assert s.source["repository"] == "DreamLM/Dream"


def test_unknown_task_and_family_are_explicit():
    with pytest.raises(ValueError, match=r"'lambada' has no paper settings for llada; tasks with settings: gpqa_main"):
        paper_task_settings("lambada")
    with pytest.raises(ValueError, match="known families: llada, dream"):
        paper_task_settings("mmlu", "gpt2")
    with pytest.raises(ValueError, match="gsm8k"):
        paper_task_settings("gsm8k", "dream")


def test_published_llada_8b_table():
    table = paper_results()
    assert table.title == "Unstructured Pruning — LLaDA 8B"
    assert list(table.columns.values()) == ["mmlu", "arc_challenge", "piqa", "winogrande", "gsm8k", "hellaswag"]
    assert [(r.method, r.sparsity, r.avg) for r in table.rows] == [
        ("dense", 0.0, 57.93), ("wanda", 0.5, 52.70), ("sink_wanda", 0.5, 53.18), ("sparsegpt", 0.5, 52.34),
        ("sink_sparsegpt", 0.5, 52.36),
    ]  # fmt: skip
    assert table.row("dense").scores == {
        "mmlu": 65.97, "arc_challenge": 43.00, "piqa": 74.10, "winogrande": 69.30, "gsm8k": 69.29, "hellaswag": 72.70,
    }  # fmt: skip
    assert table.row("sink_wanda").scores["arc_challenge"] == 41.38
    assert table.row("sink_sparsegpt").scores["winogrande"] == 65.82
    # the published Avg covers 8 benchmarks, not only the 6 columns shown: it is carried, never recomputed
    dense = table.row("dense")
    assert round(sum(dense.scores.values()) / 6, 2) == 65.73 != dense.avg
    assert any("8 benchmarks" in note for note in table.notes)
    with pytest.raises(ValueError, match="rows: dense, wanda"):
        table.row("magnitude")
    with pytest.raises(ValueError, match="shipped tables: llada_8b_unstructured"):
        paper_results("dream_7b")
