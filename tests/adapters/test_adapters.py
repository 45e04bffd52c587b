# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Architecture adapters on every family: recognition, roles and names, head counts, rotary, mask token, the Dream
logit shift, and an attention recomputation from the adapter's view that must equal what the model computes."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel, PretrainedConfig

from optimum_sinkprune.adapters import (
    ALL_ROLES,
    DreamAdapter,
    LLaDAAdapter,
    LlamaAdapter,
    MissingMaskTokenError,
    Qwen2Adapter,
    UnsupportedModelError,
    get_adapter,
    supported_model_types,
)
from optimum_sinkprune.models import LLaDAModelLM
from optimum_sinkprune.models.modeling_dlm_utils import apply_rotary

FAMILY_FIXTURES = {
    "tiny_llada": (LLaDAAdapter, "model.transformer.blocks", {"q": "q_proj", "k": "k_proj", "v": "v_proj",
                                                             "o": "attn_out", "gate": "ff_proj", "up": "up_proj",
                                                             "down": "ff_out"}),
    "tiny_dream": (DreamAdapter, "model.layers", {"q": "self_attn.q_proj", "k": "self_attn.k_proj",
                                                  "v": "self_attn.v_proj", "o": "self_attn.o_proj",
                                                  "gate": "mlp.gate_proj", "up": "mlp.up_proj",
                                                  "down": "mlp.down_proj"}),
    "tiny_llama": (LlamaAdapter, "model.layers", None),
    "tiny_qwen2": (Qwen2Adapter, "model.layers", None),
}
# (query heads, kv heads, head_dim) of the conftest models
HEADS = {"tiny_llada": (4, 4, 16), "tiny_dream": (4, 2, 16), "tiny_llama": (4, 2, 16), "tiny_qwen2": (4, 2, 16)}


def _ref_cos_sin(seq: int, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    ang = torch.arange(seq, dtype=torch.float64)[:, None] * inv[None]
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos(), ang.sin()


@pytest.mark.parametrize("fixture", list(FAMILY_FIXTURES))
def test_adapter_recognises_family_with_roles_and_names(fixture, request):
    model = request.getfixturevalue(fixture)
    adapter_cls, blocks_path, paths = FAMILY_FIXTURES[fixture]
    adapter = get_adapter(model)
    assert type(adapter) is adapter_cls
    assert adapter.num_layers(model) == 2
    assert adapter.blocks(model) is model.get_submodule(blocks_path)
    paths = paths or FAMILY_FIXTURES["tiny_dream"][2]
    modules = dict(model.named_modules())
    layers = adapter.linear_layers(model)
    assert len(layers) == 2 * len(ALL_ROLES)
    for i, block in enumerate(adapter.blocks(model)):
        for role in ALL_ROLES:
            name = adapter.projection_name(i, role)
            assert name == f"{blocks_path}.{i}.{paths[role]}"
            assert modules[name] is adapter.projection(block, role) is layers[name]
            assert isinstance(layers[name], nn.Linear)
            assert adapter.role_of(name) == role
    # embeddings and the LM head are never prunable layers
    assert not any("wte" in n or "embed" in n or "lm_head" in n or n.endswith("transformer.ff_out") for n in layers)


@pytest.mark.parametrize("fixture", list(FAMILY_FIXTURES))
def test_head_counts_and_widths(fixture, request):
    model = request.getfixturevalue(fixture)
    adapter = get_adapter(model)
    q_heads, kv_heads, head_dim = HEADS[fixture]
    assert adapter.head_dim(model) == head_dim
    assert adapter.original_num_heads(model) == q_heads
    assert adapter.original_num_kv_heads(model) == kv_heads
    for layer in range(2):
        assert adapter.num_heads(model, layer) == q_heads
        assert adapter.num_kv_heads(model, layer) == kv_heads
        assert adapter.mlp_width(model, layer) == 96
    assert adapter.pruned_heads(model) == {}
    assert adapter.max_length(model) == 256


@pytest.mark.parametrize(
    "fixture,is_diffusion,is_causal,shifts",
    [("tiny_llada", True, False, False), ("tiny_dream", True, False, True), ("tiny_llama", False, True, False),
     ("tiny_qwen2", False, True, False)],
)
def test_family_flags(fixture, is_diffusion, is_causal, shifts, request):
    adapter = get_adapter(request.getfixturevalue(fixture))
    assert (adapter.is_diffusion, adapter.is_causal, adapter.shifts_logits) == (is_diffusion, is_causal, shifts)


def test_role_and_name_errors(tiny_llada):
    adapter = get_adapter(tiny_llada)
    with pytest.raises(ValueError, match="role='qkv'"):
        adapter.projection(adapter.blocks(tiny_llada)[0], "qkv")
    with pytest.raises(ValueError, match="not a block projection"):
        adapter.role_of("model.transformer.wte")


@pytest.mark.parametrize("fixture", list(FAMILY_FIXTURES))
def test_rotary_matches_rope_formula(fixture, request):
    model = request.getfixturevalue(fixture)
    adapter = get_adapter(model)
    positions = torch.arange(9)[None].expand(2, -1)
    cos, sin = adapter.rotary_cos_sin(model, positions, torch.float32)
    assert cos.shape == sin.shape == (2, 9, 16) and cos.dtype == torch.float32
    ref_cos, ref_sin = _ref_cos_sin(9, 16, 10000.0)
    torch.testing.assert_close(cos[1].double(), ref_cos, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(sin[1].double(), ref_sin, atol=1e-6, rtol=1e-6)


def test_llama_rotary_is_the_models_own(tiny_llama):
    """The AR adapters use the model's rotary module, so any rope scaling it was configured with is honoured."""
    adapter = get_adapter(tiny_llama)
    positions = torch.arange(7)[None]
    cos, sin = adapter.rotary_cos_sin(tiny_llama, positions, torch.float32)
    own_cos, own_sin = tiny_llama.model.rotary_emb(torch.zeros(1, dtype=torch.float32), positions)
    torch.testing.assert_close(cos, own_cos.float())
    torch.testing.assert_close(sin, own_sin.float())


def test_llada_without_rope_has_no_rotary(tiny_configs):
    model = LLaDAModelLM(tiny_configs.llada(rope=False))
    assert get_adapter(model).rotary_cos_sin(model, torch.arange(4)[None], torch.float32) is None


@pytest.mark.parametrize("fixture", list(FAMILY_FIXTURES))
def test_attention_recomputed_from_adapter_view_equals_model(fixture, request, randomize):
    """Capture q/k/v projections and the o-projection input with hooks; recompute attention from the adapter's heads,
    rotary and causality; it must equal what the model fed to its output projection."""
    model = randomize(request.getfixturevalue(fixture), seed=30)
    adapter = get_adapter(model)
    block = adapter.blocks(model)[1]
    seen = {}
    hooks = [adapter.projection(block, r).register_forward_hook(
        lambda m, i, o, r=r: seen.__setitem__(r, o.detach())) for r in ("q", "k", "v")]
    hooks.append(adapter.projection(block, "o").register_forward_pre_hook(
        lambda m, i: seen.__setitem__("o_in", i[0].detach())))
    try:
        with torch.no_grad():
            model(input_ids=torch.randint(2, 120, (1, 10), generator=torch.Generator().manual_seed(0)))
    finally:
        for h in hooks:
            h.remove()
    hd, nq, nkv = adapter.head_dim(model), adapter.num_heads(model, 1), adapter.num_kv_heads(model, 1)
    split = lambda t, n: t.view(1, 10, n, hd).transpose(1, 2)  # noqa: E731
    cos, sin = adapter.rotary_cos_sin(model, torch.arange(10)[None], torch.float32)
    q = apply_rotary(split(seen["q"], nq), cos, sin)
    k = apply_rotary(split(seen["k"], nkv), cos, sin).repeat_interleave(nq // nkv, 1)
    v = split(seen["v"], nkv).repeat_interleave(nq // nkv, 1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
    if adapter.is_causal:
        scores = scores.masked_fill(torch.ones(10, 10, dtype=torch.bool).triu(1), float("-inf"))
    out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(1, 10, -1)
    torch.testing.assert_close(out, seen["o_in"], atol=1e-5, rtol=1e-4)


def test_dream_logit_shift_through_adapter(tiny_dream, randomize):
    model = randomize(tiny_dream, seed=31)
    adapter = get_adapter(model)
    ids = torch.randint(2, 120, (2, 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        raw = model(input_ids=ids).logits
        shifted = adapter.logits(model, ids)
    # position i's prediction is the raw output at i - 1; position 0 keeps its own
    torch.testing.assert_close(shifted[:, 1:], raw[:, :-1], atol=0, rtol=0)
    torch.testing.assert_close(shifted[:, 0], raw[:, 0], atol=0, rtol=0)
    assert torch.equal(adapter.shift_logits(raw), shifted)


@pytest.mark.parametrize("fixture", ["tiny_llada", "tiny_llama"])
def test_no_shift_for_other_families(fixture, request):
    model = request.getfixturevalue(fixture)
    adapter = get_adapter(model)
    ids = torch.randint(2, 120, (1, 6), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        assert torch.equal(adapter.logits(model, ids, mask), model(input_ids=ids, attention_mask=mask).logits)


def test_mask_token_from_config_then_tokenizer(tiny_llada, tiny_llama):
    assert get_adapter(tiny_llada).mask_token_id(tiny_llada) == 127
    assert get_adapter(tiny_llada).mask_token_id(tiny_llada, SimpleNamespace(mask_token_id=5)) == 127  # config wins
    assert get_adapter(tiny_llama).mask_token_id(tiny_llama, SimpleNamespace(mask_token_id=5)) == 5


def test_missing_mask_token_names_both_places(tiny_llada, tiny_llama):
    tiny_llada.config.mask_token_id = None
    for model, tokenizer in ((tiny_llada, None), (tiny_llada, SimpleNamespace(mask_token_id=None)), (tiny_llama, None)):
        with pytest.raises(MissingMaskTokenError) as err:
            get_adapter(model).mask_token_id(model, tokenizer)
        message = str(err.value)
        assert "config" in message and "tokenizer" in message and "mask_token_id" in message


def test_unsupported_model_lists_supported_types():
    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=64, n_positions=32))
    with pytest.raises(UnsupportedModelError) as err:
        get_adapter(gpt2)
    message = str(err.value)
    assert "gpt2" in message
    for model_type in ("llada", "mmada", "Dream", "llama", "qwen2"):
        assert model_type in message
    assert set(supported_model_types()) >= {"llada", "mmada", "Dream", "llama", "qwen2"}
    with pytest.raises(UnsupportedModelError):
        get_adapter(nn.Linear(2, 2))


class HubLLaDAConfig(PretrainedConfig):
    """Stands in for the Hub's remote-code config class: a different class, same model_type and keys."""

    model_type = "llada"


class HubLLaDAModelLM(nn.Module):
    """Stands in for the Hub's remote-code LLaDAModelLM: a plain module with `.config` and `.model.transformer`."""

    def __init__(self, trunk: nn.Module, config: PretrainedConfig):
        super().__init__()
        self.config = config
        self.model = trunk

    def forward(self, input_ids, attention_mask=None):
        logits, _ = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return SimpleNamespace(logits=logits)


def _hub_like(tiny_llada) -> HubLLaDAModelLM:
    keys = {k: v for k, v in tiny_llada.config.to_dict().items() if k not in ("model_type", "pruned_heads")}
    return HubLLaDAModelLM(tiny_llada.model, HubLLaDAConfig(**keys))


def test_hub_remote_code_instance_is_recognised(tiny_llada):
    hub = _hub_like(tiny_llada)
    adapter = get_adapter(hub)
    assert type(adapter) is LLaDAAdapter
    assert adapter.num_layers(hub) == 2 and adapter.num_heads(hub, 0) == 4 and adapter.head_dim(hub) == 16
    assert list(adapter.linear_layers(hub)) == list(adapter.linear_layers(tiny_llada))
    assert adapter.mask_token_id(hub) == 127
    ids = torch.randint(2, 120, (1, 6), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(adapter.logits(hub, ids), tiny_llada(input_ids=ids).logits)


def test_right_model_type_wrong_tree_is_unsupported(tiny_llada):
    hub = _hub_like(tiny_llada)
    hub.model = nn.Module()  # e.g. the `block_groups` layout, which no LLaDA checkpoint uses
    with pytest.raises(UnsupportedModelError, match="llada"):
        get_adapter(hub)


@pytest.mark.parametrize("fixture,key", [("tiny_llada", "mlp_hidden_sizes"), ("tiny_dream", "intermediate_sizes"),
                                         ("tiny_llama", "intermediate_sizes")])
def test_record_structure_writes_config_keys(fixture, key, request):
    model = request.getfixturevalue(fixture)
    get_adapter(model).record_structure(model, {0: [3, 1], 1: []}, [64, 96])
    assert model.config.pruned_heads == {0: [1, 3]}
    assert getattr(model.config, key) == [64, 96]


def test_head_counts_of_structurally_pruned_models(tiny_configs):
    from optimum_sinkprune.models import DreamModel

    llada = LLaDAModelLM(tiny_configs.llada(pruned_heads={0: [0, 2]}, mlp_hidden_sizes=[32, 96]))
    adapter = get_adapter(llada)
    assert (adapter.num_heads(llada, 0), adapter.num_heads(llada, 1)) == (2, 4)
    assert adapter.original_num_heads(llada) == 4 and adapter.pruned_heads(llada) == {0: [0, 2]}
    assert adapter.mlp_width(llada, 0) == 32 and adapter.head_dim(llada) == 16
    # Dream: 4 query heads in 2 kv groups; removing the group {2, 3} removes one kv head
    dream = DreamModel(tiny_configs.dream(pruned_heads={1: [2, 3]}))
    adapter = get_adapter(dream)
    assert (adapter.num_heads(dream, 1), adapter.num_kv_heads(dream, 1)) == (2, 1)
    assert (adapter.num_heads(dream, 0), adapter.num_kv_heads(dream, 0)) == (4, 2)
    with torch.no_grad():
        assert dream(input_ids=torch.ones(1, 5, dtype=torch.long)).logits.shape == (1, 5, 128)
