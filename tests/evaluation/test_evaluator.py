# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
import json
import math
import statistics

import pytest
import torch

from optimum_sinkprune.diffusion import elbo_log_likelihood, generate
from optimum_sinkprune.evaluation import (
    EvaluationResult,
    EvaluationSettings,
    Evaluator,
    cut_at_token,
    evaluate_model,
    format_table,
    mean_and_std_err,
)

SMALL = dict(num_sequences=3, seq_len=48, mc_num=3, batch_size=3, num_prompts=2, prompt_tokens=24, gen_length=8,
             steps=4, speed_repeats=2, speed_warmup=0)  # fmt: skip


def _pruned_copy(tiny, fraction=0.5):
    model = tiny.build_model(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2 and ".blocks." in name:
                p[p.abs() < p.abs().flatten().kthvalue(int(fraction * p.numel())).values] = 0
    return model


def test_mean_and_std_err_match_statistics():
    values = [1.0, 2.5, 2.0, 4.0]
    mean, se = mean_and_std_err(values)
    assert mean == pytest.approx(statistics.mean(values))
    assert se == pytest.approx(statistics.stdev(values) / 2)
    assert math.isnan(mean_and_std_err([3.0])[1])
    assert cut_at_token([5, 6, 1, 7], {1}) == [5, 6]


def test_settings_validate():
    with pytest.raises(ValueError, match="mc_num"):
        EvaluationSettings(mc_num=0)
    with pytest.raises(ValueError, match="block_length=3"):
        EvaluationSettings(gen_length=8, block_length=3)


def test_per_draw_likelihood_uses_seed_plus_k(tokenizer, texts, dense):
    ev = Evaluator(tokenizer, texts=texts, dense_model=dense, settings=EvaluationSettings(**SMALL), progress=False)
    lik = ev.likelihood(dense)
    maskable = torch.ones_like(ev.sequences, dtype=torch.bool)
    maskable[:, 0] = False
    for k, nll in enumerate(lik.draws):
        direct = elbo_log_likelihood(dense, ev.sequences, mc_num=1, maskable=maskable, seed=k)
        assert nll == pytest.approx(direct.nll_per_token)
    assert lik.num_tokens == 3 * 47  # BOS never scored


def test_same_model_as_its_own_reference_gives_zero_paired_difference(tokenizer, texts, tiny, dense):
    twin = tiny.build_model(0)
    ev = Evaluator(tokenizer, texts=texts, dense_model=dense, settings=EvaluationSettings(**SMALL), progress=False)
    r = ev.evaluate(twin, name="twin", measure_speed=False)
    d = ev.evaluate_dense(measure_speed=False)
    assert r.nll_delta_vs_dense == 0.0 and r.nll_delta_std_err == 0.0
    assert r.perplexity == pytest.approx(d.perplexity)
    assert [g["output"] for g in r.generations] == ev.dense_outputs()
    assert r.bleu_vs_dense == pytest.approx(100.0)  # (ROUGE-L drops the punctuation a random model emits)
    assert r.block_sparsity == 0.0 and d.bleu_vs_dense is None


def test_pruned_model_result(tokenizer, texts, tiny, dense, tmp_path):
    pruned = _pruned_copy(tiny)
    pruned.save_pretrained(tmp_path)
    ev = Evaluator(tokenizer, texts=texts, dense_model=dense, settings=EvaluationSettings(**SMALL), progress=False)
    r = ev.evaluate(pruned, name="pruned", checkpoint_dir=tmp_path, extra={"method": "test"})
    assert r.block_sparsity == pytest.approx(0.5, abs=0.01)
    assert r.checkpoint_bytes == (tmp_path / "model.safetensors").stat().st_size
    assert r.weight_bytes == sum(p.numel() * 4 for p in pruned.parameters()) + sum(
        b.numel() * b.element_size() for b in pruned.buffers()
    )
    assert r.perplexity == pytest.approx(math.exp(r.nll_per_token))
    assert r.perplexity_ci[0] < r.perplexity < r.perplexity_ci[1]
    # the paired difference is the mean of per-draw differences
    dense_draws = ev.dense_likelihood().draws
    own = ev.likelihood(pruned).draws
    assert r.nll_delta_vs_dense == pytest.approx(statistics.mean(a - b for a, b in zip(own, dense_draws)))
    # generations equal a direct sampler call on the same prompt
    p = ev.prompts[0]
    out = generate(pruned, torch.tensor([p.prompt_ids]), steps=4, gen_length=8, block_length=8)
    ids = cut_at_token(out.sequences[0, len(p.prompt_ids) :].tolist(), {tiny.EOS})
    assert r.generations[0]["output"] == tokenizer.decode(ids, skip_special_tokens=True)
    assert r.generations[0]["reference"] == p.reference
    # speed: dense and pruned timed in the same call
    # at least the asked repeats, more (up to 3x) while the runs spread, one latency per run
    assert 2 <= r.speed["repeats"] <= 6 and len(r.speed["latency_ms_per_step_all"]) == r.speed["repeats"]
    assert r.speed["noisy"] == (r.speed["spread"] > 0.1)
    assert r.speedup_vs_dense == pytest.approx(
        r.dense_speed["latency_ms_per_step"] / r.speed["latency_ms_per_step"]
    )
    assert r.speed["threads"] == torch.get_num_threads() and r.speed["device"] == "cpu"
    assert r.extra["method"] == "test"
    # JSON round trip
    back = EvaluationResult.from_json(r.to_json())
    assert back.to_dict() == json.loads(r.to_json())
    table = format_table([ev.evaluate_dense(measure_speed=False), r])
    assert table.count("\n") == 3 and "pruned" in table and "50.0%" in table


def test_evaluate_model_without_dense(tokenizer, texts, dense):
    result, dense_result = evaluate_model(
        dense, tokenizer, texts=texts, settings=EvaluationSettings(**SMALL), measure_speed=False, progress=False
    )
    assert dense_result is None
    assert result.nll_delta_vs_dense is None and result.bleu_vs_dense is None and result.block_sparsity is None
    with pytest.raises(ValueError, match="unknown EvaluationResult keys"):
        EvaluationResult.from_dict({**result.to_dict(), "bogus": 1})
