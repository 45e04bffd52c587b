# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Structured removal on DiffusionGemma: whole kv groups (each layer kind by its own head layout) and dense-MLP
channels leave both stacks sharing their smaller weights, the result equals masking the same weights, the checkpoint
reloads through the Auto class with identical logits (our loading hook resizes both stacks' layers), and requests
that split a kv group or empty a layer, or malformed records, are refused before anything changes. The structured
methods that plan this removal are tested in tests/test_diffusion_gemma_structured_methods.py."""

from __future__ import annotations

import json

import pytest
import torch

from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.structured import prune_structure

import diffusion_gemma_fixtures as fx

HEADS = {0: [2, 3]}  # kv group 1 of the sliding layer (4 heads, 2 kv heads)
CHANNELS = {0: list(range(10)), 1: [1, 5, 7]}


def _logits(model):
    adapter = get_adapter(model)
    with torch.no_grad():
        return adapter.denoiser_logits(model, fx.text_ids(2, 10), fx.text_ids(2, fx.DG_CANVAS, seed=1))


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters(remove_duplicate=False)}


def test_removal_equals_masking_and_both_stacks_share_the_smaller_weights():
    masked, removed = fx.tiny_diffusion_gemma(), fx.tiny_diffusion_gemma()
    prune_structure(masked, heads=HEADS, channels=CHANNELS, mode="mask")
    prune_structure(removed, heads=HEADS, channels=CHANNELS)
    assert torch.allclose(_logits(removed), _logits(masked), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(_logits(removed), _logits(fx.tiny_diffusion_gemma()), atol=1e-3)
    adapter = get_adapter(removed)
    text = removed.config.text_config
    assert text.pruned_heads == {0: [2, 3]} and text.sinkprune_mlp_widths == [54, 61]
    assert adapter.num_heads(removed, 0) == 2 and adapter.num_kv_heads(removed, 0) == 1
    assert adapter.num_heads(removed, 1) == 4 and adapter.num_kv_heads(removed, 1) == 1  # full layer untouched
    for dec, enc in zip(adapter.blocks(removed), adapter.stack_blocks(removed, "encoder")):
        for role in adapter.projections(dec):
            assert adapter.projection(enc, role).weight is adapter.projection(dec, role).weight, role
    assert adapter.projection(adapter.blocks(removed)[0], "o").in_features == 2 * 8
    assert adapter.mlp_width(removed, 0) == 54


def test_the_pruned_checkpoint_reloads_through_the_auto_class_with_identical_logits(tmp_path):
    from transformers import AutoModelForImageTextToText

    model = fx.tiny_diffusion_gemma()
    prune_structure(model, heads=HEADS, channels=CHANNELS)
    expected = _logits(model)
    model.save_pretrained(tmp_path / "dg-structured")
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path / "dg-structured").eval()
    assert torch.equal(_logits(reloaded), expected)
    adapter = get_adapter(reloaded)
    for dec, enc in zip(adapter.blocks(reloaded), adapter.stack_blocks(reloaded, "encoder")):
        assert adapter.projection(enc, "q").weight is adapter.projection(dec, "q").weight
    assert adapter.projection(adapter.stack_blocks(reloaded, "encoder")[1], "down").in_features == 61
    out = reloaded.generate(fx.text_ids(1, 5), max_new_tokens=fx.DG_CANVAS, max_denoising_steps=2)
    assert out.sequences.shape == (1, 5 + fx.DG_CANVAS)


def test_structured_removal_composes_with_expert_pruning(tmp_path):
    from transformers import AutoModelForImageTextToText

    from optimum_sinkprune.calibration.noise import NoiseSchedule
    from optimum_sinkprune.structured.experts import prune_experts

    model = fx.tiny_diffusion_gemma()
    prune_experts(model, fx.text_ids(2, 24), expert_ratio=0.5, noise=NoiseSchedule(diffusion_steps=2,
                                                                                      sample_interval=1),
                  progress=False)
    prune_structure(model, heads=HEADS, channels=CHANNELS)
    model.save_pretrained(tmp_path / "dg-both")
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path / "dg-both").eval()
    assert torch.equal(_logits(reloaded), _logits(model))


@pytest.mark.parametrize("heads, message", [
    ({0: [0]}, r"splits kv group 0 \(query heads \[0, 1\]\)"),
    ({1: [0, 1]}, r"splits kv group 0 \(query heads \[0, 1, 2, 3\]\).*4 query heads, 1 kv heads"),
    ({1: [0, 1, 2, 3]}, r"would leave 0 of 4 heads in layer 1"),
    ({2: [0, 1]}, r"layer"),
])
def test_requests_inside_a_kv_group_or_emptying_a_layer_are_refused_before_any_change(heads, message):
    model = fx.tiny_diffusion_gemma()
    before = _snapshot(model)
    with pytest.raises(ValueError, match=message):
        prune_structure(model, heads=heads, channels=CHANNELS)
    after = _snapshot(model)
    assert set(after) == set(before) and all(torch.equal(after[n], before[n]) for n in before)
    assert getattr(model.config.text_config, "pruned_heads", None) in (None, {})


def test_a_malformed_record_fails_at_load_naming_the_field(tmp_path):
    from transformers import AutoModelForImageTextToText

    model = fx.tiny_diffusion_gemma()
    prune_structure(model, heads=HEADS)
    folder = tmp_path / "dg-bad"
    model.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["pruned_heads"] = {"1": [0, 1]}  # splits the full layer's only kv group
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"DiffusionGemmaTextConfig.pruned_heads\[1\]=\[0, 1\] splits kv group 0"):
        AutoModelForImageTextToText.from_pretrained(folder)
