# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Integration: the shipped tiny DLM pruned with sink_heads to 38% fewer block parameters is smaller on disk and
reloads with identical logits."""

import torch
from transformers import AutoModelForCausalLM

from optimum_sinkprune.assets import default_model_path
from optimum_sinkprune.configuration import SinkAwarePruningConfig
from optimum_sinkprune.structured import block_parameter_count, prune_structured


def test_shipped_dlm_prunes_saves_and_reloads(tmp_path):
    path = default_model_path()
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    dense_block = block_parameter_count(model)
    ids = torch.randint(4, model.config.vocab_size, (2, 32), generator=torch.Generator().manual_seed(0))
    ids[:, 0] = model.config.bos_token_id
    config = SinkAwarePruningConfig(method="sink_heads", target_param_reduction=0.38, num_samples=2, seq_len=32,
                                    diffusion_steps=10, sample_interval=5, batch_size=2)
    result = prune_structured(model, config=config, calibration_ids=ids, progress=False)
    assert abs(result.realised_reduction - 0.38) < 0.01
    assert block_parameter_count(model) < dense_block
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, model(input_ids=ids).logits, atol=0, rtol=0)
    weights = sum(f.stat().st_size for f in tmp_path.glob("*.safetensors"))
    assert weights < 4 * sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(path).parameters())
