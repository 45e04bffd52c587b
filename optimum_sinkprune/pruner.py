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

import logging
import os
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

from .configuration import SinkAwarePruningConfig
from .counting import count_zeros
from .editing import CalibrationRun, WeightEditor, select_targets
from .editing import WeightJournal as _WeightJournal  # its name here before the quantizer shared it
from .registry import get_method

logger = logging.getLogger(__name__)

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
        experts: the expert methods' result (`structured.experts.ExpertPruningResult.to_dict()`).
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
    experts: dict[str, Any] | None = None
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
        out["total_sparsity"] = None if self.structured is not None or self.experts is not None else self.total_sparsity
        return out

    def summary(self) -> str:
        """A few human-readable lines (the CLI prints them)."""
        if self.experts:
            ex = self.experts
            lines = [
                f"method {self.method}: experts per layer {ex['num_experts_before']} -> {ex['num_experts_after']}; "
                f"parameters {ex['params_before']:,} -> {ex['params_after']:,} "
                f"({1 - ex['params_after'] / max(ex['params_before'], 1):.2%} removed)",
            ]
        elif self.structured:
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


def _parameter_counts(model: nn.Module) -> tuple[int, int, int]:
    """(parameters, zeros, bytes) over every parameter (`optimum_sinkprune.counting.count_parameters`)."""
    from .counting import count_parameters

    return count_parameters(model)


# ------------------------------------------------------------------------------------------------------------------
# pruning history
# ------------------------------------------------------------------------------------------------------------------
HISTORY_KEY = "sink_pruning_history"
# exact zeros above this share of the parameters mean earlier pruning (trained weights are almost never exactly 0)
PRUNED_ZERO_SHARE = 0.05


def prior_pruning(model_config: Any, zeros: int, params: int) -> list[str]:
    """Signs that a model was pruned before: recorded pruning steps, removed heads, or many exact zeros.

    Args:
        model_config: the model's `PretrainedConfig`.
        zeros, params: zero and total parameter counts of the model.

    Returns:
        `list[str]`: one phrase per sign found (empty for a dense model).
    """
    signs = []
    history = getattr(model_config, HISTORY_KEY, None) or []
    if history:
        signs.append("its config records " + ", ".join(str(step.get("method")) for step in history))
    elif getattr(model_config, "sink_pruning_config", None):
        signs.append(f"its config records {model_config.sink_pruning_config.get('method')}")
    if getattr(model_config, "pruned_heads", None):
        signs.append("heads were removed (pruned_heads in its config)")
    if params and zeros / params > PRUNED_ZERO_SHARE:
        signs.append(f"{zeros / params:.1%} of its parameters are exactly zero")
    return signs


def history_step(config: SinkAwarePruningConfig, base_model: str | None, data: Any = None) -> dict[str, Any]:
    """One entry of `config.json`'s `sink_pruning_history`: method, its config, where the model came from (a Hub id,
    an embedded model's name or a folder name; no machine paths), the calibration data and the package version."""
    from .calibration.data import describe_calibration_data
    from .hub.model_card import portable_model_name
    from .version import __version__

    return {"method": config.method, "config": config.to_dict(), "base_model": portable_model_name(base_model),
            "calibration_data": None if not get_method(config.method).needs_data and data is None
            else describe_calibration_data(data), "optimum_sinkprune": __version__}


def _record_step(model: nn.Module, config: SinkAwarePruningConfig, base_model: str | None, data: Any) -> None:
    history = list(getattr(model.config, HISTORY_KEY, None) or [])
    model.config.sink_pruning_config = config.to_dict()
    setattr(model.config, HISTORY_KEY, [*history, history_step(config, base_model, data)])


# ------------------------------------------------------------------------------------------------------------------
# the pruner
# ------------------------------------------------------------------------------------------------------------------
class SinkAwarePruner(WeightEditor):
    """Prunes a supported model (LLaDA, Dream, MMaDA backbone; Llama/Qwen2 for AR baselines).

    Args:
        model (`nn.Module`): the model to prune (in place).
        tokenizer (*optional*): its tokenizer (needed for text calibration data and the data-free mode).
        base_model (`str`, *optional*): where the model came from (for the model card).
    """

    def __init__(self, model: nn.Module, tokenizer=None, *, base_model: str | None = None):
        super().__init__(model, tokenizer)
        self.base_model = base_model or getattr(getattr(model, "config", None), "_name_or_path", None) or None
        self.config: SinkAwarePruningConfig | None = None
        self.report: PruningReport | None = None

    @classmethod
    def from_pretrained(cls, model_or_path: nn.Module | str | os.PathLike, tokenizer=None, **load_kwargs):
        """From a loaded model, or a Hub id / local folder (loaded with `AutoModelForCausalLM` and `load_kwargs`;
        the tokenizer is loaded from the same place when it has one).

        `load_kwargs` may place the model with accelerate: `device_map` ("auto" or {module: device, "cpu" or
        "disk"}), `offload_folder` (needed for "disk": pruned weights of disk-offloaded blocks are written there) and
        `max_memory` ({device: size}; `prune` also checks it against one block's weights plus its working memory)."""
        if isinstance(model_or_path, nn.Module):
            return cls(model_or_path, tokenizer)
        from .hub.load import load_model, load_tokenizer

        path = os.fspath(model_or_path)
        model = load_model(path, **load_kwargs)
        if tokenizer is None:
            tokenizer = load_tokenizer(path, required=False)
        pruner = cls(model, tokenizer, base_model=path)
        pruner.max_memory = load_kwargs.get("max_memory")
        return pruner

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
            restore_on_error: while a sequential method runs, keep copies of the weights it modifies on disk (a
                temporary folder, deleted afterwards; as many bytes as the pruned layers' weights), to restore the
                model if it fails midway (e.g. non-finite statistics in a later block). Dense methods check every
                statistic before the first weight changes and keep none.

        Returns:
            `(model, PruningReport)`.

        Raises:
            ValueError: bad config, targets, calibration data, seq_len, a model without a mask token for a
                diffusion method, an expert method on a model without routed experts or with an `expert_ratio` that
                leaves fewer than top_k experts — all before any weight is touched.
            MemoryError: the memory estimate exceeds what is available (before anything runs).
            FloatingPointError: NaN/inf in a parameter of the model (`validation.NonFiniteWeightsError`, also a
                ValueError; names the first bad parameter, before any calibration), or NaN/inf calibration
                statistics of finite weights (activation overflow; names the layer).
        """
        if isinstance(config, dict):
            config = SinkAwarePruningConfig.from_dict(config)
        if not isinstance(config, SinkAwarePruningConfig):
            raise ValueError(f"config must be a SinkAwarePruningConfig or its dict, got {type(config).__name__}")
        if save_dir is not None:  # the save's own destination check, before any calibration or weight change
            from .hub.save import check_save_directory

            check_save_directory(save_dir, argument="save_dir", remedy="pass an empty or new folder, or prune "
                                 "without save_dir and call save_pretrained(path, overwrite=True)", model=self.model)
        start = time.perf_counter()
        self.model.eval()
        before = _parameter_counts(self.model)
        signs = prior_pruning(self.model.config, before[1], before[0])
        if signs:  # the new step adds to the old one; the config and card record both
            logger.warning("pruning a model that is already pruned (%s): %s runs on top of it; start from the dense "
                           "model for a single-step result", "; ".join(signs), config.method)
        if config.is_structured:
            return self._prune_structured(config, calibration_dataset, save_dir, start, before, progress)
        if config.is_expert_pruning:
            return self._prune_experts(config, calibration_dataset, save_dir, start, before, progress)

        run = self._plan(config, calibration_dataset, restore_on_error)  # validate: nothing has changed yet
        # calibrate → score → apply, restoring the modified layers if it fails
        journal = _WeightJournal(run.restore_copies)
        result = self._journaled(journal, lambda: self._calibrate_and_apply(run, journal, progress))
        report = self._finish(run, result, start, before)  # report
        if save_dir is not None:
            self.save_pretrained(save_dir)
        return self.model, report

    def _calibrate_and_apply(self, run: CalibrationRun, journal: _WeightJournal, progress: bool):
        """Each layer's statistic goes to the scorer, which applies the layer's mask."""

        def prune_layer(name: str, statistic: torch.Tensor | None) -> None:
            self._prune_layer(run.config, run.spec, name, run.targets[name], statistic, journal, run.zeros_before)

        return self._calibrate(run, prune_layer, progress)

    def _finish(self, run: CalibrationRun, result, start: float, before: tuple[int, int, int]) -> PruningReport:
        config = run.config
        if run.noise is not None:  # record the noise the run used (None fields resolve to the family's defaults)
            config = replace(config, noise_schedule=run.noise.schedule, protected_positions=run.noise.protected)
        self.config = config
        _record_step(self.model, config, self.base_model, run.data)
        report = self._report(config, run.targets, start, before, zeros_before=run.zeros_before)
        report.memory_estimate = {"device": run.estimate.device, "device_bytes": run.estimate.device_bytes,
                                  "host_bytes": run.estimate.host_bytes}
        if run.ids is not None:
            report.calibration = {"num_samples": int(run.ids.shape[0]), "seq_len": int(run.ids.shape[1]),
                                  "forward_passes": int(result.forwards)}
        report.sink = result.sink.to_dict() if result.sink is not None else None
        self.report = report
        logger.info("pruned: %s", report.summary().replace("\n", "; "))
        return report

    def _prune_layer(self, config, spec, name: str, layer: nn.Linear, statistic, journal: _WeightJournal,
                     zeros_before: dict[str, int] | None = None) -> None:
        from .methods import apply_mask, layer_mask, read_weight

        weight = read_weight(layer)  # read once (for a layer offloaded to disk, a copy read from the file)
        if statistic is not None and statistic.device != weight.device:
            # an offloaded layer: score where its block ran (its execution device), where the statistic is
            weight = weight.to(statistic.device)
        mask, new_weight = layer_mask(spec, weight, statistic, sparsity=config.sparsity, nm=config.nm,
                                      block_size=config.block_size, dampening=config.dampening)
        if new_weight is not None and not torch.isfinite(new_weight).all():
            raise FloatingPointError(f"SparseGPT reconstruction of layer {name!r} produced NaN/inf")
        journal.record(name, layer)
        if zeros_before is not None:
            zeros_before[name] = count_zeros(weight)
        apply_mask(layer, mask, new_weight)

    def _prune_structured(self, config, calibration_dataset, save_dir, start, before, progress):
        from .structured import plan_structured_budget, prune_structured  # lazy: written separately
        from .validation import check_finite_parameters

        # validate before calibration data is built (or generated) from the model: finite weights, and the config's
        # structured fields with a budget that removes something on this model
        check_finite_parameters(self.model)
        plan_structured_budget(self.model, config)
        # structured statistics noise the inputs of diffusion models only (autoregressive ones run clean); the mask
        # token is resolved once, with the tokenizer, and handed to the statistics
        mask_id = None
        if config.uses_diffusion and self.adapter.is_diffusion:
            mask_id = self.adapter.noise_token_id(self.model, self.tokenizer)  # None: the family draws its tokens
        # weight-only methods (magnitude_heads, random_heads): no calibration text is built (or generated) for them
        needs_data = get_method(config.method).needs_data or calibration_dataset is not None
        ids, mask = self._prepare_calibration_batch(config, calibration_dataset) if needs_data else (None, None)
        result = prune_structured(self.model, config=config, calibration_ids=ids, attention_mask=mask,
                                  mask_token_id=mask_id, progress=progress, check_weights=False)
        self.config = config
        _record_step(self.model, config, self.base_model, calibration_dataset)
        report = self._report(config, {}, start, before)
        report.structured = result.to_dict()
        if ids is not None:
            report.calibration = {"num_samples": int(ids.shape[0]), "seq_len": int(ids.shape[1])}
        self.report = report
        if save_dir is not None:
            self.save_pretrained(save_dir)
        return self.model, report

    def _prune_experts(self, config, calibration_dataset, save_dir, start, before, progress):
        """The expert methods (`structured.experts`): validate (finite weights, a model with routed experts, a ratio
        that keeps at least top_k of them) before calibration data is built, score on noised windows, remove."""
        from .calibration.noise import NoiseSchedule
        from .structured.experts import check_expert_pruning, prune_experts
        from .validation import check_finite_parameters

        check_finite_parameters(self.model)
        check_expert_pruning(self.model, config.expert_ratio, self.adapter, method=config.method)
        noise = NoiseSchedule.from_config(config, self.adapter)
        ids = self._prepare_calibration(config, calibration_dataset)
        result = prune_experts(self.model, ids, expert_ratio=config.expert_ratio, sink_weighted=config.method_spec.sink,
                               noise=noise, sink_alpha=config.sink_alpha, sink_std=config.sink_std,
                               batch_size=config.batch_size, progress=progress)
        # record the noise the run used (None fields resolve to the family's defaults)
        config = replace(config, noise_schedule=noise.schedule, protected_positions=noise.protected)
        self.config = config
        _record_step(self.model, config, self.base_model, calibration_dataset)
        report = self._report(config, {}, start, before)
        report.experts = result.to_dict()
        report.calibration = {"num_samples": int(ids.shape[0]), "seq_len": int(ids.shape[1]),
                              "forward_passes": int(result.forwards)}
        self.report = report
        if save_dir is not None:
            self.save_pretrained(save_dir)
        return self.model, report

    def _report(self, config, targets: dict[str, nn.Linear], start: float, before: tuple[int, int, int], *,
                zeros_before: dict[str, int] | None = None):
        """The run's report. With `zeros_before` covering every target (unstructured pruning changed only them), the
        whole model's counts follow from `before` and the targets' counts, without counting every parameter again."""
        from .methods import read_weight

        layers = []
        for name, layer in targets.items():
            w = read_weight(layer)
            layers.append(LayerSparsity(name, tuple(w.shape), w.numel(), count_zeros(w)))
        if targets and zeros_before is not None and set(zeros_before) >= set(targets):
            params = before[0]
            zeros = before[1] + sum(layer.zeros - zeros_before[layer.name] for layer in layers)
        else:
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
        report = self.report.to_dict() if self.report is not None else None
        return self._save(save_directory, self.config.to_dict(), report=report, overwrite=overwrite,
                          base_model=self.base_model, **card_kwargs)

    def push_to_hub(self, repo_id: str, *, save_directory: str | os.PathLike | None = None, **push_kwargs) -> str:
        """Save (atomically, with the model card) and push to the Hub via
        `optimum_sinkprune.hub.push.push_pruned_model`; `push_kwargs`: `private`, `token`, `revision`, `create_pr`,
        `commit_message`, `endpoint`, `max_retries`, `timeout`, and card arguments such as `reproduce_command`.

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


__all__ = ["HISTORY_KEY", "LayerSparsity", "PruningReport", "SinkAwarePruner", "history_step", "prior_pruning",
           "select_targets"]
