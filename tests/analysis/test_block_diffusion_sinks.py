# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Decoder sinks of DiffusionGemma over its forward process: the probe's mass equals transformers' own eager
attention weights, every canvas query's row sums to one, sliding layers see only their window of the context, the
result does not depend on batching, the logits are untouched, and bad input is refused before anything runs."""

from __future__ import annotations


import pytest
import torch

from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.analysis.block_diffusion import _LayerMassProbe, forward_process_sink_profile, right_align
from optimum_sinkprune.calibration.noise import NoiseSchedule
from optimum_sinkprune.diffusion.block_diffusion import noise_canvases

import diffusion_gemma_fixtures as fx

SCHEDULE = NoiseSchedule(diffusion_steps=4, sample_interval=1, seed=3)
CTX = 16  # longer than the sliding window's 7 cached context keys


@pytest.fixture(scope="module")
def dg():
    return fx.tiny_diffusion_gemma()


@pytest.fixture(scope="module")
def windows():
    return fx.text_ids(3, CTX + fx.DG_CANVAS, seed=5)


@pytest.fixture(scope="module")
def profile(dg, windows):
    return forward_process_sink_profile(dg, windows, schedule=SCHEDULE, batch_size=2, progress=False)


def test_every_canvas_query_spreads_one_unit_of_mass(profile):
    assert profile.mass.shape == (3, 4, 2, 4, CTX + fx.DG_CANVAS)
    assert torch.allclose(profile.mass.sum(dim=-1), torch.full((3, 4, 2, 4), float(fx.DG_CANVAS)), atol=1e-4)
    assert profile.steps == [1, 2, 3, 4] and torch.allclose(profile.times[0], torch.tensor([0.25, 0.5, 0.75, 1.0]))


def test_sliding_layers_only_see_their_window_of_the_context(dg, profile):
    window = dg.config.text_config.sliding_window  # the cache keeps window - 1 context keys
    hidden = CTX - (window - 1)
    assert profile.layer_types == ["sliding_attention", "full_attention"]
    assert torch.all(profile.mass[:, :, 0, :, :hidden] == 0)
    assert torch.all(profile.mass[:, :, 0, :, hidden:CTX].sum(dim=-1) > 0)
    assert torch.all(profile.mass[:, :, 1, :, :hidden].sum(dim=-1) > 0)


def test_mass_equals_transformers_eager_attention_weights(dg, windows, profile):
    adapter = get_adapter(dg)
    context, canvas = adapter.split_window(dg, windows)
    noisy, _ = noise_canvases(canvas, SCHEDULE, fx.DG_VOCAB)
    previous = dg.config._attn_implementation
    try:
        dg.config._attn_implementation = "eager"
        with torch.no_grad():
            cache = adapter.encode_context(dg, context)
            out = dg(cache=cache, decoder_input_ids=noisy[:, 2], output_attentions=True)
    finally:
        dg.config._attn_implementation = previous
    assert len(out.attentions) == 2
    for layer, weights in enumerate(out.attentions):  # [b, heads, canvas queries, keys of the layer]
        expected = right_align(weights.sum(dim=2).float(), CTX + fx.DG_CANVAS)
        assert torch.allclose(profile.mass[:, 2, layer], expected, atol=1e-4)


def test_the_probe_leaves_the_logits_alone(dg, windows):
    adapter = get_adapter(dg)
    context, canvas = adapter.split_window(dg, windows)
    with torch.no_grad():
        plain = adapter.denoiser_logits(dg, context, canvas)
        cache = adapter.encode_context(dg, context)
        with _LayerMassProbe(dg, per_head=True, method="interface", adapter=adapter) as probe:
            probed = adapter.denoiser_logits(dg, None, canvas, cache=cache)
            assert set(probe.layer_masses()) == {0, 1}
    assert torch.allclose(plain, probed, atol=1e-5)
    assert dg.config._attn_implementation == "sdpa"  # restored on exit


def test_batching_does_not_change_the_profile(dg, windows, profile):
    alone = forward_process_sink_profile(dg, windows, schedule=SCHEDULE, batch_size=1, progress=False)
    assert torch.allclose(alone.mass, profile.mass, atol=1e-5)


def test_shares_and_positions_are_consistent(profile):
    share = profile.context_share
    assert bool(((share >= 0) & (share <= 1)).all())
    canvas_share = profile.mass[..., CTX:].sum(dim=-1) / fx.DG_CANVAS
    assert torch.allclose(share + canvas_share, torch.ones_like(share), atol=1e-5)
    assert torch.equal(profile.dominant_on_context, profile.dominant < CTX)
    assert int(profile.canvas_dominant.max()) < fx.DG_CANVAS
    summary = profile.summary()
    assert [row["step"] for row in summary["per_step"]] == [1, 2, 3, 4]
    assert summary["per_step"][0]["context_share"] == pytest.approx(float(share[:, 0].mean()), abs=1e-6)
    assert summary["per_layer"][1]["type"] == "full_attention"
    moving = (profile.canvas_sink_range() > 3).float().mean().item()
    assert summary["canvas_sink_moving_fraction"] == pytest.approx(moving)
    for row in summary["per_step"]:
        for hit in row["top_dominant_positions"]:
            assert hit["in"] == ("context" if hit["position"] < CTX else "canvas")


def test_bad_input_is_refused(dg, windows, tiny_llada):
    bad = windows.clone()
    bad[1, 2] = fx.DG_IMAGE_TOKEN
    with pytest.raises(ValueError, match="image tokens"):
        forward_process_sink_profile(dg, bad, schedule=SCHEDULE, progress=False)
    with pytest.raises(ValueError, match="seq > canvas_length"):
        forward_process_sink_profile(dg, windows[:, :fx.DG_CANVAS], schedule=SCHEDULE, progress=False)
    with pytest.raises(ValueError, match="batch_size=0"):
        forward_process_sink_profile(dg, windows, schedule=SCHEDULE, batch_size=0, progress=False)
    with pytest.raises(ValueError, match="diffusion_gemma"):
        forward_process_sink_profile(tiny_llada, windows, schedule=SCHEDULE, progress=False)
    with pytest.raises(ValueError, match="more than the 4"):
        right_align(torch.ones(2, 5), 4)


@pytest.mark.slow  # the first generate() of a process imports transformers' compile helpers (~5 s)
def test_generation_trajectory_per_canvas_and_step(dg):
    from optimum_sinkprune.analysis.block_diffusion import generation_sink_trajectory

    prompt = fx.text_ids(2, 5, seed=9)
    kwargs = dict(max_new_tokens=3 * fx.DG_CANVAS, max_denoising_steps=4)
    trajectory = generation_sink_trajectory(dg, prompt, seed=1, **kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        plain = dg.generate(prompt, **kwargs).sequences
    assert torch.equal(trajectory.sequences, plain)  # the probe does not change what the model generates
    assert trajectory.context_lengths == [5, 5 + fx.DG_CANVAS, 5 + 2 * fx.DG_CANVAS]
    for c, mass in enumerate(trajectory.canvases):
        ctx = trajectory.context_lengths[c]
        assert mass.shape[1:] == (2, 2, 4, ctx + fx.DG_CANVAS) and 1 <= mass.shape[0] <= 4
        assert torch.allclose(mass.sum(dim=-1), torch.full(mass.shape[:-1], float(fx.DG_CANVAS)), atol=1e-4)
        share = trajectory.context_share(c)
        assert bool(((share >= 0) & (share <= 1)).all())
    summary = trajectory.summary()
    assert [row["canvas"] for row in summary["canvases"]] == [0, 1, 2]
    assert len(summary["canvases"][0]["context_share_per_step"]) == trajectory.canvases[0].shape[0]
    with pytest.raises(ValueError, match="image tokens"):
        generation_sink_trajectory(dg, torch.full((1, 4), fx.DG_IMAGE_TOKEN), **kwargs)


def test_encoder_mass_is_its_own_causal_attention(dg, windows):
    from optimum_sinkprune.analysis.block_diffusion import encoder_attention_mass

    mass = encoder_attention_mass(dg, windows, batch_size=2)
    seq = windows.shape[1]
    assert mass.shape == (3, 2, 4, seq)
    assert torch.allclose(mass.sum(dim=-1), torch.full((3, 2, 4), float(seq)), atol=1e-4)
    # causal: key j is seen by the seq − j queries at or after it, and by none before it
    assert torch.all(mass <= torch.arange(seq, 0, -1, dtype=torch.float32) + 1e-4)
    previous = dg.config._attn_implementation
    try:
        dg.config._attn_implementation = "eager"
        with torch.no_grad():
            eager = dg.get_encoder()(input_ids=windows, output_attentions=True).attentions
    finally:
        dg.config._attn_implementation = previous
    for layer, weights in enumerate(eager):
        assert torch.allclose(mass[:, layer], weights.sum(dim=2).float(), atol=1e-4)


def test_stack_comparison_reads_both_sides(dg, windows, profile):
    from optimum_sinkprune.analysis.block_diffusion import encoder_attention_mass, stack_comparison

    encoder = encoder_attention_mass(dg, windows)
    result = stack_comparison(encoder, profile)
    first = (encoder.argmax(dim=-1) == 0).float().mean().item()
    assert result["encoder"]["first_token_dominant"] == pytest.approx(first)
    assert result["encoder"]["first_token_share"] == pytest.approx(
        (encoder[..., 0] / encoder.sum(dim=-1)).mean().item(), rel=1e-5)
    assert [row["step"] for row in result["decoder"]] == profile.steps
    assert result["decoder"][1]["context_share"] == pytest.approx(float(profile.context_share[:, 1].mean()))
    assert 0.0 <= result["canvas_sink_moving_fraction"] <= 1.0


def test_a_dispatched_model_with_its_embedding_offloaded_gives_the_same_masses(windows, profile):
    """The ids go to accelerate's execution device, not to the offloaded embedding's meta weight."""
    from accelerate import cpu_offload

    from optimum_sinkprune.analysis.block_diffusion import encoder_attention_mass

    encoder = encoder_attention_mass(fx.tiny_diffusion_gemma(), windows)
    model = cpu_offload(fx.tiny_diffusion_gemma(), execution_device=torch.device("cpu"))
    assert model.get_input_embeddings().weight.is_meta
    offloaded = forward_process_sink_profile(model, windows, schedule=SCHEDULE, batch_size=2, progress=False)
    assert torch.allclose(offloaded.mass, profile.mass, atol=1e-6)
    assert torch.allclose(encoder_attention_mass(model, windows), encoder, atol=1e-6)
