# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""BERT / RoBERTa / ModernBERT masked LMs as diffusion LMs: recognition, bad input, every weight method, structured
removal with reload through AutoModelForMaskedLM, attention mass, the sampler and the ELBO."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bert_fixtures import (  # noqa: E402
    CLS_ID,
    FAMILIES,
    HEADS,
    LAYERS,
    MASK_ID,
    SEP_ID,
    framed_ids,
    tiny_config,
    tiny_masked_lm,
)

from optimum_sinkprune.adapters import (  # noqa: E402
    BertAdapter,
    MissingMaskTokenError,
    MissingMLMHeadError,
    ModernBertAdapter,
    RobertaAdapter,
    UnsupportedModelError,
    get_adapter,
)
from optimum_sinkprune.adapters.bert import PackedRows, padding_from_mask, single_segment_token_type_ids  # noqa: E402
from optimum_sinkprune.calibration.attention import attention_mass  # noqa: E402
from optimum_sinkprune.configuration import SinkAwarePruningConfig  # noqa: E402
from optimum_sinkprune.pruner import SinkAwarePruner  # noqa: E402
from optimum_sinkprune.registry import method_names  # noqa: E402

torch.set_num_threads(1)

ADAPTERS = {"bert": BertAdapter, "roberta": RobertaAdapter, "modernbert": ModernBertAdapter}
SMALL = dict(num_samples=2, seq_len=16, diffusion_steps=4, sample_interval=2, block_size=16)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _logits(model, ids, mask=None):
    with torch.no_grad():
        return get_adapter(model).logits(model, ids, mask)


# ---------------------------------------------------------------------------------------------------------------------
# recognition
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_adapter_recognises_the_masked_lm(family):
    model = tiny_masked_lm(family)
    adapter = get_adapter(model)
    assert type(adapter) is ADAPTERS[family]
    assert adapter.is_diffusion and not adapter.is_causal and not adapter.shifts_logits
    assert adapter.num_layers(model) == LAYERS
    assert adapter.original_num_heads(model) == HEADS
    assert adapter.mask_token_id(model) == MASK_ID
    defaults = adapter.noise_defaults()
    assert (defaults.schedule, defaults.protected) == ("uniform", "first_last")
    layers = adapter.linear_layers(model)
    # BERT/RoBERTa: q, k, v, o, up, down (no gate); ModernBERT: packed Wqkv, Wo, packed Wi, Wo
    assert len(layers) == LAYERS * (6 if family != "modernbert" else 4)
    for name, layer in layers.items():
        assert isinstance(layer, torch.nn.Linear) and layer.bias is not None
        index, role = adapter.locate(name + ".weight")
        assert name.startswith(adapter.block_name(index) + ".") and role == adapter.role_of(name)


def test_post_ln_and_ungated_layout_of_bert():
    model = tiny_masked_lm("bert")
    adapter = get_adapter(model)
    block = adapter.blocks(model)[0]
    assert adapter.norm_placement == "post" and not adapter.mlp_gated
    assert not adapter.has_projection(block, "gate") and "gate" not in adapter.projections(block)
    assert adapter.mlp_input_roles() == ("up",)
    # the MLP's up projection reads the normalised attention output (post-LN), the one q/k/v of the next block read
    seen = {}
    handles = [adapter.projection(block, r).register_forward_pre_hook(lambda m, a, r=r: seen.__setitem__(r, a[0]))
               for r in ("up",)]
    handles.append(adapter.post_attention_norm(block).register_forward_hook(
        lambda m, a, out: seen.__setitem__("norm", out)))
    try:
        _logits(model, framed_ids(1, 8))
    finally:
        for h in handles:
            h.remove()
    assert torch.equal(seen["up"], seen["norm"])


def test_modernbert_packed_roles_are_row_blocks():
    model = tiny_masked_lm("modernbert")
    adapter = get_adapter(model)
    block = adapter.blocks(model)[0]
    assert adapter.norm_placement == "pre" and adapter.mlp_gated
    views = {r: adapter.projection(block, r) for r in ("q", "k", "v", "gate", "up")}
    assert all(isinstance(v, PackedRows) for v in views.values())
    wqkv = views["q"].packed
    assert torch.equal(torch.cat([views[r].weight for r in "qkv"]), wqkv.weight)
    assert torch.equal(torch.cat([views[r].bias for r in "qkv"]), wqkv.bias)
    assert views["gate"].out_features == views["up"].out_features == adapter.mlp_width(model, 0)


@pytest.mark.parametrize("build", ["BertModel", "RobertaModel", "ModernBertModel", "BertForSequenceClassification"])
def test_a_model_without_mlm_head_is_refused_with_the_missing_head_named(build):
    import transformers

    family = {"Bert": "bert", "Roberta": "roberta", "ModernBert": "modernbert"}[build.split("Model")[0].split("For")[0]]
    model = getattr(transformers, build)(tiny_config(family))
    head = ADAPTERS[family].mlm_head.path
    with pytest.raises(MissingMLMHeadError, match="has no masked-LM head") as info:
        get_adapter(model)
    assert f"`{head}`" in str(info.value) and "AutoModelForMaskedLM" in str(info.value)
    assert ADAPTERS[family].mlm_head.model_class in str(info.value)


def test_a_checkpoint_without_mlm_head_is_refused_after_loading(tmp_path):
    from transformers import AutoModelForMaskedLM, BertModel

    BertModel(tiny_config("bert"), add_pooling_layer=False).save_pretrained(tmp_path)
    model, info = AutoModelForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    adapter = get_adapter(model)  # the class has a head: freshly initialised, which only the loading info tells
    with pytest.raises(MissingMLMHeadError, match=r"cls\.predictions") as err:
        adapter.check_loaded_head(model, info["missing_keys"])
    assert "freshly initialised" in str(err.value)
    adapter.check_loaded_head(model, [])  # a full checkpoint passes


def test_a_causal_bert_decoder_is_refused():
    config = tiny_config("bert")
    config.is_decoder = True
    from transformers import BertLMHeadModel

    with pytest.raises(UnsupportedModelError, match="is_decoder=True"):
        get_adapter(BertLMHeadModel(config))


@pytest.mark.parametrize("family", FAMILIES)
def test_a_masked_lm_without_mask_token_names_config_and_tokenizer(family):
    model = tiny_masked_lm(family, mask_token_id=None)
    adapter = get_adapter(model)
    with pytest.raises(MissingMaskTokenError) as err:
        adapter.mask_token_id(model)
    message = str(err.value)
    assert "mask_token_id" in message and type(model.config).__name__ in message and "tokenizer" in message

    class Tokenizer:
        mask_token_id = 7

    assert adapter.mask_token_id(model, Tokenizer()) == 7
    before = _state(model)
    with pytest.raises(MissingMaskTokenError):
        SinkAwarePruner(model).prune(SinkAwarePruningConfig(method="sink_wanda", **SMALL), framed_ids(2, 16),
                                     progress=False)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


# ---------------------------------------------------------------------------------------------------------------------
# token_type_ids
# ---------------------------------------------------------------------------------------------------------------------
def test_single_sequences_are_one_segment():
    model = tiny_masked_lm("bert")
    ids = framed_ids(2, 10)
    with torch.no_grad():
        zeros = model(input_ids=ids, token_type_ids=torch.zeros_like(ids)).logits
        pair = model(input_ids=ids, token_type_ids=(torch.arange(10) >= 5).long().expand(2, -1)).logits
    logits = _logits(model, ids)
    assert torch.equal(logits, zeros)
    assert not torch.allclose(logits, pair)  # the segment embedding matters: a pair encoding would change the logits


def test_token_type_ids_are_validated():
    ids = framed_ids(2, 6)
    assert torch.equal(single_segment_token_type_ids(ids), torch.zeros_like(ids))
    with pytest.raises(ValueError, match=r"token_type_ids must have the shape of input_ids \(2, 6\)"):
        single_segment_token_type_ids(ids, torch.zeros(2, 5, dtype=torch.long))
    # RoBERTa has one segment: a pair encoding's segment 1 is out of range
    with pytest.raises(ValueError, match=r"token_type_ids must lie in \[0, 1\)"):
        single_segment_token_type_ids(ids, torch.ones_like(ids), type_vocab_size=1)
    model = tiny_masked_lm("roberta")
    with pytest.raises(ValueError, match="config.type_vocab_size"):
        get_adapter(model).logits(model, ids, token_type_ids=torch.ones_like(ids))


def test_roberta_max_length_leaves_out_the_padding_offset():
    model = tiny_masked_lm("roberta")
    adapter = get_adapter(model)
    n = adapter.max_length(model)
    assert n == model.config.max_position_embeddings - model.config.pad_token_id - 1
    _logits(model, torch.full((1, n), 10))  # the longest input runs


# ---------------------------------------------------------------------------------------------------------------------
# weight pruning
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", method_names("unstructured"))
@pytest.mark.parametrize("family", FAMILIES)
def test_every_weight_method_gives_exact_2_4_masks(family, method):
    model = tiny_masked_lm(family)
    config = SinkAwarePruningConfig(method=method, sparsity=0.5, pattern="2:4", **SMALL)
    _, report = SinkAwarePruner(model).prune(config, framed_ids(2, 16), progress=False)
    layers = get_adapter(model).linear_layers(model)
    assert [layer.name for layer in report.layers] == list(layers)
    for name, layer in layers.items():
        zeros = (layer.weight == 0).reshape(layer.out_features, -1, 4).sum(-1)
        assert torch.equal(zeros, torch.full_like(zeros, 2)), name
    assert torch.isfinite(_logits(model, framed_ids(1, 12))).all()


@pytest.mark.parametrize("method", ["magnitude", "sink_wanda"])
@pytest.mark.parametrize("family", FAMILIES)
def test_unstructured_sparsity_per_layer(family, method):
    model = tiny_masked_lm(family)
    config = SinkAwarePruningConfig(method=method, sparsity=0.6, **SMALL)
    _, report = SinkAwarePruner(model).prune(config, framed_ids(2, 16), progress=False)
    for layer in report.layers:
        assert layer.sparsity == pytest.approx(0.6, abs=0.02), layer.name
    assert report.sink is not None or method == "magnitude"


# ---------------------------------------------------------------------------------------------------------------------
# structured removal and reload
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_head_and_channel_removal_equals_masking(family):
    """Slicing heads/channels (packed Wqkv/Wi row blocks included) computes what zeroing them computes."""
    from optimum_sinkprune.structured.removal import prune_structure

    heads = {0: [1, 3], 1: [0]}
    channels = {0: [0, 5, 47], 1: list(range(10, 30))}
    removed, masked = tiny_masked_lm(family), tiny_masked_lm(family)
    prune_structure(removed, heads=heads, channels=channels, mode="remove")
    prune_structure(masked, heads=heads, channels=channels, mode="mask")
    adapter = get_adapter(removed)
    assert [adapter.num_heads(removed, i) for i in range(LAYERS)] == [2, 3]
    assert [adapter.mlp_width(removed, i) for i in range(LAYERS)] == [45, 28]
    assert removed.config.pruned_heads == {0: [1, 3], 1: [0]}
    ids = framed_ids(2, 12)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    torch.testing.assert_close(_logits(removed, ids, mask), _logits(masked, ids, mask), rtol=1e-5, atol=1e-5)
    # the probe maps the remaining heads back to their original indices; removed heads receive no mass
    per_head = attention_mass(removed, ids, mask, per_head=True)
    assert per_head.shape == (2, LAYERS, HEADS, 12)
    assert torch.all(per_head[:, 0, [1, 3]] == 0) and torch.all(per_head[:, 1, 0] == 0)
    torch.testing.assert_close(per_head[0, 0, [0, 2]].sum(-1), torch.full((2,), 12.0))
    # a second pruning composes with the first (original head indices)
    prune_structure(removed, heads={0: [0]}, mode="remove")
    assert removed.config.pruned_heads[0] == [0, 1, 3] and adapter.num_heads(removed, 0) == 1


def _reload_identical(model, tmp_path):
    from transformers import AutoModelForMaskedLM

    from optimum_sinkprune.models.pruned_loading import unregister_pruned_loading

    ids = framed_ids(2, 14, seed=5)
    mask = torch.ones_like(ids)
    mask[0, 10:] = 0
    before = _logits(model, ids, mask)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    # as in a fresh process: the replacements come back when the pruned config is read
    unregister_pruned_loading()
    reloaded = AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
    assert type(reloaded) is type(model)
    assert torch.equal(_logits(reloaded, ids, mask), before)
    return reloaded


@pytest.mark.parametrize("family", FAMILIES)
def test_structured_checkpoint_reloads_with_identical_logits(family, tmp_path):
    model = tiny_masked_lm(family)
    config = SinkAwarePruningConfig(method="magnitude_heads", target_param_reduction=0.38, **SMALL)
    _, report = SinkAwarePruner(model).prune(config, None, progress=False)
    assert report.structured["realised_reduction"] > 0.3
    reloaded = _reload_identical(model, tmp_path)
    adapter = get_adapter(reloaded)
    assert adapter.pruned_heads(reloaded) == adapter.pruned_heads(model)
    assert [adapter.mlp_width(reloaded, i) for i in range(LAYERS)] == [adapter.mlp_width(model, i)
                                                                         for i in range(LAYERS)]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sink_heads", "activation_heads", "random_heads"])
@pytest.mark.parametrize("family", FAMILIES)
def test_every_structured_method_reloads(family, method, tmp_path):
    model = tiny_masked_lm(family)
    config = SinkAwarePruningConfig(method=method, target_param_reduction=0.38, **SMALL)
    SinkAwarePruner(model).prune(config, framed_ids(2, 16), progress=False)
    _reload_identical(model, tmp_path)


def test_sink_heads_on_bert_reloads(tmp_path):
    model = tiny_masked_lm("bert")
    config = SinkAwarePruningConfig(method="sink_heads", target_param_reduction=0.38, **SMALL)
    _, report = SinkAwarePruner(model).prune(config, framed_ids(2, 16), progress=False)
    assert report.structured["realised_reduction"] > 0.3
    _reload_identical(model, tmp_path)


# ---------------------------------------------------------------------------------------------------------------------
# attention mass
# ---------------------------------------------------------------------------------------------------------------------
def _eager_column_mass(model, ids, mask):
    """Reference: the model's own attention probabilities (eager), column sums over valid queries."""
    previous = model.config._attn_implementation
    model.config._attn_implementation = "eager"
    try:
        with torch.no_grad():
            attentions = model(input_ids=ids, attention_mask=mask, output_attentions=True).attentions
    finally:
        model.config._attn_implementation = previous
    valid = mask.bool()
    return torch.stack([(a * valid[:, None, :, None]).sum(2) for a in attentions], 1) * valid[:, None, None, :]


@pytest.mark.parametrize("method", ["interface", "hooks"])
@pytest.mark.parametrize("family", FAMILIES)
def test_attention_mass_sums_to_one_per_query(family, method):
    model = tiny_masked_lm(family)
    ids = framed_ids(2, 12)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    per_head = attention_mass(model, ids, mask, per_head=True, method=method)
    assert per_head.shape == (2, LAYERS, HEADS, 12)
    # each valid query row sums to 1 over the non-pad keys: column sums add up to the number of valid queries
    totals = per_head.sum(-1)
    torch.testing.assert_close(totals[0], torch.full((LAYERS, HEADS), 12.0))
    torch.testing.assert_close(totals[1], torch.full((LAYERS, HEADS), 9.0))
    assert torch.all(per_head[1, ..., 9:] == 0)
    torch.testing.assert_close(per_head, _eager_column_mass(model, ids, mask), rtol=1e-4, atol=1e-4)


def test_modernbert_sliding_layers_through_the_interface():
    model = tiny_masked_lm("modernbert", sliding=True)
    assert get_adapter(model).layer_types(model) == ["full_attention", "sliding_attention", "full_attention"]
    ids = framed_ids(2, 20)
    mask = torch.ones_like(ids)
    mask[0, 15:] = 0
    per_head = attention_mass(model, ids, mask, per_head=True)
    torch.testing.assert_close(per_head, _eager_column_mass(model, ids, mask), rtol=1e-4, atol=1e-4)
    # the sliding layer's window (|i - j| <= 4) leaves far keys of the first query without mass from it
    with pytest.raises(ValueError, match="use method='interface'"):
        attention_mass(model, ids, mask, method="hooks")


@pytest.mark.parametrize("padded", [True, False])
def test_modernbert_block_kwargs_rebuild_the_sliding_layers_inputs(padded):
    """What the sequential calibration replays (block 0's kwargs) is rebuilt for the sliding layers: every block fed
    its true input reproduces the full forward's next hidden state."""
    from optimum_sinkprune.calibration.hooks import catch_block_inputs, run_until_block

    model = tiny_masked_lm("modernbert", sliding=True)
    adapter = get_adapter(model)
    ids = framed_ids(2, 20)
    mask = torch.ones_like(ids)
    if padded:
        mask[1, 15:] = 0
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        with catch_block_inputs(adapter.blocks(model)[0]) as caught:
            run_until_block(model, ids, attention_mask=mask)
        item = caught[0]
        block = adapter.blocks(model)[1]
        rebuilt = block(hidden[1], *item.args, **adapter.block_kwargs(model, 1, item.kwargs))
        replayed = block(hidden[1], *item.args, **item.kwargs)
    valid = mask.bool()
    torch.testing.assert_close(rebuilt[valid], hidden[2][valid])
    assert not torch.allclose(replayed[valid], hidden[2][valid])  # block 0's full-attention inputs would be wrong
    assert adapter.block_kwargs(model, 2, item.kwargs) is item.kwargs  # same kind as block 0


def test_padding_from_mask():
    assert padding_from_mask(None) is None
    keys = torch.tensor([[True, True, False]])
    boolean = keys[:, None, None, :].expand(1, 1, 3, 3)
    additive = torch.zeros(1, 1, 3, 3).masked_fill(~boolean, torch.finfo(torch.float32).min)
    assert torch.equal(padding_from_mask(boolean), keys) and torch.equal(padding_from_mask(additive), keys)
    with pytest.raises(ValueError, match=r"\[batch, 1, query, key\]"):
        padding_from_mask(torch.ones(1, 3))


# ---------------------------------------------------------------------------------------------------------------------
# noise, sampler, ELBO
# ---------------------------------------------------------------------------------------------------------------------
def test_calibration_noise_keeps_cls_and_sep_clean():
    from optimum_sinkprune.calibration.noise import NoiseSchedule

    model = tiny_masked_lm("bert")
    config = SinkAwarePruningConfig(method="sink_wanda", **{**SMALL, "diffusion_steps": 20, "sample_interval": 1})
    schedule = NoiseSchedule.from_config(config, get_adapter(model))
    assert (schedule.schedule, schedule.protected) == ("uniform", "first_last")
    ids = framed_ids(4, 16)
    noised, _ = schedule.noised(ids, MASK_ID)
    assert torch.all(noised[..., 0] == CLS_ID) and torch.all(noised[..., -1] == SEP_ID)
    assert (noised[..., 1:-1] == MASK_ID).any()


@pytest.mark.parametrize("family", FAMILIES)
def test_sampler_fills_every_mask(family):
    from optimum_sinkprune.diffusion.sampler import generate

    model = tiny_masked_lm(family)
    prompt = framed_ids(2, 4)[:, :4]

    class Tokenizer:  # BertConfig names no [CLS] / [SEP]: the sampler closes the canvas with the tokenizer's
        cls_token_id, sep_token_id = CLS_ID, SEP_ID

    out = generate(model, prompt, steps=4, gen_length=8, block_length=4, tokenizer=Tokenizer())
    assert out.sequences.shape == (2, 12) and out.steps_taken == 4
    assert not (out.sequences == MASK_ID).any()
    assert torch.equal(out.sequences[:, :4], prompt)


@pytest.mark.parametrize("family", FAMILIES)
def test_elbo_is_finite(family):
    from optimum_sinkprune.diffusion.likelihood import elbo_log_likelihood

    model = tiny_masked_lm(family)
    ids = framed_ids(3, 12)
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, [0, -1]] = False  # [CLS] / [SEP] are framing, not text
    result = elbo_log_likelihood(model, ids, mc_num=2, maskable=maskable, batch_size=3)
    assert torch.isfinite(torch.tensor(result.nll_per_token)) and result.nll_per_token > 0
    assert result.num_sequences == 3


def test_sequential_calibration_feeds_sliding_layers_their_own_inputs():
    """The block-sequential loop (sparsegpt, sink_sparsegpt) replays block 0's inputs: with nothing pruned, every
    block's attention output must still equal the full forward's, sliding-window layers included."""
    from optimum_sinkprune.calibration.observers import Observer
    from optimum_sinkprune.calibration.pipeline import CalibrationPipeline

    model = tiny_masked_lm("modernbert", sliding=True)
    adapter = get_adapter(model)
    ids = framed_ids(2, 20)
    outputs = {i: adapter.projection(block, "o") for i, block in enumerate(adapter.blocks(model))}
    reference: dict[int, torch.Tensor] = {}
    handles = [o.register_forward_pre_hook(lambda m, a, i=i: reference.__setitem__(i, a[0])) for i, o in
               outputs.items()]
    try:
        with torch.no_grad():
            model(input_ids=ids)
    finally:
        for h in handles:
            h.remove()

    class AttentionOutput(Observer):
        def __init__(self, index):
            self.index, self.seen = index, []

        def modules(self):
            return {"o": outputs[self.index]}

        def on_input(self, name, x):
            self.seen.append(x)

    seen = {}
    CalibrationPipeline(model, adapter, batch_size=2, progress=False).sequential(
        ids, AttentionOutput, lambda index, observer: seen.__setitem__(index, torch.cat(observer.seen)))
    for i in outputs:
        torch.testing.assert_close(seen[i], reference[i], msg=f"block {i} ({adapter.layer_types(model)[i]})")


@pytest.mark.parametrize("family", FAMILIES)
def test_sink_trajectory_runs_on_the_family(family):
    from optimum_sinkprune.analysis.trajectory import forward_process_trajectory

    model = tiny_masked_lm(family)
    trajectory = forward_process_trajectory(model, framed_ids(2, 16), steps=4, sample_interval=2, schedule="uniform",
                                            protected="first_last", progress=False)
    assert trajectory.steps == [2, 4]
    assert torch.isfinite(torch.as_tensor(trajectory.share)).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_windows_are_framed_with_cls_and_sep(family):
    model = tiny_masked_lm(family)
    adapter = get_adapter(model)

    class Tokenizer:
        cls_token_id, sep_token_id = CLS_ID, SEP_ID

    windows = torch.randint(8, 60, (3, 10), generator=torch.Generator().manual_seed(0))
    framed = adapter.frame(model, windows, Tokenizer())
    assert torch.all(framed[:, 0] == CLS_ID) and torch.all(framed[:, -1] == SEP_ID)
    assert torch.equal(framed[:, 1:-1], windows[:, 1:-1])
    assert torch.equal(adapter.frame(model, framed, Tokenizer()), framed)
    with pytest.raises(ValueError, match="seq >= 3"):
        adapter.frame(model, windows[:, :2], Tokenizer())


def test_framing_ids_come_from_the_config_when_no_tokenizer_names_them():
    model = tiny_masked_lm("modernbert")  # ModernBertConfig carries cls_token_id / sep_token_id
    assert get_adapter(model).framing_token_ids(model) == (CLS_ID, SEP_ID)
    bert = tiny_masked_lm("bert")  # BertConfig names neither
    with pytest.raises(ValueError, match="cls_token_id/bos_token_id") as err:
        get_adapter(bert).framing_token_ids(bert)
    assert "BertConfig" in str(err.value) and "tokenizer" in str(err.value)
