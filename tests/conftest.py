# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Shared tiny-model fixtures: a tiny LLaDA, a tiny Dream with grouped-query attention, and tiny native Llama / Qwen2
(the AR baselines). Every model is built from a config in milliseconds, seeded, in eval mode, on CPU.

Models built with transformers' default init (std 0.02) give almost uniform logits, which hides bugs such as an
ignored norm weight; `randomize_weights` fills every parameter with O(1)-scale values for the math tests.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import optimum_sinkprune  # noqa: F401  (registers the Auto classes)
from optimum_sinkprune.models import DreamConfig, DreamModel, LLaDAConfig, LLaDAModelLM

VOCAB = 128
MASK_ID = 127

# `python -m pytest -q` runs everything (CI); `python -m pytest -q -m "not slow"` skips what is marked `slow`. Tests
# in tests/commands, tests/examples and tests/assets carry `@pytest.mark.slow` themselves; the rules below mark the
# rest in one place: every test on the loopback Hub (the `fake_hub` fixture), and these end-to-end, subprocess and
# whole-checkpoint save/reload tests.
SLOW_FIXTURES = ("fake_hub",)
SLOW_TESTS = (
    "tests/evaluation/test_benchmark_run_all.py::test_quick_benchmark",  # benchmarks/run_all.py end to end
    "tests/test_golden_masks.py",  # every method on the shipped model
    "tests/hub/test_save.py::test_termination_signal",  # a saving subprocess, signalled
    "tests/hub/test_save.py::test_sig",
    "tests/hub/test_save.py::test_card_usage_snippet_runs",
    "tests/hub/test_compressed.py::test_plain_transformers_loads",  # subprocess
    "tests/hub/test_compressed.py::test_compressed_is_smaller",
    "tests/hub/test_compressed.py::test_compressed_save_reloads",
    "tests/hub/test_compressed.py::test_sharded_compressed",
    "tests/structured/test_structured_reload.py::test_self_contained_remote_code_reload",  # subprocess
    "tests/structured/test_structured_reload.py::test_auto_reload_identical_logits",
    "tests/structured/test_structured_reload.py::test_composition_survives_reload",
    "tests/structured/test_structured_shipped.py",
    "tests/models/test_auto_registration.py::test_saved_checkpoints_are_self_contained",  # subprocess
    "tests/models/test_auto_registration.py::test_auto_classes_dispatch",
    "tests/models/test_auto_registration.py::test_trust_remote_code_is_never_switched_on",
    "tests/models/test_mmada_model.py::test_saved_checkpoint_points_auto_map",
    "tests/models/test_llada_model.py::test_hub_checkpoint_loads_via_auto_model",
    "tests/test_loading.py::test_native_pruned_checkpoint_reloads",
    "tests/test_loading.py::test_loaded_pruned_model_pickles",
    "tests/test_pruner.py::test_shipped_model_sink_wanda_end_to_end",
    "tests/test_pruner.py::test_save_and_reload_keeps_zeros",
    "tests/analysis/test_sink_report.py::test_plots_write_pngs",
    # save/reload round trips, offload runs and multi-method sweeps of about 0.5-4 s each on 2 shared cores: still
    # run by the default (CI) run; the quick loop keeps the cheaper tests of the same code paths
    "tests/adapters/test_bert_family.py::test_every_weight_method_gives_exact_2_4_masks",
    "tests/adapters/test_bert_family.py::test_sink_heads_on_bert_reloads",
    "tests/adapters/test_bert_family.py::test_structured_checkpoint_reloads_with_identical_logits",
    "tests/analysis/test_plots.py::test_save_writes_a_png",
    "tests/calibration/test_data.py::test_datasets_dataset",
    "tests/calibration/test_offload.py::test_auto_device_map_over_cpu_and_disk",
    "tests/calibration/test_offload.py::test_cpu_and_disk_device_map_prunes_like_memory",
    "tests/calibration/test_offload.py::test_dispatched_bfloat16_dat_files_and_restore_on_error",
    "tests/calibration/test_offload.py::test_offloaded_model_quantizes_and_saves_like_memory",
    "tests/calibration/test_offload.py::test_offloaded_pruned_model_saves_compressed_like_memory",
    "tests/calibration/test_padded_calibration.py::test_packed_runs_are_unchanged",
    "tests/calibration/test_padded_calibration.py::test_pruning_with_padded_rows_ignores_what_the_pads_hold",
    "tests/diffusion/test_likelihood.py::test_bernoulli_and_exact_count_agree_at_cfg_0_and_guidance_moves_the_value",
    "tests/evaluation/test_evaluation_metrics.py::test_rouge_l_matches_an_lcs_implementation",
    "tests/evaluation/test_lm_eval_model.py::test_simple_evaluate_on_the_local_multiple_choice_task",
    "tests/hub/test_push.py::test_server_that_never_answers_times_out_and_is_retried",
    "tests/methods/test_quantization.py::test_quantizer_same_seed_same_result",
    "tests/models/test_structural_record.py::test_native_checkpoint_with_bad_record_fails_before_any_weight_loads",
    "tests/scripts/test_train_minilm_dlm.py::test_resume_continues_the_step_counter_and_the_same_trajectory",
    "tests/structured/test_structured_reload.py::test_saved_config_round_trips",
    "tests/test_diffusion_gemma_expert_counts.py::test_expert_pruning_of_uneven_layers_removes_a_share_of_each",
    "tests/test_diffusion_gemma_expert_counts.py::test_uneven_expert_counts_reload_with_identical_logits_and_generate",
    "tests/test_diffusion_gemma_expert_methods.py::test_prune_save_reload_with_identical_logits",
    "tests/test_diffusion_gemma_expert_pruning.py::test_scores_equal_the_routing_of_plain_forwards",
    "tests/test_diffusion_gemma_experts.py::test_an_unrouted_expert_in_a_later_block_restores_the_earlier_blocks",
    "tests/test_diffusion_gemma_experts.py::test_noised_and_reconstructing_methods_reach_the_sparsity_on_every_expert",
    "tests/test_diffusion_gemma_noised.py::test_dense_statistics_are_the_decoders_canvas_activations_weighted_by_the_analysis_sigma",
    "tests/test_diffusion_gemma_noised.py::test_every_noised_or_sink_method_prunes_both_stacks",
    "tests/test_diffusion_gemma_pruning.py::test_clean_calibrated_methods_reach_their_sparsity",
    "tests/test_diffusion_gemma_pruning.py::test_structured_methods_run_and_keep_both_stacks_sharing_their_weights",
    "tests/test_diffusion_gemma_quantized.py::test_a_model_reloaded_from_the_quantized_layout_saves_dense_as_a_plain_checkpoint",
    "tests/test_diffusion_gemma_quantized.py::test_a_pruned_diffusion_gemma_is_dense_by_default_and_compressed_on_request",
    "tests/test_diffusion_gemma_quantized.py::test_experts_quantized_in_part_are_stored_dense_and_still_reload_exactly",
    "tests/test_diffusion_gemma_quantized.py::test_pruned_then_quantized_experts_keep_their_zeros_after_reload",
    "tests/test_diffusion_gemma_quantized.py::test_quantized_experts_are_stored_as_integers_and_reload_with_identical_logits",
    "tests/test_diffusion_gemma_structured.py::test_structured_removal_composes_with_expert_pruning",
    "tests/test_diffusion_gemma_structured.py::test_the_pruned_checkpoint_reloads_through_the_auto_class_with_identical_logits",
    "tests/test_diffusion_gemma_structured_methods.py::test_each_method_removes_whole_kv_groups_and_reloads_with_identical_logits",
    "tests/test_diffusion_gemma_structured_methods.py::test_the_budget_takes_units_of_both_sizes_and_the_channels_fill_the_rest",
    "tests/test_loading.py::test_from_config_builds_pruned_shapes",
    "tests/test_loading.py::test_unpruned_loads_unchanged_and_recorders_still_work",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        node = item.nodeid.replace("\\", "/")
        if node.startswith(SLOW_TESTS) or any(f in getattr(item, "fixturenames", ()) for f in SLOW_FIXTURES):
            item.add_marker(pytest.mark.slow)

# Tiny models gain nothing from intra-op threads, and on a shared 2-core machine they lose a lot (thread contention
# made one ELBO test 20x slower).
torch.set_num_threads(1)


def _seeded(seed: int, build):
    """Build under a private RNG state so fixtures never disturb (or depend on) the global torch RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build()
    return model.eval()


def randomize_weights(model: nn.Module, seed: int = 0) -> nn.Module:
    """Overwrite every parameter with O(1)-scale random values: linears ~ N(0, 1/fan_in), biases and embeddings
    ~ N(0, 0.5^2) / N(0, 1), norm weights ~ 1 + N(0, 0.1^2). Deterministic in `seed`."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32).to(p.dtype)
            if p.dim() == 2 and ("wte" in name or "embed" in name):
                p.copy_(noise)
            elif p.dim() == 2:
                p.copy_(noise / p.shape[1] ** 0.5)
            elif name.endswith("bias"):
                p.copy_(0.5 * noise)
            else:  # norm weights
                p.copy_(1.0 + 0.1 * noise)
    return model


def tiny_llada_config(**overrides) -> LLaDAConfig:
    kwargs = dict(
        d_model=64,
        n_heads=4,
        n_layers=2,
        mlp_hidden_size=96,
        vocab_size=VOCAB,
        embedding_size=VOCAB,
        mask_token_id=MASK_ID,
        eos_token_id=1,
        pad_token_id=0,
        max_sequence_length=256,
        rope_theta=10000.0,
    )
    kwargs.update(overrides)
    return LLaDAConfig(**kwargs)


def tiny_dream_config(**overrides) -> DreamConfig:
    kwargs = dict(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,  # grouped-query attention, like Dream-7B (28 q / 4 kv heads)
        max_position_embeddings=256,
        rope_theta=10000.0,
        mask_token_id=MASK_ID,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=1,
    )
    kwargs.update(overrides)
    return DreamConfig(**kwargs)


@pytest.fixture
def llada_config() -> LLaDAConfig:
    return tiny_llada_config()


@pytest.fixture
def dream_config() -> DreamConfig:
    return tiny_dream_config()


@pytest.fixture
def tiny_llada() -> LLaDAModelLM:
    return _seeded(0, lambda: LLaDAModelLM(tiny_llada_config()))


@pytest.fixture
def tiny_dream() -> DreamModel:
    return _seeded(1, lambda: DreamModel(tiny_dream_config()))


@pytest.fixture
def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rope_theta=10000.0,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=1,
    )
    return _seeded(2, lambda: LlamaForCausalLM(config))


@pytest.fixture
def tiny_qwen2():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rope_theta=10000.0,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=1,
    )
    return _seeded(3, lambda: Qwen2ForCausalLM(config))


@pytest.fixture
def randomize():
    """`randomize(model, seed=0)`: see `randomize_weights`."""
    return randomize_weights


@pytest.fixture
def tiny_configs():
    """Builders for the tiny configs with overrides: `tiny_configs.llada(n_kv_heads=2)`, `tiny_configs.dream(...)`."""

    class _Builders:
        llada = staticmethod(tiny_llada_config)
        dream = staticmethod(tiny_dream_config)

    return _Builders()


@pytest.fixture(autouse=True)
def _no_pruned_loading_left_registered():
    """A test that meets a pruned native config registers the module replacements, which make every later
    `from_pretrained` in the process slow; undo it after each test so tests stay independent and fast."""
    yield
    from optimum_sinkprune.models.pruned_loading import unregister_pruned_loading

    unregister_pruned_loading()
