# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The method registry: every method round-trips through the config, bad registrations and names fail clearly, a
method registered at run time is accepted by the config, listed by the CLI and runs; the up-front mask-token check
follows the registry (activation_heads on a diffusion model without a mask token fails before anything runs)."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
import torch

from optimum_sinkprune.adapters import MissingMaskTokenError
from optimum_sinkprune.commands.cli import add_subcommands
from optimum_sinkprune.configuration import SinkAwarePruningConfig
from optimum_sinkprune.pruner import SinkAwarePruner
from optimum_sinkprune.registry import (
    CardText,
    MethodSpec,
    get_method,
    is_method,
    method_names,
    register_method,
    unregister_method,
)
from optimum_sinkprune.structured import prune_structured

SMALL = dict(num_samples=3, seq_len=16, diffusion_steps=10, sample_interval=5)
CARD = CardText(name="Toy method", summary="a method registered by a test")


def _config(method: str) -> SinkAwarePruningConfig:
    if get_method(method).family == "experts":
        return SinkAwarePruningConfig(method=method, expert_ratio=0.5, **SMALL)
    if get_method(method).family == "structured":
        return SinkAwarePruningConfig(method=method, target_param_reduction=0.3, allocation="global", **SMALL)
    return SinkAwarePruningConfig(method=method, sparsity=0.5, pattern="2:4", **SMALL)


def _ids(n=3, s=16, seed=0):
    return torch.randint(2, 120, (n, s), generator=torch.Generator().manual_seed(seed))


def _cli_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sinkprune")
    add_subcommands(parser)
    return parser


@pytest.mark.parametrize("method", method_names())
def test_every_method_round_trips_through_the_config(method, tmp_path):
    config = _config(method)
    assert SinkAwarePruningConfig.from_dict(config.to_dict()) == config
    config.save_pretrained(tmp_path)
    loaded = SinkAwarePruningConfig.from_pretrained(tmp_path)
    assert loaded == config and loaded.method_spec is get_method(method)
    assert loaded.is_structured == (get_method(method).family == "structured")


def test_families_partition_the_names_in_registration_order():
    names = method_names()
    assert names[:2] == ("magnitude", "wanda")  # the listing order is the import order of the catalog
    families = [set(method_names(family)) for family in ("unstructured", "structured", "experts")]
    assert set().union(*families) == set(names) and sum(map(len, families)) == len(names)
    assert len(set(names)) == len(names)
    with pytest.raises(ValueError, match=r"family='weights' is not allowed; use one of \('unstructured', "):
        method_names("weights")


@pytest.mark.parametrize("name", method_names())
def test_registered_specs_are_consistent(name):
    spec = get_method(name)
    assert spec.name == name
    assert spec.needs_data == (spec.order != "none")
    assert spec.needs_mask_token or not spec.noised
    assert spec.card.name and spec.card.summary
    assert (spec.scorer is not None) == (spec.family == "structured")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.order = "none"


def test_activation_heads_needs_a_mask_token():
    spec = get_method("activation_heads")
    assert spec.noised and spec.needs_mask_token and spec.needs_data
    assert SinkAwarePruningConfig(method="activation_heads", target_param_reduction=0.3).uses_diffusion
    # weight-only methods do not
    assert not SinkAwarePruningConfig(method="magnitude_heads", target_param_reduction=0.3).uses_diffusion


def test_unknown_names_name_the_value_and_the_known_methods():
    with pytest.raises(ValueError, match=r"method='obs' is unknown; known methods: magnitude, wanda, .*sink_heads"):
        get_method("obs")
    with pytest.raises(ValueError, match=r"method='obs' is not registered; known methods: magnitude"):
        unregister_method("obs")
    with pytest.raises(ValueError, match=r"method='obs' is unknown; known methods: magnitude"):
        SinkAwarePruningConfig(method="obs")
    assert not is_method("obs") and not is_method(None) and is_method("sink_heads", "structured")
    assert not is_method("sink_heads", "unstructured")


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match=r"method 'sink_wanda' is already registered \(family 'unstructured'\)"):
        register_method(dataclasses.replace(get_method("sink_wanda")))
    assert get_method("sink_wanda").card.name.startswith("Sink-Aware Wanda")  # the original is untouched
    with pytest.raises(ValueError, match="register_method needs a MethodSpec, got dict"):
        register_method({"name": "toy"})


@pytest.mark.parametrize("changes,match", [
    (dict(name="Toy-Method"), r"name='Toy-Method' is not allowed; use lowercase letters"),
    (dict(family="sparse"), r"family='sparse' is not allowed; use one of \('unstructured', 'structured', 'experts'\)"),
    (dict(order="parallel"), r"order='parallel' is not allowed; use one of \('none', 'dense', 'sequential'\)"),
    (dict(statistic="head_norms"), r"statistic='head_norms' is not allowed; family='unstructured' uses one of"),
    (dict(order="dense"), r"order='dense' is not allowed; order 'none' goes with statistic 'none'"),
    (dict(order="dense", statistic="sq_norm", needs_data=False), r"needs_data=False is not allowed"),
    (dict(order="dense", statistic="sq_norm", noised=True, needs_mask_token=False),
     r"needs_mask_token=False is not allowed; noising the inputs needs a mask token"),
    (dict(reconstruct=True), r"reconstruct=True is not allowed; reconstruction needs statistic='hessian'"),
    (dict(per_row=1), r"per_row=1 is not allowed; use True or False"),
    (dict(card="toy"), r"card='toy' is not allowed; give a CardText"),
    (dict(card=CardText(name="", summary="x")), r"the card needs a display name and a summary"),
    (dict(family="structured"), r"scorer=None is not allowed; a structured method needs a scorer"),
    (dict(scorer=lambda inputs: None), r"unstructured methods are scored from statistic/reconstruct/per_row"),
])
def test_invalid_specs_are_refused_naming_the_field(changes, match):
    fields = dict(name="toy_method", family="unstructured", order="none", statistic="none", card=CARD)
    fields.update(changes)
    with pytest.raises(ValueError, match=match):
        MethodSpec(**fields)
    assert not is_method(fields["name"])


def test_a_registered_toy_method_is_accepted_listed_and_runs(tiny_llada):
    """Adding a method is one `register_method` call: the config accepts it, the CLI offers it, the pruner runs it."""
    with pytest.raises(ValueError, match="unknown"):
        SinkAwarePruningConfig(method="toy_row_magnitude")
    with pytest.raises(SystemExit):
        _cli_parser().parse_args(["prune", "some/model", "--method", "toy_row_magnitude", "--output", "out"])
    register_method(MethodSpec(name="toy_row_magnitude", family="unstructured", order="none", statistic="none",
                               per_row=True, card=CARD))
    try:
        config = SinkAwarePruningConfig(method="toy_row_magnitude", sparsity=0.25)
        assert SinkAwarePruningConfig.from_dict(config.to_dict()) == config and not config.uses_diffusion
        assert "toy_row_magnitude" in method_names("unstructured")
        args = _cli_parser().parse_args(["prune", "some/model", "--method", "toy_row_magnitude", "--output", "out"])
        assert args.method == "toy_row_magnitude"
        _, report = SinkAwarePruner(tiny_llada).prune(config, None, progress=False)
        for layer in report.layers:  # per-row magnitude: exactly a quarter of every row, the smallest |W|
            weight = dict(tiny_llada.named_modules())[layer.name].weight
            zeros = (weight == 0).sum(dim=1)
            assert torch.equal(zeros, torch.full_like(zeros, weight.shape[1] // 4))
    finally:
        unregister_method("toy_row_magnitude")
    assert not is_method("toy_row_magnitude")
    with pytest.raises(ValueError, match="unknown"):
        SinkAwarePruningConfig(method="toy_row_magnitude")


def test_a_registered_structured_toy_method_uses_its_scorer(tiny_llada):
    """A structured method's scorer decides which heads go: here the heads with the LARGEST weights."""

    def largest_first(inputs):
        return -inputs.head_weight_norms, [-c for c in inputs.channel_weight_norms], {"toy": True}

    register_method(MethodSpec(name="toy_heads", family="structured", order="none", statistic="none",
                               scorer=largest_first, card=CARD))
    try:
        from optimum_sinkprune.structured.pruner import head_weight_norms

        norms = head_weight_norms(tiny_llada)
        config = SinkAwarePruningConfig(method="toy_heads", head_ratio=0.25, mlp_ratio=0.1)
        assert config.is_structured and not config.uses_diffusion
        result = prune_structured(tiny_llada, config=config, calibration_ids=None, progress=False)
        assert result.scores_summary["toy"] is True
        for layer, heads in result.removed_heads.items():
            assert heads == [int(norms[layer].argmax())]  # one of four heads per layer: the largest one
    finally:
        unregister_method("toy_heads")


def test_activation_heads_without_mask_token_fails_before_calibration(tiny_llada, monkeypatch):
    """Regression: activation_heads noises the inputs of diffusion models, so a model without a mask token is refused
    by the pruner's up-front checks, before calibration runs and before any weight changes."""
    import optimum_sinkprune.structured.pruner as structured_pruner

    def calibration_must_not_run(*args, **kwargs):
        raise AssertionError("calibration ran before the mask-token check")

    monkeypatch.setattr(structured_pruner, "collect_structured_statistics", calibration_must_not_run)
    tiny_llada.config.mask_token_id = None
    before = {k: v.clone() for k, v in tiny_llada.state_dict().items()}
    config = SinkAwarePruningConfig(method="activation_heads", target_param_reduction=0.3, **SMALL)
    with pytest.raises(MissingMaskTokenError, match="has no mask token: looked for `mask_token_id`"):
        SinkAwarePruner(tiny_llada).prune(config, _ids(), progress=False)
    assert all(torch.equal(v, tiny_llada.state_dict()[k]) for k, v in before.items())
    assert tiny_llada.config.pruned_heads == {}


def test_spec_defaults_follow_the_scorer_and_the_statistic():
    """Left out, `family` follows the scorer and a weights-only method's `order` is "none"; a statistic needs one."""
    plain = MethodSpec(name="toy_defaults", card=CARD)
    assert (plain.family, plain.order, plain.statistic, plain.needs_data) == ("unstructured", "none", "none", False)
    heads = MethodSpec(name="toy_defaults", scorer=lambda inputs: None, card=CARD)
    assert (heads.family, heads.order, heads.needs_data) == ("structured", "none", False)
    with pytest.raises(ValueError, match=r"order=None is not allowed; statistic='sq_norm' needs order 'dense' or "):
        MethodSpec(name="toy_defaults", statistic="sq_norm", card=CARD)
    assert not is_method("toy_defaults")


@pytest.mark.parametrize("changes,match", [
    (dict(statistic="sq_norm"), r"statistic='sq_norm' is not allowed; family='experts' uses one of \('router_norms',\)"),
    (dict(order="sequential"), r"order='sequential' is not allowed; expert methods score every layer on the dense"),
    (dict(noised=False, needs_mask_token=False), r"noised=False is not allowed; expert methods read the routing"),
    (dict(scorer=lambda inputs: None), r"expert methods are scored from statistic='router_norms' and sink"),
    (dict(per_row=True), r"reconstruct/per_row=\(False, True\) is not allowed; these apply to unstructured"),
])
def test_invalid_expert_specs_are_refused_naming_the_field(changes, match):
    fields = dict(name="toy_experts", family="experts", order="dense", statistic="router_norms", noised=True,
                  card=CARD)
    fields.update(changes)
    with pytest.raises(ValueError, match=match):
        MethodSpec(**fields)
    assert not is_method(fields["name"])


def test_an_expert_method_registered_at_run_time_is_accepted_by_the_config_and_the_cli():
    register_method(MethodSpec(name="toy_experts", family="experts", order="dense", statistic="router_norms",
                               noised=True, card=CARD))
    try:
        assert "toy_experts" in method_names("experts") and not is_method("toy_experts", "structured")
        config = SinkAwarePruningConfig(method="toy_experts", expert_ratio=0.5)
        assert config.is_expert_pruning and SinkAwarePruningConfig.from_dict(config.to_dict()) == config
        assert _cli_parser().parse_args(["prune", "m", "--method", "toy_experts", "--output", "o"]).method == \
            "toy_experts"
    finally:
        unregister_method("toy_experts")
