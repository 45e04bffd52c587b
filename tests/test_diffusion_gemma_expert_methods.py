# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The registered expert methods `reap_experts` (baseline) and `sink_experts` (sink-aware): the config validates
`expert_ratio` and refuses what does not apply, `SinkAwarePruner.prune` removes the experts `prune_experts` picks with
the method's weighting and the config's noise, `save_pretrained` writes a checkpoint (config, card, report) that
reloads through the Auto class with identical logits, and a model without experts or a ratio leaving fewer experts
than top_k is refused before any calibration or change. The CLI lists both methods."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.calibration.noise import NoiseSchedule
from optimum_sinkprune.configuration import SinkAwarePruningConfig
from optimum_sinkprune.pruner import SinkAwarePruner
from optimum_sinkprune.registry import get_method, method_names
from optimum_sinkprune.structured import experts as expert_module
from optimum_sinkprune.structured.experts import prune_experts

import diffusion_gemma_fixtures as fx

SEQ = 24
SMALL = dict(num_samples=2, seq_len=SEQ, diffusion_steps=4, sample_interval=2, seed=3)
METHODS = {"reap_experts": False, "sink_experts": True}  # method -> sink-weighted


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters(remove_duplicate=False)}


def _unchanged(model, before) -> bool:
    after = dict(model.named_parameters(remove_duplicate=False))
    return set(after) == set(before) and all(torch.equal(after[n], before[n]) for n in before)


def _logits(model):
    ctx, canvas = fx.text_ids(2, 10, seed=7), fx.text_ids(2, fx.DG_CANVAS, seed=8)
    with torch.no_grad():
        return get_adapter(model).denoiser_logits(model, ctx, canvas)


# ---------------------------------------------------------------------------------------------------------------------
# the registry and the config
# ---------------------------------------------------------------------------------------------------------------------
def test_the_expert_methods_are_registered_as_their_own_family():
    assert method_names("experts") == ("reap_experts", "sink_experts")
    for name, sink in METHODS.items():
        spec = get_method(name)
        assert (spec.family, spec.order, spec.statistic, spec.noised, spec.sink) == (
            "experts", "dense", "router_norms", True, sink)
        assert spec.needs_data and spec.scorer is None and not spec.reconstruct and not spec.per_row
    assert "(1 - \\sigma_t)" in get_method("sink_experts").card.equation
    assert "sigma" not in get_method("reap_experts").card.equation


def test_the_cli_lists_the_expert_methods(capsys):
    from optimum_sinkprune.commands.cli import add_subcommands

    parser = argparse.ArgumentParser(prog="sinkprune")
    add_subcommands(parser)
    for method in METHODS:
        assert parser.parse_args(["prune", "some/model", "--method", method, "--output", "out"]).method == method
    with pytest.raises(SystemExit):
        parser.parse_args(["prune", "--help"])
    assert "reap_experts" in capsys.readouterr().out.replace("\n", " ")


@pytest.mark.parametrize("method", list(METHODS))
def test_the_config_round_trips_and_says_what_it_is(method, tmp_path):
    config = SinkAwarePruningConfig(method=method, expert_ratio=0.25, **SMALL)
    assert config.is_expert_pruning and not config.is_structured and config.uses_diffusion
    config.save_pretrained(tmp_path)
    assert SinkAwarePruningConfig.from_pretrained(tmp_path) == config
    assert SinkAwarePruningConfig.from_dict(config.to_dict()).expert_ratio == 0.25
    assert not SinkAwarePruningConfig(method="sink_wanda").is_expert_pruning


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="sink_experts"), r"method='sink_experts' \(expert pruning\) needs expert_ratio"),
    (dict(method="reap_experts", expert_ratio=0.0), r"expert_ratio=0.0 is not allowed; it must be a finite number > 0"),
    (dict(method="reap_experts", expert_ratio=1.0), r"expert_ratio=1.0 is not allowed"),
    (dict(method="reap_experts", expert_ratio=True), r"expert_ratio=True is not allowed"),
    (dict(method="sink_experts", expert_ratio=0.5, pattern="2:4"),
     r"pattern='2:4' applies to weight pruning; expert method 'sink_experts' needs pattern='unstructured'"),
    (dict(method="sink_experts", expert_ratio=0.5, target_param_reduction=0.2),
     r"target_param_reduction=0.2 applies to the structured head/channel methods"),
    (dict(method="sink_experts", expert_ratio=0.5, targets=["q"]), r"targets=\['q'\] / ignore=\[\] select linear"),
    (dict(method="sink_wanda", expert_ratio=0.5),
     r"expert_ratio=0.5 applies to the expert methods \('reap_experts', 'sink_experts'\); method='sink_wanda'"),
    (dict(method="sink_heads", head_ratio=0.25, expert_ratio=0.5), r"expert_ratio=0.5 applies to the expert methods"),
])
def test_bad_expert_configs_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SinkAwarePruningConfig(**kwargs)


# ---------------------------------------------------------------------------------------------------------------------
# prune -> save -> reload
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", list(METHODS))
def test_prune_save_reload_with_identical_logits(method, tmp_path):
    from transformers import AutoModelForImageTextToText

    ids = fx.text_ids(2, SEQ, seed=4)
    config = SinkAwarePruningConfig(method=method, expert_ratio=0.5, **SMALL)
    # what the library call picks with the method's weighting and the config's noise, on an identical model
    reference = fx.tiny_diffusion_gemma()
    noise = NoiseSchedule.from_config(config, get_adapter(reference))
    expected = prune_experts(reference, ids, expert_ratio=0.5, sink_weighted=METHODS[method], noise=noise,
                             progress=False)

    model = fx.tiny_diffusion_gemma()
    pruner = SinkAwarePruner(model)
    _, report = pruner.prune(config, ids, progress=False)
    assert report.experts["kept"] == {str(k): v for k, v in expected.kept.items()}
    assert report.experts["scores"] == expected.scores
    assert report.experts["sink_weighted"] is METHODS[method]
    assert model.config.text_config.num_experts == 2
    assert report.model_params == expected.params_after < report.params_before
    assert report.calibration == {"num_samples": 2, "seq_len": SEQ, "forward_passes": 4}
    assert report.to_dict()["total_sparsity"] is None
    assert "experts per layer 4 -> 2" in report.summary()
    assert pruner.config.noise_schedule == noise.schedule and pruner.config.protected_positions == "none"
    logits = _logits(model)
    assert torch.equal(logits, _logits(reference))

    folder = Path(pruner.save_pretrained(tmp_path / f"dg-{method}"))
    saved = json.loads((folder / "sink_pruning_config.json").read_text())
    assert (saved["method"], saved["expert_ratio"]) == (method, 0.5)
    assert json.loads((folder / "pruning_report.json").read_text())["experts"]["num_experts_after"] == 2
    card = (folder / "README.md").read_text()
    assert get_method(method).card.name in card and "50% of experts removed" in card and "expert-pruning" in card
    assert "--expert-ratio 0.5" in card and "`sparsity`" not in card
    reloaded = AutoModelForImageTextToText.from_pretrained(folder).eval()
    assert reloaded.config.text_config.num_experts == 2
    assert reloaded.config.sink_pruning_config["method"] == method
    assert torch.equal(_logits(reloaded), logits)
    adapter = get_adapter(reloaded)
    for layer, kept in expected.kept.items():
        assert torch.equal(adapter.blocks(reloaded)[layer].experts.down_proj,
                           adapter.blocks(model)[layer].experts.down_proj)
        assert adapter.stack_blocks(reloaded, "encoder")[layer].experts.down_proj is \
            adapter.blocks(reloaded)[layer].experts.down_proj
        assert len(kept) == 2


def test_the_two_methods_differ_only_by_the_sink_weighting():
    ids = fx.text_ids(2, SEQ, seed=4)
    reports = {}
    for method in METHODS:
        _, report = SinkAwarePruner(fx.tiny_diffusion_gemma()).prune(
            SinkAwarePruningConfig(method=method, expert_ratio=0.5, **SMALL), ids, progress=False)
        reports[method] = report.experts
    assert reports["reap_experts"]["routed_tokens"] == reports["sink_experts"]["routed_tokens"]
    assert reports["reap_experts"]["scores"] != reports["sink_experts"]["scores"]


# ---------------------------------------------------------------------------------------------------------------------
# refused before any calibration or change
# ---------------------------------------------------------------------------------------------------------------------
def _no_calibration(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("calibration ran before the input was refused")

    monkeypatch.setattr(expert_module, "score_experts", fail)


@pytest.mark.parametrize("method", list(METHODS))
def test_a_model_without_experts_is_refused_naming_its_type(method, tiny_llada, monkeypatch):
    _no_calibration(monkeypatch)
    before = _snapshot(tiny_llada)
    config = SinkAwarePruningConfig(method=method, expert_ratio=0.5, num_samples=2, seq_len=16)
    with pytest.raises(ValueError, match=r"expert pruning needs a mixture-of-experts model with routed experts; "
                                         r"model_type='llada' .*supported: diffusion_gemma"):
        SinkAwarePruner(tiny_llada).prune(config, None, progress=False)  # refused before data is even built
    assert _unchanged(tiny_llada, before)


@pytest.mark.parametrize("ratio, message", [
    (0.75, r"expert_ratio=0.75 leaves 1 experts per layer, fewer than top_k_experts=2"),
    (0.1, r"expert_ratio=0.1 removes no expert of 4"),
])
def test_a_ratio_the_model_cannot_meet_is_refused_before_any_change(ratio, message, monkeypatch, tmp_path):
    _no_calibration(monkeypatch)
    model = fx.tiny_diffusion_gemma()
    before = _snapshot(model)
    config = SinkAwarePruningConfig(method="sink_experts", expert_ratio=ratio, **SMALL)
    with pytest.raises(ValueError, match=message):
        SinkAwarePruner(model).prune(config, None, save_dir=tmp_path / "out", progress=False)
    assert _unchanged(model, before) and model.config.text_config.num_experts == 4
    assert not (tmp_path / "out").exists()


def test_image_tokens_in_the_calibration_windows_are_refused_before_any_change():
    model = fx.tiny_diffusion_gemma()
    before = _snapshot(model)
    ids = fx.text_ids(2, SEQ)
    ids[0, 3] = fx.DG_IMAGE_TOKEN
    with pytest.raises(ValueError, match="image tokens"):
        SinkAwarePruner(model).prune(SinkAwarePruningConfig(method="reap_experts", expert_ratio=0.5, **SMALL), ids,
                                     progress=False)
    assert _unchanged(model, before)


def test_the_cli_passes_expert_ratio_to_the_config(tmp_path, capsys):
    from optimum_sinkprune.commands.cli import main

    # the config is built (and validated) before the model loads: a bad ratio fails naming the field, nothing written
    out = tmp_path / "out"
    code = main(["prune", "tiny-llada", "--method", "sink_experts", "--expert-ratio", "1.5",
                 "--output", str(out)])
    assert code != 0 and "expert_ratio" in capsys.readouterr().err
    assert not out.exists()
