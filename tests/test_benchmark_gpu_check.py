# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""benchmarks/gpu_check.py on a tiny width: the model it builds on a device, the dense/pruned pair that shares the
embedding and head (pruning the copy must leave the dense model as it was), and the CPU report's no-GPU notice."""

from pathlib import Path

import pytest
import torch

from script_loading import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
TINY = dict(d_model=64, n_heads=4, mlp_hidden_size=128, vocab_size=128, embedding_size=128, mask_token_id=127)


@pytest.fixture(scope="module")
def gpu_check():
    return load_script(SCRIPT, "sinkprune_benchmark_gpu_check")


def test_build_model_on_device(gpu_check):
    model = gpu_check.build_model(2, torch.device("cpu"), torch.float32, width=TINY)
    assert all(p.device.type == "cpu" and not p.is_meta for p in model.parameters())
    weight = model.model.transformer.blocks[0].ff_out.weight
    assert abs(float(weight.detach().std()) - weight.shape[1] ** -0.5) < 0.02  # N(0, 1/in)
    norms = [p for n, p in model.named_parameters() if p.dim() == 1 and not n.endswith("bias")]
    assert norms and all(torch.equal(p, torch.ones_like(p)) for p in norms)
    again = gpu_check.build_model(2, torch.device("cpu"), torch.float32, width=TINY)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))  # seeded


def test_shared_copy_prunes_without_touching_dense(gpu_check):
    from optimum_sinkprune import SinkAwarePruner, SinkAwarePruningConfig

    dense = gpu_check.build_model(2, torch.device("cpu"), torch.float32, width=TINY)
    copy = gpu_check._shared_copy(dense)
    assert copy.model.transformer.wte.weight is dense.model.transformer.wte.weight
    assert copy.model.transformer.ff_out.weight is dense.model.transformer.ff_out.weight
    assert copy.model.transformer.blocks[0].q_proj.weight is not dense.model.transformer.blocks[0].q_proj.weight
    ids = torch.randint(0, 120, (1, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = dense(ids).logits.clone()
    config = SinkAwarePruningConfig(method="magnitude_heads", target_param_reduction=0.38, structured_mode="remove")
    SinkAwarePruner(copy).prune(config, None, progress=False)
    assert gpu_check.forward_flops(dense, 16) > gpu_check.forward_flops(copy, 16)
    with torch.no_grad():
        assert torch.equal(dense(ids).logits, before)


def test_cpu_report_says_no_gpu(gpu_check):
    assert gpu_check.pick_device(None, cpu=True).type == "cpu"
    env = {"mode": "CPU mode, no GPU", "device": "cpu", "device_name": "x86_64", "torch": torch.__version__,
           "layers": 2, "dtype": "float32", "threads": 1, "reps": 1, "machine": "x86_64", "cpus": 2, "load": "0"}
    assert "No GPU was available" in gpu_check.markdown({"env": env, "cases": {}})
