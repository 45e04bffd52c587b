# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The capture's per-head probability blocks: `chunked_attention` against plain softmax attention (grouped kv heads,
model masks, padded queries, every chunking), the block bound of `default_chunk_size`, and autograd."""

from __future__ import annotations

import math

import pytest
import torch

from optimum_sinkprune.calibration.attention import chunked_attention, column_mass, default_chunk_size

torch.set_num_threads(1)


def _inputs(batch=2, heads=6, kv_heads=3, seq=11, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, heads, seq, dim, generator=g) * 2
    k = torch.randn(batch, kv_heads, seq, dim, generator=g) * 2
    v = torch.randn(batch, kv_heads, seq, dim, generator=g)
    return q, k, v


def _naive(q, k, v, mask=None, query_valid=None):
    rep = q.shape[1] // k.shape[1]
    kk, vv = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    scores = q @ kk.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None and mask.dtype == torch.bool:
        scores = scores.masked_fill(~mask, torch.finfo(torch.float32).min)
    elif mask is not None:
        scores = scores + mask
    probs = torch.softmax(scores, dim=-1)
    out = (probs @ vv).transpose(1, 2)
    weighted = probs * query_valid[:, None, :, None] if query_valid is not None else probs
    return out, weighted.sum(dim=2)


@pytest.mark.parametrize("chunk", [None, 1, 4, 11])
@pytest.mark.parametrize("mask_kind", [None, "bool", "additive"])
def test_chunked_attention_equals_plain_attention(chunk, mask_kind):
    q, k, v = _inputs()
    valid = torch.ones(2, 11, dtype=torch.bool)
    valid[1, 7:] = False
    mask = None
    if mask_kind is not None:
        keep = valid[:, None, None, :].expand(2, 1, 11, 11)
        mask = keep if mask_kind == "bool" else torch.zeros(2, 1, 11, 11).masked_fill(~keep, -1e9)
    out, mass = chunked_attention(q, k, v, scaling=8**-0.5, query_valid=valid, mask=mask, chunk_size=chunk)
    ref_out, ref_mass = _naive(q, k, v, mask=mask, query_valid=valid)
    assert out.shape == (2, 11, 6, 8) and mass.shape == (2, 6, 11)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mass, ref_mass, atol=1e-5, rtol=1e-5)
    if mask_kind is not None:  # masked keys receive nothing; every valid query row gives 1 per head
        assert float(mass[1, :, 7:].abs().max()) < 1e-6
        torch.testing.assert_close(mass.sum(dim=-1), valid.sum(dim=1, keepdim=True).float().expand(2, 6))


def test_per_head_mask_and_causal_blocks():
    q, k, v = _inputs(batch=1, heads=4, kv_heads=4, seq=9)
    g = torch.Generator().manual_seed(1)
    keep = torch.rand(1, 4, 9, 9, generator=g) > 0.3  # a different mask per head
    keep |= torch.eye(9, dtype=torch.bool)  # every row keeps a key
    _, mass = chunked_attention(q, k, v, scaling=8**-0.5, mask=keep, chunk_size=2)
    torch.testing.assert_close(mass, _naive(q, k, v, mask=keep)[1], atol=1e-5, rtol=1e-5)
    causal = torch.ones(9, 9, dtype=torch.bool).tril()[None, None].expand(1, 4, 9, 9)
    got = column_mass(q, k, scaling=8**-0.5, causal=True, chunk_size=4)
    torch.testing.assert_close(got, _naive(q, k, v, mask=causal)[1], atol=1e-5, rtol=1e-5)


def test_bfloat16_output_dtype_and_float32_mass():
    q, k, v = (t.to(torch.bfloat16) for t in _inputs())
    out, mass = chunked_attention(q, k, v, scaling=8**-0.5, chunk_size=3)
    assert out.dtype == torch.bfloat16 and mass.dtype == torch.float32
    ref_out, ref_mass = _naive(q.float(), k.float(), v.float())
    torch.testing.assert_close(out.float(), ref_out, atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(mass, ref_mass, atol=1e-4, rtol=1e-4)


def test_output_keeps_autograd():
    q, k, v = _inputs(batch=1, heads=2, kv_heads=1, seq=5)
    q.requires_grad_(True)
    v.requires_grad_(True)
    out, mass = chunked_attention(q, k, v, scaling=8**-0.5, chunk_size=2)
    assert not mass.requires_grad
    out.sum().backward()
    q2, v2 = q.detach().clone().requires_grad_(True), v.detach().clone().requires_grad_(True)
    _naive(q2, k, v2)[0].sum().backward()
    torch.testing.assert_close(q.grad, q2.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(v.grad, v2.grad, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("heads", [1, 8, 32])
def test_default_chunk_bounds_one_head_block(heads):
    budget = 1 << 20
    for batch, seq in ((1, 256), (1, 4096), (4, 1024), (1, 300000)):
        chunk = default_chunk_size(batch, heads, seq, budget)
        assert 1 <= chunk <= seq
        assert chunk == 1 or batch * chunk * seq * 4 <= budget  # one head's float32 block fits
        assert chunk == seq or batch * (chunk + 1) * seq * 4 > budget  # and is the largest that does
