# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""LLaDA: Hub weight names, Hub config.json compatibility, save/reload through the Auto classes, and the forward pass
against an independent reference written from the LLaDA math (our stand-in for "same logits as the Hub code")."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM

from optimum_sinkprune.models import LLaDAConfig, LLaDAModelLM

# GSAI-ML/LLaDA-8B-Base config.json, every key and value as published, except the size keys that are scaled down
# (d_model 4096 -> 64, heads 32 -> 4, layers 32 -> 2, mlp 12288 -> 96, vocab/embedding 126464 -> 160 with the mask
# id kept inside it). Keys our class does not declare (alibi, init_fn, precision, ...) must survive a round trip.
LLADA_8B_BASE_CONFIG = {
    "activation_type": "silu",
    "alibi": False,
    "alibi_bias_max": 8.0,
    "architectures": ["LLaDAModelLM"],
    "attention_dropout": 0.0,
    "attention_layer_norm": False,
    "attention_layer_norm_with_affine": True,
    "auto_map": {
        "AutoConfig": "configuration_llada.LLaDAConfig",
        "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
        "AutoModel": "modeling_llada.LLaDAModelLM",
    },
    "bias_for_layer_norm": False,
    "block_group_size": 1,
    "block_type": "llama",
    "d_model": 64,
    "embedding_dropout": 0.0,
    "embedding_size": 160,
    "eos_token_id": 126,
    "flash_attention": False,
    "include_bias": False,
    "include_qkv_bias": False,
    "init_cutoff_factor": None,
    "init_device": "meta",
    "init_fn": "mitchell",
    "init_std": 0.02,
    "input_emb_norm": False,
    "layer_norm_type": "rms",
    "layer_norm_with_affine": True,
    "mask_token_id": 150,
    "max_sequence_length": 4096,
    "mlp_hidden_size": 96,
    "mlp_ratio": 4,
    "model_type": "llada",
    "multi_query_attention": None,
    "n_heads": 4,
    "n_kv_heads": 4,
    "n_layers": 2,
    "pad_token_id": 126,
    "precision": "amp_bf16",
    "residual_dropout": 0.0,
    "rms_norm_eps": 1e-05,
    "rope": True,
    "rope_full_precision": True,
    "rope_theta": 500000.0,
    "scale_logits": False,
    "transformers_version": "4.46.3",
    "use_cache": False,
    "vocab_size": 160,
    "weight_tying": False,
}
UNKNOWN_KEYS = {
    "alibi": False,
    "alibi_bias_max": 8.0,
    "attention_dropout": 0.0,
    "attention_layer_norm_with_affine": True,
    "bias_for_layer_norm": False,
    "block_group_size": 1,
    "embedding_dropout": 0.0,
    "flash_attention": False,
    "init_cutoff_factor": None,
    "init_device": "meta",
    "init_fn": "mitchell",
    "layer_norm_with_affine": True,
    "multi_query_attention": None,
    "precision": "amp_bf16",
    "residual_dropout": 0.0,
}


def hub_state_dict_keys(n_layers: int, weight_tying: bool = False) -> set[str]:
    keys = {"model.transformer.wte.weight", "model.transformer.ln_f.weight"}
    if not weight_tying:
        keys.add("model.transformer.ff_out.weight")
    for i in range(n_layers):
        for name in ("attn_norm", "ff_norm", "q_proj", "k_proj", "v_proj", "attn_out", "ff_proj", "up_proj", "ff_out"):
            keys.add(f"model.transformer.blocks.{i}.{name}.weight")
    return keys


# ---- independent reference forward (written from the LLaDA math, reads weights by their Hub names) ----------------
def ref_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * weight


def ref_rotary(x: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotate-half rotary on x [b, h, s, d]: pairs (i, i + d/2) rotated by angle pos * theta^(-2i/d)."""
    d, s = x.shape[-1], x.shape[-2]
    inv = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    ang = torch.arange(s, dtype=torch.float64)[:, None] * inv[None]  # [s, d/2]
    cos, sin = ang.cos(), ang.sin()
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def ref_attention(q, k, v, key_mask=None):
    """Bidirectional softmax attention; k/v may have fewer heads (each serves a contiguous group of q heads)."""
    group = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask[:, None, None, :].bool(), float("-inf"))
    return scores.softmax(-1) @ v


def llada_reference_logits(sd: dict, config: LLaDAConfig, ids: torch.Tensor, key_mask=None) -> torch.Tensor:
    sd = {k: v.to(torch.float64) for k, v in sd.items()}
    p = "model.transformer."
    b, s = ids.shape
    hd = config.d_model // config.n_heads
    x = sd[p + "wte.weight"][ids]
    for i in range(config.n_layers):
        w = lambda n: sd[f"{p}blocks.{i}.{n}.weight"]  # noqa: E731
        h = ref_rms_norm(x, w("attn_norm"), config.rms_norm_eps)
        heads = lambda t: t.view(b, s, -1, hd).transpose(1, 2)  # noqa: E731
        q = ref_rotary(heads(h @ w("q_proj").T), config.rope_theta)
        k = ref_rotary(heads(h @ w("k_proj").T), config.rope_theta)
        v = heads(h @ w("v_proj").T)
        att = ref_attention(q, k, v, key_mask).transpose(1, 2).reshape(b, s, -1)
        x = x + att @ w("attn_out").T
        h = ref_rms_norm(x, w("ff_norm"), config.rms_norm_eps)
        gate = h @ w("ff_proj").T
        x = x + (gate * torch.sigmoid(gate) * (h @ w("up_proj").T)) @ w("ff_out").T
    x = ref_rms_norm(x, sd[p + "ln_f.weight"], config.rms_norm_eps)
    head = sd[p + "wte.weight"] if config.weight_tying else sd[p + "ff_out.weight"]
    return x @ head.T


def _ids(seed: int, shape=(2, 12), high=127) -> torch.Tensor:
    return torch.randint(2, high, shape, generator=torch.Generator().manual_seed(seed))


# ---- tests ------------------------------------------------------------------------------------------------------
def test_state_dict_keys_are_exactly_the_hub_names(tiny_llada):
    assert set(tiny_llada.state_dict()) == hub_state_dict_keys(2)


def test_state_dict_keys_with_weight_tying(tiny_configs):
    model = LLaDAModelLM(tiny_configs.llada(weight_tying=True))
    assert set(model.state_dict()) == hub_state_dict_keys(2, weight_tying=True)


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_forward_matches_reference_math(tiny_llada, randomize, impl):
    model = randomize(tiny_llada, seed=3)
    model.config._attn_implementation = impl
    ids = _ids(0)
    with torch.no_grad():
        ours = model(ids).logits
    ref = llada_reference_logits(model.state_dict(), model.config, ids)
    assert ours.shape == (2, 12, 128)
    assert ref.abs().max() > 1.0  # the weights really are O(1): a wrong norm / rotary would show
    torch.testing.assert_close(ours.double(), ref, atol=2e-4, rtol=1e-4)


def test_forward_matches_reference_with_gqa_and_tying(tiny_configs, randomize):
    config = tiny_configs.llada(n_kv_heads=2, weight_tying=True)
    model = randomize(LLaDAModelLM(config).eval(), seed=4)
    ids = _ids(1)
    with torch.no_grad():
        ours = model(ids).logits
    ref = llada_reference_logits(model.state_dict(), config, ids)
    torch.testing.assert_close(ours.double(), ref, atol=2e-4, rtol=1e-4)


def test_attention_is_bidirectional(tiny_llada, randomize):
    model = randomize(tiny_llada, seed=5)
    ids = _ids(2, (1, 10))
    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] + 1) % 120 + 2
    with torch.no_grad():
        a, b = model(ids).logits, model(changed).logits
    # a causal model would leave position 0 unchanged; LLaDA sees the last token from everywhere
    assert (a[0, 0] - b[0, 0]).abs().max() > 1e-3


def test_eager_and_sdpa_agree(tiny_llada, randomize):
    model = randomize(tiny_llada, seed=6)
    ids = _ids(3)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    out = {}
    for impl in ("eager", "sdpa"):
        model.config._attn_implementation = impl
        with torch.no_grad():
            out[impl] = (model(ids).logits, model(ids, attention_mask=mask).logits)
    torch.testing.assert_close(out["eager"][0], out["sdpa"][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["eager"][1], out["sdpa"][1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_padding_mask_excludes_padded_keys(tiny_llada, randomize, impl):
    model = randomize(tiny_llada, seed=7)
    model.config._attn_implementation = impl
    ids = _ids(4, (2, 12))
    mask = torch.ones_like(ids)
    mask[0, 9:] = 0
    other = ids.clone()
    other[0, 9:] = 5  # different tokens at the padded positions
    with torch.no_grad():
        full = model(ids, attention_mask=mask).logits
        swapped = model(other, attention_mask=mask).logits
        alone = model(ids[:1, :9]).logits
    # padded keys are invisible: the real tokens' outputs equal those of the unpadded sequence and ignore pad values
    torch.testing.assert_close(full[0, :9], alone[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(swapped[0, :9], full[0, :9], atol=1e-6, rtol=1e-6)
    ref = llada_reference_logits(model.state_dict(), model.config, ids, key_mask=mask)
    torch.testing.assert_close(full.double(), ref, atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("auto_cls", [AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM])
@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_save_reload_identical_logits(tiny_llada, randomize, tmp_path, auto_cls, impl):
    model = randomize(tiny_llada, seed=8)
    ids = _ids(5)
    with torch.no_grad():
        before = model(ids).logits
    model.save_pretrained(tmp_path)
    reloaded = auto_cls.from_pretrained(tmp_path, attn_implementation=impl).eval()
    assert type(reloaded) is LLaDAModelLM
    assert reloaded.config._attn_implementation == impl
    with torch.no_grad():
        after = reloaded(ids).logits
    if impl == "sdpa":
        assert torch.equal(before, after)  # same weights, same kernel
    torch.testing.assert_close(before, after, atol=1e-5, rtol=1e-5)
    for key, value in model.state_dict().items():
        assert torch.equal(value, reloaded.state_dict()[key]), key


def test_saved_config_uses_hub_keys(tiny_llada, tmp_path):
    tiny_llada.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "llada"
    assert saved["architectures"] == ["LLaDAModelLM"]
    for key in ("d_model", "n_heads", "n_kv_heads", "n_layers", "mlp_hidden_size", "mlp_ratio", "vocab_size",
                "embedding_size", "max_sequence_length", "rope", "rope_theta", "rope_full_precision",
                "layer_norm_type", "rms_norm_eps", "activation_type", "block_type", "include_bias",
                "include_qkv_bias", "weight_tying", "mask_token_id", "eos_token_id", "pad_token_id",
                "attention_layer_norm", "input_emb_norm", "scale_logits"):
        assert key in saved, key
    assert saved["mask_token_id"] == 127 and saved["weight_tying"] is False


def _write_hub_checkpoint(tmp_path, config: dict, seed: int = 0):
    """A Hub-style folder: config.json (with an auto_map pointing to remote modules that are NOT there) + weights."""
    folder = tmp_path / "hub_llada"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    from safetensors.torch import save_file

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LLaDAModelLM(LLaDAConfig.from_pretrained(folder))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    return folder, model


def test_hub_config_loads_without_trust_remote_code_and_keeps_unknown_keys(tmp_path):
    folder, _ = _write_hub_checkpoint(tmp_path, LLADA_8B_BASE_CONFIG)
    assert not (folder / "modeling_llada.py").exists()
    config = AutoConfig.from_pretrained(folder)
    assert type(config) is LLaDAConfig
    for key, value in UNKNOWN_KEYS.items():
        assert getattr(config, key) == value, key
    assert config.mask_token_id == 150 and config.rope_theta == 500000.0 and config.n_kv_heads == 4
    assert config.hidden_size == 64 and config.num_attention_heads == 4 and config.num_hidden_layers == 2
    # round trip: every published key is written back with its value
    config.save_pretrained(tmp_path / "resaved")
    resaved = json.loads((tmp_path / "resaved" / "config.json").read_text())
    for key, value in LLADA_8B_BASE_CONFIG.items():
        if key in ("transformers_version", "auto_map"):
            continue
        assert resaved[key] == value, key


def test_hub_checkpoint_loads_via_auto_model(tmp_path, randomize):
    folder, written = _write_hub_checkpoint(tmp_path, LLADA_8B_BASE_CONFIG, seed=9)
    for auto_cls in (AutoModel, AutoModelForCausalLM):
        model = auto_cls.from_pretrained(folder).eval()
        assert type(model) is LLaDAModelLM
        ids = _ids(6, high=160)
        with torch.no_grad():
            torch.testing.assert_close(model(ids).logits, written.eval()(ids).logits, atol=1e-5, rtol=1e-5)


def test_hub_config_defaults_match_llada_8b():
    config = LLaDAConfig()
    assert (config.d_model, config.n_heads, config.n_kv_heads, config.n_layers) == (4096, 32, 32, 32)
    assert LLaDAConfig(mlp_hidden_size=12288).effective_mlp_hidden_size == 12288
    assert LLaDAConfig(d_model=64, mlp_ratio=3).effective_mlp_hidden_size == 192  # no explicit width: ratio
    assert config.vocab_size == config.embedding_size == 126464
    assert config.rope_theta == 500000.0 and config.weight_tying is False and config.mask_token_id == 126336


def test_bfloat16_forward_close_to_float32(tiny_llada, randomize):
    model = randomize(tiny_llada, seed=10)
    ids = _ids(7)
    with torch.no_grad():
        ref = model(ids).logits
        low = copy.deepcopy(model).to(torch.bfloat16)(ids).logits
    assert low.dtype == torch.bfloat16
    assert (low.float() - ref).abs().max() < 0.25 * ref.abs().max()


def test_too_long_input_is_rejected(tiny_llada):
    with pytest.raises(ValueError, match="max_sequence_length"):
        tiny_llada(torch.zeros(1, 257, dtype=torch.long))


def test_unsupported_block_type_is_rejected(tiny_configs):
    with pytest.raises(ValueError, match="block_type"):
        LLaDAModelLM(tiny_configs.llada(block_type="sequential"))


def test_pruned_shapes_are_built_from_config(tiny_configs):
    config = tiny_configs.llada(pruned_heads={"0": [1, 3]}, mlp_hidden_sizes=[40, 96])
    model = LLaDAModelLM(config).eval()
    block0 = model.model.transformer.blocks[0]
    assert block0.q_proj.out_features == 2 * 16 and block0.attn_out.in_features == 32
    assert block0.ff_proj.out_features == 40 and block0.ff_out.in_features == 40
    assert model.config.pruned_heads == {0: [1, 3]}
    assert model(torch.ones(1, 5, dtype=torch.long)).logits.shape == (1, 5, 128)


@pytest.mark.parametrize("weight_tying", [False, True])
def test_resized_vocabulary_saves_and_reloads(tiny_configs, randomize, tmp_path, weight_tying):
    """`resize_token_embeddings` (e.g. adding tokens, as MMaDA did) keeps old logits and the checkpoint reloads."""
    model = randomize(LLaDAModelLM(tiny_configs.llada(weight_tying=weight_tying)).eval(), seed=12)
    ids = _ids(8)
    with torch.no_grad():
        before = model(ids).logits
    model.resize_token_embeddings(136, mean_resizing=False)
    assert model.config.vocab_size == model.config.embedding_size == 136
    with torch.no_grad():
        after = model(ids).logits
    assert after.shape[-1] == 136
    torch.testing.assert_close(after[..., :128], before)
    model.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, after, atol=0, rtol=0)


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_boolean_4d_mask_means_attend(tiny_llada, randomize, impl):
    """A prepared 4D boolean mask (True = attend, SDPA's convention) acts like the 2D padding mask in both paths."""
    model = randomize(tiny_llada, seed=13)
    model.config._attn_implementation = impl
    ids = _ids(9)
    mask = torch.ones_like(ids)
    mask[0, 8:] = 0
    four_d = mask.bool()[:, None, None, :].expand(-1, 1, ids.shape[1], -1)
    with torch.no_grad():
        torch.testing.assert_close(model(ids, attention_mask=four_d).logits, model(ids, attention_mask=mask).logits,
                                   atol=1e-6, rtol=1e-6)
