# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The smallest DiffusionGemma (transformers' `diffusion_gemma`, `DiffusionGemmaForBlockDiffusion`) that keeps every
part of its text layers: a sliding and a full attention layer (the full one with its own head size, one kv head and
keys reused as values), q/k/v norms, the dense MLP beside a 4-expert top-2 mixture, self-conditioning, a canvas of 8.

The vision tower cannot be left out (`DiffusionGemmaConfig(vision_config=None)` builds the default ~168M-parameter
Gemma 4 vision tower), so the config gives it one layer of width 16 and a 16-entry position table: ~3k parameters.
The whole model has ~48k parameters, builds in well under a second and runs a forward in milliseconds on CPU.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion

from optimum_sinkprune import SinkAwarePruner, SinkAwarePruningConfig

DG_VOCAB = 128
DG_CANVAS = 8
# the multimodal special tokens sit at the top of the tiny vocabulary, away from the ids the tests draw
DG_IMAGE_TOKEN = 127
DG_BOI_TOKEN = 125
DG_EOI_TOKEN = 126
# text ids the tests draw: above pad/eos/bos (0, 1, 2), below the multimodal tokens
DG_TEXT_IDS = (3, 120)


def tiny_diffusion_gemma_config(*, canvas_length: int = DG_CANVAS, **text_overrides) -> DiffusionGemmaConfig:
    """The tiny config; `text_overrides` replace text-config fields (e.g. `use_bidirectional_attention="all"`)."""
    text = dict(
        vocab_size=DG_VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, global_head_dim=16, num_global_key_value_heads=1, sliding_window=8,
        layer_types=["sliding_attention", "full_attention"], num_experts=4, top_k_experts=2,
        moe_intermediate_size=16, max_position_embeddings=256, pad_token_id=0, eos_token_id=1, bos_token_id=2,
    )
    text.update(text_overrides)
    vision = dict(
        model_type="gemma4_vision", hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, head_dim=8, position_embedding_size=16, patch_size=4, pooling_kernel_size=1,
    )
    return DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=canvas_length,
                                boi_token_id=DG_BOI_TOKEN, eoi_token_id=DG_EOI_TOKEN, image_token_id=DG_IMAGE_TOKEN)


def tiny_diffusion_gemma(seed: int = 0, *, randomize: bool = True, **config_kwargs) -> DiffusionGemmaForBlockDiffusion:
    """A seeded tiny model in eval mode, built under a private RNG state. With `randomize`, every linear and expert
    weight is redrawn at O(1) scale (N(0, 1/fan_in)) and norm weights at 1 + N(0, 0.1²), so that logits and attention
    are far from uniform (transformers' init at std 0.02 hides most effects); tied weights stay tied."""
    config = tiny_diffusion_gemma_config(**config_kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DiffusionGemmaForBlockDiffusion(config)
    if randomize:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in model.named_parameters():  # tied parameters appear once
                noise = torch.randn(p.shape, generator=gen)
                if "embed_tokens" in name:
                    p.copy_(noise)
                elif p.dim() >= 2:
                    p.copy_(noise / p.shape[-1] ** 0.5)
                else:  # norm weights and the router's scales
                    p.copy_(1.0 + 0.1 * noise)
    return model.eval()


def text_ids(batch: int, seq: int, seed: int = 0) -> torch.Tensor:
    """Random text token ids [batch, seq] (no special or multimodal token)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(DG_TEXT_IDS[0], DG_TEXT_IDS[1], (batch, seq), generator=gen)


def weighted_calibration_forwards(model, adapter, windows: torch.Tensor, token_weight: torch.Tensor, current: dict,
                                  handles: Iterable) -> None:
    """Plain calibration forwards, one window at a time, with that window's token weights in `current["w"]` for the
    caller's hooks to read; the hooks (`handles`) are removed afterwards, whatever happens."""
    try:
        with torch.no_grad():
            for window, w in zip(windows, token_weight):
                current["w"] = w
                adapter.calibration_forward(model, window[None])
    finally:
        for handle in handles:
            handle.remove()


def prune_with_structured_method(model, method: str):
    """`SinkAwarePruner.prune` with a structured `method` (a 20 % parameter reduction) on two text windows of 24."""
    config = SinkAwarePruningConfig(method=method, target_param_reduction=0.2, num_samples=2, seq_len=24)
    return SinkAwarePruner(model).prune(config, text_ids(2, 24), progress=False)
