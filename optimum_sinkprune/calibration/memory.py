# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Memory estimate of a pruning run, and the up-front check that refuses, with the numbers, when it cannot fit.

`estimate_memory` predicts the extra bytes a run needs beyond the loaded model from the config and the model's
shapes (nothing is run); `check_memory` compares them with what the device and the host have free.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from torch import nn

from ..adapters.base import ModelAdapter
from ..offload import module_device
from ..registry import get_method
from .noise import NoiseSchedule
from .pipeline import PROBE_CHUNK_BYTES, groups_by_block, input_groups


@dataclass
class MemoryEstimate:
    """Extra bytes a run needs beyond the loaded model, on the compute device and on the host (CPU RAM).

    Attributes:
        device: the compute device of the first block.
        device_bytes: peak extra bytes on `device` (on a CPU run: everything, host activations included).
        host_bytes: peak extra bytes in host memory (on a CPU run: the same as `device_bytes`).
        parts: what adds up to the peak: memory held for the whole run (statistics, calibration ids, block inputs),
            the largest working set of one step ("working memory"), and "host activations" (what the run keeps in
            host memory). `device_bytes` is the sum of the parts other than "host activations", plus those on a CPU
            run.
        phases: the working set of each step (one block's forward, one layer's mask or reconstruction); the largest
            is "working memory".
        disk_bytes: bytes written to a temporary folder (restore copies of modified weights).
        offload_bytes: {offload folder: bytes of pruned weights written there} for targets offloaded to disk.
    """

    device: str
    device_bytes: int
    host_bytes: int
    parts: dict[str, int]
    phases: dict[str, int] = field(default_factory=dict)
    disk_bytes: int = 0
    offload_bytes: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        gib = 1024**3
        parts = ", ".join(f"{k} {v / gib:.3f} GiB" for k, v in self.parts.items())
        disk = f"; disk: {self.disk_bytes / gib:.3f} GiB of restore copies" if self.disk_bytes else ""
        if self.offload_bytes:
            disk += f"; offload folder: {sum(self.offload_bytes.values()) / gib:.3f} GiB of pruned weights"
        return (f"device {self.device}: {self.device_bytes / gib:.3f} GiB; host: {self.host_bytes / gib:.3f} GiB "
                f"({parts}){disk}")


# Host memory a run's process gains beyond its tensors: the allocator keeps freed blocks of up to a few tens of MiB for
# reuse, and the first forward starts the intra-op thread pool (measured on the full-width runs of
# benchmarks/bench_scale.py: 40-60 MiB with no tensor of the run alive).
RUNTIME_HOST_BYTES = 64 * 1024**2


def block_forward_bytes(tokens: int, hidden: int, mlp: int, heads: int, act_bytes: int, *, probe: bool) -> int:
    """Peak activations of one transformer block's forward on `tokens` tokens (batch × sequence).

    The live tensors at the MLP's peak: the residual stream and its norm (2 · hidden), gate and up and their
    product (3 · mlp); at the attention's: q, k, v, rotated q and k, the output (6 · hidden). With the attention-mass
    probe, two float32 chunks of scores of at most `PROBE_CHUNK_BYTES` each are live as well."""
    attention = 8 * hidden
    mlp_peak = 2 * hidden + 3 * mlp
    probe_bytes = 2 * min(tokens * heads * tokens * 4, PROBE_CHUNK_BYTES) if probe else 0
    return tokens * max(attention, mlp_peak) * act_bytes + probe_bytes


def mask_selection_bytes(out_features: int, in_features: int, *, per_row: bool, score_bytes: int = 4) -> int:
    """Working set of one layer's mask (`methods.layer_mask` on a Wanda-type or magnitude score): the bool mask,
    plus per-row selection on chunks of `_ROW_CHUNK_ELEMENTS` weights (|W|, the scores, the partial top-k and the
    comparison bools: about 24 bytes per weight of the chunk), or, for one whole-matrix group, the full score matrix
    and its selection."""
    from ..methods.layer import _ROW_CHUNK_ELEMENTS

    numel = out_features * in_features
    if per_row:
        return numel + 24 * min(numel, max(_ROW_CHUNK_ELEMENTS // max(in_features, 1), 1) * in_features)
    # the scores, the partial top-k (half the values, with int64 indices) and three bool masks
    return numel * (score_bytes + 6 + 3)


def sparsegpt_bytes(out_features: int, in_features: int) -> int:
    """Working set of SparseGPT on one layer: the float32 weight copy and its reconstruction, the mask, and three
    [in, in] float32 matrices (the dampened Hessian, its Cholesky factor, the inverse's factor)."""
    return out_features * in_features * (4 + 4 + 1) + 3 * in_features**2 * 4


def estimate_memory(
    model: nn.Module, adapter: ModelAdapter, targets: dict[str, nn.Linear], *, config, restore_copies: bool = False,
    device: torch.device | str | None = None,
) -> MemoryEstimate:
    """Predict the extra memory of pruning `model` with `config` (from shapes only; nothing is run).

    Args:
        model, adapter, targets: the run's model (a meta-device model works), its adapter and target layers.
        config: the run's `SinkAwarePruningConfig`.
        restore_copies: the pruner keeps copies of modified weights (sequential methods, `restore_on_error`); they
            go to disk (`disk_bytes`), not to memory.
        device: the compute device to size for (default: the first block's).

    Returns:
        `MemoryEstimate`: peak extra bytes = what the run holds throughout + its largest single step.
    """
    spec = get_method(config.method)
    blocks = adapter.blocks(model)
    if device is not None:
        device = torch.device(device)
    else:
        device = module_device(blocks[0]) if len(blocks) else torch.device("cpu")
    b, s, n = config.batch_size, config.seq_len, config.num_samples
    b = min(b, n)
    hidden = int(model.config.get_text_config().hidden_size)
    act_bytes = next(model.parameters()).element_size()
    heads = max((adapter.num_heads(model, i) for i in range(len(blocks))), default=1)
    mlp = max((adapter.mlp_width(model, i) for i in range(len(blocks))), default=hidden)
    groups = input_groups(adapter, targets)
    widths = {name: targets[name].in_features for name in groups}
    shapes = [(t.out_features, t.in_features) for t in targets.values()]
    held: dict[str, int] = {}
    phases: dict[str, int] = {}
    host = 0
    if spec.order == "dense":
        forward = block_forward_bytes(b * s, hidden, mlp, heads, act_bytes, probe=spec.sink)
        if spec.sink:  # every observed input of the forward waits for σ (computed after the last block)
            forward += b * s * sum(widths.values()) * act_bytes
        phases["forward"] = forward
        phases["mask of one layer"] = max(
            (mask_selection_bytes(o, i, per_row=spec.per_row or config.nm is not None) for o, i in shapes), default=0)
        held["statistics"] = len(targets) * max(widths.values(), default=0) * 4
        host = n * len(NoiseSchedule.from_config(config).steps) * s * 8  # the noised ids (int64)
    elif spec.order == "sequential":
        phases["block forward"] = block_forward_bytes(b * s, hidden, mlp, heads, act_bytes, probe=False)
        per_block = groups_by_block(adapter, groups)
        if spec.statistic == "hessian":
            hessians = {idx: sum(widths[name] ** 2 * 4 for name in block_groups)
                        for idx, block_groups in per_block.items()}
            held["hessians of one block"] = max(hessians.values(), default=0)
            # while a Hessian is gathered: the float32 input and X^T X of one batch before it is added
            phases["block forward"] += max((b * s * w * 4 + w * w * 4 for w in widths.values()), default=0)
            phases["reconstruction of one layer"] = max((sparsegpt_bytes(o, i) for o, i in shapes), default=0)
        else:
            held["statistics of one block"] = sum(widths.values()) * 4
            phases["mask of one layer"] = max(
                (mask_selection_bytes(o, i, per_row=spec.per_row or config.nm is not None) for o, i in shapes),
                default=0)
        if spec.sink:  # σ̄ per sample ([n, seq] float32) from a dense pass before the blocks
            held["token weights"] = n * s * 4
            phases["sink detection forward"] = block_forward_bytes(b * s, hidden, mlp, heads, act_bytes, probe=True)
        # every sample's block inputs on the host, plus one batch's outputs while they replace them
        host = n * s * hidden * act_bytes + b * s * hidden * act_bytes + n * s * 8
    else:
        phases["mask of one layer"] = max(
            (mask_selection_bytes(o, i, per_row=spec.per_row or config.nm is not None,
                                  score_bytes=max(act_bytes, 4)) for o, i in shapes), default=0)
    parts = dict(held)
    parts["working memory"] = max(phases.values(), default=0)
    parts["host activations"] = host + RUNTIME_HOST_BYTES
    device_bytes = sum(v for k, v in parts.items() if k != "host activations")
    if device.type == "cpu":
        device_bytes += parts["host activations"]
        host_bytes = device_bytes
    else:
        host_bytes = parts["host activations"]
    disk = sum(t.weight.numel() * t.weight.element_size() for t in targets.values()) if restore_copies else 0
    return MemoryEstimate(device=str(device), device_bytes=int(device_bytes), host_bytes=int(host_bytes),
                          parts=parts, phases=phases, disk_bytes=int(disk), offload_bytes=offload_write_bytes(targets))


def offload_write_bytes(targets: dict[str, nn.Linear]) -> dict[str, int]:
    """{offload folder: bytes} that pruning the targets offloaded to disk adds there: a new file for each weight read
    from the checkpoint's safetensors file (one already in the folder is replaced by one of the same size), plus the
    largest weight once (a file is written beside the one it replaces, then renamed over it)."""
    from ..offload import offload_slot

    new: dict[str, int] = {}
    largest: dict[str, int] = {}
    for layer in targets.values():
        weight = layer.weight
        if weight.device.type != "meta":
            continue
        slot = offload_slot(layer, "weight")
        if slot is None or not slot.on_disk or slot.folder is None:
            continue
        nbytes = weight.numel() * weight.element_size()
        entry = slot.mapping.index.get(slot.key, {})
        new[slot.folder] = new.get(slot.folder, 0) + (nbytes if entry.get("safetensors_file") else 0)
        largest[slot.folder] = max(largest.get(slot.folder, 0), nbytes)
    return {folder: new[folder] + largest[folder] for folder in new}


def _free_disk_bytes(folder: str) -> int | None:
    """Free bytes of the file system `folder` is (or will be) on; None when unknown."""
    import shutil

    path = os.path.abspath(folder)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    try:
        return int(shutil.disk_usage(path).free)
    except OSError:
        return None


def available_memory(device: torch.device) -> int | None:
    """Free bytes on `device` (None when unknown)."""
    if device.type == "cpu":
        return available_host_memory()
    try:
        module = getattr(torch, device.type)
        free, _total = module.mem_get_info(device)
        return int(free)
    except Exception:  # noqa: BLE001 - not every backend reports free memory
        return None


def available_host_memory() -> int | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(estimate: MemoryEstimate, *, limit_bytes: int | None = None) -> None:
    """Raise `MemoryError` with the numbers when the estimate exceeds the device budget or free host memory, and
    `OSError` (ENOSPC) when an offload folder has less free space than the pruned weights written into it."""
    gib = 1024**3
    budget = limit_bytes if limit_bytes is not None else available_memory(torch.device(estimate.device))
    if budget is not None and estimate.device_bytes > budget:
        raise MemoryError(
            f"pruning needs about {estimate.device_bytes / gib:.3f} GiB more on {estimate.device} but only "
            f"{budget / gib:.3f} GiB is available ({estimate.summary()}); lower batch_size, seq_len or num_samples, or "
            "set memory_limit_gb if the estimate is too cautious"
        )
    for folder, need in estimate.offload_bytes.items():
        free = _free_disk_bytes(folder)
        if free is not None and need > free:
            import errno

            raise OSError(errno.ENOSPC, f"pruning writes about {need / gib:.3f} GiB ({need} bytes) of pruned weights "
                          f"into the offload folder {folder!r} (its blocks are offloaded to disk) but only "
                          f"{free / gib:.3f} GiB ({free} bytes) is free there; free space there or load the model "
                          "with another offload_folder")
    host_free = available_host_memory()
    if host_free is not None and estimate.host_bytes > host_free and torch.device(estimate.device).type != "cpu":
        raise MemoryError(
            f"pruning keeps about {estimate.host_bytes / gib:.3f} GiB of calibration activations in host memory but "
            f"only {host_free / gib:.3f} GiB is free; lower num_samples or seq_len"
        )


def block_weight_bytes(model: nn.Module, adapter: ModelAdapter, dtype: torch.dtype | None = None) -> dict[str, int]:
    """{block name: bytes of its parameters and buffers} (in `dtype` for floating tensors when given; a meta-device
    or offloaded model counts its shapes): what each block needs on the device it runs on."""
    from ..offload import module_bytes
    from .pipeline import block_names

    return {name: module_bytes(block, dtype) for name, block in block_names(model, adapter).items()}


def check_block_memory(model: nn.Module, adapter: ModelAdapter, estimate: MemoryEstimate, max_memory) -> None:
    """Raise `MemoryError` with both numbers when accelerate's `max_memory` ({device: size}) leaves no device that
    can hold one block's weights plus the run's largest working set (`estimate.parts["working memory"]`): a block,
    offloaded or not, runs whole on one device (`optimum_sinkprune.offload.check_max_memory`)."""
    from ..offload import check_max_memory

    check_max_memory(max_memory, block_weight_bytes(model, adapter),
                     extra_bytes=int(estimate.parts.get("working memory", 0)))


__all__ = [
    "RUNTIME_HOST_BYTES",
    "MemoryEstimate",
    "available_host_memory",
    "available_memory",
    "block_forward_bytes",
    "block_weight_bytes",
    "check_block_memory",
    "check_memory",
    "estimate_memory",
    "mask_selection_bytes",
    "offload_write_bytes",
    "sparsegpt_bytes",
]
