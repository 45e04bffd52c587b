# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Pinned hashes of what every method produces on the shipped tiny-llada: the pruned weights (and so the masks)
of each unstructured method and pattern, the kept shapes and weights of each structured method, and the saved
weight file. A refactor must leave every hash unchanged; a deliberate change of the maths updates them here, with
the reason in the commit message.

Regenerate with `SINKPRUNE_PRINT_GOLDEN=1 python -m pytest tests/test_golden_masks.py -q -s`.
"""

from __future__ import annotations

import hashlib
import os

import pytest
import torch

from optimum_sinkprune.assets import default_model_path, load_calibration_texts
from optimum_sinkprune.configuration import SinkAwarePruningConfig
from optimum_sinkprune.pruner import SinkAwarePruner

CALIBRATION = dict(num_samples=4, seq_len=32, diffusion_steps=10, sample_interval=5, seed=0)

CASES = {
    "magnitude/unstructured": dict(method="magnitude", sparsity=0.5),
    "magnitude/2:4": dict(method="magnitude", pattern="2:4", sparsity=0.5),
    "wanda/unstructured": dict(method="wanda", sparsity=0.5),
    "wanda/2:4": dict(method="wanda", pattern="2:4", sparsity=0.5),
    "sparsegpt/unstructured": dict(method="sparsegpt", sparsity=0.5),
    "sparsegpt/2:4": dict(method="sparsegpt", pattern="2:4", sparsity=0.5),
    "sink_wanda/unstructured": dict(method="sink_wanda", sparsity=0.6),
    "sink_wanda/2:4": dict(method="sink_wanda", pattern="2:4", sparsity=0.5),
    "wanda_diffusion/unstructured": dict(method="wanda_diffusion", sparsity=0.5),
    "sink_sparsegpt/unstructured": dict(method="sink_sparsegpt", sparsity=0.5),
    "sink_sparsegpt/2:4": dict(method="sink_sparsegpt", pattern="2:4", sparsity=0.5),
    "sink_heads/remove": dict(method="sink_heads", target_param_reduction=0.3),
    "sink_heads/mask": dict(method="sink_heads", target_param_reduction=0.3, structured_mode="mask"),
    "magnitude_heads/remove": dict(method="magnitude_heads", target_param_reduction=0.3),
    "random_heads/remove": dict(method="random_heads", target_param_reduction=0.3),
    "activation_heads/remove": dict(method="activation_heads", target_param_reduction=0.3, allocation="global"),
}

GOLDEN = {
    "activation_heads/remove": "781015601211d2ac",
    "magnitude/2:4": "a0d81fa1d5ecbac9",
    "magnitude/unstructured": "8540e9136ccd3b4f",
    "magnitude_heads/remove": "266c4ae186f881e3",
    "random_heads/remove": "b529833c4fdb4739",
    "sink_heads/mask": "ff5ae5177242b7e4",
    "sink_heads/remove": "16ae771040b0f4ad",
    "sink_sparsegpt/2:4": "62f119a27d332851",
    "sink_sparsegpt/unstructured": "3ad9eef121f02875",
    "sink_wanda/2:4": "0b50736002614aa9",
    "sink_wanda/unstructured": "8550444e0ee555cd",
    "sparsegpt/2:4": "6c569bfc9836814b",
    "sparsegpt/unstructured": "ec67d9e36a8d995b",
    "wanda/2:4": "b45f09b7eb7b4984",
    "wanda/unstructured": "579d6fade0754314",
    "wanda_diffusion/unstructured": "0811138466b9dfb6",
    "saved/dense/sink_wanda": "8d8c57c29033ea51",
    "saved/compressed/sink_wanda": "379142d31ee1b312",
}


def _state_hash(model: torch.nn.Module) -> str:
    """sha256 over every parameter's name, shape and float32 bytes: masks, reconstructed weights and shapes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="module")
def calibration_texts():
    return load_calibration_texts(limit=8)


def _pruned(case: str, texts) -> SinkAwarePruner:
    pruner = SinkAwarePruner.from_pretrained(default_model_path(), torch_dtype=torch.float32)
    config = SinkAwarePruningConfig(**CASES[case], **CALIBRATION)
    pruner.prune(config, texts, progress=False)
    return pruner


@pytest.mark.parametrize("case", sorted(CASES))
def test_pruned_weights_match_pinned_hash(case, calibration_texts):
    pruner = _pruned(case, calibration_texts)
    value = _state_hash(pruner.model)
    if os.environ.get("SINKPRUNE_PRINT_GOLDEN"):
        print(f'    "{case}": "{value}",')
    assert case in GOLDEN, f"no pinned hash for {case!r}; regenerate (see module docstring)"
    assert value == GOLDEN[case], f"{case}: weights after pruning changed ({value} != {GOLDEN[case]})"


def _saved_weights_hash(pruner: SinkAwarePruner, folder, **save_kwargs) -> str:
    out = pruner.save_pretrained(folder, **save_kwargs)
    digest = hashlib.sha256()
    for name in sorted(f for f in os.listdir(out) if f.endswith(".safetensors")):
        with open(os.path.join(out, name), "rb") as fh:
            digest.update(fh.read())
    return digest.hexdigest()[:16]


@pytest.mark.parametrize("save_format", ["dense", "compressed"])
def test_saved_weight_file_matches_pinned_hash(calibration_texts, tmp_path, save_format):
    """Dense storage is byte-identical to what the package wrote before compressed storage existed; the compressed
    (sparse-bitmask) file is pinned too."""
    pruner = _pruned("sink_wanda/unstructured", calibration_texts)
    value = _saved_weights_hash(pruner, tmp_path / "ckpt", save_format=save_format)
    key = f"saved/{save_format}/sink_wanda"
    if os.environ.get("SINKPRUNE_PRINT_GOLDEN"):
        print(f'    "{key}": "{value}",')
    assert value == GOLDEN[key], f"saved {save_format} weight file changed ({value})"
