# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""scripts/train_minilm_dlm.py on a tiny random BERT: masking, 1/t weighting, gathered head, exact resume."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from script_loading import load_script

REPO = Path(__file__).resolve().parents[2]


def _load_script():
    return load_script(REPO / "scripts" / "train_minilm_dlm.py", "train_minilm_dlm")


tm = _load_script()
SPECIAL = tm.SpecialIds(cls=1, sep=2, pad=0, mask=3)
VOCAB = 40


def tiny_model(seed: int = 0):
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, mask_token_id=SPECIAL.mask)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertForMaskedLM(config)
    return model


def framed_batch(gen: torch.Generator) -> torch.LongTensor:
    """Rows [CLS] text [SEP] (an inner [SEP] too) with right padding of different lengths."""
    ids = torch.randint(4, VOCAB, (3, 12), generator=gen)
    ids[:, 0] = SPECIAL.cls
    ids[:, 6] = SPECIAL.sep
    for row, length in enumerate((12, 9, 7)):
        ids[row, length - 1] = SPECIAL.sep
        ids[row, length:] = SPECIAL.pad
    return ids


def test_masking_never_touches_cls_sep_or_padding():
    gen = torch.Generator().manual_seed(0)
    ids = framed_batch(gen)
    maskable = tm.maskable_positions(ids, SPECIAL)
    special = (ids == SPECIAL.cls) | (ids == SPECIAL.sep) | (ids == SPECIAL.pad)
    assert torch.equal(maskable, ~special)
    full = tm.sample_masks(maskable, torch.ones(3), gen)  # t = 1 masks every maskable position and nothing else
    assert torch.equal(full, maskable)
    for _ in range(50):
        t = tm.sample_t(3, 1e-3, gen)
        assert ((t >= 1e-3) & (t <= 1.0)).all()
        m = tm.sample_masks(maskable, t, gen)
        assert not (m & special).any()
        noisy = tm.apply_masks(ids, m, SPECIAL.mask)
        assert torch.equal(noisy[special], ids[special])
        assert (noisy[m] == SPECIAL.mask).all()


def test_loss_is_sum_of_ce_over_t_per_maskable_token():
    gen = torch.Generator().manual_seed(1)
    model = tiny_model().eval()
    ids = framed_batch(gen)
    attn = ids != SPECIAL.pad
    maskable = tm.maskable_positions(ids, SPECIAL)
    is_masked = tm.sample_masks(maskable, torch.full((3,), 0.6), gen)
    assert is_masked.any()
    t = torch.tensor([0.2, 0.5, 0.9])
    with torch.no_grad():
        loss, ce, _ = tm.diffusion_loss(model, ids, is_masked, t, maskable, SPECIAL.mask, attention_mask=attn)
        logits = model(input_ids=tm.apply_masks(ids, is_masked, SPECIAL.mask), attention_mask=attn).logits
    expected = 0.0
    for b in range(3):
        for s in range(ids.shape[1]):
            if is_masked[b, s]:
                expected += float(torch.nn.functional.cross_entropy(logits[b, s][None], ids[b, s][None])) / float(t[b])
    assert loss.item() == pytest.approx(expected / int(maskable.sum()), rel=1e-5)
    # halving every t doubles the loss with the masks fixed
    with torch.no_grad():
        loss_half, _, _ = tm.diffusion_loss(model, ids, is_masked, t / 2, maskable, SPECIAL.mask, attention_mask=attn)
    assert loss_half.item() == pytest.approx(2 * loss.item(), rel=1e-5)


def test_head_at_masked_positions_matches_full_head():
    gen = torch.Generator().manual_seed(2)
    model = tiny_model()
    model.eval()
    ids = framed_batch(gen)
    attn = ids != SPECIAL.pad
    maskable = tm.maskable_positions(ids, SPECIAL)
    is_masked = tm.sample_masks(maskable, torch.full((3,), 0.5), gen)
    t = torch.tensor([0.3, 0.5, 0.7])
    gathered, _, lg = tm.diffusion_loss(model, ids, is_masked, t, maskable, SPECIAL.mask, attention_mask=attn)
    full, _, lf = tm.diffusion_loss(model, ids, is_masked, t, maskable, SPECIAL.mask, attention_mask=attn,
                                    full_head=True)
    assert lg.shape == (int(is_masked.sum()), VOCAB)
    torch.testing.assert_close(lg, lf, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gathered, full, rtol=1e-6, atol=1e-6)
    # and the gradients agree
    ga = torch.autograd.grad(gathered, model.bert.embeddings.word_embeddings.weight)[0]
    gb = torch.autograd.grad(full, model.bert.embeddings.word_embeddings.weight)[0]
    torch.testing.assert_close(ga, gb, rtol=1e-4, atol=1e-6)


def _run(out: Path, max_steps: int, resume: bool, batch_size: int = 4) -> int:
    cfg = tm.TrainConfig(out=out, batch_size=batch_size, seq_len=10, seed=3, warmup_steps=2, max_steps=max_steps,
                         checkpoint_minutes=1e6, eval_minutes=1e6, eval_windows=4, log_every=1)
    stream = torch.randint(4, VOCAB, (300,), generator=torch.Generator().manual_seed(4))
    stream[::37] = SPECIAL.sep  # document boundaries
    ids, attn = tm.heldout_windows([list(range(4, 30)), list(range(5, 12))], cfg.seq_len, SPECIAL, 4)
    heldout = tm.HeldoutSet.build(ids, attn, SPECIAL)

    def factory():
        torch.manual_seed(cfg.seed)
        return tiny_model(seed=7)

    return tm.train(cfg, factory, stream, heldout, SPECIAL, resume=resume)


def test_resume_continues_the_step_counter_and_the_same_trajectory(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert _run(straight, 4, resume=False) == 4
    assert _run(split, 2, resume=False) == 2
    assert torch.load(split / tm.CHECKPOINT, weights_only=False)["step"] == 2
    with pytest.raises(FileExistsError, match="--resume"):
        _run(split, 4, resume=False)
    with pytest.raises(ValueError, match="batch_size"):
        _run(split, 4, resume=True, batch_size=2)
    assert _run(split, 4, resume=True) == 4
    a = torch.load(straight / tm.CHECKPOINT, weights_only=False)
    b = torch.load(split / tm.CHECKPOINT, weights_only=False)
    assert a["step"] == b["step"] == 4
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=0, atol=0)
    with open(split / tm.EVAL_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    # the baseline row (a resumed run does not repeat it) and a final row whenever a run reaches its max_steps
    assert [int(r["step"]) for r in rows] == [0, 2, 4]
    assert float(rows[0]["heldout_loss"]) > 0 and 0.0 <= float(rows[0]["heldout_acc_t05"]) <= 1.0
    assert (split / tm.BEST).is_file() and not list(split.glob(".*.tmp"))
