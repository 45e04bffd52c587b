# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Weight pruning of DiffusionGemma's packed expert tensors: every expert's slice is its own layer (its rows its own
comparison groups), its calibration statistics come from exactly the tokens the router sent to it, the packed tensors
of both stacks change in place, and an expert no calibration token reaches is refused before (or, block by block,
restored after) any weight change."""

from __future__ import annotations


import pytest
import torch

from optimum_sinkprune import SinkAwarePruner, SinkAwarePruningConfig
from optimum_sinkprune.adapters.diffusion_gemma import ExpertLinear, UnroutedExpertError

import diffusion_gemma_fixtures as fx

SEQ = 24
EXPERTS = ["expert_gate_up", "expert_down"]


def _config(method: str, **kwargs) -> SinkAwarePruningConfig:
    return SinkAwarePruningConfig(method=method, num_samples=2, seq_len=SEQ, block_size=8, diffusion_steps=4,
                                  sample_interval=2, seed=3, **kwargs)


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_expert_views_are_named_located_and_write_the_packed_tensor():
    model = fx.tiny_diffusion_gemma()
    adapter = SinkAwarePruner(model).adapter
    views = {n: layer for n, layer in adapter.linear_layers(model).items() if isinstance(layer, ExpertLinear)}
    assert len(views) == 16
    name = "model.decoder.layers.1.experts.2.down_proj"
    view = views[name]
    assert adapter.role_of(name) == "expert_down" and adapter.locate(name) == (1, "expert_down")
    assert adapter.locate("model.encoder.language_model.layers.0.experts.3.gate_up_proj") == (0, "expert_gate_up")
    assert (view.out_features, view.in_features) == (32, 16)
    assert (views["model.decoder.layers.0.experts.0.gate_up_proj"].out_features, view.in_features) == (32, 16)
    assert not list(view.parameters())  # a view: it adds nothing to the model
    x = torch.randn(3, 16)
    packed = adapter.blocks(model)[1].experts.down_proj
    assert torch.equal(view(x), x @ packed[2].detach().T)
    from optimum_sinkprune.methods import apply_mask

    mask = torch.zeros(32, 16, dtype=torch.bool)
    mask[0, :5] = True
    apply_mask(view, mask)
    assert int((packed == 0).sum()) == 5 and torch.all(packed[2, 0, :5] == 0)
    encoder_packed = adapter.stack_blocks(model, "encoder")[1].experts.down_proj
    assert encoder_packed is packed


@pytest.mark.parametrize("pattern", ["unstructured", "2:4"])
def test_every_expert_is_its_own_group(pattern):
    """One expert scaled up 100x still loses exactly its share: experts are never compared with each other."""
    model = fx.tiny_diffusion_gemma()
    adapter = SinkAwarePruner(model).adapter
    with torch.no_grad():
        adapter.blocks(model)[0].experts.gate_up_proj[1] *= 100.0
    SinkAwarePruner(model).prune(_config("magnitude", sparsity=0.5, pattern=pattern, targets=EXPERTS), None,
                                 progress=False)
    for block in adapter.blocks(model):
        for packed in (block.experts.gate_up_proj, block.experts.down_proj):
            per_expert = (packed == 0).float().mean(dim=(1, 2))
            assert torch.allclose(per_expert, torch.full_like(per_expert, 0.5))
    # the dense projections are no target here
    assert not (adapter.projection(adapter.blocks(model)[0], "q").weight == 0).any()


def _routed_statistics(model, adapter, layer: int, windows: torch.Tensor):
    """Per expert of `layer`: Σ over routed tokens of x² for the gate_up input and for the down input act(g)·up,
    from a hook on the experts module of plain calibration forwards; and the same over every token."""
    experts = adapter.blocks(model)[layer].experts
    num = experts.gate_up_proj.shape[0]
    acc = {key: [torch.zeros(experts.gate_up_proj.shape[2]) for _ in range(num)] for key in ("in", "in_all")}
    acc["hidden"] = [torch.zeros(experts.down_proj.shape[2]) for _ in range(num)]
    counts = [0] * num

    def hook(module, args, _output):
        hidden, index = args[0].detach().float(), args[1]
        for e in range(num):
            routed = hidden[(index == e).any(dim=-1)]
            counts[e] += routed.shape[0]
            acc["in"][e] += routed.square().sum(dim=0)
            acc["in_all"][e] += hidden.square().sum(dim=0)
            gate, up = (routed @ module.gate_up_proj[e].detach().T).chunk(2, dim=-1)
            acc["hidden"][e] += (module.act_fn(gate) * up).square().sum(dim=0)

    handle = experts.register_forward_hook(hook)
    try:
        with torch.no_grad():
            for window in windows:
                adapter.calibration_forward(model, window[None])
    finally:
        handle.remove()
    return acc, counts


def test_wanda_statistics_of_an_expert_are_its_routed_tokens():
    from optimum_sinkprune.methods.masks import unstructured_row_mask

    model = fx.tiny_diffusion_gemma()
    adapter = SinkAwarePruner(model).adapter
    ids = fx.text_ids(2, SEQ, seed=4)
    experts = adapter.blocks(model)[1].experts
    gate_up, down = experts.gate_up_proj.detach().clone(), experts.down_proj.detach().clone()
    acc, counts = _routed_statistics(model, adapter, 1, ids)
    assert all(c > 0 for c in counts) and sum(counts) == 2 * fx.DG_CANVAS * 2  # top-2 of every canvas token
    SinkAwarePruner(model).prune(_config("wanda", sparsity=0.5, targets=["model.decoder.layers.1.experts.*"]), ids,
                                 progress=False)
    differs_from_all_tokens = False
    for e in range(gate_up.shape[0]):
        expected = unstructured_row_mask(gate_up[e].abs() * acc["in"][e].sqrt()[None], 0.5)
        assert torch.equal(experts.gate_up_proj[e] == 0, expected), e
        expected = unstructured_row_mask(down[e].abs() * acc["hidden"][e].sqrt()[None], 0.5)
        assert torch.equal(experts.down_proj[e] == 0, expected), e
        unrouted = unstructured_row_mask(gate_up[e].abs() * acc["in_all"][e].sqrt()[None], 0.5)
        differs_from_all_tokens |= not torch.equal(unrouted, experts.gate_up_proj[e] == 0)
    assert differs_from_all_tokens  # routing changes what the statistics see
    assert torch.equal(adapter.blocks(model)[0].experts.gate_up_proj, adapter.stack_blocks(
        model, "encoder")[0].experts.gate_up_proj)
    assert not (adapter.blocks(model)[0].experts.gate_up_proj == 0).any()  # layer 0 is no target


@pytest.mark.parametrize("method", ["sink_wanda", "sink_sparsegpt", "sparsegpt"])
def test_noised_and_reconstructing_methods_reach_the_sparsity_on_every_expert(method):
    model = fx.tiny_diffusion_gemma()
    pruner = SinkAwarePruner(model)
    _, report = pruner.prune(_config(method, sparsity=0.5, pattern="2:4"), fx.text_ids(2, SEQ), progress=False)
    names = [layer.name for layer in report.layers]
    assert sum(".experts." in n for n in names) == 16
    for block in pruner.adapter.blocks(model):
        for packed in (block.experts.gate_up_proj, block.experts.down_proj):
            groups = (packed.reshape(packed.shape[0], packed.shape[1], -1, 4) == 0).sum(dim=-1)
            assert torch.all(groups == 2)
    with torch.no_grad():
        logits = pruner.adapter.denoiser_logits(model, fx.text_ids(1, 10), fx.text_ids(1, fx.DG_CANVAS, seed=1))
    assert torch.isfinite(logits).all()


def _never_route_to(model, adapter, layer: int, expert: int):
    """A forward hook on `layer`'s router that sends `expert`'s tokens to the lowest other expert not yet chosen."""
    num = adapter.num_experts(model)

    def reroute(_module, _args, output):
        probs, weights, index = output
        index = index.clone()
        for row in index:
            for j in range(row.shape[0]):
                if row[j] == expert:
                    row[j] = next(e for e in range(num) if e != expert and e not in row.tolist())
        return probs, weights, index

    return adapter.blocks(model)[layer].router.register_forward_hook(reroute)


def _assert_unrouted_refused_unchanged(model, adapter, layer: int, expert: int, config, match: str) -> None:
    """Pruning while the router never picks `expert` of `layer` is refused (`match`) and leaves every weight as it
    was."""
    before = _snapshot(model)
    handle = _never_route_to(model, adapter, layer, expert)
    try:
        with pytest.raises(UnroutedExpertError, match=match):
            SinkAwarePruner(model).prune(config, fx.text_ids(2, SEQ), progress=False)
    finally:
        handle.remove()
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name]), name


def test_an_unrouted_expert_is_refused_before_any_change_on_the_dense_order():
    model = fx.tiny_diffusion_gemma()
    adapter = SinkAwarePruner(model).adapter
    _assert_unrouted_refused_unchanged(model, adapter, 1, 3, _config("sink_wanda", sparsity=0.5),
                                       match="routed no token to layer 1 expert 3")


def test_an_unrouted_expert_in_a_later_block_restores_the_earlier_blocks():
    model = fx.tiny_diffusion_gemma()
    adapter = SinkAwarePruner(model).adapter
    _assert_unrouted_refused_unchanged(model, adapter, 1, 0, _config("sparsegpt", sparsity=0.5),
                                       match="layer 1 expert 0")
    # leaving the unrouted expert out makes the same run work
    handle = _never_route_to(model, adapter, 1, 0)
    try:
        _, report = SinkAwarePruner(model).prune(
            _config("sparsegpt", sparsity=0.5, ignore=["*.layers.1.experts.0.*"]), fx.text_ids(2, SEQ),
            progress=False)
    finally:
        handle.remove()
    assert len(report.layers) == 27 and report.total_sparsity == pytest.approx(0.5)
    assert not (adapter.blocks(model)[1].experts.gate_up_proj[0] == 0).any()
