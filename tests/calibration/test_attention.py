# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""attention_mass / AttentionMassProbe against independent references (the models' own attention probabilities)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
from transformers.masking_utils import AttentionMaskInterface
from transformers.modeling_utils import AttentionInterface

from optimum_sinkprune.adapters import UnsupportedModelError, get_adapter
from optimum_sinkprune.calibration import AttentionMassProbe, attention_mass, column_mass
from optimum_sinkprune.models import DreamConfig, DreamModel, LLaDAConfig, LLaDAModelLM
from optimum_sinkprune.models import modeling_dlm_utils, modeling_dream, modeling_llada

torch.set_num_threads(1)
METHODS = ("hooks", "interface")


def tiny_llada(**overrides) -> LLaDAModelLM:
    kwargs = dict(
        d_model=64, n_heads=4, n_layers=2, mlp_hidden_size=96, vocab_size=128, embedding_size=128,
        mask_token_id=127, eos_token_id=1, pad_token_id=0, max_sequence_length=64, rope_theta=10000.0,
    )
    kwargs.update(overrides)
    torch.manual_seed(0)
    model = LLaDAModelLM(LLaDAConfig(**kwargs)).eval()
    # Larger q/k weights than the init gives peaked (non-uniform) attention, so errors cannot hide in uniform rows.
    with torch.no_grad():
        for block in model.model.transformer.blocks:
            block.q_proj.weight.mul_(20)
            block.k_proj.weight.mul_(20)
    return model


def tiny_dream() -> DreamModel:
    torch.manual_seed(1)
    config = DreamConfig(
        hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2, intermediate_size=96,
        vocab_size=128, max_position_embeddings=64, mask_token_id=127, pad_token_id=0, rope_theta=10000.0,
    )
    model = DreamModel(config).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.q_proj.weight.mul_(20)
            layer.self_attn.k_proj.weight.mul_(20)
    return model


def tiny_llama(cls=LlamaForCausalLM, config_cls=LlamaConfig) -> nn.Module:
    torch.manual_seed(2)
    config = config_cls(
        hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2, intermediate_size=96,
        vocab_size=128, max_position_embeddings=64, initializer_range=0.5,
    )
    return cls(config).eval()


def random_ids(batch: int = 2, seq: int = 12, seed: int = 3) -> torch.LongTensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(2, 120, (batch, seq), generator=g)


# ---- independent references -----------------------------------------------------------------------------------------
def dlm_reference(model, module, input_ids, attention_mask=None, stack: bool = True):
    """[b, L, H, s] from the probabilities of the model's own eager attention (recorded by patching its dispatch)."""
    probs = []

    def recording(module_, query, key, value, mask, scaling, dropout=0.0, **kwargs):
        out, p = modeling_dlm_utils.eager_attention_forward(module_, query, key, value, mask, scaling, dropout)
        probs.append(p.detach().float())
        return out, p

    original = module.attention_function
    module.attention_function = lambda impl: recording
    try:
        with torch.no_grad():
            model(input_ids=input_ids, attention_mask=attention_mask)
    finally:
        module.attention_function = original
    return _column_sums(probs, attention_mask, stack)


def _column_sums(probs: list[torch.Tensor], attention_mask, stack: bool = True):
    out = []
    for p in probs:  # [b, H, q, k]
        if attention_mask is not None:
            p = p * attention_mask[:, None, :, None].float()
            p = p * attention_mask[:, None, None, :].float()  # a fully masked row of a padded query holds junk
        out.append(p.sum(dim=2))
    return torch.stack(out, dim=1) if stack else out


def llama_reference(model, input_ids, attention_mask=None) -> torch.Tensor:
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            out = model(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True)
    finally:
        model.set_attn_implementation(previous)
    return _column_sums([a.float() for a in out.attentions], attention_mask)


# ---- a module tree shaped like the Hub's LLaDA remote code (GSAI-ML/LLaDA-8B-Base modeling_llada.py) ----------------
class HubRotary(nn.Module):
    """The Hub code's RotaryEmbedding: rotate-half convention, its own implementation."""

    def __init__(self, dim: int, theta: float):
        super().__init__()
        self.dim, self.theta = dim, theta

    def forward(self, q, k):
        seq = q.shape[-2]
        inv_freq = 1.0 / (self.theta ** (torch.arange(0, self.dim, 2, dtype=torch.float) / self.dim))
        freqs = torch.einsum("i , j -> i j", torch.arange(seq, dtype=torch.float), inv_freq)
        pos = torch.cat((freqs, freqs), dim=-1)
        sin, cos = pos.sin()[None, None], pos.cos()[None, None]

        def rotate_half(x):
            x1, x2 = x.unflatten(-1, (2, self.dim // 2)).unbind(-2)
            return torch.cat((-x2, x1), dim=-1)

        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


class HubBlock(nn.Module):
    def __init__(self, config: LLaDAConfig):
        super().__init__()
        d, h = config.d_model, config.mlp_hidden_size
        self.n_heads, self.head_dim = config.n_heads, d // config.n_heads
        self.attn_norm, self.ff_norm = nn.RMSNorm(d), nn.RMSNorm(d)
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(d, d, bias=False) for _ in range(3))
        self.attn_out = nn.Linear(d, d, bias=False)
        self.ff_proj, self.up_proj, self.ff_out = nn.Linear(d, h, False), nn.Linear(d, h, False), nn.Linear(h, d, False)
        self.rotary_emb = HubRotary(self.head_dim, config.rope_theta)
        self.recorded: list[torch.Tensor] = []

    def forward(self, x, attention_bias):
        b, s, _ = x.shape
        h = self.attn_norm(x)
        q, k, v = self.q_proj(h), self.k_proj(h), self.v_proj(h)
        q, k, v = (t.view(b, s, self.n_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        q, k = self.rotary_emb(q, k)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
        if attention_bias is not None:
            scores = scores + attention_bias
        self.recorded.append(torch.softmax(scores, dim=-1).detach())
        att = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attention_bias)
        x = x + self.attn_out(att.transpose(1, 2).reshape(b, s, -1))
        h = self.ff_norm(x)
        return x + self.ff_out(nn.functional.silu(self.ff_proj(h)) * self.up_proj(h))


class HubLLaDA(nn.Module):
    """Not a transformers class, no attention interface: `model.transformer.{wte,blocks,ln_f,ff_out}`."""

    def __init__(self, config: LLaDAConfig):
        super().__init__()
        self.config = config
        self.model = nn.Module()
        self.model.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.d_model),
                blocks=nn.ModuleList(HubBlock(config) for _ in range(config.n_layers)),
                ln_f=nn.RMSNorm(config.d_model),
                ff_out=nn.Linear(config.d_model, config.vocab_size, bias=False),
            )
        )

    def forward(self, input_ids, attention_mask=None):
        x = self.model.transformer.wte(input_ids)
        bias = None
        if attention_mask is not None:
            bias = torch.zeros(attention_mask.shape, dtype=x.dtype)[:, None, None, :]
            bias = bias.masked_fill(~attention_mask.bool()[:, None, None, :], torch.finfo(x.dtype).min)
        for block in self.model.transformer.blocks:
            x = block(x, bias)
        return self.model.transformer.ff_out(self.model.transformer.ln_f(x))


def hub_llada() -> HubLLaDA:
    torch.manual_seed(4)
    config = LLaDAConfig(
        d_model=64, n_heads=4, n_layers=2, mlp_hidden_size=96, vocab_size=128, embedding_size=128,
        mask_token_id=127, max_sequence_length=64, rope_theta=10000.0,
    )
    model = HubLLaDA(config).eval()
    with torch.no_grad():
        for block in model.model.transformer.blocks:
            block.q_proj.weight.mul_(3)
            block.k_proj.weight.mul_(3)
    return model


def hub_reference(model: HubLLaDA, input_ids, attention_mask=None) -> torch.Tensor:
    blocks = model.model.transformer.blocks
    for block in blocks:
        block.recorded.clear()
    with torch.no_grad():
        model(input_ids, attention_mask)
    return _column_sums([block.recorded[-1] for block in blocks], attention_mask)


# ---- tests -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_llada_matches_model_probabilities(method):
    model = tiny_llada()
    ids = random_ids()
    ref = dlm_reference(model, modeling_llada, ids)
    got = attention_mass(model, ids, per_head=True, method=method)
    assert got.shape == (2, 2, 4, 12)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(attention_mass(model, ids, method=method), ref.sum(dim=(1, 2)), atol=1e-4, rtol=1e-4)
    # the test is only meaningful when attention is far from uniform
    assert ref.max() > 3 * ref.mean()


@pytest.mark.parametrize("method", METHODS)
def test_dream_gqa_expansion(method):
    model = tiny_dream()
    ids = random_ids()
    ref = dlm_reference(model, modeling_dream, ids)
    got = attention_mass(model, ids, per_head=True, method=method)
    assert got.shape == (2, 2, 4, 12)  # 4 query heads served by 2 kv heads
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    # heads sharing a kv head still differ (their queries differ): the expansion is per query head
    assert not torch.allclose(got[:, :, 0], got[:, :, 1])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cls,config_cls", [(LlamaForCausalLM, LlamaConfig), (Qwen2ForCausalLM, Qwen2Config)])
def test_native_causal_models_with_left_padding(method, cls, config_cls):
    model = tiny_llama(cls, config_cls)
    ids = random_ids(seq=10)
    mask = torch.ones_like(ids)
    mask[1, :3] = 0  # left padding
    for m in (None, mask):
        ref = llama_reference(model, ids, m)
        got = attention_mass(model, ids, m, per_head=True, method=method)
        torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    # causal: the last position is seen only by itself, in every layer and head
    got = attention_mass(model, ids, per_head=True, method=method)
    assert torch.all(got[..., -1] <= 1.0 + 1e-5)
    assert model.config._attn_implementation == "sdpa"


def test_remote_code_shaped_tree_uses_hooks():
    model = hub_llada()
    ids = random_ids()
    mask = torch.ones_like(ids)
    mask[0, 9:] = 0
    assert get_adapter(model).name == "llada"
    for m in (None, mask):
        ref = hub_reference(model, ids, m)
        got = attention_mass(model, ids, m, per_head=True)  # auto -> hooks (no attention interface)
        torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="method='interface'"):
        AttentionMassProbe(model, method="interface")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("chunk_size", [1, 5, 64])
def test_chunked_equals_full(method, chunk_size):
    model = tiny_llada()
    ids = random_ids(seq=17)
    full = attention_mass(model, ids, per_head=True, chunk_size=17, method=method)
    got = attention_mass(model, ids, per_head=True, chunk_size=chunk_size, method=method)
    torch.testing.assert_close(got, full, atol=1e-5, rtol=1e-5)


def test_column_mass_against_naive():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 6, 9, 8, generator=g) * 2
    k = torch.randn(2, 3, 9, 8, generator=g) * 2
    valid = torch.ones(2, 9, dtype=torch.bool)
    valid[1, 6:] = False
    for causal in (False, True):
        kk = k.repeat_interleave(2, dim=1)
        scores = q @ kk.transpose(-1, -2) / math.sqrt(8)
        keep = valid[:, None, None, :].expand(2, 6, 9, 9).clone()
        if causal:
            keep &= torch.ones(9, 9, dtype=torch.bool).tril()
        probs = torch.softmax(scores.masked_fill(~keep, -1e30), dim=-1) * valid[:, None, :, None]
        for chunk in (None, 2, 4):
            got = column_mass(q, k, scaling=8**-0.5, key_valid=valid, query_valid=valid, causal=causal, chunk_size=chunk)
            torch.testing.assert_close(got, probs.sum(dim=2), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_padding_excluded_as_key_and_query(method):
    model = tiny_llada()
    ids = random_ids(batch=1, seq=14)
    padded = torch.cat([ids, torch.zeros(1, 6, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 14), torch.zeros(1, 6)], dim=1).long()
    got = attention_mass(model, padded, mask, per_head=True, method=method)
    alone = attention_mass(model, ids, per_head=True, method=method)
    assert torch.all(got[..., 14:] == 0)
    # bidirectional + right padding: the valid part is exactly the unpadded sequence's mass
    torch.testing.assert_close(got[..., :14], alone, atol=1e-5, rtol=1e-5)
    # every valid query row sums to one: total = layers * heads * valid tokens
    torch.testing.assert_close(got.sum(), torch.tensor(2 * 4 * 14.0), atol=1e-3, rtol=1e-5)


def test_pruned_heads_reported_as_zero_at_original_index():
    model = tiny_llada(pruned_heads={0: [1]})
    ids = random_ids()
    got = attention_mass(model, ids, per_head=True)
    assert got.shape == (2, 2, 4, 12)
    assert torch.all(got[:, 0, 1] == 0)
    ref = dlm_reference(model, modeling_llada, ids, stack=False)  # layer 0 has 3 heads: original 0, 2, 3
    assert ref[0].shape == (2, 3, 12)
    torch.testing.assert_close(got[:, 0, [0, 2, 3]], ref[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got[:, 1], ref[1], atol=1e-4, rtol=1e-4)
    hooks = attention_mass(model, ids, per_head=True, method="hooks")
    torch.testing.assert_close(hooks, got, atol=1e-4, rtol=1e-4)


def test_probe_captures_callers_forward_and_latest_wins():
    model = tiny_llada()
    a, b = random_ids(seed=5), random_ids(seed=6)
    with torch.no_grad(), AttentionMassProbe(model, per_head=True) as probe:
        model(input_ids=a)
        first = probe.mass.clone()
        model(input_ids=b)
        latest, per_head = probe.mass.clone(), probe.per_head_mass.clone()
    assert per_head.shape == (2, 2, 4, 12)
    torch.testing.assert_close(latest, attention_mass(model, b), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(first, attention_mass(model, a), atol=1e-5, rtol=1e-5)
    # a probe nested in another one's interface route falls back to hooks and both see the same forward
    with torch.no_grad(), AttentionMassProbe(model, method="interface") as outer:
        with AttentionMassProbe(model) as inner:
            assert inner.method == "hooks"
            model(input_ids=b)
        torch.testing.assert_close(inner.mass, outer.mass, atol=1e-5, rtol=1e-5)
    # the padding mask passed to the model's forward is picked up when the probe is not given one
    mask = torch.ones_like(a)
    mask[0, 8:] = 0
    with torch.no_grad(), AttentionMassProbe(model, method="hooks") as probe:
        model(input_ids=a, attention_mask=mask)
    torch.testing.assert_close(probe.mass, attention_mass(model, a, mask), atol=1e-5, rtol=1e-5)
    with AttentionMassProbe(model) as probe:
        pass
    with pytest.raises(RuntimeError, match="no forward"):
        probe.mass
    with pytest.raises(RuntimeError, match="per_head=True"):
        probe.per_head_mass


def _hook_count(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("method", METHODS)
def test_hooks_and_interface_gone_after_exception(method):
    model = tiny_llada()
    before_hooks = _hook_count(model)
    before_impl = model.config._attn_implementation
    keys_before = (set(AttentionInterface._global_mapping), set(AttentionMaskInterface._global_mapping))
    too_long = torch.randint(2, 120, (1, 65))
    with pytest.raises(ValueError, match="max_sequence_length"):
        with AttentionMassProbe(model, method=method):
            assert _hook_count(model) > before_hooks
            model(input_ids=too_long)
    assert _hook_count(model) == before_hooks
    assert model.config._attn_implementation == before_impl
    assert (set(AttentionInterface._global_mapping), set(AttentionMaskInterface._global_mapping)) == keys_before
    # and the model still runs normally
    with torch.no_grad():
        model(input_ids=random_ids())


def test_bad_input_errors():
    model = tiny_llada()
    with pytest.raises(ValueError, match="longer than the model's maximum of 64"):
        attention_mass(model, torch.randint(2, 120, (1, 65)))
    with pytest.raises(ValueError, match="empty"):
        attention_mass(model, torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        attention_mass(model, torch.zeros(0, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[batch, seq\]"):
        attention_mass(model, torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        attention_mass(model, torch.zeros(1, 5))
    with pytest.raises(ValueError, match="attention_mask"):
        attention_mass(model, random_ids(), torch.ones(2, 5))
    with pytest.raises(ValueError, match="chunk_size"):
        attention_mass(model, random_ids(), chunk_size=0)
    with pytest.raises(ValueError, match="method"):
        AttentionMassProbe(model, method="fast")

    class Unknown(nn.Module):
        def __init__(self):
            super().__init__()
            self.config = LlamaConfig(hidden_size=8, num_attention_heads=2, num_hidden_layers=1)
            self.config.model_type = "gpt2"
            self.lin = nn.Linear(2, 2)

    with pytest.raises(UnsupportedModelError, match="supported model types"):
        attention_mass(Unknown(), random_ids())


def test_interface_route_keeps_gradients():
    model = tiny_llada()
    ids = random_ids()
    model.zero_grad()
    model(input_ids=ids).logits.square().mean().backward()
    ref = model.model.transformer.blocks[0].q_proj.weight.grad.clone()
    model.zero_grad()
    with AttentionMassProbe(model, method="interface") as probe:
        model(input_ids=ids).logits.square().mean().backward()
    assert not probe.mass.requires_grad
    torch.testing.assert_close(model.model.transformer.blocks[0].q_proj.weight.grad, ref, atol=1e-5, rtol=1e-4)


class HubLLaDAClaimingBackend(HubLLaDA):
    """Declares the attention backend but never calls it (like a remote class copied from a newer template)."""

    _supports_attention_backend = True


def test_class_bypassing_the_interface_falls_back_to_hooks():
    model = hub_llada()
    model.__class__ = HubLLaDAClaimingBackend
    ids = random_ids()
    ref = hub_reference(model, ids)
    torch.testing.assert_close(attention_mass(model, ids, per_head=True), ref, atol=1e-4, rtol=1e-4)
    with torch.no_grad(), AttentionMassProbe(model, method="interface") as probe:
        model(ids)
    with pytest.raises(RuntimeError, match="try method='hooks'"):
        probe.mass


@pytest.mark.parametrize("method", METHODS)
def test_layer_with_all_heads_pruned(method):
    # Dream: LLaDAModelLM cannot build a layer without heads yet (ZeroDivisionError in num_key_value_groups)
    model = tiny_dream()
    config = DreamConfig(**{**model.config.to_dict(), "pruned_heads": {1: [0, 1, 2, 3]}})
    torch.manual_seed(1)
    model = DreamModel(config).eval()
    ids = random_ids()
    got = attention_mass(model, ids, per_head=True, method=method)
    assert torch.all(got[:, 1] == 0)
    ref = dlm_reference(model, modeling_dream, ids, stack=False)  # only layer 0 calls attention
    torch.testing.assert_close(got[:, 0], ref[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(attention_mass(model, ids, method=method), ref[0].sum(1), atol=1e-4, rtol=1e-4)


def test_bfloat16_model_gives_float32_mass_that_sums_correctly():
    model = tiny_llada().to(torch.bfloat16)
    ids = random_ids()
    hooks = attention_mass(model, ids, per_head=True, method="hooks")
    interface = attention_mass(model, ids, per_head=True, method="interface")
    assert hooks.dtype == interface.dtype == torch.float32
    torch.testing.assert_close(hooks.sum(dim=-1), torch.full((2, 2, 4), 12.0), atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(hooks, interface, atol=5e-2, rtol=5e-2)  # q/k differ by bf16 rounding of the output
