# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""MMaDA's language backbone: a scaled-down MMaDA-8B-style config.json loads without remote code, keeps its multimodal
keys, sizes the embedding to the extended (text + image-token) vocabulary, and computes LLaDA's math."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from optimum_sinkprune.adapters import LLaDAAdapter, get_adapter
from optimum_sinkprune.diffusion import elbo_log_likelihood, generate
from optimum_sinkprune.models import LLaDAConfig, LLaDAModelLM, MMaDAConfig, MMaDAModelLM

# LLaDA-8B keys (scaled as in test_llada_model) plus MMaDA's multimodal ones, scaled the same way: a text vocabulary
# of 120 (126464 in MMaDA-8B), a codebook of 40 image codes (8192), so new_vocab_size = vocab_size = 160 (134656)
# while embedding_size still holds the text value, as a `resize_token_embeddings` to new_vocab_size leaves it.
MMADA_CONFIG = {
    "activation_type": "silu",
    "alibi": False,
    "alibi_bias_max": 8.0,
    "architectures": ["MMadaModelLM"],
    "attention_dropout": 0.0,
    "attention_layer_norm": False,
    "attention_layer_norm_with_affine": True,
    "auto_map": {
        "AutoConfig": "configuration_llada.LLaDAConfig",
        "AutoModel": "modeling_mmada.MMadaModelLM",
        "AutoModelForCausalLM": "modeling_mmada.MMadaModelLM",
    },
    "bias_for_layer_norm": False,
    "block_group_size": 1,
    "block_type": "llama",
    "codebook_size": 40,
    "d_model": 64,
    "embedding_dropout": 0.0,
    "embedding_size": 120,
    "eos_token_id": 110,
    "flash_attention": False,
    "gradient_checkpointing": True,
    "include_bias": False,
    "include_qkv_bias": False,
    "init_cutoff_factor": None,
    "init_device": "meta",
    "init_fn": "mitchell",
    "init_std": 0.02,
    "input_emb_norm": False,
    "layer_norm_type": "rms",
    "layer_norm_with_affine": True,
    "llm_vocab_size": 120,
    "mask_token_id": 115,
    "max_sequence_length": 4096,
    "mlp_hidden_size": 96,
    "mlp_ratio": 4,
    "model_type": "mmada",
    "multi_query_attention": None,
    "n_heads": 4,
    "n_kv_heads": 4,
    "n_layers": 2,
    "new_vocab_size": 160,
    "num_new_special_tokens": 0,
    "num_vq_tokens": 16,
    "pad_token_id": 110,
    "precision": "amp_bf16",
    "pretrained_model_path": "GSAI-ML/LLaDA-8B-Instruct",
    "residual_dropout": 0.0,
    "rms_norm_eps": 1e-05,
    "rope": True,
    "rope_full_precision": True,
    "rope_theta": 500000.0,
    "scale_logits": False,
    "tie_word_embeddings": False,
    "use_cache": False,
    "vocab_size": 160,
    "w_clip_vit": False,
    "weight_tying": False,
}


def _ids(seed, shape=(2, 10), high=160):
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def hub_mmada(tmp_path, randomize):
    """A Hub-style MMaDA folder (config.json whose auto_map names remote modules that are not there + weights)."""
    folder = tmp_path / "hub_mmada"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(MMADA_CONFIG, indent=2))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        written = MMaDAModelLM(MMaDAConfig.from_pretrained(folder)).eval()
    randomize(written, seed=21)
    save_file({k: v.contiguous() for k, v in written.state_dict().items()}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    return folder, written


def test_config_loads_without_remote_code_and_keeps_multimodal_keys(hub_mmada, tmp_path):
    folder, _ = hub_mmada
    config = AutoConfig.from_pretrained(folder)
    assert type(config) is MMaDAConfig and isinstance(config, LLaDAConfig)
    for key in ("llm_vocab_size", "codebook_size", "num_vq_tokens", "num_new_special_tokens", "new_vocab_size",
                "w_clip_vit", "pretrained_model_path", "gradient_checkpointing", "alibi", "init_fn", "precision"):
        assert getattr(config, key) == MMADA_CONFIG[key], key
    assert config.embedding_rows == 160
    config.save_pretrained(tmp_path / "resaved")
    resaved = json.loads((tmp_path / "resaved" / "config.json").read_text())
    for key, value in MMADA_CONFIG.items():
        if key not in ("auto_map", "tie_word_embeddings"):
            assert resaved[key] == value, key


def test_state_dict_uses_llada_names_with_extended_vocabulary(hub_mmada):
    _, model = hub_mmada
    sd = model.state_dict()
    llada_config = LLaDAConfig(**{k: v for k, v in MMADA_CONFIG.items() if k != "model_type"})
    llada_keys = set(LLaDAModelLM(llada_config).state_dict())
    assert set(sd) == llada_keys
    assert sd["model.transformer.wte.weight"].shape == (160, 64)
    assert sd["model.transformer.ff_out.weight"].shape == (160, 64)


@pytest.mark.parametrize("auto_cls", [AutoModel, AutoModelForCausalLM])
def test_checkpoint_loads_and_computes_llada_math(hub_mmada, auto_cls):
    folder, written = hub_mmada
    model = auto_cls.from_pretrained(folder).eval()
    assert type(model) is MMaDAModelLM
    # the same weights in a plain LLaDA whose tables have the extended size give the same logits (LLaDA's forward is
    # checked against the reference math in test_llada_model)
    plain = LLaDAModelLM(LLaDAConfig(**{**{k: v for k, v in MMADA_CONFIG.items() if k != "model_type"},
                                        "embedding_size": 160})).eval()
    plain.load_state_dict(written.state_dict())
    ids = _ids(0)
    with torch.no_grad():
        logits = model(ids).logits
        torch.testing.assert_close(logits, plain(ids).logits, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(logits, written(ids).logits, atol=1e-6, rtol=1e-6)
    assert logits.shape == (2, 10, 160)  # image-token ids get logits too


def test_embedding_rows_cover_the_largest_vocabulary_key():
    base = dict(d_model=32, n_heads=2, n_layers=1, mlp_hidden_size=48, max_sequence_length=32)
    assert MMaDAConfig(vocab_size=100, embedding_size=100, **base).embedding_rows == 100
    assert MMaDAConfig(vocab_size=100, embedding_size=128, **base).embedding_rows == 128
    assert MMaDAConfig(vocab_size=100, embedding_size=100, new_vocab_size=140, **base).embedding_rows == 140
    model = MMaDAModelLM(MMaDAConfig(vocab_size=100, embedding_size=100, new_vocab_size=140, weight_tying=True, **base))
    assert model.model.transformer.wte.num_embeddings == 140 and "ff_out" not in model.model.transformer
    assert set(model.state_dict()) == {
        "model.transformer.wte.weight", "model.transformer.ln_f.weight",
        *(f"model.transformer.blocks.0.{n}.weight" for n in ("attn_norm", "ff_norm", "q_proj", "k_proj", "v_proj",
                                                             "attn_out", "ff_proj", "up_proj", "ff_out")),
    }


def test_attention_bias_matches_padding_mask(hub_mmada):
    _, model = hub_mmada
    ids = _ids(1)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    keep = mask.bool()
    bias = (keep[:, :, None] & keep[:, None, :]).unsqueeze(1)  # MMaDA's own construction
    with torch.no_grad():
        by_mask = model(ids, attention_mask=mask).logits
        by_bias = model(ids, attention_bias=bias).logits
    # rows of real tokens agree (MMaDA's bias additionally blanks the padded queries' rows)
    torch.testing.assert_close(by_bias[1, :7], by_mask[1, :7], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(by_bias[0], by_mask[0], atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="attention_bias"):
        model(ids, attention_mask=mask, attention_bias=bias)


def test_text_backbone_works_with_the_llada_adapter_and_diffusion(hub_mmada):
    _, model = hub_mmada
    adapter = get_adapter(model)
    assert isinstance(adapter, LLaDAAdapter)
    assert adapter.mask_token_id(model) == 115 and adapter.num_heads(model, 0) == 4 and adapter.head_dim(model) == 16
    assert len(adapter.linear_layers(model)) == 2 * 7
    prompt = _ids(2, (1, 3), high=110)
    out = generate(model, prompt, steps=4, gen_length=4, block_length=4)
    assert not (out.sequences == 115).any()
    result = elbo_log_likelihood(model, _ids(3, (2, 8), high=110), mc_num=2, seed=0)
    assert result.nll_per_token > 0


def test_saved_checkpoint_points_auto_map_to_our_code(hub_mmada, tmp_path):
    folder, _ = hub_mmada
    model = AutoModel.from_pretrained(folder)
    model.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert saved["auto_map"]["AutoModel"] == "modeling_mmada.MMaDAModelLM"
    assert saved["auto_map"]["AutoConfig"] == "configuration_mmada.MMaDAConfig"
    assert (tmp_path / "saved" / "modeling_mmada.py").exists()
    reloaded = AutoModel.from_pretrained(tmp_path / "saved").eval()
    ids = _ids(4)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, model.eval()(ids).logits, atol=0, rtol=0)
