# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The calibration pipeline: observers on clean inputs, hooks removed on error, devices without name strings,
the memory module, and the engine's order decision."""

from __future__ import annotations

import pathlib
import types

import pytest
import torch

import optimum_sinkprune
from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.calibration import engine, memory
from optimum_sinkprune.calibration.observers import AttentionMassObserver, InputNormObserver, Observer
from optimum_sinkprune.calibration.pipeline import (
    CalibrationPipeline,
    clean_inputs,
    groups_by_block,
    input_groups,
    module_device,
)
from optimum_sinkprune.registry import get_method


def _ids(n=3, s=16, seed=0):
    return torch.randint(2, 120, (n, s), generator=torch.Generator().manual_seed(seed))


def _hook_count(model):
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


def test_clean_dense_norms_equal_the_direct_definition(tiny_llada, randomize):
    model = randomize(tiny_llada, seed=3)
    adapter = get_adapter(model)
    name = "model.transformer.blocks.1.q_proj"
    layer = adapter.linear_layers(model)[name]
    ids = _ids()
    norms = InputNormObserver({name: [name]}, {name: layer}, sink_weighted=False)
    forwards = CalibrationPipeline(model, adapter, batch_size=2, progress=False).dense(clean_inputs(ids), [norms])
    assert forwards == 3
    got = {}
    handle = layer.register_forward_pre_hook(lambda m, a: got.__setitem__("x", a[0]))
    try:
        model(input_ids=ids)
    finally:
        handle.remove()
    expected = got["x"].float().square().sum(dim=1).sqrt().sum(dim=0)  # Σ_samples ‖X_j‖₂ over tokens
    torch.testing.assert_close(norms.result()[name], expected)


def test_hooks_removed_when_an_observer_fails(tiny_llada):
    adapter = get_adapter(tiny_llada)
    targets = adapter.linear_layers(tiny_llada)
    groups = input_groups(adapter, targets)

    class Boom(Observer):
        needs_mass = True

        def after_forward(self, ctx):
            assert ctx.sigma.shape == (1, 16)
            raise RuntimeError("boom")

    before = _hook_count(tiny_llada)
    observers = [InputNormObserver(groups, {n: targets[n] for n in groups}, sink_weighted=True), Boom()]
    with pytest.raises(RuntimeError, match="boom"):
        CalibrationPipeline(tiny_llada, adapter, progress=False).dense(clean_inputs(_ids()), observers)
    assert _hook_count(tiny_llada) == before


def test_groups_by_block_and_attention_observer(tiny_llada):
    adapter = get_adapter(tiny_llada)
    per_block = groups_by_block(adapter, input_groups(adapter, adapter.linear_layers(tiny_llada)))
    assert sorted(per_block) == [0, 1] and all(len(g) == 4 for g in per_block.values())
    mass = AttentionMassObserver(3, 16)
    CalibrationPipeline(tiny_llada, adapter, batch_size=2, progress=False).dense(clean_inputs(_ids()), [mass])
    sigma = mass.mean_sigma(1)
    assert sigma.shape == (3, 16) and bool(((sigma >= 0) & (sigma <= 1)).all())
    assert mass.stats.forwards == 3
    with pytest.raises(ValueError, match="keeps no per-sample"):
        AttentionMassObserver().mean_sigma(1)


def test_module_device_reads_accelerate_execution_devices():
    layer = torch.nn.Linear(2, 2)
    assert module_device(layer) == torch.device("cpu")
    for given in ("cpu", torch.device("cpu")):
        layer._hf_hook = types.SimpleNamespace(execution_device=given)
        assert module_device(layer) == torch.device("cpu")
    if torch.accelerator.is_available():  # an accelerator index maps to the machine's accelerator backend
        layer._hf_hook = types.SimpleNamespace(execution_device=0)
        assert module_device(layer) == torch.device(torch.accelerator.current_accelerator().type, 0)


def test_no_device_name_literals_in_calibration_and_pruner():
    root = pathlib.Path(optimum_sinkprune.__file__).parent
    for path in [*sorted((root / "calibration").glob("*.py")), root / "pruner.py", root / "structured" / "statistics.py"]:
        text = path.read_text(encoding="utf-8")
        assert '"cuda' not in text and "'cuda" not in text, path


def test_memory_module_is_the_engines():
    assert engine.estimate_memory is memory.estimate_memory and engine.check_memory is memory.check_memory
    assert engine.MemoryEstimate is memory.MemoryEstimate


def test_engine_order_none_prunes_every_layer_without_data(tiny_llada):
    adapter = get_adapter(tiny_llada)
    targets = adapter.linear_layers(tiny_llada)
    seen = []
    spec = get_method("magnitude")
    result = engine.run_method(tiny_llada, adapter, spec, targets, None, prune_layer=lambda n, s: seen.append((n, s)),
                               check=lambda n, v: None)
    assert result.order == "none" and result.forwards == 0
    assert seen == [(n, None) for n in targets]
    with pytest.raises(ValueError, match="needs calibration samples"):
        engine.run_method(tiny_llada, adapter, get_method("wanda"), targets, None,
                          prune_layer=lambda n, s: None, check=lambda n, v: None)
    with pytest.raises(ValueError, match="give a noise schedule and mask_token_id"):
        engine.run_method(tiny_llada, adapter, get_method("sink_wanda"), targets, _ids(),
                          prune_layer=lambda n, s: None, check=lambda n, v: None)
