# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The noised and sink-aware weight-pruning methods on DiffusionGemma, calibrated on its own block-diffusion forward
process: the context stays clean, only the canvas is noised (as `forward_process_sink_profile` noises it), and σ comes
from the decoder's attention with the canvas as queries over every key it reads (context and canvas), applied to the
canvas tokens. The statistics are checked against hooks on plain forwards with σ from the analysis' own capture."""

from __future__ import annotations

import pytest
import torch

from optimum_sinkprune import SinkAwarePruner, SinkAwarePruningConfig
from optimum_sinkprune.calibration.noise import NoiseSchedule
from optimum_sinkprune.calibration.sink_weights import sink_weights
from optimum_sinkprune.registry import get_method, method_names

import diffusion_gemma_fixtures as fx

SEQ = 24  # 16 context tokens (more than the sliding window keeps) and a canvas of 8
NOISE = dict(diffusion_steps=4, sample_interval=2, seed=3)


def _config(method: str, **kwargs) -> SinkAwarePruningConfig:
    return SinkAwarePruningConfig(method=method, num_samples=2, seq_len=SEQ, block_size=8, **NOISE, **kwargs)


def _noised_or_sink_methods() -> list[str]:
    return [name for name in method_names("unstructured") if get_method(name).noised or get_method(name).sink]


def test_the_registry_names_the_methods_this_file_covers():
    assert set(_noised_or_sink_methods()) >= {"sink_wanda", "wanda_diffusion", "sink_sparsegpt"}


@pytest.mark.parametrize("method", _noised_or_sink_methods())
@pytest.mark.parametrize("pattern", ["unstructured", "2:4"])
def test_every_noised_or_sink_method_prunes_both_stacks(method, pattern):
    model = fx.tiny_diffusion_gemma()
    pruner = SinkAwarePruner(model)
    _, report = pruner.prune(_config(method, sparsity=0.5, pattern=pattern), fx.text_ids(2, SEQ), progress=False)
    adapter = pruner.adapter
    assert report.total_sparsity == pytest.approx(0.5) and len(report.layers) == 13 + 16  # dense + expert slices
    for name, layer in adapter.linear_layers(model).items():
        assert (layer.weight == 0).float().mean().item() == pytest.approx(0.5), name
    for enc, dec in zip(adapter.stack_blocks(model, "encoder"), adapter.blocks(model)):
        assert adapter.projection(enc, "o").weight is adapter.projection(dec, "o").weight
    if get_method(method).sink:
        # σ is reported over the canvas tokens the decoder's hooks see: 2 samples x 2 steps x 8 canvas tokens
        assert report.sink["forward_passes"] == 4
        assert 0.0 < report.sink["mean_sink_weight"] < 1.0
        assert all(0 <= row["position"] < SEQ for row in report.sink["top_sink_positions"])
    ctx, canvas = fx.text_ids(2, 10), fx.text_ids(2, fx.DG_CANVAS, seed=1)
    with torch.no_grad():
        assert torch.isfinite(adapter.denoiser_logits(model, ctx, canvas)).all()


def test_calibration_noise_keeps_the_context_clean_and_noises_the_canvas_as_the_analysis_does():
    from optimum_sinkprune.diffusion.block_diffusion import noise_canvases

    model = fx.tiny_diffusion_gemma()
    adapter = SinkAwarePruner(model).adapter
    ids = fx.text_ids(3, SEQ, seed=2)
    schedule = NoiseSchedule(**NOISE)
    noisy, times = adapter.calibration_noise(model, ids, schedule, adapter.noise_token_id(model))
    assert adapter.noise_token_id(model) is None
    assert noisy.shape == (3, 2, SEQ) and times.shape == (3, 2)
    assert torch.equal(noisy[..., :-fx.DG_CANVAS], ids[:, None, :-fx.DG_CANVAS].expand(-1, 2, -1))
    expected, expected_t = noise_canvases(ids[:, -fx.DG_CANVAS:], schedule, fx.DG_VOCAB)
    assert torch.equal(noisy[..., -fx.DG_CANVAS:], expected) and torch.equal(times, expected_t)
    # at t = 1 nearly every canvas token is redrawn
    assert (noisy[:, 1, -fx.DG_CANVAS:] != ids[:, -fx.DG_CANVAS:]).float().mean() > 0.8
    assert adapter.observed_positions(model, SEQ) == slice(SEQ - fx.DG_CANVAS, SEQ)


def _hooked_norms(model, adapter, layers, windows, token_weight):
    """Σ over windows of the per-feature L2 norm over the canvas tokens of w ⊙ X, from hooks on plain forwards."""
    acc = {name: torch.zeros(layer.in_features) for name, layer in layers.items()}
    current = {}

    def record(name):
        def hook(_module, args):
            x = args[0].detach().float()[0]  # [canvas, in]
            w = current["w"][:, None]
            acc[name] += (x * w).square().sum(dim=0).sqrt()
        return hook

    handles = [layer.register_forward_pre_hook(record(name)) for name, layer in layers.items()]
    fx.weighted_calibration_forwards(model, adapter, windows, token_weight, current, handles)
    return acc


@pytest.mark.parametrize("method", ["sink_wanda", "wanda_diffusion"])
def test_dense_statistics_are_the_decoders_canvas_activations_weighted_by_the_analysis_sigma(method):
    """The masks equal |W| · Σ ‖(1 − σ) ⊙ X‖ where X are the decoder's inputs on the noised canvas and σ is computed
    from `forward_process_sink_profile` (the analysis' capture, encoder run outside the probe) over all 24 key
    positions, then read at the canvas positions."""
    from optimum_sinkprune.analysis.block_diffusion import forward_process_sink_profile
    from optimum_sinkprune.methods.masks import unstructured_row_mask

    model = fx.tiny_diffusion_gemma()
    adapter = SinkAwarePruner(model).adapter
    ids = fx.text_ids(2, SEQ, seed=4)
    config = _config(method, sparsity=0.5, targets=["model.decoder.layers.1.*"],
                     ignore=["expert_gate_up", "expert_down"])
    schedule = NoiseSchedule.from_config(config, adapter)
    noisy, _ = adapter.calibration_noise(model, ids, schedule, None)
    windows = noisy.reshape(-1, SEQ)  # (sample, step) in the pipeline's order does not matter for a sum
    if method == "sink_wanda":
        profile = forward_process_sink_profile(model, ids, schedule=schedule, progress=False)
        mass = profile.mass.sum(dim=(2, 3)).reshape(-1, SEQ)  # [n · steps, context + canvas]
        sigma = sink_weights(mass, alpha=config.sink_alpha, k_std=config.sink_std)[:, -fx.DG_CANVAS:]
        weight = 1.0 - sigma
        assert float(sigma.max()) > 0.5  # some canvas token is a sink on this model: the weighting matters
    else:
        weight = torch.ones(windows.shape[0], fx.DG_CANVAS)
    layers = {n: layer for n, layer in adapter.linear_layers(model).items()
              if adapter.locate(n)[0] == 1 and not adapter.role_of(n).startswith("expert_")}
    weights = {n: layer.weight.detach().clone() for n, layer in layers.items()}
    norms = _hooked_norms(model, adapter, layers, windows, weight)
    SinkAwarePruner(model).prune(config, ids, progress=False)
    for name, layer in layers.items():
        expected = unstructured_row_mask(weights[name].abs() * norms[name][None], 0.5)
        assert torch.equal(layer.weight == 0, expected), name


def test_sink_weighting_changes_the_masks():
    masks = {}
    for method in ("sink_wanda", "wanda_diffusion"):
        model = fx.tiny_diffusion_gemma()
        pruner = SinkAwarePruner(model)
        pruner.prune(_config(method, sparsity=0.5), fx.text_ids(2, SEQ, seed=4), progress=False)
        masks[method] = {n: layer.weight == 0 for n, layer in pruner.adapter.linear_layers(model).items()}
    assert any(not torch.equal(masks["sink_wanda"][n], masks["wanda_diffusion"][n]) for n in masks["sink_wanda"])


def test_sink_sparsegpt_token_weights_cover_the_canvas():
    from optimum_sinkprune.calibration import engine

    model = fx.tiny_diffusion_gemma()
    adapter = SinkAwarePruner(model).adapter
    ids = fx.text_ids(2, SEQ, seed=4)
    noisy, _ = adapter.calibration_noise(model, ids, NoiseSchedule(**NOISE), None)
    sigma, stats = engine.collect_sink_weights(model, adapter, noisy, sink_alpha=5.0, sink_std=2.0, progress=False)
    assert sigma.shape == (2, fx.DG_CANVAS) and stats.forwards == 4
    assert torch.all((sigma >= 0) & (sigma <= 1))


def test_protected_positions_are_refused_before_any_change():
    model = fx.tiny_diffusion_gemma()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    with pytest.raises(ValueError, match="protected='first' is not allowed for block diffusion"):
        SinkAwarePruner(model).prune(_config("sink_wanda", sparsity=0.5, protected_positions="first"),
                                     fx.text_ids(2, SEQ), progress=False)
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name]), name


def test_image_tokens_in_calibration_data_are_refused_before_any_change():
    model = fx.tiny_diffusion_gemma()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    ids = fx.text_ids(2, SEQ)
    ids[0, 3] = fx.DG_IMAGE_TOKEN
    with pytest.raises(ValueError, match="image tokens .*support text-only inputs"):
        SinkAwarePruner(model).prune(_config("sink_sparsegpt", sparsity=0.5), ids, progress=False)
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name]), name


def test_noised_canvases_may_hold_any_token_but_clean_windows_must_be_text():
    """The forward process draws canvas tokens from the whole vocabulary, image ids included (as generate() does):
    such noised canvases are calibrated on, while image tokens anywhere in the clean windows are refused."""
    model = fx.tiny_diffusion_gemma()
    adapter = SinkAwarePruner(model).adapter
    ids = fx.text_ids(8, SEQ, seed=11)
    config = SinkAwarePruningConfig(method="sink_wanda", sparsity=0.5, num_samples=8, seq_len=SEQ, diffusion_steps=1,
                                    sample_interval=1, seed=3)
    noisy, _ = adapter.calibration_noise(model, ids, NoiseSchedule.from_config(config, adapter), None)
    assert bool((noisy[..., -fx.DG_CANVAS:] >= fx.DG_BOI_TOKEN).any())  # the precondition of this test
    _, report = SinkAwarePruner(model).prune(config, ids, progress=False)
    assert report.total_sparsity == pytest.approx(0.5)
    clean = fx.text_ids(2, SEQ)
    clean[1, -1] = fx.DG_IMAGE_TOKEN  # in the canvas of a clean window
    fresh = fx.tiny_diffusion_gemma()
    before = {name: p.detach().clone() for name, p in fresh.named_parameters()}
    with pytest.raises(ValueError, match="image_token_id: 1.*support text-only inputs"):
        SinkAwarePruner(fresh).prune(_config("wanda", sparsity=0.5), clean, progress=False)
    assert all(torch.equal(p, before[n]) for n, p in fresh.named_parameters())
