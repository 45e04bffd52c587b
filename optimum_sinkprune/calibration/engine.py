# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The calibration engine: the one loop that runs a model over calibration samples for every pruning method.

Methods differ only in what they ask for (see `optimum_sinkprune.methods.registry.MethodSpec`):

* **dense** statistics (`collect_dense_norms`): the unpruned model runs on noised samples — one forward per
  (sample, sampled step) — and returns, per linear layer, Σ over (sample, step) of ‖w ⊙ X_j‖₂ over tokens, with
  w = 1 − σ from the attention mass captured *during the same forward* (`sink_wanda`) or w = 1
  (`wanda_diffusion`). Inputs shared by several layers (q/k/v, gate/up) are captured once.
* **sink weights** (`collect_sink_weights`): σ per sample averaged over the sampled steps (`sink_sparsegpt`).
* **sequential** (`run_sequential`): blocks in order on clean samples; per block the engine gathers per-input
  sums of squares (Wanda) or (optionally token-weighted) Hessians (SparseGPT), hands them to the method's pruning
  callback, then recomputes that block's outputs with the pruned weights as the next block's inputs. Calibration
  activations live on CPU; one batch at a time is moved to the device of the block being processed, so models
  dispatched with accelerate (device maps, CPU offload) larger than the device work.

`estimate_memory` predicts the extra memory of a run from the config and model shapes, and `check_memory` refuses
up front, with the numbers, when it cannot fit.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from ..adapters.base import ModelAdapter
from ..diffusion import forward_process
from .attention import AttentionMassProbe, default_chunk_size
from .hooks import BlockInputs, catch_block_inputs, input_hooks, move_to, run_until_block, stop_after
from .sink_weights import sink_weights

logger = logging.getLogger(__name__)

# Which projections read the same input tensor: q/k/v read the attention norm, gate/up the MLP norm.
INPUT_GROUPS = {"q": "attn_in", "k": "attn_in", "v": "attn_in", "o": "attn_out", "gate": "mlp_in", "up": "mlp_in",
                "down": "mlp_out"}


# ------------------------------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------------------------------
def module_device(module: nn.Module) -> torch.device:
    """Where `module` computes: accelerate's execution device when dispatched, else its first real parameter's device."""
    hook = getattr(module, "_hf_hook", None)
    exec_device = getattr(hook, "execution_device", None)
    if exec_device is not None:
        return torch.device(exec_device if not isinstance(exec_device, int) else f"cuda:{exec_device}")
    for p in module.parameters():
        if p.device.type != "meta":
            return p.device
    for sub in module.modules():
        sub_hook = getattr(sub, "_hf_hook", None)
        if getattr(sub_hook, "execution_device", None) is not None:
            return module_device(sub)
    return torch.device("cpu")


def input_device(model: nn.Module, adapter: ModelAdapter) -> torch.device:
    """Device the token ids must be on (the embedding's)."""
    return module_device(model.get_input_embeddings())


def sample_seeds(seed: int, num_samples: int) -> list[int]:
    """Per-sample noise seeds: `num_samples` draws of randint(0, 2³¹) from a CPU generator seeded with `seed`, so a
    sample's noise does not depend on batch_size, on the device, or on the other samples."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randint(0, 2**31, (num_samples,), generator=gen).tolist()


def noised_samples(
    samples: torch.Tensor, steps: list[int], *, diffusion_steps: int, mask_token_id: int, noise_eps: float, seed: int
) -> torch.Tensor:
    """All noised inputs [n, len(steps), seq]: sample i at step s is `forward_process(x_i, t=s/diffusion_steps)`, its
    noise drawn from a CPU generator seeded with `sample_seeds(seed, n)[i]`, steps in increasing order."""
    out = torch.empty((samples.shape[0], len(steps), samples.shape[1]), dtype=samples.dtype)
    for i, sample_seed in enumerate(sample_seeds(seed, samples.shape[0])):
        gen = torch.Generator(device="cpu").manual_seed(sample_seed)
        for k, step in enumerate(steps):
            noisy, _, _ = forward_process(samples[i:i + 1].cpu(), step / diffusion_steps, mask_token_id, eps=noise_eps,
                                          generator=gen)
            out[i, k] = noisy[0]
    return out


def input_groups(adapter: ModelAdapter, targets: dict[str, nn.Linear]) -> dict[str, list[str]]:
    """Group target layers that read the same input tensor: {representative name: [member names]}."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name in targets:
        role = adapter.role_of(name)
        block = name[: -len(adapter.layout.projections[role]) - 1]
        groups.setdefault((block, INPUT_GROUPS[role]), []).append(name)
    return {members[0]: members for members in groups.values()}


# Bound on one query chunk of the probe's float32 scores, so attention is never materialised for a whole layer.
PROBE_CHUNK_BYTES = 2 * 1024 * 1024


def _probe_chunk(model: nn.Module, adapter: ModelAdapter, batch: int, seq: int) -> int:
    return default_chunk_size(batch, adapter.original_num_heads(model), seq, PROBE_CHUNK_BYTES)


def _batches(n: int, batch_size: int) -> list[range]:
    return [range(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


# ------------------------------------------------------------------------------------------------------------------
# dense statistics on noised inputs (sink_wanda, wanda_diffusion)
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class SinkStatistics:
    """Summary of the sink weights seen during calibration (for the report)."""

    forwards: int = 0
    tokens: int = 0
    sigma_sum: float = 0.0
    sink_tokens: int = 0  # σ > 0.5
    position_hits: dict[int, int] = field(default_factory=dict)  # argmax-mass position -> count

    def add(self, sigma: torch.Tensor, mass: torch.Tensor) -> None:
        self.forwards += sigma.shape[0]
        self.tokens += sigma.numel()
        self.sigma_sum += float(sigma.double().sum())
        self.sink_tokens += int((sigma > 0.5).sum())
        for pos in mass.argmax(dim=1).tolist():
            self.position_hits[pos] = self.position_hits.get(pos, 0) + 1

    def to_dict(self) -> dict:
        top = sorted(self.position_hits.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        return {
            "forward_passes": self.forwards,
            "mean_sink_weight": self.sigma_sum / self.tokens if self.tokens else 0.0,
            "sink_token_fraction": self.sink_tokens / self.tokens if self.tokens else 0.0,
            "top_sink_positions": [{"position": p, "count": c} for p, c in top],
        }


@torch.no_grad()
def collect_dense_norms(
    model: nn.Module,
    adapter: ModelAdapter,
    targets: dict[str, nn.Linear],
    noisy: torch.Tensor,
    *,
    sink: bool,
    sink_alpha: float,
    sink_std: float,
    batch_size: int = 1,
    progress: bool = True,
) -> tuple[dict[str, torch.Tensor], SinkStatistics | None]:
    """Per target layer: Σ over (sample, step) of the L2 norm over tokens of (1 − σ) ⊙ X_j (σ ≡ 0 when not `sink`).

    One forward per (sample, step) batch: the attention-mass probe runs inside the same hooked forward; the inputs
    of each distinct input group are kept for that forward only and reduced once σ is known.

    Args:
        noisy: [n, steps, seq] noised calibration ids (`noised_samples`).

    Returns:
        `({name: float32 [in]}, SinkStatistics or None)`.
    """
    from ..methods.scoring import weighted_token_norms

    groups = input_groups(adapter, targets)
    reps = {name: targets[name] for name in groups}
    acc: dict[str, torch.Tensor] = {}
    kept: dict[str, torch.Tensor] = {}

    def reduce(name: str, x: torch.Tensor, weight: torch.Tensor | None) -> None:
        norms = weighted_token_norms(x, weight).sum(dim=0)
        acc[name] = norms if name not in acc else acc[name] + norms

    def on_input(name: str, x: torch.Tensor) -> None:
        if sink:
            kept[name] = x  # reduced after the forward, once the total mass is known
        else:
            reduce(name, x, None)

    n, num_steps, seq = noisy.shape
    pairs = [(b, k) for b in _batches(n, batch_size) for k in range(num_steps)]
    device = input_device(model, adapter)
    stats = SinkStatistics() if sink else None
    bar = tqdm(pairs, desc="sink calibration" if sink else "noised calibration", unit="fwd", disable=not progress)
    with ExitStack() as stack:
        stack.enter_context(input_hooks(reps, on_input))
        # the statistics are complete after the last block: skip the final norm and LM head
        stack.enter_context(stop_after(adapter.blocks(model)[-1]))
        chunk = _probe_chunk(model, adapter, min(batch_size, n), seq)
        probe = stack.enter_context(AttentionMassProbe(model, chunk_size=chunk)) if sink else None
        for rows, k in bar:
            ids = noisy[rows.start:rows.stop, k].to(device)
            run_until_block(model, ids)
            if sink:
                mass = probe.mass
                sigma = sink_weights(mass, alpha=sink_alpha, k_std=sink_std)
                stats.add(sigma.cpu(), mass.cpu())
                for name in list(kept):  # pop: each kept input is freed as soon as it is reduced
                    x = kept.pop(name)
                    reduce(name, x, (1.0 - sigma).to(x.device))
    out = {}
    for rep, members in groups.items():
        if rep not in acc:
            raise RuntimeError(f"layer {rep!r} received no input during calibration; is it used by the forward?")
        for name in members:
            out[name] = acc[rep].cpu()
    return out, stats


@torch.no_grad()
def collect_sink_weights(
    model: nn.Module,
    adapter: ModelAdapter,
    noisy: torch.Tensor,
    *,
    sink_alpha: float,
    sink_std: float,
    batch_size: int = 1,
    progress: bool = True,
) -> tuple[torch.Tensor, SinkStatistics]:
    """σ per calibration sample averaged over the sampled steps: float32 [n, seq] (`sink_sparsegpt`)."""
    n, num_steps, seq = noisy.shape
    out = torch.zeros((n, seq), dtype=torch.float32)
    device = input_device(model, adapter)
    stats = SinkStatistics()
    pairs = [(b, k) for b in _batches(n, batch_size) for k in range(num_steps)]
    chunk = _probe_chunk(model, adapter, min(batch_size, n), seq)
    with stop_after(adapter.blocks(model)[-1]), AttentionMassProbe(model, chunk_size=chunk) as probe:
        for rows, k in tqdm(pairs, desc="sink detection", unit="fwd", disable=not progress):
            run_until_block(model, noisy[rows.start:rows.stop, k].to(device))
            mass = probe.mass
            sigma = sink_weights(mass, alpha=sink_alpha, k_std=sink_std).cpu()
            stats.add(sigma, mass.cpu())
            out[rows.start:rows.stop] += sigma
    return out / num_steps, stats


# ------------------------------------------------------------------------------------------------------------------
# sequential block order on clean inputs (wanda, sparsegpt, sink_sparsegpt)
# ------------------------------------------------------------------------------------------------------------------
class _BlockStats:
    """Accumulates one block's per-input statistic for each input group (on the block's device, float32)."""

    def __init__(self, kind: str):
        if kind not in ("sq_norm", "hessian"):
            raise ValueError(f"statistic kind={kind!r} is not 'sq_norm' or 'hessian'")
        self.kind = kind
        self.sums: dict[str, torch.Tensor] = {}
        self.tokens: dict[str, int] = {}
        self.samples: dict[str, int] = {}
        self.token_weight: torch.Tensor | None = None  # [b, s] for the current batch

    def add(self, name: str, x: torch.Tensor) -> None:
        x = x.float()
        if self.token_weight is not None:
            x = x * self.token_weight.to(x.device)[..., None]
        flat = x.reshape(-1, x.shape[-1])
        value = flat.square().sum(dim=0) if self.kind == "sq_norm" else flat.T @ flat
        self.sums[name] = value if name not in self.sums else self.sums[name] + value
        self.tokens[name] = self.tokens.get(name, 0) + flat.shape[0]
        self.samples[name] = self.samples.get(name, 0) + (x.shape[0] if x.dim() == 3 else 1)

    def finalize(self, name: str) -> torch.Tensor:
        """sq_norm: sqrt(mean over tokens X_j²) [in]; hessian: H = 2·Σ XᵀX / n_samples [in, in]."""
        from ..methods.scoring import wanda_input_norm

        if self.kind == "sq_norm":
            return wanda_input_norm(self.sums[name], self.tokens[name])
        return self.sums[name] * (2.0 / self.samples[name])


def _block_output(out):
    return out[0] if isinstance(out, (tuple, list)) else out


@torch.no_grad()
def capture_first_block_inputs(
    model: nn.Module, adapter: ModelAdapter, samples: torch.Tensor, *, batch_size: int,
    attention_mask: torch.Tensor | None = None,
) -> list[BlockInputs]:
    """Run the embedding on every batch and keep what block 0 receives (on CPU)."""
    device = input_device(model, adapter)
    blocks = adapter.blocks(model)
    with catch_block_inputs(blocks[0]) as caught:
        for rows in _batches(samples.shape[0], batch_size):
            kwargs = {}
            if attention_mask is not None:
                kwargs["attention_mask"] = attention_mask[rows.start:rows.stop].to(device)
            run_until_block(model, samples[rows.start:rows.stop].to(device), **kwargs)
    return caught


@torch.no_grad()
def run_sequential(
    model: nn.Module,
    adapter: ModelAdapter,
    samples: torch.Tensor,
    targets: dict[str, nn.Linear],
    *,
    statistic: str,
    prune_block: Callable[[int, dict[str, torch.Tensor]], None],
    token_weights: torch.Tensor | None = None,
    batch_size: int = 1,
    attention_mask: torch.Tensor | None = None,
    progress: bool = True,
) -> None:
    """Blocks in order: gather statistics of the block's target layers from the current (already pruned upstream)
    activations, call `prune_block(index, {name: statistic})`, recompute the block's outputs.

    Args:
        samples: [n, seq] clean calibration ids.
        statistic: "sq_norm" (Wanda: sqrt(mean X_j²), [in]) or "hessian" (H = 2·XᵀX/n, [in, in]).
        token_weights: optional [n, seq] per-token weights applied to inputs before the statistic (1 − σ̄).
    """
    inputs = capture_first_block_inputs(model, adapter, samples, batch_size=batch_size, attention_mask=attention_mask)
    batches = _batches(samples.shape[0], batch_size)
    groups = input_groups(adapter, targets)
    blocks = adapter.blocks(model)
    for index in tqdm(range(len(blocks)), desc="pruning blocks", unit="block", disable=not progress):
        block = blocks[index]
        device = module_device(block)
        prefix = adapter.block_name(index) + "."
        block_groups = {rep: members for rep, members in groups.items() if rep.startswith(prefix)}
        if block_groups:
            stats = _BlockStats(statistic)
            reps = {rep: targets[rep] for rep in block_groups}
            with input_hooks(reps, stats.add):
                for rows, item in zip(batches, inputs):
                    if token_weights is not None:
                        stats.token_weight = token_weights[rows.start:rows.stop].to(device)
                    block(item.hidden.to(device), *move_to(item.args, device), **move_to(item.kwargs, device))
            per_layer = {}
            for rep, members in block_groups.items():
                value = stats.finalize(rep)
                for name in members:
                    per_layer[name] = value
            del stats
            prune_block(index, per_layer)
        for item in inputs:
            out = block(item.hidden.to(device), *move_to(item.args, device), **move_to(item.kwargs, device))
            item.hidden = _block_output(out).cpu()


# ------------------------------------------------------------------------------------------------------------------
# memory estimate
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class MemoryEstimate:
    """Extra bytes a run needs beyond the loaded model, on the compute device and on the host (CPU RAM)."""

    device: str
    device_bytes: int
    host_bytes: int
    parts: dict[str, int]

    def summary(self) -> str:
        gib = 1024**3
        parts = ", ".join(f"{k} {v / gib:.3f} GiB" for k, v in self.parts.items())
        return f"device {self.device}: {self.device_bytes / gib:.3f} GiB; host: {self.host_bytes / gib:.3f} GiB ({parts})"


def estimate_memory(
    model: nn.Module, adapter: ModelAdapter, targets: dict[str, nn.Linear], *, config, restore_copies: bool = False
) -> MemoryEstimate:
    """Predict the extra memory of pruning `model` with `config` (from shapes only; nothing is run).

    `restore_copies`: the pruner keeps CPU copies of modified weights (sequential methods, `restore_on_error`)."""
    from ..methods.registry import method_spec

    spec = method_spec(config.method)
    blocks = adapter.blocks(model)
    device = module_device(blocks[0]) if len(blocks) else torch.device("cpu")
    b, s, n = config.batch_size, config.seq_len, config.num_samples
    hidden = int(model.config.hidden_size)
    act_bytes = next(model.parameters()).element_size()
    heads = max((adapter.num_heads(model, i) for i in range(len(blocks))), default=1)
    mlp = max((adapter.mlp_width(model, i) for i in range(len(blocks))), default=hidden)
    groups = input_groups(adapter, targets)
    widths = {name: targets[name].in_features for name in groups}
    # one block's forward: residual, norms, q/k/v/o, MLP intermediates, attention scores (chunked or sdpa)
    block_forward = b * s * (8 * hidden + 4 * mlp) * act_bytes + 2 * min(b * heads * s * s * 4, 2 * PROBE_CHUNK_BYTES)
    parts: dict[str, int] = {}
    if spec.order == "dense":
        parts["forward"] = block_forward  # the final norm and LM head are skipped
        if spec.sink:
            parts["per-token inputs of one forward"] = b * s * sum(widths.values()) * max(act_bytes, 4)
        parts["statistics"] = sum(t.in_features for t in targets.values()) * 4
        host = n * len(config.sampled_steps) * s * 8
    elif spec.order == "sequential":
        parts["block forward"] = block_forward
        if spec.statistic == "hessian":
            per_block: dict[int, int] = {}
            for name in groups:
                idx = int(name[len(adapter.blocks_path) + 1:].split(".")[0])
                per_block[idx] = per_block.get(idx, 0) + widths[name] ** 2 * 4
            # Hessians of one block plus SparseGPT's working copies of the largest layer
            largest = max((t.in_features for t in targets.values()), default=0)
            parts["hessians of one block"] = max(per_block.values(), default=0) + 3 * largest**2 * 4
        else:
            parts["statistics of one block"] = sum(widths.values()) * 4
        host = 2 * n * s * hidden * act_bytes + n * s * 8
        if restore_copies:
            host += sum(t.weight.numel() * t.weight.element_size() for t in targets.values())
    else:
        largest = max((t.weight.numel() for t in targets.values()), default=0)
        parts["scores of one layer"] = largest * (4 + 8 + 1)
        host = 0
    parts["host activations"] = host
    device_bytes = sum(v for k, v in parts.items() if k != "host activations")
    if device.type == "cpu":
        device_bytes += host
        host_bytes = device_bytes
    else:
        host_bytes = host
    return MemoryEstimate(device=str(device), device_bytes=int(device_bytes), host_bytes=int(host_bytes), parts=parts)


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
    """Raise `MemoryError` with the numbers when the estimate exceeds the device budget or free host memory."""
    gib = 1024**3
    budget = limit_bytes if limit_bytes is not None else available_memory(torch.device(estimate.device))
    if budget is not None and estimate.device_bytes > budget:
        raise MemoryError(
            f"pruning needs about {estimate.device_bytes / gib:.3f} GiB more on {estimate.device} but only "
            f"{budget / gib:.3f} GiB is available ({estimate.summary()}); lower batch_size, seq_len or num_samples, or "
            "set memory_limit_gb if the estimate is too cautious"
        )
    host_free = available_host_memory()
    if host_free is not None and estimate.host_bytes > host_free and torch.device(estimate.device).type != "cpu":
        raise MemoryError(
            f"pruning keeps about {estimate.host_bytes / gib:.3f} GiB of calibration activations in host memory but "
            f"only {host_free / gib:.3f} GiB is free; lower num_samples or seq_len"
        )


__all__ = [
    "INPUT_GROUPS",
    "MemoryEstimate",
    "SinkStatistics",
    "available_memory",
    "capture_first_block_inputs",
    "check_memory",
    "collect_dense_norms",
    "collect_sink_weights",
    "estimate_memory",
    "input_groups",
    "module_device",
    "noised_samples",
    "run_sequential",
    "sample_seeds",
]
