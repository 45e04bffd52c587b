# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Weight pruning of DiffusionGemma's dense linear layers through `SinkAwarePruner`: both stacks change together (they
share their weights), every pattern gives its exact sparsity, nothing outside the targets moves, and what the model
does not support is refused before any weight changes; the structured methods run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from optimum_sinkprune import SinkAwarePruner, SinkAwarePruningConfig
from optimum_sinkprune.adapters import get_adapter

import diffusion_gemma_fixtures as fx


def _config(method: str, **kwargs) -> SinkAwarePruningConfig:
    return SinkAwarePruningConfig(method=method, num_samples=2, seq_len=24, **kwargs)


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("pattern", ["unstructured", "2:4"])
def test_magnitude_prunes_both_stacks_and_nothing_else(pattern):
    model = fx.tiny_diffusion_gemma()
    before = _snapshot(model)
    ctx, canvas = fx.text_ids(2, 10), fx.text_ids(2, fx.DG_CANVAS, seed=1)
    with torch.no_grad():
        dense_logits = model(input_ids=ctx, decoder_input_ids=canvas).logits
    pruner = SinkAwarePruner(model)
    _, report = pruner.prune(_config("magnitude", sparsity=0.5, pattern=pattern), None, progress=False)
    adapter = pruner.adapter
    targets = adapter.linear_layers(model)
    # 13 dense projections (no v on the full-attention layer) and 2 layers x 4 experts x (gate_up, down)
    assert len(report.layers) == len(targets) == 13 + 16
    assert report.total_sparsity == pytest.approx(0.5)
    for name, layer in targets.items():
        weight = layer.weight.detach()
        assert (weight == 0).float().mean().item() == pytest.approx(0.5), name
        if pattern == "2:4":
            assert torch.all((weight.reshape(weight.shape[0], -1, 4) == 0).sum(dim=-1) == 2), name
    # the encoder's projections are the same tensors: pruned with the decoder's
    for enc, dec in zip(adapter.stack_blocks(model, "encoder"), adapter.blocks(model)):
        for role in adapter.projections(dec):
            assert adapter.projection(enc, role).weight is adapter.projection(dec, role).weight
    # router, experts, norms, embeddings, self-conditioning and the vision tower are untouched
    target_params = {f"{name}.weight" for name in targets if not adapter.role_of(name).startswith("expert_")}
    target_params |= {adapter.expert_weight_name(i, role) for i in range(2) for role in ("gate_up", "down")}
    for name, param in model.named_parameters():
        if name.replace("model.encoder.language_model.layers", "model.decoder.layers") not in target_params:
            assert torch.equal(param, before[name]), name
    with torch.no_grad():
        pruned_logits = model(input_ids=ctx, decoder_input_ids=canvas).logits
    assert torch.isfinite(pruned_logits).all() and not torch.allclose(pruned_logits, dense_logits)


def test_targets_by_role_and_the_vision_tower_is_no_target():
    model = fx.tiny_diffusion_gemma()
    pruner = SinkAwarePruner(model)
    _, report = pruner.prune(_config("magnitude", sparsity=0.25, targets=["q", "down"]), None, progress=False)
    assert sorted(layer.name.rsplit(".", 1)[-1] for layer in report.layers) == ["down_proj"] * 2 + ["q_proj"] * 2
    with pytest.raises(ValueError, match="matches no block linear layer"):
        SinkAwarePruner(fx.tiny_diffusion_gemma()).prune(
            _config("magnitude", sparsity=0.5, targets=["*vision_tower*"]), None, progress=False)


@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
@pytest.mark.parametrize("pattern", ["unstructured", "2:4"])
def test_clean_calibrated_methods_reach_their_sparsity(method, pattern):
    model = fx.tiny_diffusion_gemma()
    pruner = SinkAwarePruner(model)
    _, report = pruner.prune(_config(method, sparsity=0.5, pattern=pattern, block_size=8), fx.text_ids(2, 24),
                             progress=False)
    assert report.total_sparsity == pytest.approx(0.5) and len(report.layers) == 29
    assert report.calibration["num_samples"] == 2
    for name, layer in pruner.adapter.linear_layers(model).items():
        assert (layer.weight == 0).float().mean().item() == pytest.approx(0.5), name


def test_wanda_reads_the_decoders_real_activations_of_the_canvas():
    """Pruning only the full-attention layer 1: its statistics must be what the model's own decoder feeds it (the
    canvas after the context was encoded), so the mask equals |W|·‖X‖ from hooks on a plain forward."""
    from optimum_sinkprune.methods.masks import unstructured_row_mask

    model = fx.tiny_diffusion_gemma()
    adapter = SinkAwarePruner(model).adapter
    ids = fx.text_ids(2, 24, seed=4)
    layers = {name: layer for name, layer in adapter.linear_layers(model).items()
              if adapter.locate(name)[0] == 1 and not adapter.role_of(name).startswith("expert_")}
    sq = {name: torch.zeros(layer.in_features) for name, layer in layers.items()}
    weights = {name: layer.weight.detach().clone() for name, layer in layers.items()}

    def record(name):
        def hook(_module, args):
            sq[name] += args[0].detach().float().pow(2).reshape(-1, args[0].shape[-1]).sum(dim=0)
        return hook

    handles = [layer.register_forward_pre_hook(record(name)) for name, layer in layers.items()]
    try:
        with torch.no_grad():
            for row in ids:
                adapter.calibration_forward(model, row[None])
    finally:
        for handle in handles:
            handle.remove()
    pruner = SinkAwarePruner(model)
    pruner.prune(_config("wanda", sparsity=0.5, targets=["model.decoder.layers.1.*"],
                         ignore=["expert_gate_up", "expert_down"]), ids, progress=False)
    for name, layer in layers.items():
        expected = unstructured_row_mask(weights[name].abs() * sq[name].sqrt()[None], 0.5)
        assert torch.equal(layer.weight == 0, expected), name


def test_pruned_model_saves_and_reloads_with_its_ties(tmp_path):
    from transformers import AutoModelForImageTextToText

    model = fx.tiny_diffusion_gemma()
    pruner = SinkAwarePruner(model)
    pruner.prune(_config("magnitude", sparsity=0.5, pattern="2:4"), None, progress=False)
    folder = pruner.save_pretrained(tmp_path / "dg-2of4")
    files = {p.name for p in Path(folder).iterdir()}
    assert "model.safetensors" in files and not any(name.endswith(".bin") for name in files)
    assert "sampler_config.json" not in files  # it samples with its own generate()
    reloaded = AutoModelForImageTextToText.from_pretrained(folder).eval()
    adapter = pruner.adapter
    ctx, canvas = fx.text_ids(2, 10), fx.text_ids(2, fx.DG_CANVAS, seed=1)
    with torch.no_grad():
        assert torch.equal(adapter.denoiser_logits(model, ctx, canvas), adapter.denoiser_logits(reloaded, ctx, canvas))
    for enc, dec in zip(adapter.stack_blocks(reloaded, "encoder"), adapter.blocks(reloaded)):
        assert adapter.projection(enc, "q").weight is adapter.projection(dec, "q").weight
        assert (adapter.projection(dec, "q").weight == 0).float().mean().item() == pytest.approx(0.5)


@pytest.mark.parametrize("method", ["magnitude_heads", "random_heads", "sink_heads"])
def test_structured_methods_run_and_keep_both_stacks_sharing_their_weights(method):
    # the methods in detail (budget, statistics, reload): tests/test_diffusion_gemma_structured_methods.py
    model = fx.tiny_diffusion_gemma()
    _, report = fx.prune_with_structured_method(model, method)
    assert report.structured["removed_heads"] in ({"0": [0, 1]}, {"0": [2, 3]})
    adapter = get_adapter(model)
    for dec, enc in zip(adapter.blocks(model), adapter.stack_blocks(model, "encoder")):
        assert adapter.projection(enc, "q").weight is adapter.projection(dec, "q").weight
