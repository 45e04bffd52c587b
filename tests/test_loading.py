# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The native-class reload patch (`optimum_sinkprune.models.pruned_loading`): pruned Llama / Qwen2 checkpoints load at
their pruned shapes through every entry point, unpruned ones are untouched, and other models keep recording hidden
states."""

import copy

import pytest
import torch
from torch import nn
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)
from transformers.models.llama import modeling_llama

from optimum_sinkprune.models.pruned_loading import (
    pruned_layer_shape,
    register_pruned_loading,
    resize_native_layer,
)


@pytest.fixture(autouse=True)
def _registered():
    register_pruned_loading()
    register_pruned_loading()  # idempotent


def _random(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) / (p.shape[-1] ** 0.5 if p.dim() == 2 else 1) + (p.dim() == 1))
    return model.eval()


def _llama(**kw):
    cfg = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=4, intermediate_size=96,
               num_hidden_layers=3, vocab_size=128, max_position_embeddings=128)
    cfg.update(kw)
    return _random(LlamaForCausalLM(LlamaConfig(**cfg)))


def _qwen2(**kw):
    cfg = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=96,
               num_hidden_layers=3, vocab_size=128, max_position_embeddings=128)
    cfg.update(kw)
    return _random(Qwen2ForCausalLM(Qwen2Config(**cfg)))


def _slice_by_hand(model, layer, keep_heads, keep_kv, keep_channels):
    """Independent pruning: slice the native modules directly and write the config keys by hand."""
    block = model.model.layers[layer]
    attn, mlp = block.self_attn, block.mlp
    hd = attn.head_dim

    def rows(heads):
        return torch.cat([torch.arange(h * hd, (h + 1) * hd) for h in heads])

    def cut(linear, r=None, c=None):
        w = linear.weight.data
        b = linear.bias.data if linear.bias is not None else None
        if r is not None:
            w, b = w[r], (b[r] if b is not None else None)
        if c is not None:
            w = w[:, c]
        new = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
        new.weight.data, new.bias = w.clone(), (nn.Parameter(b.clone()) if b is not None else None)
        return new

    q, kv = rows(keep_heads), rows(keep_kv)
    attn.q_proj, attn.k_proj, attn.v_proj = cut(attn.q_proj, q), cut(attn.k_proj, kv), cut(attn.v_proj, kv)
    attn.o_proj = cut(attn.o_proj, c=q)
    ch = torch.tensor(keep_channels)
    mlp.gate_proj, mlp.up_proj, mlp.down_proj = cut(mlp.gate_proj, ch), cut(mlp.up_proj, ch), cut(mlp.down_proj, c=ch)


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_native_pruned_checkpoint_reloads(kind, tmp_path):
    model = _llama() if kind == "llama" else _qwen2()
    # llama (MHA): drop heads 1, 3 of layer 1; qwen2 (GQA, groups of 2): drop kv group 1 = heads 2, 3
    dropped = [1, 3] if kind == "llama" else [2, 3]
    keep = [h for h in range(4) if h not in dropped]
    keep_kv = keep if kind == "llama" else [0]
    _slice_by_hand(model, 1, keep, keep_kv, list(range(0, 96, 2)))
    model.config.pruned_heads = {1: dropped}
    model.config.intermediate_sizes = [96, 48, 96]
    ids = torch.randint(0, 128, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(ids).logits
    model.save_pretrained(tmp_path)
    cls = type(model)
    for loader in (AutoModelForCausalLM.from_pretrained, cls.from_pretrained):
        loaded = loader(tmp_path)
        assert type(loaded) is cls
        assert loaded.model.layers[1].self_attn.q_proj.out_features == 32
        assert loaded.model.layers[1].mlp.down_proj.in_features == 48
        assert loaded.model.layers[0].mlp.down_proj.in_features == 96
        with torch.no_grad():
            torch.testing.assert_close(loaded(ids).logits, expected, atol=0, rtol=0)
    trunk = AutoModel.from_pretrained(tmp_path)
    assert trunk.layers[1].self_attn.k_proj.out_features == len(keep_kv) * 16
    assert isinstance(trunk.layers[1], modeling_llama.LlamaDecoderLayer) == (kind == "llama")


def test_unpruned_loads_unchanged_and_recorders_still_work(tmp_path):
    model = _llama()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    ids = torch.randint(0, 128, (1, 7))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, atol=0, rtol=0)
    # transformers re-points the hidden-state recorders to the replacement class after a load; models built
    # directly (original layer class) must keep recording every layer.
    fresh = _llama()
    assert type(fresh.model.layers[0]).__module__ == modeling_llama.__name__  # built outside from_pretrained
    with torch.no_grad():
        out = fresh(ids, output_hidden_states=True)
    assert len(out.hidden_states) == 4
    with torch.no_grad():
        out = loaded(ids, output_hidden_states=True)
    assert len(out.hidden_states) == 4


def test_pruned_layer_shape_and_gqa_errors():
    cfg = Qwen2Config(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=96,
                      num_hidden_layers=2, vocab_size=128)
    cfg.pruned_heads = {"1": [0, 1]}
    cfg.intermediate_sizes = [96, 10]
    assert pruned_layer_shape(cfg, 1) == (2, 1, 10)
    assert pruned_layer_shape(cfg, 0) == (4, 2, 96)
    cfg.pruned_heads = {"1": [1, 2]}
    with pytest.raises(ValueError, match="whole kv groups"):
        pruned_layer_shape(cfg, 1)


def test_from_config_builds_pruned_shapes():
    cfg = LlamaConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=4, intermediate_size=96,
                      num_hidden_layers=2, vocab_size=128)
    cfg.pruned_heads = {0: [3]}
    model = AutoModelForCausalLM.from_config(copy.deepcopy(cfg))
    assert model.model.layers[0].self_attn.o_proj.in_features == 48
    assert model.model.layers[1].self_attn.o_proj.in_features == 64


def test_resize_native_layer_keeps_untouched_layers():
    model = _llama()
    before = model.model.layers[2].self_attn.q_proj
    resize_native_layer(model.model.layers[2], model.config, 2)
    assert model.model.layers[2].self_attn.q_proj is before


def test_loaded_pruned_model_pickles(tmp_path):
    import pickle

    model = _llama()
    _slice_by_hand(model, 0, [0, 1, 2], [0, 1, 2], list(range(96)))
    model.config.pruned_heads = {0: [3]}
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    clone = pickle.loads(pickle.dumps(loaded))
    ids = torch.randint(0, 128, (1, 5))
    with torch.no_grad():
        torch.testing.assert_close(clone(ids).logits, loaded(ids).logits, atol=0, rtol=0)


def test_unregister_and_register_again():
    from transformers.monkey_patching import get_patch_mapping

    from optimum_sinkprune.models.pruned_loading import unregister_pruned_loading

    try:
        unregister_pruned_loading()
        assert not [k for k, v in get_patch_mapping().items() if v.__module__ == "optimum_sinkprune.models.pruned_loading"]
        cfg = LlamaConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=4, intermediate_size=96,
                          num_hidden_layers=1, vocab_size=128)
        cfg.pruned_heads = {0: [3]}
        assert AutoModelForCausalLM.from_config(cfg).model.layers[0].self_attn.o_proj.in_features == 64
    finally:
        register_pruned_loading()
    assert sorted(k for k, v in get_patch_mapping().items() if v.__module__ == "optimum_sinkprune.models.pruned_loading") == [
        "^BertLayer$", "^DiffusionGemmaDecoderTextLayer$", "^DiffusionGemmaEncoderTextLayer$", "^LlamaDecoderLayer$",
        "^ModernBertEncoderLayer$", "^Qwen2DecoderLayer$", "^RobertaLayer$"]
