# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Hook context managers used by the calibration engine. Every hook is removed in `finally`, even on error."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@contextmanager
def input_hooks(modules: dict[str, nn.Module], fn: Callable[[str, torch.Tensor], None]) -> Iterator[None]:
    """Call `fn(name, x)` with the first positional input of every module in `modules` before it runs."""
    handles = []
    try:
        for name, module in modules.items():
            handles.append(module.register_forward_pre_hook(_make_input_hook(name, fn)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _make_input_hook(name: str, fn: Callable[[str, torch.Tensor], None]):
    def hook(_module, args):
        fn(name, args[0].detach())

    return hook


_CACHE_KWARGS = ("past_key_values", "past_key_value", "layer_past")


class _StopForward(Exception):
    """Raised by the block catcher to end a forward once the first block's inputs are recorded."""


@dataclass
class BlockInputs:
    """What the first transformer block received for one calibration batch: the hidden states and the rest."""

    hidden: torch.Tensor
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@contextmanager
def catch_block_inputs(block: nn.Module) -> Iterator[list[BlockInputs]]:
    """Record the inputs of `block` and stop the forward there (the embedding runs, no block does).

    Use: `with catch_block_inputs(blocks[0]) as caught: run_until_block(model, ids)`; `caught` fills one entry per
    forward. Tensors are moved to CPU (the engine keeps calibration activations off the device between blocks)."""
    caught: list[BlockInputs] = []

    def hook(_module, args, kwargs):
        caught.append(BlockInputs(
            hidden=args[0].detach().cpu(),
            args=tuple(_to(a, "cpu") for a in args[1:]),
            # a KV cache would make the block attend to earlier calls' keys: never replay one
            kwargs={k: (None if k in _CACHE_KWARGS else _to(v, "cpu")) for k, v in kwargs.items()},
        ))
        raise _StopForward

    handle = block.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield caught
    finally:
        handle.remove()


@contextmanager
def stop_after(module: nn.Module) -> Iterator[None]:
    """End every forward right after `module` ran (calibration never needs the final norm and LM head): use with
    `run_until_block`, which swallows the stop."""

    def hook(_module, _args, _output):
        raise _StopForward

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def run_until_block(model: nn.Module, input_ids: torch.Tensor, *, adapter=None, **kwargs) -> None:
    """Run `model` (through `adapter.calibration_forward` when an adapter is given) until a `catch_block_inputs`
    catcher (or `stop_after`) stops it."""
    try:
        if adapter is not None:
            adapter.calibration_forward(model, input_ids, **kwargs)
        else:
            model(input_ids=input_ids, use_cache=False, **kwargs)
    except _StopForward:
        return
    raise RuntimeError("the model finished its forward without reaching the first transformer block")


def _to(value: Any, device: torch.device | str) -> Any:
    """Move tensors (also inside tuples/lists/dicts) to `device`; other values pass through."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, tuple):
        return tuple(_to(v, device) for v in value)
    if isinstance(value, list):
        return [_to(v, device) for v in value]
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    return value


move_to = _to


