# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The one model loader (`optimum_sinkprune.hub.load`): embedded names, dtypes, eval mode, tokenizer, and the rule
that `trust_remote_code` reaches transformers exactly as the caller gave it."""

from __future__ import annotations

import pytest
import torch
import transformers

from optimum_sinkprune import assets
from optimum_sinkprune.hub import load
from optimum_sinkprune.models import LLaDAModelLM


def test_embedded_names_resolve_and_local_paths_win(tmp_path, monkeypatch):
    assert load.resolve_model_path("tiny-llada") == assets.default_model_path()
    assert load.resolve_model_path("tiny-llama-ar") == assets.default_ar_model_path()
    assert load.resolve_model_path("org/model") == "org/model"  # a Hub id is left to transformers
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny-llada").mkdir()
    assert load.resolve_model_path("tiny-llada") == "tiny-llada"  # an existing local folder of that name wins


@pytest.mark.parametrize("bad", ["", None, 3])
def test_bad_model_argument_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="tiny-llada"):
        load.resolve_model_path(bad)


def test_dtype_names():
    assert load.torch_dtype("bfloat16") is torch.bfloat16
    assert load.torch_dtype(torch.float16) is torch.float16
    assert load.torch_dtype("auto") == "auto" and load.torch_dtype(None) is None
    with pytest.raises(ValueError, match="dtype='float33'"):
        load.torch_dtype("float33")
    with pytest.raises(ValueError, match="dtype='Tensor'"):
        load.torch_dtype("Tensor")


def test_loads_the_embedded_model_with_its_tokenizer():
    model, tokenizer = load.load_model_and_tokenizer("tiny-llada", dtype="float32")
    assert type(model) is LLaDAModelLM and not model.training
    assert next(model.parameters()).dtype == torch.float32
    assert tokenizer.mask_token_id == model.config.mask_token_id


def test_trust_remote_code_is_passed_on_as_given(monkeypatch, tmp_path):
    transformers.LlamaConfig().save_pretrained(tmp_path)  # a local checkpoint folder: nothing is asked of the Hub
    folder = str(tmp_path)
    seen = []

    def fake(path, **kwargs):
        seen.append(kwargs["trust_remote_code"])
        raise OSError("stop")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", fake)
    for value in (False, True):
        with pytest.raises(OSError, match="stop"):
            load.load_model(folder, trust_remote_code=value)
    with pytest.raises(OSError, match="stop"):
        load.load_model(folder)
    assert seen == [False, True, False]
    with pytest.raises(ValueError, match="trust_remote_code must be True or False"):
        load.load_model(folder, trust_remote_code="yes")


def test_missing_tokenizer(tmp_path, tiny_llada):
    tiny_llada.save_pretrained(tmp_path)
    assert load.load_tokenizer(tmp_path, required=False) is None
    with pytest.raises((OSError, ValueError)):
        load.load_tokenizer(tmp_path)
    model, tokenizer = load.load_model_and_tokenizer(tmp_path, tokenizer_required=False)
    assert tokenizer is None and type(model) is LLaDAModelLM


@pytest.mark.parametrize("family,expected", [("bert", "BertForMaskedLM"), ("modernbert", "ModernBertForMaskedLM")])
def test_masked_lm_families_load_with_their_head(tmp_path, family, expected):
    """BERT-family diffusion LMs load through AutoModelForMaskedLM (the adapter says so), not the causal class."""
    from bert_fixtures import framed_ids, tiny_masked_lm

    model = tiny_masked_lm(family)
    model.save_pretrained(tmp_path)
    loaded = load.load_model(tmp_path)
    assert type(loaded).__name__ == expected
    ids = framed_ids(1, 12)
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, model.eval()(input_ids=ids).logits)
