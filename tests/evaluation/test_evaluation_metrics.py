# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
import math
import re
from collections import Counter

import pytest
import torch

from optimum_sinkprune.evaluation import (
    checkpoint_bytes,
    corpus_bleu,
    count_block_parameters,
    count_parameters,
    mean_rouge_l,
    weight_bytes,
)


def _lcs(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


def _rouge_l_f1(hyp: str, ref: str) -> float:
    tok = lambda s: re.sub(r"[^a-z0-9]+", " ", s.lower()).split()  # noqa: E731  (rouge-score's tokenizer)
    h, r = tok(hyp), tok(ref)
    lcs = _lcs(h, r)
    if lcs == 0:
        return 0.0
    p, rec = lcs / len(h), lcs / len(r)
    return 2 * p * rec / (p + rec)


def _bleu(hyps: list[str], refs: list[str]) -> float:
    """Plain corpus BLEU-4 for lowercase words without punctuation (no smoothing needed when all counts > 0)."""
    matches, totals = [0] * 4, [0] * 4
    hyp_len = ref_len = 0
    for h, r in zip(hyps, refs):
        h, r = h.split(), r.split()
        hyp_len, ref_len = hyp_len + len(h), ref_len + len(r)
        for n in range(1, 5):
            hc = Counter(tuple(h[i : i + n]) for i in range(len(h) - n + 1))
            rc = Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
            matches[n - 1] += sum(min(c, rc[g]) for g, c in hc.items())
            totals[n - 1] += max(len(h) - n + 1, 0)
    log_p = sum(math.log(m / t) for m, t in zip(matches, totals)) / 4
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return 100 * bp * math.exp(log_p)


def test_rouge_l_matches_an_lcs_implementation():
    hyps = ["the lord said unto him", "and they went forth, into the land", "nothing in common"]
    refs = ["and the lord spake unto moses", "they went forth into the land of light", "zebra"]
    expected = 100 * sum(_rouge_l_f1(h, r) for h, r in zip(hyps, refs)) / len(hyps)
    assert mean_rouge_l(hyps, refs) == pytest.approx(expected, abs=1e-9)


def test_bleu_matches_a_plain_implementation():
    hyps = ["the lord said unto him and they went forth into the land", "the king did rest in the land of light"]
    refs = ["the lord said unto them and they went forth into the land of night", "the king did rest in the land"]
    assert corpus_bleu(hyps, refs) == pytest.approx(_bleu(hyps, refs), rel=1e-6)
    assert corpus_bleu(refs, refs) == pytest.approx(100.0)


def test_metrics_reject_mismatched_inputs():
    with pytest.raises(ValueError, match="same length"):
        corpus_bleu(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        mean_rouge_l([], [])


def test_parameter_counts_see_zeros_and_removed_structure(dense):
    total, nonzero = count_parameters(dense)
    assert total == sum(p.numel() for p in dense.parameters())
    block_total, _ = count_block_parameters(dense)
    layer = dense.model.transformer.blocks[0].ff_out
    with torch.no_grad():
        layer.weight[:, :10] = 0
    _, nonzero_after = count_parameters(dense)
    _, block_nonzero_after = count_block_parameters(dense)
    assert nonzero - nonzero_after == layer.weight.shape[0] * 10
    assert block_total - block_nonzero_after == layer.weight.shape[0] * 10
    # block linears: 2 layers x (q, k, v, o: 64x64; gate, up: 96x64; down: 64x96)
    assert block_total == 2 * (4 * 64 * 64 + 3 * 96 * 64)
    assert weight_bytes(dense) == sum(p.numel() * 4 for p in dense.parameters()) + sum(
        b.numel() * b.element_size() for b in dense.buffers()
    )


def test_checkpoint_bytes_is_the_size_of_the_weight_files(dense, tmp_path):
    dense.save_pretrained(tmp_path)
    assert checkpoint_bytes(tmp_path) == (tmp_path / "model.safetensors").stat().st_size
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoint_bytes(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no \\*.safetensors"):
        checkpoint_bytes(empty)
