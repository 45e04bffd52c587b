# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The assets shipped in the package: text splits, tokenizer, tiny default models."""

import json
import os

import pytest
import torch

import optimum_sinkprune  # noqa: F401  (registers LLaDA with the Auto classes)
from optimum_sinkprune import assets
from optimum_sinkprune.assets import (
    default_ar_model_path,
    default_model_path,
    load_calibration_texts,
    load_heldout_texts,
)


def _ids(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["id"] for line in f if line.strip()]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(default_model_path())


def test_heldout_and_calibration_load():
    held = load_heldout_texts()
    calib = load_calibration_texts()
    assert len(held) >= 20 and all(isinstance(t, str) and t for t in held)
    assert len(calib) == 512
    lengths = [len(t) for t in calib]
    assert 400 <= sum(lengths) / len(lengths) <= 700
    assert load_heldout_texts(limit=3) == held[:3]
    assert len(load_calibration_texts(limit=5)) == 5
    assert os.path.getsize(assets.HELDOUT_FILE) < 300_000


@pytest.mark.parametrize("bad", [0, -1, 1.5, "3", True])
def test_bad_limit_raises(bad):
    with pytest.raises(ValueError, match="limit"):
        load_heldout_texts(limit=bad)


def test_splits_do_not_overlap():
    held_ids = set(_ids(assets.HELDOUT_FILE))
    calib_ids = set(_ids(assets.CALIBRATION_FILE))
    assert held_ids and calib_ids
    assert not held_ids & calib_ids
    held_text = "\n".join(load_heldout_texts())
    # no calibration passage is copied from a held-out document
    assert not any(p[:200] in held_text for p in load_calibration_texts())


def test_special_tokens(tokenizer):
    assert len(tokenizer) == 4096
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.mask_token_id) == (
        0,
        1,
        2,
        3,
    )
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3]) == ["[PAD]", "[BOS]", "[EOS]", "[MASK]"]


def test_tokenizer_round_trip(tokenizer):
    for text in [
        "HAMLET: To be, or not to be: that is the question.\nAnd God said, Let there be light: and there was light.",
        "Unseen wörds — with ünïcode & digits 12345!",
        load_heldout_texts(limit=1)[0][:500],
    ]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert max(ids) < 4096
        assert tokenizer.decode(ids) == text
    # common words are single tokens with the byte-level space marker, decoded back to readable text
    assert tokenizer.decode(tokenizer(" the Lord", add_special_tokens=False)["input_ids"]) == " the Lord"


def test_default_dlm_loads_and_runs(tokenizer):
    from transformers import AutoModel

    path = default_model_path()
    model = AutoModel.from_pretrained(path).eval()
    assert type(model).__name__ == "LLaDAModelLM"
    assert model.config.mask_token_id == 3 and model.config.vocab_size == 4096
    ids = tokenizer("And God said, Let there be light", add_special_tokens=False)["input_ids"]
    x = torch.tensor([[tokenizer.bos_token_id] + ids + [tokenizer.mask_token_id] * 4])
    with torch.no_grad():
        logits = model(input_ids=x).logits
    assert logits.shape == (1, x.shape[1], 4096)
    assert torch.isfinite(logits.float()).all()
    sampler = json.loads(open(os.path.join(path, "sampler_config.json")).read())
    assert sampler["steps"] == 64 and sampler["remasking"] == "low_confidence"


def test_default_ar_loads_and_runs():
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(default_ar_model_path()).eval()
    assert type(model).__name__ == "LlamaForCausalLM"
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[1, 100, 200, 300]])).logits
    assert logits.shape == (1, 4, 4096) and torch.isfinite(logits.float()).all()


@pytest.mark.parametrize("path_fn", [default_model_path, default_ar_model_path])
def test_model_folders_are_small_and_bf16(path_fn):
    path = path_fn()
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    assert size < 20 * 1024 * 1024
    assert json.loads(open(os.path.join(path, "config.json")).read()).get("dtype") == "bfloat16"


def test_missing_assets_raise_clear_errors(monkeypatch, tmp_path):
    monkeypatch.setattr(assets, "DEFAULT_MODEL_DIR", str(tmp_path))
    monkeypatch.setattr(assets, "HELDOUT_FILE", str(tmp_path / "heldout.jsonl"))
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        assets.default_model_path()
    with pytest.raises(FileNotFoundError, match="held-out"):
        assets.load_heldout_texts()


def test_embedded_names_resolve_to_their_folders():
    assert assets.embedded_model_path("tiny-llada") == default_model_path()
    assert assets.embedded_model_path("tiny-llama-ar") == default_ar_model_path()
    assert os.path.basename(assets.embedded_model_path("tiny-minilm-dlm")) == "tiny-minilm-dlm"
    with pytest.raises(ValueError, match="tiny-minilm-dlm"):
        assets.embedded_model_path("tiny-nothing")


def test_minilm_dlm_loads_framed_and_tied():
    from optimum_sinkprune.hub.load import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer("tiny-minilm-dlm", dtype="float32")
    assert type(model).__name__ == "BertForMaskedLM"
    cfg = model.config
    assert (cfg.mask_token_id, cfg.cls_token_id, cfg.sep_token_id) == (
        tokenizer.mask_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id)
    # the MLM decoder is the word embedding matrix (tied), as trained
    assert model.cls.predictions.decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()
    text = "And God said, Let there be light: and there was light."
    ids = tokenizer(text, return_tensors="pt")["input_ids"]  # [CLS] ... [SEP]
    masked = ids.clone()
    masked[0, 3] = cfg.mask_token_id
    with torch.no_grad():
        logits = model(input_ids=masked).logits
    assert logits.shape == (1, ids.shape[1], cfg.vocab_size) and torch.isfinite(logits).all()


def test_minilm_dlm_folder_is_bf16_and_credits_its_base_model():
    path = assets.embedded_model_path("tiny-minilm-dlm")
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    assert size < 50 * 1024 * 1024
    assert json.loads(open(os.path.join(path, "config.json")).read()).get("dtype") == "bfloat16"
    card = open(os.path.join(path, "README.md"), encoding="utf-8").read()
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in card
    assert "license: apache-2.0" in card and "Apache-2.0" in card
    state = json.loads(open(os.path.join(path, "training_state.json")).read())
    assert state["base_model"] == "sentence-transformers/all-MiniLM-L6-v2" and state["step"] > 0
