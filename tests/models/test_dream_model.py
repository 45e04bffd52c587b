# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Dream: Qwen2-layout Hub weight names, Dream-7B config.json compatibility, save/reload through the Auto classes, and
the forward pass against an independent reference of the Qwen2 math (biases on q/k/v, GQA, bidirectional)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from optimum_sinkprune.models import DreamConfig, DreamModel

# Dream-org/Dream-v0-Base-7B config.json with the size keys scaled down (hidden 3584 -> 56, 28 query heads -> 7,
# 4 kv heads -> 1 ... keeps GQA with head_dim 8; layers 28 -> 2; vocab 152064 -> 160; mask id kept inside the vocab).
DREAM_7B_CONFIG = {
    "architectures": ["DreamModel"],
    "attention_dropout": 0.0,
    "auto_map": {
        "AutoConfig": "configuration_dream.DreamConfig",
        "AutoModel": "modeling_dream.DreamModel",
    },
    "bos_token_id": 151,
    "eos_token_id": 151,
    "hidden_act": "silu",
    "hidden_size": 56,
    "initializer_range": 0.02,
    "intermediate_size": 96,
    "mask_token_id": 153,
    "max_position_embeddings": 131072,
    "max_window_layers": 28,
    "model_type": "Dream",
    "num_attention_heads": 7,
    "num_hidden_layers": 2,
    "num_key_value_heads": 1,
    "pad_token_id": 151,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 1000000.0,
    "sliding_window": None,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.46.2",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 160,
}


def hub_state_dict_keys(n_layers: int) -> set[str]:
    keys = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}
    for i in range(n_layers):
        p = f"model.layers.{i}."
        keys |= {p + f"self_attn.{n}.weight" for n in ("q_proj", "k_proj", "v_proj", "o_proj")}
        keys |= {p + f"self_attn.{n}.bias" for n in ("q_proj", "k_proj", "v_proj")}
        keys |= {p + f"mlp.{n}.weight" for n in ("gate_proj", "up_proj", "down_proj")}
        keys |= {p + "input_layernorm.weight", p + "post_attention_layernorm.weight"}
    return keys


# ---- independent reference (Qwen2 math, bidirectional) ------------------------------------------------------------
def _rms(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def _rotary(x, theta):
    d, s = x.shape[-1], x.shape[-2]
    inv = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    ang = torch.arange(s, dtype=torch.float64)[:, None] * inv[None]
    cos, sin = ang.cos(), ang.sin()
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def dream_reference_logits(sd: dict, config: DreamConfig, ids: torch.Tensor, key_mask=None) -> torch.Tensor:
    sd = {k: v.to(torch.float64) for k, v in sd.items()}
    b, s = ids.shape
    hd = config.hidden_size // config.num_attention_heads
    group = config.num_attention_heads // config.num_key_value_heads
    x = sd["model.embed_tokens.weight"][ids]
    for i in range(config.num_hidden_layers):
        p = f"model.layers.{i}."
        lin = lambda n, t: t @ sd[p + n + ".weight"].T + sd.get(p + n + ".bias", 0.0)  # noqa: E731
        heads = lambda t: t.view(b, s, -1, hd).transpose(1, 2)  # noqa: E731
        h = _rms(x, sd[p + "input_layernorm.weight"], config.rms_norm_eps)
        q = _rotary(heads(lin("self_attn.q_proj", h)), config.rope_theta)
        k = _rotary(heads(lin("self_attn.k_proj", h)), config.rope_theta).repeat_interleave(group, 1)
        v = heads(lin("self_attn.v_proj", h)).repeat_interleave(group, 1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask[:, None, None, :].bool(), float("-inf"))
        att = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, -1)
        x = x + lin("self_attn.o_proj", att)
        h = _rms(x, sd[p + "post_attention_layernorm.weight"], config.rms_norm_eps)
        g = lin("mlp.gate_proj", h)
        x = x + lin("mlp.down_proj", g * torch.sigmoid(g) * lin("mlp.up_proj", h))
    x = _rms(x, sd["model.norm.weight"], config.rms_norm_eps)
    return x @ sd["lm_head.weight"].T


def _ids(seed, shape=(2, 12), high=127):
    return torch.randint(2, high, shape, generator=torch.Generator().manual_seed(seed))


def test_state_dict_keys_are_exactly_the_hub_names(tiny_dream):
    assert set(tiny_dream.state_dict()) == hub_state_dict_keys(2)


def test_gqa_shapes(tiny_dream):
    attn = tiny_dream.model.layers[0].self_attn
    assert attn.q_proj.out_features == 4 * 16 and attn.k_proj.out_features == 2 * 16
    assert attn.q_proj.bias is not None and attn.o_proj.bias is None


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_forward_matches_reference_math(tiny_dream, randomize, impl):
    model = randomize(tiny_dream, seed=11)
    model.config._attn_implementation = impl
    ids = _ids(0)
    with torch.no_grad():
        ours = model(ids).logits
    ref = dream_reference_logits(model.state_dict(), model.config, ids)
    assert ref.abs().max() > 1.0
    torch.testing.assert_close(ours.double(), ref, atol=2e-4, rtol=1e-4)


def test_eager_and_sdpa_agree(tiny_dream, randomize):
    model = randomize(tiny_dream, seed=12)
    ids = _ids(1)
    mask = torch.ones_like(ids)
    mask[0, 7:] = 0
    out = {}
    for impl in ("eager", "sdpa"):
        model.config._attn_implementation = impl
        with torch.no_grad():
            out[impl] = (model(ids).logits, model(ids, attention_mask=mask).logits)
    torch.testing.assert_close(out["eager"][0], out["sdpa"][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["eager"][1], out["sdpa"][1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_padding_mask_excludes_padded_keys(tiny_dream, randomize, impl):
    model = randomize(tiny_dream, seed=13)
    model.config._attn_implementation = impl
    ids = _ids(2)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    with torch.no_grad():
        full = model(ids, attention_mask=mask).logits
        alone = model(ids[1:, :6]).logits
    torch.testing.assert_close(full[1, :6], alone[0], atol=1e-5, rtol=1e-5)
    ref = dream_reference_logits(model.state_dict(), model.config, ids, key_mask=mask)
    torch.testing.assert_close(full.double(), ref, atol=2e-4, rtol=1e-4)


def test_raw_logits_are_not_shifted(tiny_dream, randomize):
    """The model returns raw logits like the Hub code; the shift belongs to the adapter (tests/adapters)."""
    model = randomize(tiny_dream, seed=14)
    ids = _ids(3, (1, 6))
    with torch.no_grad():
        logits = model(ids).logits
    ref = dream_reference_logits(model.state_dict(), model.config, ids)
    torch.testing.assert_close(logits[0, 0].double(), ref[0, 0], atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("auto_cls", [AutoModel, AutoModelForCausalLM])
@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_save_reload_identical_logits(tiny_dream, randomize, tmp_path, auto_cls, impl):
    model = randomize(tiny_dream, seed=15)
    ids = _ids(4)
    with torch.no_grad():
        before = model(ids).logits
    model.save_pretrained(tmp_path)
    reloaded = auto_cls.from_pretrained(tmp_path, attn_implementation=impl).eval()
    assert type(reloaded) is DreamModel
    with torch.no_grad():
        after = reloaded(ids).logits
    torch.testing.assert_close(before, after, atol=1e-5, rtol=1e-5)
    for key, value in model.state_dict().items():
        assert torch.equal(value, reloaded.state_dict()[key]), key


def test_hub_config_loads_without_trust_remote_code(tmp_path):
    folder = tmp_path / "hub_dream"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(DREAM_7B_CONFIG))
    config = AutoConfig.from_pretrained(folder)
    assert type(config) is DreamConfig
    assert (config.num_attention_heads, config.num_key_value_heads, config.head_dim) == (7, 1, 8)
    assert config.mask_token_id == 153 and config.rope_theta == 1000000.0
    assert config.max_window_layers == 28 and config.use_sliding_window is False
    from safetensors.torch import save_file

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(16)
        written = DreamModel(config).eval()
    save_file({k: v.contiguous() for k, v in written.state_dict().items()}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
    assert type(model) is DreamModel
    ids = _ids(5, high=160)
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, written(ids).logits, atol=1e-5, rtol=1e-5)
    config.save_pretrained(tmp_path / "resaved")
    resaved = json.loads((tmp_path / "resaved" / "config.json").read_text())
    for key, value in DREAM_7B_CONFIG.items():
        if key in ("transformers_version", "auto_map", "torch_dtype", "use_cache"):
            continue
        assert resaved.get(key) == value, key  # rope_scaling: null may be omitted


def test_too_long_input_is_rejected(tiny_dream):
    with pytest.raises(ValueError, match="max_position_embeddings"):
        tiny_dream(torch.zeros(1, 257, dtype=torch.long))


def test_resized_vocabulary_saves_and_reloads(tiny_dream, tmp_path):
    tiny_dream.resize_token_embeddings(136, mean_resizing=False)
    assert tiny_dream.lm_head.out_features == 136 and tiny_dream.config.vocab_size == 136
    tiny_dream.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    ids = _ids(6)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, tiny_dream(ids).logits, atol=0, rtol=0)
