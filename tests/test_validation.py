# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`optimum_sinkprune.validation`: checks made before any calibration or weight change.

Classes of bad input covered here (each for every field, method or reader it applies to):
* non-finite parameters (weights, biases, norms, embeddings; NaN buffers) for every registered method;
* a run that would remove nothing (a zero budget in the config, or a positive one that rounds to nothing);
* text inputs: empty lists, non-text elements, folders, files that are not UTF-8, for every text reader.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from optimum_sinkprune.configuration import SinkAwarePruningConfig
from optimum_sinkprune.methods import layer_mask
from optimum_sinkprune.pruner import SinkAwarePruner
from optimum_sinkprune.registry import get_method, method_names
from optimum_sinkprune.validation import (
    NonFiniteWeightsError,
    check_finite_parameters,
    first_non_finite,
    smallest_removing_sparsity,
    weights_removed,
)

SMALL = dict(num_samples=2, seq_len=16, diffusion_steps=10, sample_interval=5, block_size=32)


def _ids(n=2, s=16, seed=0):
    return torch.randint(2, 120, (n, s), generator=torch.Generator().manual_seed(seed))


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_unchanged(model, before):
    for k, v in model.state_dict().items():  # bitwise, NaN where there was NaN
        torch.testing.assert_close(v, before[k], rtol=0, atol=0, equal_nan=True, msg=f"{k} was modified")


def _config(method: str) -> SinkAwarePruningConfig:
    if get_method(method).family == "experts":
        return SinkAwarePruningConfig(method=method, expert_ratio=0.5, **SMALL)
    if get_method(method).family == "structured":
        return SinkAwarePruningConfig(method=method, target_param_reduction=0.2, **SMALL)
    return SinkAwarePruningConfig(method=method, sparsity=0.5, **SMALL)


class _NoCalibration:
    """Fails the test if any calibration or scoring step runs (the checks must come first)."""

    def __init__(self, monkeypatch):
        from optimum_sinkprune.calibration import engine
        from optimum_sinkprune.structured import pruner as structured_pruner

        def fail(*args, **kwargs):
            raise AssertionError("calibration ran before the input was refused")

        monkeypatch.setattr(engine, "run_method", fail)
        monkeypatch.setattr(structured_pruner, "collect_structured_statistics", fail)
        monkeypatch.setattr(structured_pruner, "score_heads_and_channels", fail)


# ---------------------------------------------------------------------------------------------------------------------
# non-finite parameters
# ---------------------------------------------------------------------------------------------------------------------
# (parameter, index, value): a projection weight of the last block, a norm, the embedding, the output head
POISON = [
    ("model.transformer.blocks.1.ff_out.weight", (0, 0), float("nan")),
    ("model.transformer.blocks.0.attn_norm.weight", (5,), float("inf")),
    ("model.transformer.wte.weight", (3, 1), float("-inf")),
    ("model.transformer.ff_out.weight", (2, 2), float("nan")),
]


@pytest.mark.parametrize("method", method_names())
@pytest.mark.parametrize("name,index,value", POISON)
def test_non_finite_weight_named_before_any_work(tiny_llada, monkeypatch, method, name, index, value):
    with torch.no_grad():
        tiny_llada.get_parameter(name)[index] = value
    before = _state(tiny_llada)
    _NoCalibration(monkeypatch)
    with pytest.raises(NonFiniteWeightsError, match=rf"parameter '{name}' \(shape \[\d+(, \d+)?\]\) holds 1 "
                                                    rf"{'NaN' if value != value else 'inf'}"):
        SinkAwarePruner(tiny_llada).prune(_config(method), _ids(), progress=False)
    _assert_unchanged(tiny_llada, before)


def test_non_finite_weight_is_also_a_value_error_and_structured_entry_checks_too(tiny_dream):
    from optimum_sinkprune.structured import prune_structured

    with torch.no_grad():
        tiny_dream.model.layers[1].self_attn.q_proj.bias[0] = float("nan")  # Dream's q/k/v carry biases
    config = SinkAwarePruningConfig(method="magnitude_heads", head_ratio=0.25)
    with pytest.raises(ValueError, match=r"model\.layers\.1\.self_attn\.q_proj\.bias"):
        prune_structured(tiny_dream, config=config, calibration_ids=None)
    with pytest.raises(FloatingPointError):
        check_finite_parameters(tiny_dream)


def test_first_non_finite_is_pure_and_ordered(monkeypatch):
    from optimum_sinkprune import validation

    monkeypatch.setattr(validation, "_CHUNK", 1 << 10)  # small scan chunks, so a small tensor spans several
    good, nan, inf = torch.ones(3), torch.tensor([1.0, float("nan"), float("nan")]), torch.tensor([float("inf")])
    assert first_non_finite([("a", good), ("ids", torch.tensor([1, 2]))]) is None  # integers are never bad
    found = first_non_finite([("a", good), ("b", inf), ("c", nan)])
    assert (found.name, found.nan, found.inf, found.shape) == ("b", 0, 1, (1,))
    assert first_non_finite([("mask", inf)], allow_inf=True) is None  # masks hold -inf on purpose
    assert first_non_finite([("c", nan)], allow_inf=True).nan == 2
    assert first_non_finite([("m", torch.empty(4, device="meta"))]) is None  # not materialised: nothing to read
    big = torch.zeros(3 * validation._CHUNK + 5)  # spans several scan chunks
    big[-1] = float("nan")
    assert first_non_finite([("big", big)]).nan == 1
    assert nan.isnan().sum() == 2 and torch.equal(good, torch.ones(3))  # inputs untouched


def test_nan_buffer_is_named_and_inf_buffer_is_allowed():
    module = nn.Linear(2, 2)
    module.register_buffer("causal_mask", torch.tensor([0.0, float("-inf")]))
    check_finite_parameters(module)
    module.register_buffer("inv_freq", torch.tensor([1.0, float("nan")]))
    with pytest.raises(NonFiniteWeightsError, match=r"buffer 'inv_freq' \(shape \[2\]\) holds 1 NaN"):
        check_finite_parameters(module)


def test_real_activation_overflow_is_still_blamed_on_activations(tiny_llada):
    with torch.no_grad():  # finite weights, but the norm's output squares to inf
        tiny_llada.model.transformer.blocks[1].ff_norm.weight[3] = 1e38
    with pytest.raises(FloatingPointError, match=r"blocks\.1\.(ff_proj|up_proj).* activations overflow") as err:
        SinkAwarePruner(tiny_llada).prune(_config("wanda_diffusion"), _ids(), progress=False)
    assert not isinstance(err.value, NonFiniteWeightsError)


# ---------------------------------------------------------------------------------------------------------------------
# runs that would remove nothing
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", method_names("unstructured"))
def test_zero_sparsity_refused_in_config(method):
    with pytest.raises(ValueError, match=rf"sparsity=0.0 is not allowed for method='{method}': it must be a number "
                                         r"in \(0, 1\); 0 removes no weight"):
        SinkAwarePruningConfig(method=method, sparsity=0.0)


@pytest.mark.parametrize("method", method_names("structured"))
@pytest.mark.parametrize("budget,match", [
    (dict(target_param_reduction=0), r"target_param_reduction=0 is not allowed: it must be a number in \(0, 1\)"),
    (dict(target_param_reduction=0.0), r"target_param_reduction=0.0 is not allowed"),
    (dict(head_ratio=0.0), r"head_ratio=0.0 with mlp_ratio=None removes nothing: at least one .* in \(0, 1\)"),
    (dict(head_ratio=0, mlp_ratio=0), r"head_ratio=0 with mlp_ratio=0 removes nothing"),
])
def test_zero_structured_budget_refused_in_config(method, budget, match):
    with pytest.raises(ValueError, match=match):
        SinkAwarePruningConfig(method=method, **budget)
    # the structured entry point applies the same rule to configs of other types
    from optimum_sinkprune.structured.planner import validate_budget_args

    values = {**dict(target_param_reduction=None, head_ratio=None, mlp_ratio=None), **budget}
    with pytest.raises(ValueError, match=match):
        validate_budget_args(values["target_param_reduction"], values["head_ratio"], values["mlp_ratio"])


def test_structured_method_ignores_sparsity_zero():
    assert SinkAwarePruningConfig(method="sink_heads", target_param_reduction=0.2, sparsity=0.0).sparsity == 0.0


@pytest.mark.parametrize("method,budget,match", [
    ("sink_heads", dict(target_param_reduction=1e-6), r"target_param_reduction=1e-06 removes nothing from this model"
                                                      r": it asks for 0 of \d+ block parameters.*use target_param_"
                                                      r"reduction >= "),
    ("magnitude_heads", dict(head_ratio=0.01), r"head_ratio=0.01 and mlp_ratio=None remove nothing .* 0 of 8 head "
                                               r"units .*use head_ratio >= 0.125 or mlp_ratio >= "),
    ("activation_heads", dict(mlp_ratio=0.001), r"mlp_ratio=0.001 remove nothing"),
])
def test_structured_budget_rounding_to_nothing_refused_before_calibration(tiny_llada, monkeypatch, method, budget,
                                                                          match):
    before = _state(tiny_llada)
    _NoCalibration(monkeypatch)
    with pytest.raises(ValueError, match=match):
        SinkAwarePruner(tiny_llada).prune(SinkAwarePruningConfig(method=method, **budget, **SMALL), _ids(),
                                          progress=False)
    _assert_unchanged(tiny_llada, before)


def test_suggested_structured_budget_removes_something(tiny_llada):
    with pytest.raises(ValueError, match="use target_param_reduction >= ") as err:
        SinkAwarePruner(tiny_llada).prune(SinkAwarePruningConfig(method="magnitude_heads",
                                                                 target_param_reduction=1e-6), progress=False)
    suggested = float(str(err.value).split(">= ")[1].split(" ")[0])
    _, report = SinkAwarePruner(tiny_llada).prune(
        SinkAwarePruningConfig(method="magnitude_heads", target_param_reduction=suggested), progress=False)
    assert report.structured["params_after"] < report.structured["params_before"]


@pytest.mark.parametrize("method", method_names("unstructured"))
def test_sparsity_rounding_to_no_weight_refused_before_calibration(tiny_llada, monkeypatch, method):
    before = _state(tiny_llada)
    _NoCalibration(monkeypatch)
    with pytest.raises(ValueError, match=rf"sparsity=1e-07 removes no weight from the 14 target layers of method "
                                         rf"'{method}'.*use sparsity >= "):
        SinkAwarePruner(tiny_llada).prune(SinkAwarePruningConfig(method=method, sparsity=1e-7, **SMALL), _ids(),
                                          progress=False)
    _assert_unchanged(tiny_llada, before)


@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])  # matrix, per-row, SparseGPT blocks
@pytest.mark.parametrize("shape", [(7, 3), (16, 40), (5, 70)])
def test_removal_counts_match_the_masks(method, shape):
    """`weights_removed` is what `layer_mask` really removes, and the suggested smallest sparsity removes some."""
    spec = get_method(method)
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(shape, generator=gen)
    statistic = torch.eye(shape[1]) if spec.reconstruct else (torch.rand(shape[1], generator=gen) + 0.5)
    options = dict(per_row=spec.per_row, reconstruct=spec.reconstruct, block_size=32)
    smallest = smallest_removing_sparsity(shape, **options)
    for sparsity in (smallest * 0.9, smallest, 0.3, 0.5):
        mask, _ = layer_mask(spec, weight, statistic, sparsity=sparsity, nm=None, block_size=32, dampening=0.01)
        assert int(mask.sum()) == weights_removed(shape, sparsity, nm=None, **options)
    assert weights_removed(shape, smallest * 0.9, nm=None, **options) == 0 < weights_removed(shape, smallest, nm=None,
                                                                                             **options)
    assert weights_removed((4, 8), 0.5, nm=(2, 4), **options) == 16


# ---------------------------------------------------------------------------------------------------------------------
# text inputs: every reader of texts and text files
# ---------------------------------------------------------------------------------------------------------------------
class _WordTokenizer:
    bos_token_id, eos_token_id = 1, 2

    def __call__(self, text, add_special_tokens=False, verbose=True):
        return {"input_ids": [10 + len(w) for w in text.split()]}

    def decode(self, ids, skip_special_tokens=False):
        return " ".join("w" * (i - 10) for i in ids)


def _readers():
    """Every way the package reads texts from a file: (name, reader(path))."""
    from optimum_sinkprune.calibration.data import get_calibration_dataset, read_texts
    from optimum_sinkprune.calibration.datasets import load_dataset_texts
    from optimum_sinkprune.evaluation import data as evaluation_data

    return {
        "read_texts": lambda p: read_texts(p, what="held-out"),
        "evaluation.read_texts": lambda p: evaluation_data.read_texts(p),
        "get_calibration_dataset": lambda p: get_calibration_dataset(_WordTokenizer(), p, num_samples=1, seq_len=2),
        "load_dataset_texts": lambda p: load_dataset_texts(p),
    }


def _in_memory_consumers():
    """Every function taking a list of texts: (name, consumer(texts), how it names them)."""
    from optimum_sinkprune.calibration.data import get_calibration_dataset
    from optimum_sinkprune.evaluation.data import build_eval_sequences, build_generation_prompts

    tok = _WordTokenizer()
    return {
        "get_calibration_dataset": (lambda t: get_calibration_dataset(tok, t, num_samples=1, seq_len=2),
                                    "calibration data"),
        "build_eval_sequences": (lambda t: build_eval_sequences(tok, t, seq_len=2, num_sequences=1), "texts"),
        "build_generation_prompts": (lambda t: build_generation_prompts(tok, t, num_prompts=1, prompt_tokens=1,
                                                                        reference_tokens=1), "texts"),
    }


@pytest.mark.parametrize("reader", list(_readers()))
@pytest.mark.parametrize("suffix,body,line,byte", [
    (".txt", b"first line\nsecond caf\xe9 line\n", 2, 11),  # latin-1 e-acute
    (".jsonl", b'{"text": "ok"}\n\n{"text": "\xff\xfe"}\n', 3, 11),
    (".raw", b"\xff\xfeU\x00T\x00F\x00", 1, 1),  # UTF-16 with its byte-order mark
])
def test_non_utf8_file_names_the_line_and_the_fix(tmp_path, reader, suffix, body, line, byte):
    path = tmp_path / f"data{suffix}"
    path.write_bytes(body)
    with pytest.raises(ValueError, match=rf"'{path}' is not UTF-8 text: line {line}, byte {byte} \(0x[0-9a-f]{{2}}\)"
                                         rf".*iconv -f LATIN1 -t UTF-8 .*encoding='utf-8'") as err:
        _readers()[reader](path)
    assert not isinstance(err.value, UnicodeDecodeError)  # ours, not the codec's bare error


@pytest.mark.parametrize("reader", list(_readers()))
def test_folder_is_reported_as_a_folder(tmp_path, reader):
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "part1.txt").write_text("some text here\n", encoding="utf-8")
    with pytest.raises(OSError, match=rf"'{folder}' is a folder") as err:
        _readers()[reader](folder)
    assert "does not exist" not in str(err.value)
    missing = tmp_path / "missing.txt"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _readers()[reader](missing)


@pytest.mark.parametrize("consumer", list(_in_memory_consumers()))
@pytest.mark.parametrize("texts,match", [
    ([], r" is an empty list; give at least one text"),
    ((), r" is an empty tuple"),
    (["a text", 1], r": element 1 is an int \(1\), not a text; every element must be a str; token ids go in a torch"),
    ([None], r": element 0 is a NoneType \(None\), not a text"),
    (["fine", b"bytes"], r": element 1 is a bytes \(b'bytes'\)"),
    (["", "  \n"], r": all 2 texts are empty or blank"),
])
def test_bad_text_lists_say_what_is_wrong(consumer, texts, match):
    call, argument = _in_memory_consumers()[consumer]
    with pytest.raises(ValueError, match=rf"^{argument}{match}") as err:
        call(texts)
    assert "not supported" not in str(err.value)


def test_bad_calibration_list_refused_before_any_weight_changes(tiny_llada):
    before = _state(tiny_llada)
    with pytest.raises(ValueError, match=r"calibration data: element 2 is an int"):
        SinkAwarePruner(tiny_llada, _WordTokenizer()).prune(_config("wanda"), ["one text", "two", 3], progress=False)
    _assert_unchanged(tiny_llada, before)


def test_valid_text_inputs_still_read(tmp_path):
    from optimum_sinkprune.calibration.data import read_texts

    path = tmp_path / "ok.jsonl"
    path.write_text(json.dumps({"text": "café ünïcode"}) + "\n", encoding="utf-8")
    assert read_texts(path) == ["café ünïcode"]
    plain = tmp_path / "ok.txt"
    plain.write_bytes("a\r\nb\n".encode("utf-8"))
    assert read_texts(plain) == ["a", "b"]


@pytest.mark.parametrize("reader,name", [
    ("pruning config", "sink_pruning_config.json"),
    ("model config", "config.json"),
    ("sink report", "report.json"),
])
def test_json_files_not_utf8_or_folders_are_named(tmp_path, reader, name):
    from optimum_sinkprune.analysis.report import SinkReport
    from optimum_sinkprune.presets import load_model_config

    read = {"pruning config": SinkAwarePruningConfig.from_pretrained, "model config": load_model_config,
            "sink report": SinkReport.from_json}[reader]
    path = tmp_path / name
    path.write_bytes(b'{\n  "note": "caf\xe9"\n}\n')
    with pytest.raises(ValueError, match=rf"{reader} file '{path}' is not UTF-8 text: line 2, byte 15"):
        read(path)
    if reader == "sink report":
        with pytest.raises(IsADirectoryError, match=rf"sink report file '{tmp_path}' is a folder"):
            read(tmp_path)


def test_int_fields_are_checked_with_the_minimum_declared_on_them():
    from dataclasses import dataclass

    from optimum_sinkprune.validation import check_int_fields, int_field

    @dataclass
    class Sizes:
        count: int = int_field(2)
        offset: int = int_field(0, minimum=0)
        label: str = "x"  # not an int_field: never checked

        def __post_init__(self):
            check_int_fields(self)

    assert (Sizes().count, Sizes(offset=0).offset, Sizes(label=None).label) == (2, 0, None)
    with pytest.raises(ValueError, match=r"count=0 is not allowed; it must be an integer >= 1"):
        Sizes(count=0)
    with pytest.raises(ValueError, match=r"offset=-1 is not allowed; it must be an integer >= 0"):
        Sizes(offset=-1)
    with pytest.raises(ValueError, match=r"count=True"):
        Sizes(count=True)
    with pytest.raises(ValueError, match=r"count=0"):  # in field order
        Sizes(count=0, offset=-1)
