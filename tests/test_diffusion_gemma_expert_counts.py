# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Different expert counts per DiffusionGemma layer. transformers builds every layer's experts and router from one
`num_experts`, so uneven counts are recorded per layer in the text config (`sinkprune_num_experts`, with `num_experts`
the largest) and our reload hook builds each layer at its size: the checkpoint reloads through the Auto class with
identical logits and generates; expert pruning of such a model removes round(ratio · count) per layer; even counts
clear the record; a malformed record fails at load naming the field."""

from __future__ import annotations

import json

import pytest
import torch

from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.calibration.noise import NoiseSchedule
from optimum_sinkprune.models.pruned_loading import register_pruned_loading
from optimum_sinkprune.structured.experts import kept_experts, prune_experts

import diffusion_gemma_fixtures as fx

NOISE = NoiseSchedule(diffusion_steps=4, sample_interval=2, seed=3)


def _logits(model):
    ctx, canvas = fx.text_ids(2, 10, seed=7), fx.text_ids(2, fx.DG_CANVAS, seed=8)
    with torch.no_grad():
        return get_adapter(model).denoiser_logits(model, ctx, canvas)


def _reload(model, folder):
    from transformers import AutoModelForImageTextToText

    model.save_pretrained(folder)
    return AutoModelForImageTextToText.from_pretrained(folder).eval()


def test_uneven_expert_counts_reload_with_identical_logits_and_generate(tmp_path):
    model = fx.tiny_diffusion_gemma()
    adapter = get_adapter(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters(remove_duplicate=False)}
    assert adapter.keep_experts(model, {0: [0, 2, 3], 1: [1, 3]}) is True  # the reload hook is needed
    register_pruned_loading()
    text = model.config.text_config
    assert adapter.layer_num_experts(model) == [3, 2]
    assert text.num_experts == 3 and text.sinkprune_num_experts == [3, 2]
    block = adapter.blocks(model)[1]
    assert torch.equal(block.experts.down_proj, before["model.decoder.layers.1.experts.down_proj"][[1, 3]])
    assert adapter.projection(block, "router").weight.shape == (2, 32) and block.router.per_expert_scale.numel() == 2
    expected = _logits(model)
    reloaded = _reload(model, tmp_path / "dg-uneven")
    saved = json.loads((tmp_path / "dg-uneven" / "config.json").read_text())["text_config"]
    assert saved["num_experts"] == 3 and saved["sinkprune_num_experts"] == [3, 2]
    assert torch.equal(_logits(reloaded), expected)
    again = get_adapter(reloaded)
    assert again.layer_num_experts(reloaded) == [3, 2]
    for dec, enc in zip(again.blocks(reloaded), again.stack_blocks(reloaded, "encoder")):
        assert enc.experts.gate_up_proj is dec.experts.gate_up_proj
        assert again.projection(enc, "router").weight is again.projection(dec, "router").weight
        assert enc.experts.num_experts == dec.experts.num_experts == dec.experts.gate_up_proj.shape[0]
    out = reloaded.generate(fx.text_ids(1, 5), max_new_tokens=fx.DG_CANVAS, max_denoising_steps=2)
    assert out.sequences.shape == (1, 5 + fx.DG_CANVAS)


def test_expert_pruning_of_uneven_layers_removes_a_share_of_each(tmp_path):
    model = fx.tiny_diffusion_gemma(num_experts=8)
    adapter = get_adapter(model)
    adapter.keep_experts(model, {0: [0, 1, 2, 3, 5, 7], 1: [1, 2, 4, 6]})
    result = prune_experts(model, fx.text_ids(2, 24), expert_ratio=0.25, noise=NOISE, progress=False)
    # round(0.25 · 6) = 2 and round(0.25 · 4) = 1 go
    assert (result.num_experts_before, result.num_experts_after) == ([6, 4], [4, 3])
    assert adapter.layer_num_experts(model) == [4, 3] and model.config.text_config.sinkprune_num_experts == [4, 3]
    assert [len(result.kept[i]) for i in range(2)] == [4, 3] and max(result.kept[1]) < 4
    assert len(result.scores[1]) == 6 and result.scores[1][4:] == [0.0, 0.0]  # past the layer's count
    expected = _logits(model)
    assert torch.equal(_logits(_reload(model, tmp_path / "dg")), expected)


def test_even_counts_clear_the_per_layer_record(tmp_path):
    model = fx.tiny_diffusion_gemma()
    adapter = get_adapter(model)
    adapter.keep_experts(model, {0: [0, 1, 2], 1: [0, 1]})
    assert adapter.keep_experts(model, {0: [0, 2], 1: [0, 1]}) is False
    text = model.config.text_config
    assert text.num_experts == 2 and getattr(text, "sinkprune_num_experts", None) is None
    saved = tmp_path / "dg-even"
    reloaded = _reload(model, saved)
    assert "sinkprune_num_experts" not in json.loads((saved / "config.json").read_text())["text_config"]
    assert torch.equal(_logits(reloaded), _logits(model))


def test_a_malformed_expert_record_fails_at_load_naming_the_field(tmp_path):
    from transformers import AutoModelForImageTextToText

    model = fx.tiny_diffusion_gemma()
    get_adapter(model).keep_experts(model, {0: [0, 1, 2], 1: [0, 1]})
    folder = tmp_path / "dg-bad"
    model.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["sinkprune_num_experts"] = [3, 1]  # below top_k_experts
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"DiffusionGemmaTextConfig.sinkprune_num_experts\[1\]=1 must be an int in "
                                         r"\[top_k_experts=2, num_experts=3\]"):
        AutoModelForImageTextToText.from_pretrained(folder)


def test_kept_experts_reads_each_layers_own_columns():
    scores = torch.tensor([[3.0, 1.0, 2.0, 0.5], [2.0, 1.0, 0.0, 0.0]])
    assert kept_experts(scores, [1, 1], [4, 2]) == {0: [0, 1, 2], 1: [0]}
    assert kept_experts(scores, 2) == {0: [0, 2], 1: [0, 1]}
