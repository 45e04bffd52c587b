# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The DiffusionGemma adapter on the tiny config of `tests/diffusion_gemma_fixtures.py`: recognition by config and
module tree, both stacks by role (q/k/v/o, dense MLP, router, packed experts), tied weights, causality per stack as
the config says, head geometry per layer type, the canvas, text-only inputs, and the denoiser's logits."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optimum_sinkprune.adapters import (
    DiffusionGemmaAdapter,
    MissingMaskTokenError,
    UnsupportedModelError,
    get_adapter,
    supported_model_types,
)

import diffusion_gemma_fixtures as _fx

DG_CANVAS, DG_IMAGE_TOKEN, DG_VOCAB = _fx.DG_CANVAS, _fx.DG_IMAGE_TOKEN, _fx.DG_VOCAB
text_ids, tiny_diffusion_gemma, tiny_diffusion_gemma_config = (_fx.text_ids, _fx.tiny_diffusion_gemma,
                                                               _fx.tiny_diffusion_gemma_config)


@pytest.fixture(scope="module")
def dg():
    return tiny_diffusion_gemma()


def test_tiny_config_is_small_and_runs_a_forward(dg):
    params = sum(p.numel() for p in dg.parameters())
    assert params < 60_000  # the default config's vision tower alone has ~168M
    vision = sum(p.numel() for p in dg.model.encoder.vision_tower.parameters())
    assert vision < 5_000
    ctx, canvas = text_ids(2, 6), text_ids(2, DG_CANVAS, seed=1)
    with torch.no_grad():
        logits = dg(input_ids=ctx, decoder_input_ids=canvas).logits
    assert logits.shape == (2, DG_CANVAS, DG_VOCAB)
    assert torch.isfinite(logits).all()


@pytest.mark.slow  # the first generate() of a process imports transformers' compile helpers (~5 s)
def test_tiny_model_generates_whole_canvases(dg):
    out = dg.generate(text_ids(2, 5), max_new_tokens=2 * DG_CANVAS, max_denoising_steps=3)
    assert out.sequences.shape == (2, 5 + 2 * DG_CANVAS)


def test_recognised_by_config_and_tree(dg):
    adapter = get_adapter(dg)
    assert isinstance(adapter, DiffusionGemmaAdapter)
    assert "diffusion_gemma" in supported_model_types()
    assert adapter.is_diffusion and not adapter.is_causal
    # the base model (no LM head) has the config but not the tree of the block-diffusion class
    with pytest.raises(UnsupportedModelError, match="diffusion_gemma"):
        get_adapter(dg.model)


def test_vision_tower_alone_is_refused_with_the_supported_types(dg):
    with pytest.raises(UnsupportedModelError) as err:
        get_adapter(dg.model.encoder.vision_tower)
    assert "gemma4_vision" in str(err.value) and "diffusion_gemma" in str(err.value)


def test_dense_linears_by_role_skip_the_missing_v_of_full_layers(dg):
    adapter = get_adapter(dg)
    # the experts' packed tensors follow each layer's dense projections as per-expert views (no module of the tree)
    names = [name for name in adapter.linear_layers(dg) if ".experts." not in name]
    assert names == [f"model.decoder.layers.0.{p}" for p in (
        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
        "mlp.up_proj", "mlp.down_proj")] + [f"model.decoder.layers.1.{p}" for p in (
            "self_attn.q_proj", "self_attn.k_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
            "mlp.down_proj")]
    modules = dict(dg.named_modules())
    for name, layer in adapter.linear_layers(dg).items():
        assert modules[name] is layer if name in names else name not in modules
        assert adapter.locate(name) == (int(name.split(".")[3]), adapter.role_of(name))
    full = adapter.blocks(dg)[1]
    assert adapter.layer_types(dg) == ["sliding_attention", "full_attention"]
    assert not adapter.has_projection(full, "v")
    with pytest.raises(ValueError, match="reuse their keys as values"):
        adapter.projection(full, "v")
    with pytest.raises(ValueError, match="role='w'"):
        adapter.projection(full, "w")


def test_router_and_packed_experts(dg):
    adapter = get_adapter(dg)
    block = adapter.blocks(dg)[0]
    router = adapter.projection(block, "router")
    assert isinstance(router, nn.Linear) and router.weight.shape == (4, 32)
    assert adapter.role_of(adapter.projection_name(0, "router")) == "router"
    assert adapter.locate(adapter.projection_name(1, "router") + ".weight") == (1, "router")
    experts = adapter.expert_weights(block)
    assert experts["gate_up"].shape == (4, 2 * 16, 32) and experts["down"].shape == (4, 32, 16)
    params = dict(dg.named_parameters(remove_duplicate=False))
    assert params[adapter.expert_weight_name(0, "gate_up")] is experts["gate_up"]
    assert adapter.num_experts(dg) == 4 and adapter.top_k_experts(dg) == 2
    assert adapter.input_group("router") != adapter.input_group("gate")


def test_both_stacks_share_every_weight(dg):
    adapter = get_adapter(dg)
    encoder, decoder = adapter.stack_blocks(dg, "encoder"), adapter.stack_blocks(dg, "decoder")
    assert decoder is adapter.blocks(dg) and len(encoder) == len(decoder) == 2
    for i, (enc, dec) in enumerate(zip(encoder, decoder)):
        for role in adapter.projections(dec):
            assert adapter.projection(enc, role).weight is adapter.projection(dec, role).weight
        assert adapter.expert_weights(enc)["down"] is adapter.expert_weights(dec)["down"]
        enc_name = f"{adapter.encoder_blocks_path}.{i}.{adapter.layout.projections['o']}"
        assert adapter.locate(enc_name) == (i, "o")
    with pytest.raises(ValueError, match="stack='vision'"):
        adapter.stack_blocks(dg, "vision")
    with pytest.raises(ValueError, match="is not a projection"):
        adapter.locate("model.encoder.vision_tower.encoder.layers.0.self_attn.q_proj.linear")


@pytest.mark.parametrize("bidirectional, encoder_causal", [(None, True), ("vision", True), ("all", False)])
def test_causality_per_stack_follows_the_config(bidirectional, encoder_causal):
    model = tiny_diffusion_gemma(use_bidirectional_attention=bidirectional, randomize=False)
    adapter = get_adapter(model)
    assert adapter.stack_is_causal(model, "encoder") is encoder_causal
    assert adapter.stack_is_causal(model, "decoder") is False
    # what the model's own attention modules do
    for stack, causal in (("encoder", encoder_causal), ("decoder", False)):
        for block in adapter.stack_blocks(model, stack):
            assert adapter.attention_module(block).is_causal is causal


def test_head_geometry_per_layer_type(dg):
    adapter = get_adapter(dg)
    assert adapter.original_num_heads(dg) == 4
    assert (adapter.layer_head_dim(dg, 0), adapter.layer_head_dim(dg, 1)) == (8, 16)
    assert (adapter.num_heads(dg, 0), adapter.num_kv_heads(dg, 0)) == (4, 2)
    assert (adapter.num_heads(dg, 1), adapter.num_kv_heads(dg, 1)) == (4, 1)
    assert adapter.head_dim(dg) == 8 and adapter.original_num_kv_heads(dg) == 2
    assert adapter.max_length(dg) == 256
    with pytest.raises(NotImplementedError, match="interface"):
        adapter.rotary_cos_sin(dg, torch.arange(4)[None], torch.float32)


def test_qk_postprocess_is_the_modules_per_head_norm(dg):
    adapter = get_adapter(dg)
    block = adapter.blocks(dg)[1]
    attention = adapter.attention_module(block)
    x = torch.randn(2, 5, 32, generator=torch.Generator().manual_seed(0))
    q, k = adapter.projection(block, "q")(x), adapter.projection(block, "k")(x)
    pq, pk = adapter.qk_postprocess(block, q, k)
    assert torch.allclose(pq, attention.q_norm(q.view(2, 5, 4, 16)).view(2, 5, 64))
    assert torch.allclose(pk, attention.k_norm(k.view(2, 5, 1, 16)).view(2, 5, 16))
    assert not torch.allclose(pq, q)


def test_canvas_and_mask_token_come_from_the_config(dg):
    adapter = get_adapter(dg)
    assert adapter.canvas_length(dg) == DG_CANVAS
    assert adapter.canvas_length(tiny_diffusion_gemma(canvas_length=4, randomize=False)) == 4
    assert adapter.vocab_size(dg) == DG_VOCAB
    with pytest.raises(MissingMaskTokenError, match="uniformly from the vocabulary"):
        adapter.mask_token_id(dg)


def test_windows_split_into_context_and_canvas(dg):
    adapter = get_adapter(dg)
    ids = text_ids(2, 20)
    context, canvas = adapter.split_window(dg, ids)
    assert torch.equal(torch.cat([context, canvas], dim=1), ids) and canvas.shape == (2, DG_CANVAS)
    with pytest.raises(ValueError, match="seq > canvas_length=8"):
        adapter.split_window(dg, text_ids(2, DG_CANVAS))


def test_image_tokens_are_refused_naming_what_is_supported(dg):
    adapter = get_adapter(dg)
    ids = text_ids(2, 12)
    adapter.check_text_ids(dg, ids)
    ids[0, 3] = DG_IMAGE_TOKEN
    with pytest.raises(ValueError, match=r"calibration holds image tokens \(image_token_id: 1\).*text-only"):
        adapter.check_text_ids(dg, ids, argument="calibration")


def test_denoiser_logits_match_the_models_forward(dg):
    adapter = get_adapter(dg)
    ctx, canvas = text_ids(2, 10), text_ids(2, DG_CANVAS, seed=3)
    with torch.no_grad():
        expected = dg(input_ids=ctx, decoder_input_ids=canvas).logits
        got = adapter.denoiser_logits(dg, ctx, canvas)
        cache = adapter.encode_context(dg, ctx)
        again = adapter.denoiser_logits(dg, None, canvas, cache=cache)
        twice = adapter.denoiser_logits(dg, None, canvas, cache=cache)  # the decoder never writes the cache
    assert torch.allclose(got, expected) and torch.allclose(again, expected) and torch.allclose(twice, expected)
    with pytest.raises(NotImplementedError, match="denoiser_logits"):
        adapter.logits(dg, ctx)


def test_the_structured_methods_are_supported_with_each_layer_kinds_head_layout(dg):
    # the methods themselves: tests/test_diffusion_gemma_structured_methods.py
    adapter = get_adapter(dg)
    adapter.check_structured_support(dg)
    assert [adapter.layer_head_geometry(dg, i) for i in range(2)] == [(4, 2, 8), (4, 1, 16)]


def test_config_of_fixture_is_reproducible():
    a, b = tiny_diffusion_gemma(seed=3), tiny_diffusion_gemma(seed=3)
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and torch.equal(pa, pb)
    assert tiny_diffusion_gemma_config().text_config.num_experts == 4
