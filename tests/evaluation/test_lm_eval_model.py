# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The lm-evaluation-harness model, run offline on the local multiple-choice task in tests/data/lm_eval_tasks."""

import importlib.util
import sys
from pathlib import Path

import pytest

lm_eval = pytest.importorskip("lm_eval", reason="lm-eval is not installed (the `eval` / `test` extras)")
pytest.importorskip("yaml")  # the task copy (lm_eval_fixtures) is written as YAML

from lm_eval.api.instance import Instance  # noqa: E402

from optimum_sinkprune.evaluation import lm_eval_model  # noqa: E402
from optimum_sinkprune.evaluation.lm_eval_model import (  # noqa: E402
    SinkPruneDLM,
    cut_at_stop_sequences,
    split_context_continuation,
)
from optimum_sinkprune.diffusion import official_continuation_loglikelihood  # noqa: E402
from optimum_sinkprune.evaluation.scoring import greedy_matches, score_continuation  # noqa: E402

from lm_eval_fixtures import lm_eval_task_dir  # noqa: E402

TASKS = Path(__file__).resolve().parents[1] / "data" / "lm_eval_tasks"


def _expected_accuracy(bias: dict[str, float]) -> float:
    import json

    rows = [json.loads(line) for line in (TASKS / "sinkprune_tiny_mc.jsonl").read_text().splitlines()]
    hits = [max(range(len(r["choices"])), key=lambda i: bias[r["choices"][i]]) == r["answer"] for r in rows]
    return sum(hits) / len(hits)


@pytest.mark.parametrize("estimator", ["official", "bernoulli"])
def test_simple_evaluate_on_the_local_multiple_choice_task(
    monkeypatch, tmp_path, tokenizer, constant_model, constant_bias, estimator
):
    from lm_eval.tasks import TaskManager

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    # lm-eval stamps the results with torch's environment report, which runs pip and compiler probes in
    # subprocesses (most of this test's time); the stamp is not what is tested here
    monkeypatch.setattr("lm_eval.evaluator.add_env_info", lambda results: None)
    lm = SinkPruneDLM(model=constant_model, tokenizer=tokenizer, estimator=estimator, mc_num=8, batch_size=8,
                      progress=False)  # fmt: skip
    assert lm.estimator == estimator
    results = lm_eval.simple_evaluate(
        model=lm,
        tasks=["sinkprune_tiny_mc"],
        task_manager=TaskManager(include_path=str(lm_eval_task_dir(tmp_path)), include_defaults=False),
        log_samples=False,
        bootstrap_iters=0,
    )
    acc = results["results"]["sinkprune_tiny_mc"]["acc,none"]
    assert acc == pytest.approx(_expected_accuracy(constant_bias))
    assert 0 < acc < 1  # the task really discriminates


def test_registered_and_built_from_a_saved_folder(tmp_path, tiny):
    from lm_eval.api.registry import get_model

    assert get_model("sinkprune-dlm") is SinkPruneDLM
    path = tiny.save_model(tmp_path / "m")
    lm = get_model("sinkprune-dlm").create_from_arg_string(f"pretrained={path},mc_num=4,steps=4", {"batch_size": 2})
    assert lm.mc_num == 4 and lm.batch_size == 2 and lm.prefix == [tiny.BOS] and lm.mask_token_id == tiny.MASK


def test_loglikelihood_is_the_continuation_elbo_with_context_unmasked(tokenizer, constant_model, tiny):
    lm = SinkPruneDLM(model=constant_model, tokenizer=tokenizer, estimator="bernoulli", mc_num=4, batch_size=4,
                      progress=False)  # fmt: skip
    req = Instance("loglikelihood", {}, ("Who? ", "bd"), 0)
    (logprob, greedy), = lm.loglikelihood([req])
    ctx, cont = split_context_continuation(tokenizer, "Who? ", "bd")
    assert cont == tokenizer(" bd", add_special_tokens=False)["input_ids"]  # trailing space moved
    direct = score_continuation(constant_model, [tiny.BOS] + ctx, cont, mc_num=4, batch_size=4, seed=0)
    assert logprob == pytest.approx(direct.logprob)
    assert greedy is False  # the constant model says "b", never " "


def test_loglikelihood_rolling_scores_every_token_once(tokenizer, constant_model, constant_log_probs):
    text = "abcdabcdabcdabcdabcd"
    lm = SinkPruneDLM(model=constant_model, tokenizer=tokenizer, mc_num=256, batch_size=64, max_length=8,
                      progress=False)  # fmt: skip
    (total,) = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), 0)])
    exact = float(sum(constant_log_probs[t] for t in tokenizer(text, add_special_tokens=False)["input_ids"]))
    # 3 windows of <= 7 tokens, each an unbiased MC estimate; allow a generous statistical margin
    assert total == pytest.approx(exact, rel=0.15)


def test_generate_until_uses_the_sampler_and_stop_sequences(tokenizer, constant_model):
    lm = SinkPruneDLM(model=constant_model, tokenizer=tokenizer, steps=4, progress=False)
    reqs = [
        Instance("generate_until", {}, ("Say:", {"max_gen_toks": 5}), 0),
        Instance("generate_until", {}, ("Say:", {"max_gen_toks": 5, "until": ["bbb"]}), 1),
        Instance("generate_until", {}, ("Say:", {"max_gen_toks": 6, "until": "x"}), 2),
    ]
    assert lm.generate_until(reqs) == ["bbbbb", "", "bbbbbb"]
    assert cut_at_stop_sequences("one. two\n\nthree", ["\n\n", "."]) == "one"


def test_errors_are_explicit(tokenizer, constant_model):
    with pytest.raises(ValueError, match="pretrained"):
        SinkPruneDLM()
    with pytest.raises(ValueError, match="tokenizer"):
        SinkPruneDLM(model=constant_model)
    lm = SinkPruneDLM(model=constant_model, tokenizer=tokenizer, max_length=4, progress=False)
    with pytest.raises(ValueError, match="max_length=4"):
        lm.loglikelihood([Instance("loglikelihood", {}, ("a", "bcdefg"), 0)])


def test_missing_lm_eval_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "lm_eval.models", None)
    spec = importlib.util.spec_from_file_location("optimum_sinkprune.evaluation._lm_eval_copy", lm_eval_model.__file__)
    module = importlib.util.module_from_spec(spec)
    with pytest.raises(ImportError, match=r"optimum-sinkprune\[eval\]"):
        spec.loader.exec_module(module)



# ---- the official estimators, their defaults and the paper's task settings ----------------------------------------
def test_llada_defaults_to_the_official_estimator(tokenizer, dense, tiny):
    lm = SinkPruneDLM(model=dense, tokenizer=tokenizer, progress=False)
    assert (lm.estimator, lm.protocol, lm.mc_num, lm.batch_size, lm.cfg_scale) == ("official", "llada", 128, 32, 0.0)
    assert lm.is_check_greedy is True and lm.suffix == []
    small = SinkPruneDLM(model=dense, tokenizer=tokenizer, mc_num=12, progress=False)
    assert small.batch_size == 4  # gcd(12, 32): a batch is one stratified set of draws
    bern = SinkPruneDLM(model=dense, tokenizer=tokenizer, estimator="bernoulli", progress=False)
    assert (bern.mc_num, bern.batch_size) == (32, 16)


def test_official_loglikelihood_with_guidance_and_greedy_check(tokenizer, dense, randomize, tiny):
    model = randomize(dense, seed=0)
    lm = SinkPruneDLM(model=model, tokenizer=tokenizer, mc_num=8, batch_size=4, cfg=0.5, is_check_greedy=True,
                      seed=3, progress=False)  # fmt: skip
    assert lm.cfg_scale == 0.5
    (logprob, greedy), = lm.loglikelihood([Instance("loglikelihood", {}, ("The lord ", "said"), 0)])
    ctx, cont = split_context_continuation(tokenizer, "The lord ", "said")
    direct = official_continuation_loglikelihood(
        model, [tiny.BOS] + ctx, cont, mc_num=8, batch_size=4, cfg_scale=0.5, seed=3, mask_token_id=tiny.MASK
    )
    assert logprob == pytest.approx(direct.logprob)
    unguided = official_continuation_loglikelihood(model, [tiny.BOS] + ctx, cont, mc_num=8, batch_size=4, seed=3)
    assert logprob != pytest.approx(unguided.logprob)
    assert greedy == greedy_matches(model, [tiny.BOS] + ctx, cont, mask_token_id=tiny.MASK, cfg_scale=0.5)


def test_dream_gets_dreams_protocol(tokenizer, tiny_dream, tiny):
    lm = SinkPruneDLM(model=tiny_dream, tokenizer=tokenizer, mc_num=8, batch_size=4, progress=False)
    assert (lm.protocol, lm.is_check_greedy, lm.suffix) == ("dream", False, [tokenizer.eos_token_id])
    assert SinkPruneDLM(model=tiny_dream, tokenizer=tokenizer, progress=False).mc_num == 128
    (logprob, greedy), = lm.loglikelihood([Instance("loglikelihood", {}, ("Say:", " b"), 0)])
    ctx, cont = split_context_continuation(tokenizer, "Say:", " b")
    direct = official_continuation_loglikelihood(
        tiny_dream, [tiny.BOS] + ctx, cont, protocol="dream", mc_num=8, batch_size=4, seed=0,
        suffix_ids=[tokenizer.eos_token_id], mask_token_id=tiny.MASK,
    )  # fmt: skip
    assert logprob == pytest.approx(direct.logprob) and greedy is False


def test_paper_task_settings_apply_and_explicit_arguments_win(tokenizer, dense):
    lm = SinkPruneDLM(model=dense, tokenizer=tokenizer, paper_task="arc_challenge", progress=False)
    assert (lm.cfg_scale, lm.mc_num, lm.batch_size, lm.is_check_greedy) == (0.5, 128, 8, False)
    lm = SinkPruneDLM(model=dense, tokenizer=tokenizer, paper_task="arc_challenge", mc_num=16, cfg_scale=0.0,
                      progress=False)  # fmt: skip
    assert (lm.cfg_scale, lm.mc_num, lm.batch_size) == (0.0, 16, 8)
    gsm = SinkPruneDLM(model=dense, tokenizer=tokenizer, paper_task="gsm8k", progress=False)
    assert (gsm.gen_length, gsm.steps, gsm.block_length, gsm.use_max_gen_toks) == (1024, 1024, 1024, False)


def test_generation_can_ignore_max_gen_toks_like_the_official_evaluation(tokenizer, constant_model):
    lm = SinkPruneDLM(model=constant_model, tokenizer=tokenizer, steps=4, gen_length=4, use_max_gen_toks=False,
                      progress=False)  # fmt: skip
    assert lm.generate_until([Instance("generate_until", {}, ("Say:", {"max_gen_toks": 9}), 0)]) == ["bbbb"]


def test_built_from_an_arg_string_with_the_official_spellings(tmp_path, tiny):
    from lm_eval.api.registry import get_model

    path = tiny.save_model(tmp_path / "m")
    lm = get_model("sinkprune-dlm").create_from_arg_string(
        f"pretrained={path},cfg=2.0,is_check_greedy=False,mc_num=16", {"batch_size": 8}
    )
    assert (lm.cfg_scale, lm.is_check_greedy, lm.mc_num, lm.batch_size) == (2.0, False, 16, 8)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(cfg_scale=-0.5), "cfg_scale must be a finite number >= 0"),
        (dict(cfg=float("inf")), "cfg_scale"),
        (dict(mc_num=0), "mc_num must be an integer >= 1, got 0"),
        (dict(batch_size=0), "batch_size must be an integer >= 1"),
        (dict(mc_num=6, batch_size=4), "mc_num=6 must be a multiple of batch_size=4"),
        (dict(estimator="smdm"), "estimator must be one of official, bernoulli"),
        (dict(cfg_scale=0.5, cfg=1.0), "disagree"),
        (dict(is_check_greedy="sometimes"), "is_check_greedy must be true or false"),
        (dict(steps=0), "steps"),
        (dict(paper_task="lambada"), r"'lambada' has no paper settings.*arc_challenge.*gsm8k"),
    ],
)
def test_bad_model_arguments(tokenizer, dense, kwargs, match):
    with pytest.raises(ValueError, match=match):
        SinkPruneDLM(model=dense, tokenizer=tokenizer, progress=False, **kwargs)


def test_bad_arguments_fail_before_loading(tmp_path):
    """A folder that does not exist is never opened: the argument check comes first."""
    with pytest.raises(ValueError, match="mc_num"):
        SinkPruneDLM(pretrained=str(tmp_path / "missing"), mc_num=0)
    with pytest.raises(ValueError, match="cfg_scale"):
        SinkPruneDLM(pretrained=str(tmp_path / "missing"), cfg_scale=-1)
