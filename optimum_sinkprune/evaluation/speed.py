# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Generation speed, measured for several models side by side in one run (interleaved repeats).

Latency is wall-clock time of the diffusion sampler divided by the denoising steps it ran; the fastest repeat is
reported (as `timeit` advises: slower repeats measure interference from other processes, not the model), with every
repeat kept. Peak memory is the accelerator's `max_memory_allocated` when the model lives on an accelerator, otherwise
the process's peak resident set size (Linux resets it per measurement through /proc/self/clear_refs; elsewhere it
is the process-wide high-water mark, which includes every model loaded).
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from ..offload import input_device
from ..records import DictRecord

logger = logging.getLogger(__name__)


@dataclass
class SpeedResult(DictRecord):
    """Speed of one model.

    Attributes:
        latency_ms_per_step: fastest repeat's wall time of one denoising step (whole batch), milliseconds.
        latency_ms_per_step_all: every repeat's value, in measurement order.
        tokens_per_second: generated tokens (batch x gen_length) per second of sampling, fastest repeat.
        peak_memory_bytes: see the module docstring; `memory_kind` says which measure it is.
        memory_kind: "accelerator_allocated", "rss" (reset per measurement) or "rss_process_peak".
        steps, gen_length, batch_size, repeats, threads, device: the measurement settings (`repeats`: the timed
            runs actually made, which grow up to `max_repeats` while the spread is large).
        spread: (median − fastest) / fastest over the repeats: how much the machine's load moved the timings.
        noisy: the spread stayed above `max_spread` after `max_repeats` runs; read the figure with care.
    """

    latency_ms_per_step: float
    latency_ms_per_step_all: list[float]
    tokens_per_second: float
    peak_memory_bytes: int
    memory_kind: str
    steps: int
    gen_length: int
    batch_size: int
    repeats: int
    threads: int
    device: str
    spread: float = 0.0
    noisy: bool = False


def model_device(model: nn.Module) -> torch.device:
    """The device the model computes on: its input embedding's (accelerate's execution device when dispatched)."""
    return input_device(model)


def _synchronize(device: torch.device) -> None:
    if device.type != "cpu":
        torch.accelerator.synchronize(device)


def _clear_refs() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux only); True when it worked."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # macOS reports bytes, Linux KiB


class _PeakMemory:
    """Context manager measuring peak memory of the block it wraps on `device`."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak = 0
        self.kind = ""

    def __enter__(self):
        if self.device.type != "cpu":
            torch.accelerator.reset_peak_memory_stats(self.device)
            self.kind = "accelerator_allocated"
        else:
            self.kind = "rss" if _clear_refs() else "rss_process_peak"
        return self

    def __exit__(self, *exc):
        if self.device.type != "cpu":
            self.peak = int(torch.accelerator.max_memory_allocated(self.device))
        else:
            self.peak = _peak_rss_bytes()
        return False


def measure_speed(
    models: Mapping[str, nn.Module],
    prompt_ids: torch.LongTensor,
    *,
    steps: int,
    gen_length: int,
    block_length: int | None = None,
    repeats: int = 3,
    warmup: int = 1,
    progress: bool = False,
    max_spread: float = 0.1,
    max_repeats: int | None = None,
    tokenizer=None,
) -> dict[str, SpeedResult]:
    """Time the diffusion sampler for every model, interleaving the repeats (A B, then B A, ...) so drift in machine
    load hits all models alike; while any model's spread exceeds `max_spread`, further rounds run, up to
    `max_repeats`, and a figure still that noisy is flagged (`SpeedResult.noisy`, and a warning).

    Args:
        models: name -> model; all are measured on the same prompt with the same settings.
        prompt_ids: [batch, prompt_len] prompt (the batch is generated at once).
        steps, gen_length, block_length: sampler settings (block_length defaults to gen_length).
        repeats: timed runs per model.
        warmup: untimed runs per model first.
        progress: show a tqdm bar.
        max_spread: the largest (median − fastest) / fastest accepted as a steady measurement.
        max_repeats: the most timed runs per model (default 3 × `repeats`).
        tokenizer: the models' tokenizer, for framing ids their configs do not name (`generate`).

    Returns:
        name -> `SpeedResult`.
    """
    from ..diffusion import generate

    if not models:
        raise ValueError("models is empty: give at least one name -> model")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    block_length = block_length or gen_length
    max_repeats = max(repeats, 3 * repeats if max_repeats is None else max_repeats)
    times: dict[str, list[float]] = {name: [] for name in models}
    peaks: dict[str, int] = dict.fromkeys(models, 0)
    kinds: dict[str, str] = {}
    taken: dict[str, int] = {}
    bar = tqdm(total=(repeats + warmup) * len(models), desc="speed", disable=not progress, leave=False)
    names = list(models)
    r = 0
    while r < warmup + repeats or (r < warmup + max_repeats and max(_spread(t) for t in times.values()) > max_spread):
        if r >= warmup + repeats:
            bar.total += len(models)
        order = names if r % 2 == 0 else names[::-1]  # alternate who goes first
        for name in order:
            model = models[name]
            device = model_device(model)
            with _PeakMemory(device) as mem:
                _synchronize(device)
                start = time.perf_counter()
                out = generate(model, prompt_ids, steps=steps, gen_length=gen_length, block_length=block_length,
                               tokenizer=tokenizer)
                _synchronize(device)
                elapsed = time.perf_counter() - start
            if r >= warmup:
                times[name].append(elapsed)
                peaks[name] = max(peaks[name], mem.peak)
                kinds[name] = mem.kind
                taken[name] = out.steps_taken
            bar.update(1)
        r += 1
    bar.close()
    results = {}
    for name, model in models.items():
        best = min(times[name])
        spread = _spread(times[name])
        if spread > max_spread:
            logger.warning("speed of %s is noisy: the repeats spread %.0f%% around the fastest after %d runs (machine "
                           "load); treat its figure with care", name, 100 * spread, len(times[name]))
        results[name] = SpeedResult(
            latency_ms_per_step=1000.0 * best / taken[name],
            latency_ms_per_step_all=[1000.0 * t / taken[name] for t in times[name]],
            tokens_per_second=prompt_ids.shape[0] * gen_length / best,
            peak_memory_bytes=peaks[name],
            memory_kind=kinds[name],
            steps=taken[name],
            gen_length=gen_length,
            batch_size=int(prompt_ids.shape[0]),
            repeats=len(times[name]),
            threads=torch.get_num_threads(),
            device=str(model_device(model)),
            spread=spread,
            noisy=spread > max_spread,
        )
    return results


def _spread(times: list[float]) -> float:
    """(median − fastest) / fastest; 0 for fewer than two runs (nothing to compare)."""
    if len(times) < 2:
        return 0.0
    ordered = sorted(times)
    median = ordered[len(ordered) // 2] if len(ordered) % 2 else (ordered[len(ordered) // 2 - 1]
                                                                 + ordered[len(ordered) // 2]) / 2
    return (median - ordered[0]) / ordered[0] if ordered[0] > 0 else 0.0
