# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sinkprune analyze` end to end on tiny saved models."""

from __future__ import annotations

import json
import os

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from optimum_sinkprune.analysis import SinkReport
from optimum_sinkprune.commands import analyze
from optimum_sinkprune.commands.cli import main
from optimum_sinkprune.models import LLaDAConfig, LLaDAModelLM

torch.set_num_threads(1)
WORDS = "the a of and to in is it that was he for on are with as his they be at".split()


def save_tokenizer(path):
    vocab = {w: i for i, w in enumerate(["[PAD]", "[BOS]", "[EOS]", "[MASK]", "[UNK]"] + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="[BOS]", eos_token="[EOS]", pad_token="[PAD]", mask_token="[MASK]",
        unk_token="[UNK]",
    ).save_pretrained(path)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    dlm = LLaDAModelLM(LLaDAConfig(
        d_model=32, n_heads=2, n_layers=2, mlp_hidden_size=48, vocab_size=32, embedding_size=32, mask_token_id=3,
        bos_token_id=1, pad_token_id=0, eos_token_id=2, max_sequence_length=64,
    ))
    ar = LlamaForCausalLM(LlamaConfig(
        hidden_size=32, num_attention_heads=2, num_key_value_heads=2, num_hidden_layers=2, intermediate_size=48,
        vocab_size=32, max_position_embeddings=64, bos_token_id=1, pad_token_id=0, eos_token_id=2,
    ))
    paths = {}
    for name, model in (("dlm", dlm), ("ar", ar)):
        path = root / name
        model.save_pretrained(path)
        save_tokenizer(path)
        paths[name] = str(path)
    data = root / "texts.jsonl"
    g = torch.Generator().manual_seed(0)
    with open(data, "w") as f:
        for _ in range(4):
            words = [WORDS[i] for i in torch.randint(0, len(WORDS), (30,), generator=g)]
            f.write(json.dumps({"text": " ".join(words)}) + "\n")
        f.write(json.dumps({"text": "the a of"}) + "\n")  # a short one: padded
    paths["data"] = str(data)
    return paths


@pytest.mark.slow
def test_analyze_writes_report_and_plots(saved, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    rc = main([
        "analyze", saved["dlm"], "--output", str(out), "--ar-baseline", saved["ar"], "--steps", "6",
        "--sample-interval", "2", "--num-samples", "5", "--seq-len", "16", "--data", saved["data"],
        "--gen-length", "4", "--prompt-len", "4", "--no-progress",
    ])
    assert rc == 0
    report = SinkReport.from_json(str(out / "sink_report.json"))
    assert report.trajectory.tokens.shape == (3, 5, 16)
    first = report.trajectory.tokens[:, :, 0]  # BOS prepended; LLaDA's noise (as in calibration) may mask it
    assert torch.all((first == 1) | (first == 3)) and (first == 1).any()
    assert not report.trajectory.valid[4, 4:].any()  # the short text is padded
    assert report.ar_trajectory is not None and not report.ar_trajectory.is_diffusion
    assert report.generation is not None
    for name in ("sink_heatmap.png", "variance_distribution.png", "mass_profiles.png", "summary.md"):
        assert os.path.getsize(out / name) > 0
    assert "heads whose sink moves" in capsys.readouterr().out


@pytest.mark.slow
def test_analyze_plain_text_data_and_no_plots(saved, tmp_path):
    data = tmp_path / "texts.txt"
    data.write_text("the a of and to in is it\n\nthat was he for on are\n")
    out = tmp_path / "out"
    rc = main([
        "analyze", saved["dlm"], "--output", str(out), "--steps", "2", "--sample-interval", "1",
        "--data", str(data), "--no-plots", "--no-progress",
    ])
    assert rc == 0
    report = SinkReport.from_json(str(out / "sink_report.json"))
    assert report.trajectory.tokens.shape[1] == 2
    assert not (out / "sink_heatmap.png").exists()


@pytest.mark.slow
def test_analyze_with_a_block_on_disk_reports_what_memory_does(saved, tmp_path):
    common = ["--steps", "4", "--sample-interval", "2", "--num-samples", "3", "--seq-len", "16", "--data",
              saved["data"], "--no-plots", "--no-progress"]
    placement = {"model.transformer.wte": "cpu", "model.transformer.blocks.0": "cpu",
                 "model.transformer.blocks.1": "disk", "model.transformer.ln_f": "cpu",
                 "model.transformer.ff_out": "cpu"}
    assert main(["analyze", saved["dlm"], "--output", str(tmp_path / "mem"), *common]) == 0
    assert main(["analyze", saved["dlm"], "--output", str(tmp_path / "off"), *common, "--device-map",
                 json.dumps(placement), "--offload-folder", str(tmp_path / "offload")]) == 0
    mem = SinkReport.from_json(str(tmp_path / "mem" / "sink_report.json")).trajectory
    off = SinkReport.from_json(str(tmp_path / "off" / "sink_report.json")).trajectory
    assert torch.equal(mem.tokens, off.tokens)
    torch.testing.assert_close(off.mass, mem.mass, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_bad_arguments_are_errors(saved, tmp_path, capsys):
    rc = main(["analyze", saved["dlm"], "--output", str(tmp_path), "--steps", "4", "--sample-interval", "5"])
    assert rc == 2 and "--sample-interval" in capsys.readouterr().err
    rc = main(["analyze", saved["dlm"], "--output", str(tmp_path), "--data", str(tmp_path / "none.jsonl")])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    long_text = tmp_path / "long.txt"
    long_text.write_text(" ".join(WORDS * 5) + "\n")
    rc = main(["analyze", saved["dlm"], "--output", str(tmp_path), "--seq-len", "80", "--data", str(long_text),
               "--steps", "2", "--sample-interval", "1", "--no-progress"])
    assert rc == 2 and "longer than the model's maximum of 64" in capsys.readouterr().err


def test_never_trusts_remote_code_unless_asked(monkeypatch, tmp_path):
    from transformers import LlamaConfig

    LlamaConfig().save_pretrained(tmp_path)  # a local checkpoint folder: nothing about it is asked of the Hub
    seen = []

    def fake(name, **kwargs):
        seen.append(kwargs.get("trust_remote_code"))
        raise ValueError("stop")

    import transformers

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", fake)
    from optimum_sinkprune.hub.load import load_model_and_tokenizer  # what analyze loads with

    with pytest.raises(ValueError, match="stop"):
        load_model_and_tokenizer(str(tmp_path), trust_remote_code=False)
    with pytest.raises(ValueError, match="stop"):
        load_model_and_tokenizer(str(tmp_path), trust_remote_code=True)
    assert seen == [False, True]
    args = __import__("argparse").ArgumentParser()
    analyze.add_arguments(args)
    assert args.parse_args(["m", "--output", "o"]).trust_remote_code is False
