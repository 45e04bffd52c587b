# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""What `SinkAwarePruner` and `SinkAwareQuantizer` share: the lifecycle validate → calibrate → apply → save of a run
that edits the block linears in place (`WeightEditor`), the layers it edits (`select_targets`) and the on-disk copies
that restore them when a run fails midway (`WeightJournal`).

The calibration is the one pipeline of the method registry: `_plan` checks a `SinkAwarePruningConfig` (for the
quantizer, the config of the pruning method whose Hessians it uses), `_calibrate` runs `calibration.engine.run_method`
in the method's order and hands each layer's statistic to the layer function the subclass gives (prune or quantize
that layer).
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .adapters import ALL_ROLES, get_adapter
from .configuration import SinkAwarePruningConfig
from .registry import get_method

logger = logging.getLogger(__name__)


def _matches(name: str, role: str, pattern: str) -> bool:
    return pattern == role or fnmatch.fnmatchcase(name, pattern)


def select_targets(model: nn.Module, adapter, targets: list[str] | None, ignore: list[str]) -> dict[str, nn.Linear]:
    """The linear layers to prune, in forward order: every block projection (or those matching `targets`, by
    fnmatch on the full name or by role q/k/v/o/gate/up/down), minus `ignore`. Embeddings and the head never match."""
    layers = adapter.linear_layers(model)
    roles = {name: adapter.role_of(name) for name in layers}
    for what, patterns in (("targets", targets or []), ("ignore", ignore)):
        for pattern in patterns:
            if not any(_matches(name, roles[name], pattern) for name in layers):
                raise ValueError(f"{what} pattern {pattern!r} matches no block linear layer; roles: {list(ALL_ROLES)}, "
                                 f"names look like {next(iter(layers), '?')!r}")
    out = {}
    for name, layer in layers.items():
        if targets is not None and not any(_matches(name, roles[name], p) for p in targets):
            continue
        if any(_matches(name, roles[name], p) for p in ignore):
            continue
        out[name] = layer
    if not out:
        raise ValueError(f"targets={targets!r} with ignore={ignore!r} leaves no layer to prune")
    return out


class WeightJournal:
    """Restore copies of weights before they are modified, kept on disk (one safetensors file per layer in a private
    temporary folder), to restore the model when a sequential run fails midway. Host memory holds at most one
    layer's copy at a time; `close` deletes the folder.

    Args:
        enabled: keep copies at all (`restore_on_error` on a sequential method).
        directory: where the temporary folder is made (default: the system's temporary directory).
    """

    def __init__(self, enabled: bool, directory: str | os.PathLike | None = None):
        self.enabled = enabled
        self._directory = directory
        self._folder: str | None = None
        self.saved: dict[str, tuple[nn.Linear, str]] = {}

    def record(self, name: str, layer: nn.Linear) -> None:
        from safetensors.torch import save_file

        from .methods import read_weight

        if not self.enabled or name in self.saved:
            return
        if self._folder is None:
            import tempfile

            self._folder = tempfile.mkdtemp(prefix="sinkprune-restore-", dir=self._directory)
        path = os.path.join(self._folder, f"{len(self.saved)}.safetensors")
        save_file({"weight": read_weight(layer).detach().to("cpu").contiguous()}, path)
        self.saved[name] = (layer, path)

    @torch.no_grad()
    def restore(self) -> None:
        from safetensors.torch import load_file

        from .methods.masks import write_weight

        for layer, path in self.saved.values():  # in place, or back into the disk offload folder
            write_weight(layer, load_file(path)["weight"])
        logger.warning("pruning failed; restored the %d layers already modified", len(self.saved))

    def close(self) -> None:
        """Delete the copies (after success, or after `restore`)."""
        if self._folder is not None:
            import shutil

            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        self.saved.clear()


@dataclass
class CalibrationRun:
    """A validated calibration run: what `WeightEditor._plan` checked, before any weight changes."""

    config: SinkAwarePruningConfig
    spec: Any
    targets: dict[str, nn.Linear]
    mask_token_id: int | None
    ids: torch.Tensor | None
    noise: Any
    estimate: Any
    restore_copies: bool
    data: Any = None  # the calibration data as given (described in the pruning history)
    attention_mask: torch.Tensor | None = None  # [n, seq] padding mask of per-sample rows (None: packed windows)
    zeros_before: dict[str, int] = field(default_factory=dict)  # per target, zeros before its mask was applied


class WeightEditor:
    """The shared lifecycle of the pruner and the quantizer (optimum's GPTQQuantizer shape): validate everything
    (`_plan`), calibrate and apply layer by layer (`_calibrate`) with restore copies (`_journaled`), save
    (`_save`).

    Args:
        model (`nn.Module`): the model to edit (in place).
        tokenizer (*optional*): its tokenizer (needed for text calibration data and the data-free mode).
    """

    def __init__(self, model: nn.Module, tokenizer=None):
        self.model = model
        self.adapter = get_adapter(model)
        self.tokenizer = tokenizer
        # accelerate's `max_memory` the model was loaded with (`from_pretrained`), checked against one block's need
        self.max_memory: dict | None = None

    # ---- validate ------------------------------------------------------------------------------------------------
    def _prepare_calibration(self, config: SinkAwarePruningConfig, data: Any) -> torch.LongTensor:
        """Calibration ids [n, seq] for a run that takes full windows only (refuses padded per-sample rows)."""
        ids, mask = self._prepare_calibration_batch(config, data)
        if mask is not None:
            raise ValueError(f"method={config.method!r} takes full calibration windows; the calibration data has "
                             f"{int((mask == 0).sum())} padded positions (per-sample rows); give texts or token "
                             "windows without padding")
        return ids

    def _prepare_calibration_batch(self, config: SinkAwarePruningConfig,
                                   data: Any) -> tuple[torch.LongTensor, torch.Tensor | None]:
        """`(ids [n, seq], padding mask [n, seq] or None)`: the mask only when the data are per-sample rows with
        padding (`calibration.data.CalibrationBatch`); rows that all fill the width run as windows do (None)."""
        from .calibration.data import CalibrationBatch, get_calibration_dataset

        max_len = self.adapter.max_length(self.model)
        if config.seq_len > max_len:
            raise ValueError(f"seq_len={config.seq_len} exceeds the model's maximum sequence length {max_len}")
        ids = get_calibration_dataset(self.tokenizer, data, num_samples=config.num_samples, seq_len=config.seq_len,
                                      seed=config.seed, model=self.model, max_length=max_len)
        mask = None
        if isinstance(ids, CalibrationBatch):
            ids, mask = ids.input_ids, (ids.attention_mask if ids.has_padding() else None)
        vocab = self.model.get_input_embeddings().num_embeddings
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
            raise ValueError(f"calibration token ids must lie in [0, {vocab}) (the embedding size), got "
                             f"[{int(ids.min())}, {int(ids.max())}]")
        self.adapter.check_calibration_ids(self.model, ids)  # what the family needs of its windows
        return ids, mask

    def _validate(self, config: SinkAwarePruningConfig, targets: dict[str, nn.Linear]) -> int | None:
        """Check the pattern against the targets, and resolve the mask token once (model config, then tokenizer)
        for methods that noise their inputs: returns it (None for methods on clean inputs), for every consumer."""
        nm = config.nm
        if nm is not None:
            bad = {name: t.in_features for name, t in targets.items() if t.in_features % nm[1]}
            if bad:
                raise ValueError(f"pattern={config.pattern!r} needs in_features divisible by {nm[1]}; not so for {bad}")
            if get_method(config.method).reconstruct and config.block_size % nm[1]:
                raise ValueError(f"block_size={config.block_size} must be a multiple of M={nm[1]} for "
                                 f"pattern={config.pattern!r}")
        from .validation import smallest_removing_sparsity, weights_removed

        spec = get_method(config.method)
        shapes = [(t.out_features, t.in_features) for t in targets.values()]
        options = dict(per_row=spec.per_row, reconstruct=spec.reconstruct, block_size=config.block_size)
        if not any(weights_removed(shape, config.sparsity, nm=nm, **options) for shape in shapes):
            # a positive sparsity that rounds to no weight in any layer: refused rather than calibrated for nothing
            smallest = min(smallest_removing_sparsity(shape, **options) for shape in shapes)
            raise ValueError(
                f"sparsity={config.sparsity!r} removes no weight from the {len(targets)} target layers of method "
                f"{config.method!r} (its masks remove a floor of sparsity times each comparison group); use sparsity "
                f">= {smallest:g} (and < 1)"
            )
        mask_id = None
        if config.uses_diffusion:  # the mask token, or None where the family's forward process draws its tokens
            mask_id = self.adapter.noise_token_id(self.model, self.tokenizer)
        return mask_id

    def _plan(self, config: SinkAwarePruningConfig, calibration_dataset: Any, restore_on_error: bool) -> CalibrationRun:
        """Validate everything a calibrated run needs, before any weight changes: the method, the targets, the
        mask token (resolved once, with the tokenizer), the calibration ids and the memory estimate."""
        from .calibration import engine
        from .calibration.memory import check_block_memory
        from .calibration.noise import NoiseSchedule
        from .calibration.pipeline import check_block_placement
        from .validation import check_finite_parameters

        spec = get_method(config.method)
        targets = select_targets(self.model, self.adapter, config.targets, config.ignore)
        mask_id = self._validate(config, targets)
        check_finite_parameters(self.model)  # NaN/inf weights are named here, not blamed on a later activation
        # offloaded blocks: their weights readable, and those offloaded to disk writable (to their offload folder)
        check_block_placement(self.model, self.adapter)
        ids, mask = (None, None) if spec.order == "none" else self._prepare_calibration_batch(config,
                                                                                             calibration_dataset)
        noise = NoiseSchedule.from_config(config, self.adapter) if spec.noised else None
        restore_copies = restore_on_error and spec.order == "sequential"
        estimate = engine.estimate_memory(self.model, self.adapter, targets, config=config,
                                          restore_copies=restore_copies)
        limit = int(config.memory_limit_gb * 1024**3) if config.memory_limit_gb is not None else None
        engine.check_memory(estimate, limit_bytes=limit)
        if self.max_memory is not None:  # accelerate's limits the model was loaded with: one block must fit
            check_block_memory(self.model, self.adapter, estimate, self.max_memory)
        logger.info("pruning %d layers with %s (%s, sparsity %.2f); memory estimate %s", len(targets), config.method,
                    config.pattern, config.sparsity, estimate.summary())
        return CalibrationRun(config=config, spec=spec, targets=targets, mask_token_id=mask_id, ids=ids, noise=noise,
                    estimate=estimate, restore_copies=restore_copies, data=calibration_dataset,
                    attention_mask=mask)

    def _calibrate(self, run: CalibrationRun, edit_layer: Callable[[str, torch.Tensor | None], None],
                   progress: bool):
        """The engine calibrates in the method's order and hands each layer's statistic to `edit_layer`, which
        changes that layer (sequential order: block by block). Returns the engine's `CalibrationResult`."""
        from .calibration import engine
        from .methods import check_finite

        config = run.config
        with torch.no_grad():
            return engine.run_method(
                self.model, self.adapter, run.spec, run.targets, run.ids, prune_layer=edit_layer,
                check=check_finite, noise=run.noise, mask_token_id=run.mask_token_id, sink_alpha=config.sink_alpha,
                sink_std=config.sink_std, batch_size=config.batch_size, attention_mask=run.attention_mask,
                progress=progress,
            )

    @staticmethod
    def _journaled(journal: WeightJournal, apply: Callable[[], Any], undo: Callable[[], None] | None = None) -> Any:
        """`apply()`, restoring the layers `journal` recorded (then calling `undo`) when it fails, whatever the
        exception; the copies are deleted either way."""
        try:
            return apply()
        except BaseException:
            if journal.saved:
                journal.restore()
            if undo is not None:
                undo()
            raise
        finally:
            journal.close()

    def _save(self, save_directory: str | os.PathLike, pruning_config: dict[str, Any], **kwargs) -> str:
        """Save atomically with the tokenizer, the run's config and the model card
        (`optimum_sinkprune.hub.save.save_pruned_model`, which takes `kwargs`)."""
        from .hub.save import save_pruned_model

        return save_pruned_model(self.model, os.fspath(save_directory), tokenizer=self.tokenizer,
                                 pruning_config=pruning_config, **kwargs)


__all__ = ["CalibrationRun", "WeightEditor", "WeightJournal", "select_targets"]
