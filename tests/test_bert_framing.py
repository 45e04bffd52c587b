# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""BERT-family inputs framed as in pretraining: calibration windows, held-out sequences and prompts, sink-analysis
inputs and the sampler's canvas are [CLS] … [SEP] (RoBERTa <s> … </s>) of exactly the asked length, the noise keeps
the framing clean, the returned generation leaves the framing out unless asked; an encoder checkpoint without its
masked-LM head is refused at load with the head named."""

from __future__ import annotations

import pytest
import torch
from bert_fixtures import CLS_ID, FAMILIES, MASK_ID, PAD_ID, SEP_ID, VOCAB, tiny_masked_lm

from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.calibration.data import get_calibration_dataset, input_framing
from optimum_sinkprune.calibration.noise import NoiseSchedule
from optimum_sinkprune.diffusion import generate

TEXTS = ["in the beginning god created the heaven and the earth. " * 3,
         "and the earth was without form, and void; and darkness was upon the face of the deep. " * 2,
         "to be, or not to be, that is the question: whether 'tis nobler in the mind to suffer. " * 2]


class WordPieceLike:
    """One token per character (ids 8..57, inside the tiny vocabulary); [CLS] / [SEP] as BERT's tokenizer names them,
    no BOS / EOS, and a pair encoding's segment ids that must never reach the model."""

    cls_token_id, sep_token_id, pad_token_id, mask_token_id = CLS_ID, SEP_ID, PAD_ID, MASK_ID

    def __call__(self, text, add_special_tokens=False, verbose=True):
        ids = [8 + ord(c) % 50 for c in text]
        return {"input_ids": [CLS_ID, *ids, SEP_ID] if add_special_tokens else ids}

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(97 + (i - 8) % 26) for i in ids if not skip_special_tokens or i >= 8)


class RobertaLike(WordPieceLike):
    """RoBERTa's tokenizer as the framing reads it: <s> / </s> as BOS / EOS (EOS also joins the documents)."""

    cls_token_id = sep_token_id = None
    bos_token_id, eos_token_id, pad_token_id = CLS_ID, SEP_ID, 1


class Plain(WordPieceLike):
    """A tokenizer that names no framing ids (ModernBERT's config does)."""

    cls_token_id = sep_token_id = None


TOKENIZERS = {"bert": WordPieceLike, "roberta": RobertaLike, "modernbert": Plain}


def _stream(tokenizer) -> str:
    ids = []
    for text in TEXTS:
        ids += tokenizer(text)["input_ids"] + ([tokenizer.eos_token_id] if getattr(tokenizer, "eos_token_id", None)
                                               is not None else [])
    return "," + ",".join(map(str, ids)) + ","


def _is_cut_from(row: torch.Tensor, stream: str) -> bool:
    return "," + ",".join(map(str, row.tolist())) + "," in stream


# ---------------------------------------------------------------------------------------------------------------------
# windows cut from text
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_calibration_windows_are_framed_with_exact_length(family):
    model, tokenizer = tiny_masked_lm(family), TOKENIZERS[family]()
    assert input_framing(model, tokenizer) == ([CLS_ID], [SEP_ID])
    ids = get_calibration_dataset(tokenizer, TEXTS, num_samples=6, seq_len=20, seed=3, model=model)
    assert ids.shape == (6, 20) and ids.dtype == torch.long
    assert torch.all(ids[:, 0] == CLS_ID) and torch.all(ids[:, -1] == SEP_ID)
    stream = _stream(tokenizer)
    assert all(_is_cut_from(row[1:-1], stream) for row in ids)  # 18 consecutive text tokens in between
    raw = get_calibration_dataset(tokenizer, TEXTS, num_samples=6, seq_len=20, seed=3, model=model, add_bos=False)
    assert all(_is_cut_from(row, stream) for row in raw)  # add_bos=False: raw windows, no framing at all
    with pytest.raises(ValueError, match="seq_len=2 leaves no text between the framing tokens"):
        get_calibration_dataset(tokenizer, TEXTS, num_samples=2, seq_len=2, model=model)


def test_a_token_stream_is_framed_and_given_rows_are_used_as_they_are():
    model, tokenizer = tiny_masked_lm("bert"), WordPieceLike()
    stream = torch.arange(8, 60)
    ids = get_calibration_dataset(tokenizer, stream, num_samples=3, seq_len=10, model=model)
    assert torch.all(ids[:, 0] == CLS_ID) and torch.all(ids[:, -1] == SEP_ID)
    assert all(torch.equal(row[1:-1], torch.arange(int(row[1]), int(row[1]) + 8)) for row in ids)
    rows = torch.randint(8, VOCAB, (3, 12))
    assert torch.equal(get_calibration_dataset(None, rows, num_samples=3, seq_len=12, model=model), rows)


def test_framing_ids_missing_everywhere_are_named():
    model = tiny_masked_lm("bert")  # BertConfig names no [CLS] / [SEP]

    class NoIds(Plain):
        pass

    with pytest.raises(ValueError, match="cls_token_id/bos_token_id") as err:
        get_calibration_dataset(NoIds(), TEXTS, num_samples=2, seq_len=12, model=model)
    assert "config.cls_token_id" in str(err.value) and "BertConfig" in str(err.value)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_family_noise_never_masks_the_framing(family):
    from optimum_sinkprune.configuration import SinkAwarePruningConfig

    model, tokenizer = tiny_masked_lm(family), TOKENIZERS[family]()
    ids = get_calibration_dataset(tokenizer, TEXTS, num_samples=8, seq_len=16, seed=0, model=model)
    config = SinkAwarePruningConfig(method="sink_wanda", num_samples=8, seq_len=16, diffusion_steps=10,
                                    sample_interval=1)
    schedule = NoiseSchedule.from_config(config, get_adapter(model))
    assert schedule.protected == "first_last"
    noised, times = schedule.noised(ids, MASK_ID)
    assert torch.all(noised[..., 0] == CLS_ID) and torch.all(noised[..., -1] == SEP_ID)
    body = noised[..., 1:-1]
    assert (body == MASK_ID).any() and (body != MASK_ID).any() and times.max() > 0.5


def test_padded_analysis_inputs_keep_their_own_sep_clean():
    from optimum_sinkprune.commands.analyze import tokenize_texts

    model, tokenizer = tiny_masked_lm("bert"), WordPieceLike()
    texts = ["short one", "a somewhat longer passage of text here", "mid length text"]
    ids, mask = tokenize_texts(tokenizer, texts, num_samples=3, seq_len=24, model=model)
    lengths = mask.sum(1)
    assert ids.shape == (3, 24) and lengths.tolist() == [11, 24, 17]
    for row, n, text in zip(ids, lengths.tolist(), texts):
        assert row[0] == CLS_ID and row[n - 1] == SEP_ID and torch.all(row[n:] == PAD_ID)
        assert row[1:n - 1].tolist() == tokenizer(text)["input_ids"][: 22]
    schedule = NoiseSchedule(diffusion_steps=8, sample_interval=1, schedule="uniform", protected="first_last",
                             noise_eps=0.5, seed=0)
    noised, _ = schedule.noised(ids, MASK_ID, attention_mask=mask)
    assert (noised == MASK_ID).any()
    for row, n in zip(noised, lengths.tolist()):  # [steps, seq] per sample
        assert torch.all(row[:, 0] == CLS_ID) and torch.all(row[:, n - 1] == SEP_ID)
        assert torch.all(row[:, n:] == PAD_ID)


def test_the_paper_windows_of_a_framing_family_are_framed():
    from optimum_sinkprune.calibration.datasets import paper_calibration_windows, paper_token_stream

    model, tokenizer = tiny_masked_lm("roberta"), RobertaLike()
    windows = paper_calibration_windows(tokenizer, TEXTS, num_samples=4, seq_len=16, seed=0, model=model)
    assert windows.shape == (4, 16)
    assert torch.all(windows[:, 0] == CLS_ID) and torch.all(windows[:, -1] == SEP_ID)
    stream = "," + ",".join(map(str, paper_token_stream(tokenizer, TEXTS).tolist())) + ","
    assert all(_is_cut_from(row[1:-1], stream) for row in windows)


@pytest.mark.parametrize("family", ["bert", "modernbert"])
def test_held_out_sequences_and_prompts_are_framed(family):
    from optimum_sinkprune.evaluation.evaluator import EvaluationSettings, Evaluator

    model, tokenizer = tiny_masked_lm(family), TOKENIZERS[family]()
    settings = EvaluationSettings(num_sequences=4, seq_len=24, mc_num=1, batch_size=4, num_prompts=2,
                                  prompt_tokens=8, gen_length=4, steps=4)
    evaluator = Evaluator(tokenizer, texts=TEXTS, dense_model=model, settings=settings, progress=False)
    seqs = evaluator.sequences
    assert seqs.shape == (4, 24) and torch.all(seqs[:, 0] == CLS_ID) and torch.all(seqs[:, -1] == SEP_ID)
    assert not evaluator.maskable[:, [0, -1]].any() and evaluator.maskable[:, 1:-1].all()
    assert all(p.prompt_ids[0] == CLS_ID and SEP_ID not in p.prompt_ids for p in evaluator.prompts)
    with _SeenInputs(model) as seen:  # the BertConfig names no [SEP]: the evaluator hands the sampler its tokenizer
        outputs = evaluator.generate_outputs(model)
    assert len(outputs) == 2 and all(isinstance(o, str) for o in outputs)
    assert seen and all(torch.all(c[:, 0] == CLS_ID) and torch.all(c[:, -1] == SEP_ID) for c in seen)
    likelihood = evaluator.likelihood(model)
    assert likelihood.num_tokens == 4 * 22 and all(d > 0 for d in likelihood.draws)


def test_data_free_samples_are_framed_with_exact_length():
    model, tokenizer = tiny_masked_lm("modernbert"), Plain()
    ids = get_calibration_dataset(tokenizer, None, num_samples=3, seq_len=12, seed=0, model=model,
                                  generation_steps=2)
    assert ids.shape == (3, 12)
    assert torch.all(ids[:, 0] == CLS_ID) and torch.all(ids[:, -1] == SEP_ID)
    assert not (ids == MASK_ID).any()


# ---------------------------------------------------------------------------------------------------------------------
# the sampler's canvas
# ---------------------------------------------------------------------------------------------------------------------
class _SeenInputs:
    """Records the input_ids of every forward of `model`."""

    def __init__(self, model):
        self.model, self.seen = model, []

    def __enter__(self):
        self.handle = self.model.register_forward_pre_hook(
            lambda module, args, kwargs: self.seen.append(kwargs["input_ids"].clone()), with_kwargs=True)
        return self.seen

    def __exit__(self, *exc):
        self.handle.remove()


@pytest.mark.parametrize("family", FAMILIES)
def test_the_model_sees_the_canvas_framed_and_the_caller_gets_the_text(family):
    model, tokenizer = tiny_masked_lm(family), TOKENIZERS[family]()
    prompt = torch.randint(8, VOCAB, (2, 5), generator=torch.Generator().manual_seed(0))  # no [CLS]
    with _SeenInputs(model) as seen:
        out = generate(model, prompt, steps=4, gen_length=8, block_length=4, tokenizer=tokenizer,
                       return_trajectory=True)
    assert len(seen) == 4
    for canvas in seen:  # [CLS] prompt generated [SEP]
        assert canvas.shape == (2, 1 + 5 + 8 + 1)
        assert torch.all(canvas[:, 0] == CLS_ID) and torch.all(canvas[:, -1] == SEP_ID)
        assert torch.equal(canvas[:, 1:6], prompt)
    assert out.sequences.shape == (2, 13) and torch.equal(out.sequences[:, :5], prompt)
    assert not (out.sequences == MASK_ID).any()
    assert all(c.shape == (2, 13) for c in out.trajectory) and torch.equal(out.trajectory[-1], out.sequences)

    framed = generate(model, prompt, steps=4, gen_length=8, block_length=4, tokenizer=tokenizer, keep_framing=True)
    assert framed.sequences.shape == (2, 15)
    assert torch.all(framed.sequences[:, 0] == CLS_ID) and torch.all(framed.sequences[:, -1] == SEP_ID)
    assert torch.equal(framed.sequences[:, 1:-1], out.sequences)  # greedy: the same text either way


def test_a_prompt_that_opens_with_cls_keeps_it_and_only_sep_is_added():
    model, tokenizer = tiny_masked_lm("bert"), WordPieceLike()
    prompt = torch.tensor([[CLS_ID, 10, 11, 12], [CLS_ID, 20, 21, 22]])
    with _SeenInputs(model) as seen:
        out = generate(model, prompt, steps=2, gen_length=4, block_length=4, tokenizer=tokenizer)
    assert all(c.shape == (2, 9) and torch.all(c[:, -1] == SEP_ID) for c in seen)
    assert out.sequences.shape == (2, 8) and torch.equal(out.sequences[:, :4], prompt)
    kept = generate(model, prompt, steps=2, gen_length=4, block_length=4, tokenizer=tokenizer, keep_framing=True)
    assert kept.sequences.shape == (2, 9) and torch.equal(kept.sequences[:, :-1], out.sequences)
    with pytest.raises(ValueError, match=r"rows \[0\] begin with the framing ids \[2\] and rows \[1\] do not"):
        generate(model, torch.tensor([[CLS_ID, 10], [9, 10]]), steps=2, gen_length=2, block_length=2,
                 tokenizer=tokenizer)


def test_left_padded_prompts_get_cls_after_their_padding():
    model, tokenizer = tiny_masked_lm("bert"), WordPieceLike()
    prompt = torch.tensor([[PAD_ID, PAD_ID, 10, 11], [12, 13, 14, 15]])
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    out = generate(model, prompt, steps=2, gen_length=4, block_length=4, tokenizer=tokenizer, attention_mask=mask,
                   keep_framing=True, cfg_scale=1.0)
    assert out.sequences[0, :5].tolist() == [PAD_ID, PAD_ID, CLS_ID, 10, 11]
    assert out.sequences[1, :5].tolist() == [CLS_ID, 12, 13, 14, 15]
    assert torch.all(out.sequences[:, -1] == SEP_ID)
    assert out.attention_mask.tolist() == [[0, 0] + [1] * 8, [1] * 10]
    plain = generate(model, prompt, steps=2, gen_length=4, block_length=4, tokenizer=tokenizer, attention_mask=mask,
                     cfg_scale=1.0)
    assert torch.equal(plain.sequences[:, :4], prompt) and torch.equal(plain.attention_mask, torch.cat(
        [mask, torch.ones(2, 4, dtype=mask.dtype)], 1))
    assert torch.equal(plain.sequences[:, 4:], out.sequences[:, 5:-1])


def test_the_sampler_names_the_missing_framing_ids_and_the_bad_flag():
    model = tiny_masked_lm("bert")  # BertConfig names no [CLS] / [SEP], and no tokenizer is given
    with pytest.raises(ValueError, match="pass the model's tokenizer, or set config.cls_token_id"):
        generate(model, torch.tensor([[CLS_ID, 9]]), steps=2, gen_length=2, block_length=2)
    with pytest.raises(ValueError, match="keep_framing must be True or False, got 'yes'"):
        generate(model, torch.tensor([[CLS_ID, 9]]), steps=2, gen_length=2, block_length=2, keep_framing="yes",
                 tokenizer=WordPieceLike())
    with pytest.raises(ValueError, match=r"\+ 1 closing framing token\(s\) = 66 exceeds"):
        generate(model, torch.tensor([[CLS_ID] + [9] * 59]), steps=5, gen_length=5, block_length=5,
                 tokenizer=WordPieceLike())


def test_the_generation_trajectory_analyses_the_framed_canvases():
    from optimum_sinkprune.analysis.trajectory import generation_trajectory

    model = tiny_masked_lm("modernbert")  # its config names [CLS] / [SEP]
    traj = generation_trajectory(model, torch.tensor([[CLS_ID, 10, 11, 12]]), steps=4, gen_length=8,
                                 block_length=4, progress=False)
    assert traj.steps == [0, 1, 2, 3, 4]
    assert torch.isfinite(torch.as_tensor(traj.share)).all()
    canvas = generate(model, torch.tensor([[CLS_ID, 10, 11, 12]]), steps=4, gen_length=8, block_length=4,
                      return_trajectory=True, keep_framing=True).trajectory
    assert all(c.shape == (1, 13) and c[0, -1] == SEP_ID for c in canvas)


# ---------------------------------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------------------------------
def test_an_encoder_checkpoint_without_mlm_head_is_refused_at_load(tmp_path):
    from bert_fixtures import tiny_config
    from transformers import BertModel

    from optimum_sinkprune.adapters import MissingMLMHeadError
    from optimum_sinkprune.hub.load import load_model

    BertModel(tiny_config("bert"), add_pooling_layer=False).save_pretrained(tmp_path)
    with pytest.raises(MissingMLMHeadError, match=r"`cls\.predictions`") as err:
        load_model(tmp_path)
    message = str(err.value)
    assert "AutoModelForMaskedLM" in message and "BertForMaskedLM(config)" in message and "freshly initialised" in message


def test_a_full_masked_lm_checkpoint_loads(tmp_path):
    from optimum_sinkprune.hub.load import load_model

    model = tiny_masked_lm("bert")
    model.save_pretrained(tmp_path)
    loaded = load_model(tmp_path)
    ids = torch.tensor([[CLS_ID, 9, 10, MASK_ID, SEP_ID]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, model(input_ids=ids).logits)


def test_single_sequences_are_one_segment_in_the_sampler():
    """A pair encoding's segment ids never reach the model: every forward the sampler runs passes zeros."""
    model, tokenizer = tiny_masked_lm("bert"), WordPieceLike()
    seen = []
    handle = model.register_forward_pre_hook(lambda m, a, kw: seen.append(kw.get("token_type_ids")), with_kwargs=True)
    try:
        generate(model, torch.tensor([[CLS_ID, 10, 11]]), steps=2, gen_length=2, block_length=2, tokenizer=tokenizer)
    finally:
        handle.remove()
    assert seen and all(t is not None and t.shape == (1, 6) and not t.any() for t in seen)


# ---------------------------------------------------------------------------------------------------------------------
# lm-evaluation-harness requests
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("estimator", ["official", "bernoulli"])
def test_lm_eval_requests_reach_the_model_framed(estimator):
    pytest.importorskip("lm_eval", reason="lm-eval is not installed (the `eval` / `test` extras)")
    from lm_eval.api.instance import Instance

    from optimum_sinkprune.evaluation.lm_eval_model import SinkPruneDLM

    model, tokenizer = tiny_masked_lm("bert"), WordPieceLike()
    lm = SinkPruneDLM(model=model, tokenizer=tokenizer, estimator=estimator, mc_num=2, batch_size=2, steps=2,
                      gen_length=2, is_check_greedy=True, max_length=16, progress=False)
    assert (lm.prefix, lm.suffix) == ([CLS_ID], [SEP_ID])
    with _SeenInputs(model) as seen:
        (logprob, _), = lm.loglikelihood([Instance("loglikelihood", {}, ("who is it", " here"), 0)])
        lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, ("a longer text, cut in windows",), 0)])
        lm.generate_until([Instance("generate_until", {}, ("say", {"max_gen_toks": 2}), 0)])
    assert logprob < 0 and len(seen) > 4
    for canvas in seen:
        assert canvas.shape[1] <= 16
        assert torch.all(canvas[:, 0] == CLS_ID) and torch.all(canvas[:, -1] == SEP_ID)
        assert not (canvas[:, 1:-1] == SEP_ID).any() and not (canvas[:, 1:] == CLS_ID).any()
