# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The calibration pipeline: the one loop that runs a model over calibration inputs and feeds observers.

Two orders (`MethodSpec.order`):

* **dense** (`CalibrationPipeline.dense`): every layer observed on the unpruned model; one forward per
  (batch, step) of the inputs [n, steps, seq] — noised (`NoiseSchedule.noised`) or clean (`clean_inputs`, one
  "step"). When an observer asks for it, the attention-mass probe runs inside the same forward and σ (the sink
  weights) is computed once, over every key position of the window, and handed to every observer for the positions
  the blocks see (`adapter.observed_positions`: all of them, or a block-diffusion decoder's canvas). The forward
  stops after the last block.
* **sequential** (`CalibrationPipeline.sequential`): blocks in order on clean inputs; per block an observer gathers
  the statistics of the block's layers from the current (already pruned upstream) activations, the caller prunes
  the block, then the block's outputs are recomputed as the next block's inputs. Calibration activations live on
  CPU; one batch at a time is moved to the device of the block being processed, so models dispatched with
  accelerate (device maps, CPU offload) larger than the device work.

Every hook (observer inputs, the probe, the stop after the last block) is registered inside a context manager and
removed in `finally` (`ObserverHooks`, `AttentionMassProbe`, `stop_after`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager

import torch
from torch import nn
from tqdm.auto import tqdm

from ..adapters.base import ModelAdapter
from ..offload import input_device, module_device
from .attention import AttentionMassProbe, default_chunk_size, right_align
from .hooks import BlockInputs, catch_block_inputs, input_hooks, move_to, run_until_block, stop_after
from .observers import ForwardContext, Observer
from .sink_weights import sink_weights

logger = logging.getLogger(__name__)

# Which projections read the same input tensor: q/k/v read the attention norm, gate/up the MLP norm.
INPUT_GROUPS = {"q": "attn_in", "k": "attn_in", "v": "attn_in", "o": "attn_heads", "gate": "mlp_in", "up": "mlp_in",
                "down": "mlp_out"}

# Bound on one query chunk of the probe's float32 scores, so attention is never materialised for a whole layer.
PROBE_CHUNK_BYTES = 2 * 1024 * 1024


# ------------------------------------------------------------------------------------------------------------------
# devices and names
# ------------------------------------------------------------------------------------------------------------------
def block_names(model: nn.Module, adapter: ModelAdapter) -> dict[str, nn.Module]:
    """{full module name: block} of the adapter's transformer blocks, in order."""
    names = {id(module): name for name, module in model.named_modules()}
    return {names.get(id(block), f"block {i}"): block for i, block in enumerate(adapter.blocks(model))}


def check_block_placement(model: nn.Module, adapter: ModelAdapter) -> None:
    """Raise `ValueError`, naming the block, before anything runs, when a block's weights are on the meta device with
    no accelerate offload map (nowhere), or are offloaded to disk with no writable offload folder (where the pruned
    weights are written; `optimum_sinkprune.offload.check_offloaded_modules`)."""
    from ..offload import check_offloaded_modules

    check_offloaded_modules(block_names(model, adapter))


def locate(adapter: ModelAdapter, name: str) -> tuple[int, str]:
    """(block index, role) of a target layer's full name (`ModelAdapter.locate`: only adapters parse names)."""
    return adapter.locate(name)


def input_groups(adapter: ModelAdapter, targets: dict[str, nn.Linear]) -> dict[str, list[str]]:
    """Group target layers that read the same input tensor: {representative name: [member names]}."""
    groups: dict[tuple[int, str], list[str]] = {}
    for name in targets:
        block, role = locate(adapter, name)
        # a role outside the dense projections (one expert's slice of a packed MoE tensor) reads its own input
        groups.setdefault((block, INPUT_GROUPS.get(role, name)), []).append(name)
    return {members[0]: members for members in groups.values()}


def groups_by_block(adapter: ModelAdapter, groups: dict[str, list[str]]) -> dict[int, dict[str, list[str]]]:
    """The input groups of each block: {block index: {representative: members}}."""
    out: dict[int, dict[str, list[str]]] = {}
    for rep, members in groups.items():
        out.setdefault(locate(adapter, rep)[0], {})[rep] = members
    return out


def batches(n: int, batch_size: int) -> list[range]:
    """Consecutive rows of `n` samples, `batch_size` at a time."""
    return [range(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def clean_inputs(samples: torch.Tensor) -> torch.Tensor:
    """Clean calibration ids [n, seq] as the pipeline's [n, 1, seq] inputs (one "step")."""
    return samples.cpu()[:, None, :]


def probe_chunk(model: nn.Module, adapter: ModelAdapter, batch: int, seq: int) -> int:
    """Query chunk of the attention-mass probe bounding one chunk's scores by `PROBE_CHUNK_BYTES`."""
    return default_chunk_size(batch, adapter.original_num_heads(model), seq, PROBE_CHUNK_BYTES)


# ------------------------------------------------------------------------------------------------------------------
# hooks
# ------------------------------------------------------------------------------------------------------------------
@contextmanager
def observer_hooks(observers: Sequence[Observer], model: nn.Module | None = None,
                   adapter: ModelAdapter | None = None) -> Iterator[None]:
    """Input hooks of every observer's modules, all removed in `finally` (the pipeline's one hook owner); with an
    adapter, inside its `observation_context` (which makes the forward reach observed modules it does not call
    itself, e.g. one expert's slice of a packed MoE tensor)."""
    with ExitStack() as stack:
        observed: list[nn.Module] = []
        for observer in observers:
            modules = observer.modules()
            if modules:
                stack.enter_context(input_hooks(modules, observer.on_input))
                observed.extend(modules.values())
        if adapter is not None and observed:
            stack.enter_context(adapter.observation_context(model, observed))
        yield


# ------------------------------------------------------------------------------------------------------------------
# the pipeline
# ------------------------------------------------------------------------------------------------------------------
class CalibrationPipeline:
    """Runs calibration forwards over a model and feeds observers.

    Args:
        model (`nn.Module`): a supported model.
        adapter (`ModelAdapter`): its adapter (the one instance of the run).
        batch_size (`int`): sequences per forward.
        sink_alpha, sink_std (`float`): σ = sigmoid(alpha · (m − (mean + sink_std · std))) from the attention mass.
        progress (`bool`): tqdm bars.
    """

    def __init__(self, model: nn.Module, adapter: ModelAdapter, *, batch_size: int = 1, sink_alpha: float = 5.0,
                 sink_std: float = 2.0, progress: bool = True):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} is not allowed; it must be a positive int")
        self.model = model
        self.adapter = adapter
        self.batch_size = batch_size
        self.sink_alpha = sink_alpha
        self.sink_std = sink_std
        self.progress = progress

    # ---- dense order -----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def dense(
        self,
        inputs: torch.Tensor,
        observers: Sequence[Observer],
        *,
        attention_mask: torch.Tensor | None = None,
        chunk_size: int | None | str = "bounded",
        desc: str = "calibration",
    ) -> int:
        """One forward per (batch, step) of `inputs` [n, steps, seq] on the unpruned model.

        Args:
            inputs: token ids [n, steps, seq] (`NoiseSchedule.noised(...)[0]` or `clean_inputs`).
            observers: what to gather.
            attention_mask: optional [n, seq] padding mask shared by every step (σ ignores padding).
            chunk_size: the probe's query chunk: "bounded" (`probe_chunk`), None (the probe's default) or an int.
            desc: the progress bar's label.

        Returns:
            the number of sequences run (n · steps).
        """
        model, adapter = self.model, self.adapter
        n, num_steps, seq = inputs.shape
        pairs = [(rows, k) for rows in batches(n, self.batch_size) for k in range(num_steps)]
        device = input_device(model)
        needs_mass = any(o.needs_mass for o in observers)
        per_head = any(o.needs_per_head for o in observers)
        if chunk_size == "bounded":
            chunk_size = probe_chunk(model, adapter, min(self.batch_size, n), seq)
        observed = adapter.observed_positions(model, seq)
        with ExitStack() as stack:
            stack.enter_context(observer_hooks(observers, model, adapter))
            # the statistics are complete after the last block: skip the final norm and LM head
            stack.enter_context(stop_after(adapter.blocks(model)[-1]))
            probe = (stack.enter_context(AttentionMassProbe(model, per_head=per_head, chunk_size=chunk_size))
                     if needs_mass else None)
            for rows, k in tqdm(pairs, desc=desc, unit="fwd", disable=not self.progress):
                for observer in observers:
                    observer.before_forward(rows)
                ids = inputs[rows.start:rows.stop, k].to(device)
                kwargs = {}
                mask = None
                if attention_mask is not None:
                    mask = attention_mask[rows.start:rows.stop].to(device)
                    kwargs["attention_mask"] = mask
                run_until_block(model, ids, adapter=adapter, **kwargs)
                valid = mask.to(torch.bool) if mask is not None else None
                ctx = ForwardContext(rows=rows, step=k, valid=valid[:, observed] if valid is not None else None)
                if probe is not None:
                    # σ over every key position of the window; the observers get the positions the blocks see
                    ctx.mass = right_align(probe.mass, seq)
                    ctx.per_head_mass = right_align(probe.per_head_mass, seq) if per_head else None
                    sigma = sink_weights(ctx.mass, alpha=self.sink_alpha, k_std=self.sink_std, valid=valid)
                    ctx.sigma = sigma[:, observed]
                for observer in observers:
                    observer.after_forward(ctx)
        return n * num_steps

    # ---- sequential order ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def capture_first_block_inputs(self, samples: torch.Tensor,
                                   attention_mask: torch.Tensor | None = None) -> list[BlockInputs]:
        """Run the embedding on every batch and keep what block 0 receives (on CPU)."""
        device = input_device(self.model)
        blocks = self.adapter.blocks(self.model)
        with catch_block_inputs(blocks[0]) as caught:
            for rows in batches(samples.shape[0], self.batch_size):
                kwargs = {}
                if attention_mask is not None:
                    kwargs["attention_mask"] = attention_mask[rows.start:rows.stop].to(device)
                run_until_block(self.model, samples[rows.start:rows.stop].to(device), adapter=self.adapter, **kwargs)
        return caught

    @torch.no_grad()
    def sequential(
        self,
        samples: torch.Tensor,
        block_observer: Callable[[int], Observer | None],
        on_block: Callable[[int, Observer], None],
        *,
        attention_mask: torch.Tensor | None = None,
        desc: str = "pruning blocks",
    ) -> int:
        """Blocks in order on clean `samples` [n, seq]: `block_observer(index)` gives the block's observer (None:
        nothing to gather there), which sees every batch through the block; `on_block(index, observer)` then runs
        (it prunes the block); finally the block's outputs are recomputed as the next block's inputs.

        Returns:
            the number of sequences run through the blocks (2 · n: gathering and recomputing).
        """
        inputs = self.capture_first_block_inputs(samples, attention_mask)
        rows_of = batches(samples.shape[0], self.batch_size)
        blocks = self.adapter.blocks(self.model)
        for index in tqdm(range(len(blocks)), desc=desc, unit="block", disable=not self.progress):
            block = blocks[index]
            device = module_device(block)
            observer = block_observer(index)

            def block_kwargs(item, index=index, device=device):
                # block 0's keyword inputs, rebuilt where this block's kind differs (its own mask, rotary table)
                return self.adapter.block_kwargs(self.model, index, move_to(item.kwargs, device))

            if observer is not None:
                with observer_hooks([observer], self.model, self.adapter):
                    for rows, item in zip(rows_of, inputs):
                        observer.before_forward(rows)
                        block(item.hidden.to(device), *move_to(item.args, device), **block_kwargs(item))
                on_block(index, observer)
                del observer
            for item in inputs:
                out = block(item.hidden.to(device), *move_to(item.args, device), **block_kwargs(item))
                item.hidden = (out[0] if isinstance(out, (tuple, list)) else out).cpu()
        return 2 * samples.shape[0]


__all__ = [
    "INPUT_GROUPS",
    "PROBE_CHUNK_BYTES",
    "CalibrationPipeline",
    "batches",
    "block_names",
    "check_block_placement",
    "clean_inputs",
    "groups_by_block",
    "input_groups",
    "locate",
    "observer_hooks",
    "probe_chunk",
]
