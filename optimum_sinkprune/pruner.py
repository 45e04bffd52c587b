# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`SinkAwarePruner`: load a model, prune it with a `SinkAwarePruningConfig`, report, save (optimum's quantizer shape).

```python
>>> from optimum_sinkprune import SinkAwarePruner, SinkAwarePruningConfig
>>> pruner = SinkAwarePruner.from_pretrained("GSAI-ML/LLaDA-8B-Base", dtype="bfloat16")
>>> model, report = pruner.prune(SinkAwarePruningConfig(method="sink_wanda", sparsity=0.5), texts)
>>> pruner.save_pretrained("llada-sink-wanda-50")
```
"""

from __future__ import annotations

import fnmatch
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from .adapters import ALL_ROLES, get_adapter
from .configuration import SinkAwarePruningConfig

logger = logging.getLogger(__name__)

# Structured methods that run the model on calibration data (the others score weights only).
STRUCTURED_CALIBRATED = ("sink_heads", "activation_heads")


# ------------------------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class LayerSparsity:
    name: str
    shape: tuple[int, int]
    params: int
    zeros: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.params if self.params else 0.0


@dataclass
class PruningReport:
    """What a pruning run did: per-layer and total sparsity, parameters, wall time, sink statistics.

    Attributes:
        method, pattern, target_sparsity: from the config.
        layers: per pruned layer, its shape, parameter count and zeros after pruning.
        model_params / model_zeros: every parameter of the model (embeddings and head included), after pruning.
        params_before / nonzero_params_before / checkpoint_bytes_before: the model before pruning (for the card).
        wall_time_s: seconds spent in `prune` (calibration included).
        calibration: samples, seq_len, forward passes.
        sink: sink-weight statistics of the sink methods (mean σ, fraction of tokens with σ > 0.5, top positions).
        memory_estimate: the up-front estimate (bytes).
        structured: the structured methods' result (`StructuredPruningResult.to_dict()`).
    """

    method: str
    pattern: str
    target_sparsity: float
    layers: list[LayerSparsity] = field(default_factory=list)
    model_params: int = 0
    model_zeros: int = 0
    wall_time_s: float = 0.0
    calibration: dict[str, Any] = field(default_factory=dict)
    sink: dict[str, Any] | None = None
    memory_estimate: dict[str, Any] | None = None
    structured: dict[str, Any] | None = None
    params_before: int = 0
    nonzero_params_before: int = 0
    checkpoint_bytes_before: int = 0

    @property
    def pruned_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def pruned_zeros(self) -> int:
        return sum(layer.zeros for layer in self.layers)

    @property
    def total_sparsity(self) -> float:
        """Zeros / parameters over the pruned layers."""
        return self.pruned_zeros / self.pruned_params if self.pruned_params else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["layers"] = [
            {"name": layer.name, "shape": list(layer.shape), "params": layer.params, "zeros": layer.zeros,
             "sparsity": layer.sparsity}
            for layer in self.layers
        ]
        out["pruned_params"] = self.pruned_params
        out["pruned_zeros"] = self.pruned_zeros
        # structured methods remove weights instead of zeroing them: a sparsity of the (empty) layer list would read
        # as "0% pruned"; their reduction is in `structured`
        out["total_sparsity"] = None if self.structured is not None else self.total_sparsity
        return out

    def summary(self) -> str:
        """A few human-readable lines (the CLI prints them)."""
        if self.structured:
            st = self.structured
            lines = [
                f"method {self.method} ({st.get('mode', 'remove')}): block parameters {st['params_before']:,} -> "
                f"{st['params_after']:,} ({st['realised_reduction']:.2%} removed)",
                f"whole model: {self.model_params:,} parameters (before: {self.params_before:,})",
            ]
            for row in st.get("per_layer", []):
                lines.append(f"  layer {row['layer']}: heads removed {row['heads_removed']} ({row['heads_left']} left), "
                             f"MLP width {row['mlp_width']}")
        else:
            lines = [
                f"method {self.method} ({self.pattern}), target sparsity {self.target_sparsity:.2%}",
                f"pruned layers: {len(self.layers)}, sparsity {self.total_sparsity:.2%} "
                f"({self.pruned_zeros:,} / {self.pruned_params:,} weights)",
                f"whole model: {self.model_zeros / max(self.model_params, 1):.2%} zeros of {self.model_params:,} "
                "parameters",
            ]
        lines.append(f"wall time {self.wall_time_s:.1f} s")
        if self.calibration:
            lines.append("calibration: " + ", ".join(f"{k} {v}" for k, v in self.calibration.items()))
        if self.sink:
            lines.append(f"sink: mean σ {self.sink['mean_sink_weight']:.4f}, tokens with σ > 0.5: "
                         f"{self.sink['sink_token_fraction']:.2%}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------------
# targets
# ------------------------------------------------------------------------------------------------------------------
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


def _parameter_counts(model: nn.Module) -> tuple[int, int, int]:
    """(parameters, zeros, bytes) over every parameter (offloaded ones through their real tensor)."""
    from .methods import read_weight

    params = zeros = nbytes = 0
    seen = set()
    for module in model.modules():
        for pname, p in module.named_parameters(recurse=False):
            if id(p) in seen:  # tied weights count once
                continue
            seen.add(id(p))
            t = p
            if p.device.type == "meta":
                if pname != "weight":
                    continue
                try:
                    t = read_weight(module)
                except ValueError:
                    continue
            params += t.numel()
            zeros += int((t == 0).sum())
            nbytes += t.numel() * t.element_size()
    return params, zeros, nbytes


class _WeightJournal:
    """CPU copies of weights before they are modified, to restore the model when a sequential run fails midway."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.saved: dict[str, tuple[nn.Linear, torch.Tensor]] = {}

    def record(self, name: str, layer: nn.Linear) -> None:
        from .methods import read_weight

        if self.enabled and name not in self.saved:
            self.saved[name] = (layer, read_weight(layer).detach().to("cpu", copy=True))

    @torch.no_grad()
    def restore(self) -> None:
        from .methods import read_weight

        for layer, original in self.saved.values():
            target = read_weight(layer)
            target.copy_(original.to(target.device))
        logger.warning("pruning failed; restored the %d layers already modified", len(self.saved))


# ------------------------------------------------------------------------------------------------------------------
# the pruner
# ------------------------------------------------------------------------------------------------------------------
class SinkAwarePruner:
    """Prunes a supported model (LLaDA, Dream, MMaDA backbone; Llama/Qwen2 for AR baselines).

    Args:
        model (`nn.Module`): the model to prune (in place).
        tokenizer (*optional*): its tokenizer (needed for text calibration data and the data-free mode).
        base_model (`str`, *optional*): where the model came from (for the model card).
    """

    def __init__(self, model: nn.Module, tokenizer=None, *, base_model: str | None = None):
        self.model = model
        self.adapter = get_adapter(model)
        self.tokenizer = tokenizer
        self.base_model = base_model or getattr(getattr(model, "config", None), "_name_or_path", None) or None
        self.config: SinkAwarePruningConfig | None = None
        self.report: PruningReport | None = None

    @classmethod
    def from_pretrained(cls, model_or_path: nn.Module | str | os.PathLike, tokenizer=None, **load_kwargs):
        """From a loaded model, or a Hub id / local folder (loaded with `AutoModelForCausalLM` and `load_kwargs`;
        the tokenizer is loaded from the same place when it has one)."""
        if isinstance(model_or_path, nn.Module):
            return cls(model_or_path, tokenizer)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        import optimum_sinkprune  # noqa: F401 - registers the LLaDA/Dream auto classes

        path = os.fspath(model_or_path)
        model = AutoModelForCausalLM.from_pretrained(path, **load_kwargs)
        model.eval()
        if tokenizer is None:
            try:
                tokenizer = AutoTokenizer.from_pretrained(path)
            except (OSError, ValueError) as err:
                logger.info("no tokenizer loaded from %s (%s)", path, err)
        return cls(model, tokenizer, base_model=path)

    # ---- validation ------------------------------------------------------------------------------------------------
    def _prepare_calibration(self, config: SinkAwarePruningConfig, data: Any) -> torch.LongTensor:
        from .calibration.data import get_calibration_dataset

        max_len = self.adapter.max_length(self.model)
        if config.seq_len > max_len:
            raise ValueError(f"seq_len={config.seq_len} exceeds the model's maximum sequence length {max_len}")
        ids = get_calibration_dataset(self.tokenizer, data, num_samples=config.num_samples, seq_len=config.seq_len,
                                      seed=config.seed, model=self.model, max_length=max_len)
        vocab = self.model.get_input_embeddings().num_embeddings
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
            raise ValueError(f"calibration token ids must lie in [0, {vocab}) (the embedding size), got "
                             f"[{int(ids.min())}, {int(ids.max())}]")
        return ids

    def _validate(self, config: SinkAwarePruningConfig, targets: dict[str, nn.Linear]) -> int | None:
        nm = config.nm
        if nm is not None:
            bad = {name: t.in_features for name, t in targets.items() if t.in_features % nm[1]}
            if bad:
                raise ValueError(f"pattern={config.pattern!r} needs in_features divisible by {nm[1]}; not so for {bad}")
            if config.method in ("sparsegpt", "sink_sparsegpt") and config.block_size % nm[1]:
                raise ValueError(f"block_size={config.block_size} must be a multiple of M={nm[1]} for "
                                 f"pattern={config.pattern!r}")
        mask_id = None
        if config.uses_diffusion:
            mask_id = self.adapter.mask_token_id(self.model, self.tokenizer)
        return mask_id

    # ---- pruning ---------------------------------------------------------------------------------------------------
    def prune(
        self,
        config: SinkAwarePruningConfig | dict,
        calibration_dataset: Any = None,
        save_dir: str | os.PathLike | None = None,
        *,
        progress: bool = True,
        restore_on_error: bool = True,
    ) -> tuple[nn.Module, PruningReport]:
        """Prune `self.model` in place.

        Args:
            config: the run's `SinkAwarePruningConfig` (or its dict).
            calibration_dataset: token ids [n, seq] (e.g. from `get_calibration_dataset`), a list of texts, a
                `.txt`/`.jsonl` path or a `datasets.Dataset` (tokenized with `self.tokenizer`), or None — the
                data-free mode, where the model generates its calibration text (`magnitude` needs none).
            save_dir: when given, `save_pretrained(save_dir)` afterwards.
            progress: show tqdm bars.
            restore_on_error: keep CPU copies of weights while a sequential method runs, to restore the model if it
                fails midway (e.g. non-finite statistics in a later block).

        Returns:
            `(model, PruningReport)`.

        Raises:
            ValueError: bad config, targets, calibration data, seq_len, a model without a mask token for a
                diffusion method — all before any weight is touched.
            MemoryError: the memory estimate exceeds what is available (before anything runs).
            FloatingPointError: NaN/inf statistics (names the layer).
        """
        from .calibration import engine
        from .methods import check_finite, method_spec

        if isinstance(config, dict):
            config = SinkAwarePruningConfig.from_dict(config)
        if not isinstance(config, SinkAwarePruningConfig):
            raise ValueError(f"config must be a SinkAwarePruningConfig or its dict, got {type(config).__name__}")
        start = time.perf_counter()
        model, adapter = self.model, self.adapter
        model.eval()
        before = _parameter_counts(model)

        if config.is_structured:
            return self._prune_structured(config, calibration_dataset, save_dir, start, before, progress)

        spec = method_spec(config.method)
        targets = select_targets(model, adapter, config.targets, config.ignore)
        mask_id = self._validate(config, targets)
        ids = None if spec.order == "none" else self._prepare_calibration(config, calibration_dataset)
        estimate = engine.estimate_memory(model, adapter, targets, config=config,
                                          restore_copies=restore_on_error and spec.order == "sequential")
        limit = int(config.memory_limit_gb * 1024**3) if config.memory_limit_gb is not None else None
        engine.check_memory(estimate, limit_bytes=limit)
        logger.info("pruning %d layers with %s (%s, sparsity %.2f); memory estimate %s", len(targets), config.method,
                    config.pattern, config.sparsity, estimate.summary())

        journal = _WeightJournal(restore_on_error and spec.order == "sequential")
        sink_stats = None
        forwards = 0
        try:
            with torch.no_grad():
                if spec.order == "none":
                    for name, layer in targets.items():
                        self._prune_layer(config, spec, name, layer, None, journal)
                elif spec.order == "dense":
                    noisy = engine.noised_samples(ids, config.sampled_steps, diffusion_steps=config.diffusion_steps,
                                                  mask_token_id=mask_id, noise_eps=config.noise_eps, seed=config.seed)
                    stats, sink_stats = engine.collect_dense_norms(
                        model, adapter, targets, noisy, sink=spec.sink, sink_alpha=config.sink_alpha,
                        sink_std=config.sink_std, batch_size=config.batch_size, progress=progress)
                    forwards = noisy.shape[0] * noisy.shape[1]
                    for name, value in stats.items():  # every statistic checked before any weight changes
                        check_finite(name, value)
                    for name, layer in targets.items():
                        self._prune_layer(config, spec, name, layer, stats[name], journal)
                else:
                    token_weights = None
                    if spec.sink:
                        noisy = engine.noised_samples(ids, config.sampled_steps,
                                                      diffusion_steps=config.diffusion_steps, mask_token_id=mask_id,
                                                      noise_eps=config.noise_eps, seed=config.seed)
                        sigma, sink_stats = engine.collect_sink_weights(
                            model, adapter, noisy, sink_alpha=config.sink_alpha, sink_std=config.sink_std,
                            batch_size=config.batch_size, progress=progress)
                        forwards += noisy.shape[0] * noisy.shape[1]
                        token_weights = 1.0 - sigma

                    def prune_block(index: int, stats: dict[str, torch.Tensor]) -> None:
                        for name, value in stats.items():
                            check_finite(name, value)
                        for name, value in stats.items():
                            self._prune_layer(config, spec, name, targets[name], value, journal)

                    engine.run_sequential(model, adapter, ids, targets, statistic=spec.statistic,
                                          prune_block=prune_block, token_weights=token_weights,
                                          batch_size=config.batch_size, progress=progress)
                    forwards += 2 * ids.shape[0]
        except BaseException:
            if journal.saved:
                journal.restore()
            raise
        del journal

        self.config = config
        model.config.sink_pruning_config = config.to_dict()
        report = self._report(config, targets, start, before)
        report.memory_estimate = {"device": estimate.device, "device_bytes": estimate.device_bytes,
                                  "host_bytes": estimate.host_bytes}
        if ids is not None:
            report.calibration = {"num_samples": int(ids.shape[0]), "seq_len": int(ids.shape[1]),
                                  "forward_passes": int(forwards)}
        report.sink = sink_stats.to_dict() if sink_stats is not None else None
        self.report = report
        logger.info("pruned: %s", report.summary().replace("\n", "; "))
        if save_dir is not None:
            self.save_pretrained(save_dir)
        return model, report

    def _prune_layer(self, config, spec, name: str, layer: nn.Linear, statistic, journal: _WeightJournal) -> None:
        from .methods import apply_mask, layer_mask, read_weight

        mask, new_weight = layer_mask(spec, read_weight(layer), statistic, sparsity=config.sparsity, nm=config.nm,
                                      block_size=config.block_size, dampening=config.dampening)
        if new_weight is not None and not torch.isfinite(new_weight).all():
            raise FloatingPointError(f"SparseGPT reconstruction of layer {name!r} produced NaN/inf")
        journal.record(name, layer)
        apply_mask(layer, mask, new_weight)

    def _prune_structured(self, config, calibration_dataset, save_dir, start, before, progress):
        from .structured import prune_structured  # lazy: written separately

        if config.uses_diffusion:
            self.adapter.mask_token_id(self.model, self.tokenizer)
        # magnitude_heads / random_heads read only the weights: no calibration text is built (or generated) for them
        needs_data = config.method in STRUCTURED_CALIBRATED or calibration_dataset is not None
        ids = self._prepare_calibration(config, calibration_dataset) if needs_data else None
        result = prune_structured(self.model, config=config, calibration_ids=ids, attention_mask=None,
                                  progress=progress)
        self.config = config
        self.model.config.sink_pruning_config = config.to_dict()
        report = self._report(config, {}, start, before)
        report.structured = result.to_dict()
        if ids is not None:
            report.calibration = {"num_samples": int(ids.shape[0]), "seq_len": int(ids.shape[1])}
        self.report = report
        if save_dir is not None:
            self.save_pretrained(save_dir)
        return self.model, report

    def _report(self, config, targets: dict[str, nn.Linear], start: float, before: tuple[int, int, int]):
        from .methods import read_weight

        layers = []
        for name, layer in targets.items():
            w = read_weight(layer)
            layers.append(LayerSparsity(name, tuple(w.shape), w.numel(), int((w == 0).sum())))
        params, zeros, _ = _parameter_counts(self.model)
        return PruningReport(method=config.method, pattern=config.pattern, target_sparsity=config.sparsity,
                             layers=layers, model_params=params, model_zeros=zeros,
                             wall_time_s=time.perf_counter() - start, params_before=before[0],
                             nonzero_params_before=before[0] - before[1], checkpoint_bytes_before=before[2])

    # ---- saving ----------------------------------------------------------------------------------------------------
    def save_pretrained(self, save_directory: str | os.PathLike, overwrite: bool = False, **card_kwargs) -> str:
        """Save the pruned model, tokenizer, `sink_pruning_config.json` and model card (atomic, via
        `optimum_sinkprune.hub.save.save_pruned_model`; `card_kwargs` such as `reproduce_command`, `eval_results`,
        `sink_report_json`, `plots` are passed on to it)."""
        if self.config is None:
            raise ValueError("nothing to save yet: call prune() first")
        save_directory = os.fspath(save_directory)
        report = self.report.to_dict() if self.report is not None else None
        from .hub.save import save_pruned_model

        return save_pruned_model(self.model, save_directory, tokenizer=self.tokenizer,
                                 pruning_config=self.config.to_dict(), report=report, overwrite=overwrite,
                                 base_model=self.base_model, **card_kwargs)

    def push_to_hub(self, repo_id: str, *, save_directory: str | os.PathLike | None = None, **push_kwargs) -> str:
        """Save (atomically, with the model card) and push to the Hub via
        `optimum_sinkprune.hub.push.push_pruned_model`; `push_kwargs`: `private`, `token`, `revision`, `create_pr`,
        `commit_message`, `endpoint`, `max_retries`, and card arguments such as `reproduce_command`.

        Returns:
            the URL of the commit.
        """
        if self.config is None:
            raise ValueError("nothing to push yet: call prune() first")
        from .hub.push import push_pruned_model

        return push_pruned_model(
            self.model, repo_id, save_directory=save_directory, tokenizer=self.tokenizer,
            pruning_config=self.config.to_dict(), report=self.report.to_dict() if self.report is not None else None,
            base_model=self.base_model, **push_kwargs,
        )


__all__ = ["LayerSparsity", "PruningReport", "SinkAwarePruner", "select_targets"]
