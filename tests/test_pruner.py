# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""SinkAwarePruner: bad input refused before any weight changes, determinism, report, structured delegation, saving."""

from __future__ import annotations

import copy
import dataclasses
import sys
import types

import pytest
import torch

from optimum_sinkprune.adapters import MissingMaskTokenError, get_adapter
from optimum_sinkprune.configuration import SinkAwarePruningConfig
from optimum_sinkprune.pruner import SinkAwarePruner, select_targets

SMALL = dict(num_samples=3, seq_len=16, diffusion_steps=10, sample_interval=5, block_size=32)


def _ids(n=3, s=16, seed=0):
    return torch.randint(2, 120, (n, s), generator=torch.Generator().manual_seed(seed))


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_unchanged(model, before):
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} was modified"


def _masks(model):
    return {n: (l.weight == 0) for n, l in get_adapter(model).linear_layers(model).items()}


@pytest.mark.parametrize("config_kwargs,data,error,match", [
    (dict(method="wanda"), _ids(3, 8), ValueError, "fewer than seq_len=16"),
    (dict(method="wanda"), torch.randint(0, 5, (6,)), ValueError, "holds 6 tokens, fewer than one sample needs"),
    (dict(method="wanda", seq_len=300), _ids(3, 300), ValueError, "seq_len=300 exceeds the model's maximum"),
    (dict(method="wanda"), _ids(2), ValueError, "2 rows, fewer than num_samples=3"),
    (dict(method="wanda"), torch.full((3, 16), 500), ValueError, r"must lie in \[0, 128\)"),
    (dict(method="sink_wanda", pattern="3:7", sparsity=1 - 3 / 7), _ids(), ValueError, "divisible by 7"),
    (dict(method="wanda", targets=["*.nothing"]), _ids(), ValueError, "matches no block linear layer"),
    (dict(method="sink_wanda", memory_limit_gb=1e-9), _ids(), MemoryError, "GiB more on cpu but only"),
])
def test_bad_input_refused_before_any_weight_changes(tiny_llada, config_kwargs, data, error, match):
    before = _state(tiny_llada)
    config = SinkAwarePruningConfig(**{**SMALL, **config_kwargs})
    with pytest.raises(error, match=match):
        SinkAwarePruner(tiny_llada).prune(config, data, progress=False)
    _assert_unchanged(tiny_llada, before)


def test_missing_mask_token(tiny_llada):
    tiny_llada.config.mask_token_id = None
    before = _state(tiny_llada)
    with pytest.raises(MissingMaskTokenError, match="mask_token_id"):
        SinkAwarePruner(tiny_llada).prune(SinkAwarePruningConfig(method="sink_wanda", **SMALL), _ids(), progress=False)
    _assert_unchanged(tiny_llada, before)
    # methods on clean inputs do not need one
    SinkAwarePruner(tiny_llada).prune(SinkAwarePruningConfig(method="wanda", **SMALL), _ids(), progress=False)


def test_non_finite_dense_statistics_name_the_layer(tiny_llada):
    # finite weights whose activations overflow: the norm's output is finite, its squared norm (the statistic) is not
    with torch.no_grad():
        tiny_llada.model.transformer.blocks[1].ff_norm.weight[3] = 1e38
    before = _state(tiny_llada)
    with pytest.raises(FloatingPointError, match=r"model\.transformer\.blocks\.1\.(ff_proj|up_proj)"):
        SinkAwarePruner(tiny_llada).prune(SinkAwarePruningConfig(method="wanda_diffusion", **SMALL), _ids(),
                                          progress=False)
    _assert_unchanged(tiny_llada, before)


def test_sequential_failure_restores_earlier_blocks(tiny_llada):
    """Block 0 is pruned before block 1's statistics exist; a failure there restores block 0."""
    with torch.no_grad():
        tiny_llada.model.transformer.blocks[1].ff_norm.weight[3] = 1e38  # finite, but its activations overflow
    before = _state(tiny_llada)
    with pytest.raises(FloatingPointError, match=r"blocks\.1\."):
        SinkAwarePruner(tiny_llada).prune(SinkAwarePruningConfig(method="wanda", **SMALL), _ids(), progress=False)
    _assert_unchanged(tiny_llada, before)


def test_restore_copies_live_on_disk_and_are_removed(tiny_llada, tmp_path, monkeypatch):
    """Sequential runs keep their restore copies as files in a temporary folder (not in memory), deleted after a
    success and after a restore."""
    import tempfile

    from optimum_sinkprune import pruner as pruner_module

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen = []
    record = pruner_module._WeightJournal.record

    def spy(self, name, layer):
        record(self, name, layer)
        seen.append(sorted(p.name for p in tmp_path.rglob("*.safetensors")))

    monkeypatch.setattr(pruner_module._WeightJournal, "record", spy)
    model = copy.deepcopy(tiny_llada)
    SinkAwarePruner(model).prune(SinkAwarePruningConfig(method="wanda", **SMALL), _ids(), progress=False)
    assert seen and len(seen[-1]) == len(select_targets(model, get_adapter(model), None, []))
    assert list(tmp_path.iterdir()) == []
    import optimum_sinkprune.methods as methods_module

    def fail_in_block_1(name, stat):  # a failure after block 0 was pruned (and journaled)
        if ".blocks.1." in name:
            raise FloatingPointError(f"statistic of {name} is bad")

    monkeypatch.setattr(methods_module, "check_finite", fail_in_block_1)
    seen.clear()
    before = _state(tiny_llada)
    with pytest.raises(FloatingPointError, match=r"blocks\.1\."):
        SinkAwarePruner(tiny_llada).prune(SinkAwarePruningConfig(method="wanda", **SMALL), _ids(), progress=False)
    assert seen  # block 0 was modified before the failure, from copies on disk
    _assert_unchanged(tiny_llada, before)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("method", ["sink_wanda", "sparsegpt", "sink_sparsegpt", "magnitude"])
def test_same_seed_bitwise_identical(tiny_llada, randomize, method):
    base = randomize(tiny_llada, seed=1)
    runs = []
    for _ in range(2):
        model = copy.deepcopy(base)
        SinkAwarePruner(model).prune(SinkAwarePruningConfig(method=method, **SMALL), _ids(), progress=False)
        runs.append(_state(model))
    for k in runs[0]:
        assert torch.equal(runs[0][k], runs[1][k])


def test_batch_size_does_not_change_the_result(tiny_llada, randomize):
    base = randomize(tiny_llada, seed=2)
    out = []
    for bs in (1, 2):
        model = copy.deepcopy(base)
        SinkAwarePruner(model).prune(SinkAwarePruningConfig(method="sink_wanda", batch_size=bs, **SMALL), _ids(),
                                     progress=False)
        out.append(_masks(model))
    for name in out[0]:
        assert torch.equal(out[0][name], out[1][name])


def test_seed_changes_noise(tiny_llada, randomize):
    base = randomize(tiny_llada, seed=2)
    out = []
    for seed in (0, 1):
        model = copy.deepcopy(base)
        SinkAwarePruner(model).prune(SinkAwarePruningConfig(method="sink_wanda", seed=seed, **SMALL), _ids(),
                                     progress=False)
        out.append(_masks(model))
    assert any(not torch.equal(out[0][n], out[1][n]) for n in out[0])


def test_report_and_config_recorded(tiny_llada):
    config = SinkAwarePruningConfig(method="sink_wanda", sparsity=0.5, ignore=["*.attn_out"], **SMALL)
    model, report = SinkAwarePruner(tiny_llada).prune(config, _ids(), progress=False)
    assert model is tiny_llada
    assert len(report.layers) == 2 * 6 and all(not l.name.endswith("attn_out") for l in report.layers)
    assert all(l.sparsity == 0.5 for l in report.layers) and report.total_sparsity == 0.5
    assert (tiny_llada.model.transformer.blocks[0].attn_out.weight != 0).all()
    assert report.calibration == {"num_samples": 3, "seq_len": 16, "forward_passes": 3 * 2}
    assert report.sink["forward_passes"] == 6 and 0 <= report.sink["mean_sink_weight"] <= 1
    d = report.to_dict()
    assert d["total_sparsity"] == 0.5 and d["layers"][0]["sparsity"] == 0.5
    assert "sink_wanda" in report.summary()
    # the recorded config is the run's, with the noise it used resolved from the family (LLaDA: ladder, none)
    recorded = SinkAwarePruningConfig.from_dict(tiny_llada.config.sink_pruning_config)
    assert recorded == dataclasses.replace(config, noise_schedule="ladder", protected_positions="none")
    assert tiny_llada.config.to_dict()["sink_pruning_config"]["config_format"] == 1


def test_targets_by_role_and_glob(tiny_llada):
    adapter = get_adapter(tiny_llada)
    got = select_targets(tiny_llada, adapter, ["q", "*.1.ff_out"], ["*.0.*"])
    assert list(got) == ["model.transformer.blocks.1.q_proj", "model.transformer.blocks.1.ff_out"]


def test_structured_methods_are_delegated(tiny_llada, monkeypatch):
    calls = {}

    class Result:
        def to_dict(self):
            return {"removed_heads": 2}

    def prune_structured(model, *, config, calibration_ids, attention_mask, mask_token_id=None, progress=True,
                         check_weights=True):
        calls.update(model=model, config=config, ids=calibration_ids, mask=attention_mask, mask_token_id=mask_token_id,
                     check_weights=check_weights)
        return Result()

    def plan_structured_budget(model, config):  # the pruner's validate step, before any calibration data is built
        calls.update(planned=(model, config))

    fake = types.ModuleType("optimum_sinkprune.structured")
    fake.prune_structured = prune_structured
    fake.plan_structured_budget = plan_structured_budget
    monkeypatch.setitem(sys.modules, "optimum_sinkprune.structured", fake)
    config = SinkAwarePruningConfig(method="sink_heads", target_param_reduction=0.2, **SMALL)
    _, report = SinkAwarePruner(tiny_llada).prune(config, _ids(), progress=False)
    assert calls["model"] is tiny_llada and calls["config"] is config and calls["mask"] is None
    assert calls["ids"].shape == (3, 16) and calls["ids"].dtype == torch.long
    assert report.structured == {"removed_heads": 2}
    assert calls["mask_token_id"] == tiny_llada.config.mask_token_id  # resolved once by the pruner, passed down
    assert calls["planned"] == (tiny_llada, config) and calls["check_weights"] is False  # checked once, up front


def test_accelerate_cpu_offload_matches_plain(tiny_llada, randomize):
    """Weights on the meta device with an offload map (accelerate): the same masks, written into the offloaded copy."""
    from accelerate import cpu_offload

    base = randomize(tiny_llada, seed=4)
    plain = copy.deepcopy(base)
    config = SinkAwarePruningConfig(method="wanda", **SMALL)
    SinkAwarePruner(plain).prune(config, _ids(), progress=False)
    offloaded = cpu_offload(copy.deepcopy(base), execution_device="cpu")
    SinkAwarePruner(offloaded).prune(config, _ids(), progress=False)
    from optimum_sinkprune.methods import read_weight

    for name, layer in get_adapter(plain).linear_layers(plain).items():
        other = get_adapter(offloaded).linear_layers(offloaded)[name]
        assert torch.equal(read_weight(other) == 0, layer.weight == 0), name


def test_save_and_reload_keeps_zeros(tiny_llada, tmp_path):
    from transformers import AutoModel

    pruner = SinkAwarePruner(tiny_llada)
    pruner.prune(SinkAwarePruningConfig(method="sink_wanda", **SMALL), _ids(), progress=False)
    masks = _masks(tiny_llada)
    out = tmp_path / "pruned"
    pruner.save_pretrained(out)
    reloaded = AutoModel.from_pretrained(out)
    for name, mask in _masks(reloaded).items():
        assert torch.equal(mask, masks[name]), name
    assert (out / "sink_pruning_config.json").is_file()
    assert SinkAwarePruningConfig.from_pretrained(out) == pruner.config
    assert reloaded.config.sink_pruning_config["method"] == "sink_wanda"
    with pytest.raises(FileExistsError):
        pruner.save_pretrained(out)
    pruner.save_pretrained(out, overwrite=True)


def test_save_before_prune_is_an_error(tiny_llada, tmp_path):
    with pytest.raises(ValueError, match="call prune"):
        SinkAwarePruner(tiny_llada).save_pretrained(tmp_path)


def test_shipped_model_sink_wanda_end_to_end():
    """Integration: the shipped tiny LLaDA, its tokenizer and calibration texts."""
    from optimum_sinkprune import assets

    path = assets.default_model_path()
    texts = assets.load_calibration_texts(limit=50)
    pruner = SinkAwarePruner.from_pretrained(path)
    config = SinkAwarePruningConfig(method="sink_wanda", sparsity=0.5, num_samples=2, seq_len=64)
    model, report = pruner.prune(config, texts, progress=False)
    assert report.total_sparsity == 0.5 and all(layer.sparsity == 0.5 for layer in report.layers)
    assert report.calibration["forward_passes"] == 2 * len(config.sampled_steps)
    assert 0 < report.sink["mean_sink_weight"] < 1
    ids = torch.tensor([[pruner.tokenizer.bos_token_id] + pruner.tokenizer("And God said")["input_ids"]])
    assert torch.isfinite(model(input_ids=ids).logits.float()).all()


@pytest.mark.parametrize("method", ["sink_heads", "magnitude_heads"])
def test_structured_methods_end_to_end(tiny_llada, method):
    params_before = sum(p.numel() for p in tiny_llada.parameters())
    config = SinkAwarePruningConfig(method=method, target_param_reduction=0.25, **SMALL)
    data = _ids() if method == "sink_heads" else None
    model, report = SinkAwarePruner(tiny_llada).prune(config, data, progress=False)
    assert sum(p.numel() for p in model.parameters()) < params_before
    assert report.structured and report.params_before == params_before
    assert (report.calibration == {}) == (data is None)


def test_push_to_hub_forwards_everything(tiny_llada, monkeypatch):
    from optimum_sinkprune.hub import push
    calls = {}

    def fake(model, repo_id, **kwargs):
        calls.update(model=model, repo_id=repo_id, **kwargs)
        return "https://hub/commit/1"

    monkeypatch.setattr(push, "push_pruned_model", fake)
    pruner = SinkAwarePruner(tiny_llada, base_model="org/base")
    with pytest.raises(ValueError, match="call prune"):
        pruner.push_to_hub("me/x")
    pruner.prune(SinkAwarePruningConfig(method="magnitude", **SMALL), progress=False)
    assert pruner.push_to_hub("me/x", private=True) == "https://hub/commit/1"
    assert calls["model"] is tiny_llada and calls["repo_id"] == "me/x" and calls["private"] is True
    assert calls["pruning_config"]["method"] == "magnitude" and calls["base_model"] == "org/base"
    assert calls["report"]["total_sparsity"] == 0.5


@pytest.mark.parametrize("method", ["sink_heads", "activation_heads"])
def test_structured_mask_token_only_on_the_tokenizer(tiny_llada, method):
    """The mask token is resolved once, with the tokenizer, and reaches the structured statistics: a model whose
    config has no mask token prunes when its tokenizer has one, with the same result as a config that has it."""
    reference = copy.deepcopy(tiny_llada)
    config = SinkAwarePruningConfig(method=method, target_param_reduction=0.2, **SMALL)
    _, expected = SinkAwarePruner(reference).prune(config, _ids(), progress=False)

    mask_id = tiny_llada.config.mask_token_id
    tiny_llada.config.mask_token_id = None
    tokenizer = types.SimpleNamespace(mask_token_id=mask_id)
    _, report = SinkAwarePruner(tiny_llada, tokenizer).prune(config, _ids(), progress=False)
    assert report.structured["removed_heads"] == expected.structured["removed_heads"]
    assert report.structured["removed_channels"] == expected.structured["removed_channels"]
    # without the tokenizer the pruner refuses up front, before any weight changes
    model = copy.deepcopy(reference)
    model.config.mask_token_id = None
    before = _state(model)
    with pytest.raises(MissingMaskTokenError, match="mask_token_id"):
        SinkAwarePruner(model).prune(config, _ids(), progress=False)
    _assert_unchanged(model, before)
