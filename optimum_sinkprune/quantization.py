# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Weight-only quantization, alone or composed with pruning: `QuantizationConfig` and `SinkAwareQuantizer`.

Shaped like optimum's GPTQQuantizer (validate → calibrate → apply → save). The maths is pure
(`methods.rtn`, `methods.gptq`); calibration is the one pipeline of the pruning methods: GPTQ uses the Hessians the
`sparsegpt` method builds (clean inputs), sink-aware GPTQ those of `sink_sparsegpt` (inputs weighted by 1 − σ̄), so
the Hessian source of each quantization method is a registered pruning method. Composition:

* prune, then quantize: quantize a pruned model; weights that are zero stay zero (GPTQ compensates their error with
  the kept weights), so the mask survives exactly.
* joint: `quantize(config, data, pruning=SinkAwarePruningConfig(method="sparsegpt" | "sink_sparsegpt", ...))` runs
  SparseGPT's joint pass: each column's pruned weights are zeroed and its kept weights rounded in one sweep.

The model keeps float weights that lie exactly on the grid (fake-quantized) and each quantized linear a
non-persistent `weight_scale` buffer; `save_pretrained` writes compressed-tensors' `pack-quantized` (int4) or
`int-quantized` (int8) layout, which transformers loads without this package.

```python
>>> from optimum_sinkprune import QuantizationConfig, SinkAwareQuantizer
>>> quantizer = SinkAwareQuantizer(model, tokenizer)
>>> model, report = quantizer.quantize(QuantizationConfig(method="sink_gptq", bits=4, group_size=32), texts)
>>> quantizer.save_pretrained("llada-sink-gptq-int4")
```
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from .configuration import SinkAwarePruningConfig
from .editing import WeightEditor, WeightJournal, select_targets
from .methods.rtn import BITS, QuantGrid, check_group_size
from .quantized import (  # noqa: F401 (public here too)
    QUANT_CONFIG_KEY,
    SCALE_BUFFER,
    clear_scales,
    is_quantized,
    quantized_layers,
    quantized_packed_tensors,
    store_scales,
)
from .records import DictRecord
from .registry import get_method

logger = logging.getLogger(__name__)

# quantization method -> the registered pruning method whose calibration Hessians it uses (None: weights only)
QUANTIZATION_METHODS = MappingProxyType({
    "rtn": None,
    "gptq": "sparsegpt",
    "sink_gptq": "sink_sparsegpt",
})


@dataclass
class QuantizationConfig(DictRecord):
    """Weight-only integer quantization of the block linears.

    Args:
        method (`str`): "rtn" (round to nearest), "gptq" (GPTQ on the clean-input Hessians of `sparsegpt`) or
            "sink_gptq" (GPTQ on the sink-weighted Hessians of `sink_sparsegpt`).
        bits (`int`): 4 or 8 (symmetric; int4 is stored packed, int8 as int8).
        group_size (`int`, *optional*): input columns sharing one scale; must divide every quantized layer's
            in_features. None: one scale per output row.
        block_size (`int`), dampening (`float`): GPTQ's column block and relative Hessian dampening.
        num_samples (`int`), seq_len (`int`), seed (`int`), batch_size (`int`): calibration (GPTQ methods).
        targets (`list[str]`, *optional*), ignore (`list[str]`): which block linears, as in `SinkAwarePruningConfig`.
    """

    method: str = "gptq"
    bits: int = 4
    group_size: int | None = 128
    block_size: int = 128
    dampening: float = 0.01
    num_samples: int = 128
    seq_len: int = 128
    seed: int = 0
    batch_size: int = 1
    targets: list[str] | None = None
    ignore: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.method not in QUANTIZATION_METHODS:
            raise ValueError(f"method={self.method!r} is not a quantization method; use one of "
                             f"{tuple(QUANTIZATION_METHODS)}")
        if isinstance(self.bits, bool) or self.bits not in BITS:
            raise ValueError(f"bits={self.bits!r} is not supported; use one of {BITS}")
        if self.group_size is not None and (isinstance(self.group_size, bool) or not isinstance(self.group_size, int)
                                            or self.group_size < 1):
            raise ValueError(f"group_size={self.group_size!r} must be a positive int or None (one scale per row)")
        # the calibration fields are validated by the pruning config that carries them
        self.calibration_config()

    @property
    def hessian_method(self) -> str | None:
        """The registered pruning method whose calibration builds this method's Hessians (None for RTN)."""
        return QUANTIZATION_METHODS[self.method]

    def grid(self, scale_dtype: torch.dtype = torch.float32) -> QuantGrid:
        return QuantGrid(self.bits, self.group_size, scale_dtype)

    def calibration_config(self) -> SinkAwarePruningConfig:
        """The calibration settings as a pruning config of the Hessian method: the calibration reads its samples,
        noise and sink settings and targets; its sparsity is never applied (GPTQ keeps every weight)."""
        return SinkAwarePruningConfig(
            method=self.hessian_method or "magnitude", sparsity=0.5, num_samples=self.num_samples,
            seq_len=self.seq_len, seed=self.seed, batch_size=self.batch_size, block_size=self.block_size,
            dampening=self.dampening, targets=self.targets, ignore=list(self.ignore))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuantizationConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown QuantizationConfig keys {sorted(unknown)}")
        return cls(**data)


@dataclass
class QuantizationReport(DictRecord):
    """What a quantization run did.

    Attributes:
        method, bits, group_size: from the config; joint_pruning: the pruning method of a joint run, else None.
        layers: the quantized layers' names.
        sparsity: the pruned fraction over them (the joint run's mask, or the zeros the layers had before; these
            stay zero). zero_fraction: zeros after the run (≥ sparsity: small kept weights may round to 0).
        mean_relative_error: mean over layers of ‖W_q − W‖_F / ‖W‖_F (W: the weights before the run).
        calibration: samples, seq_len, forward passes (GPTQ methods); sink: sink statistics of sink-aware runs.
        wall_time_s: seconds spent in `quantize`.
    """

    method: str
    bits: int
    group_size: int | None
    joint_pruning: str | None = None
    layers: list[str] = field(default_factory=list)
    sparsity: float = 0.0
    zero_fraction: float = 0.0
    mean_relative_error: float = 0.0
    calibration: dict[str, Any] = field(default_factory=dict)
    sink: dict[str, Any] | None = None
    wall_time_s: float = 0.0


class SinkAwareQuantizer(WeightEditor):
    """Quantizes the block linears of a supported model in place (optionally pruning them in the same sweep).

    Args:
        model (`nn.Module`): the model (LLaDA, Dream, MMaDA backbone, Llama/Qwen2).
        tokenizer (*optional*): for text calibration data.
    """

    def __init__(self, model: nn.Module, tokenizer=None):
        super().__init__(model, tokenizer)
        self.config: QuantizationConfig | None = None
        self.pruning_config: SinkAwarePruningConfig | None = None
        self.report: QuantizationReport | None = None

    # ---- validation ------------------------------------------------------------------------------------------------
    def _calibration(self, config: QuantizationConfig, pruning: SinkAwarePruningConfig | None):
        """The calibration config (the joint run's pruning config, or the Hessian method's) after checking that the
        two configs compose."""
        if pruning is None:
            return config.calibration_config()
        spec = get_method(pruning.method)
        if not spec.reconstruct or config.method == "rtn":
            raise ValueError(f"a joint sparsify + quantize pass needs a reconstructing pruning method (sparsegpt, "
                             f"sink_sparsegpt) and a GPTQ method; got pruning method={pruning.method!r} and "
                             f"quantization method={config.method!r} (prune first, then quantize, for the others)")
        if get_method(config.hessian_method).sink != spec.sink:
            raise ValueError(f"quantization method={config.method!r} and pruning method={pruning.method!r} disagree "
                             "on sink weighting; pair gptq with sparsegpt and sink_gptq with sink_sparsegpt")
        return pruning

    # ---- quantizing ------------------------------------------------------------------------------------------------
    def quantize(
        self,
        config: QuantizationConfig | dict,
        calibration_dataset: Any = None,
        *,
        pruning: SinkAwarePruningConfig | dict | None = None,
        progress: bool = True,
    ) -> tuple[nn.Module, QuantizationReport]:
        """Quantize `self.model` in place.

        Args:
            config: the `QuantizationConfig` (or its dict).
            calibration_dataset: as `SinkAwarePruner.prune` takes it (token ids, texts, a file, a dataset; None:
                data-free); unused by RTN.
            pruning: a `SinkAwarePruningConfig` of `sparsegpt` / `sink_sparsegpt` for SparseGPT's joint
                sparsify + quantize pass (the pruning config's calibration settings are used).
            progress: show tqdm bars.

        Returns:
            `(model, QuantizationReport)`.

        Raises:
            ValueError: bad config, the model is already quantized, a group size that does not divide a layer's
                in_features (names the layer), configs that do not compose — all before any weight changes.
            FloatingPointError: non-finite Hessians or results (names the layer); the modified layers are restored.
        """
        if isinstance(config, dict):
            config = QuantizationConfig.from_dict(config)
        if not isinstance(config, QuantizationConfig):
            raise ValueError(f"config must be a QuantizationConfig or its dict, got {type(config).__name__}")
        if isinstance(pruning, dict):
            pruning = SinkAwarePruningConfig.from_dict(pruning)
        if is_quantized(self.model):
            raise ValueError(f"this {type(self.model).__name__} is already quantized; quantize the unquantized model "
                             "(quantizing twice would round already-rounded weights onto a second grid)")
        calibration = self._calibration(config, pruning)
        start = time.perf_counter()
        self.model.eval()
        targets = select_targets(self.model, self.adapter, calibration.targets, calibration.ignore)
        for name, layer in targets.items():
            check_group_size(config.grid(), name, layer.in_features)
        dtype = next(iter(targets.values())).weight.dtype  # an offloaded (meta) parameter keeps its dtype
        grid = config.grid(scale_dtype=dtype)
        report = QuantizationReport(config.method, config.bits, config.group_size,
                                    joint_pruning=pruning.method if pruning is not None else None,
                                    layers=list(targets))
        total = sum(layer.weight.numel() for layer in targets.values())
        zeros_before = sum(_weight_zeros(layer) for layer in targets.values())
        pruned: list[int] = []  # per layer, the joint pass's mask size
        errors: list[float] = []
        results: dict[str, torch.Tensor] = {}
        journal = WeightJournal(config.method != "rtn")

        def apply() -> None:
            if config.method == "rtn":
                for name, layer in targets.items():
                    self._apply_rtn(name, layer, grid, errors, results)
                return
            run = self._plan(calibration, calibration_dataset, False)
            result = self._calibrate_and_apply(run, config, pruning, grid, journal, errors, results, pruned,
                                               progress)
            report.calibration = {"num_samples": int(run.ids.shape[0]), "seq_len": int(run.ids.shape[1]),
                                  "forward_passes": int(result.forwards)}
            report.sink = result.sink.to_dict() if result.sink is not None else None

        def undo() -> None:  # the scales of the layers written before the failure (the model had none before)
            clear_scales(self.model)

        self._journaled(journal, apply, undo)
        zeros = sum(_weight_zeros(layer) for layer in targets.values())
        report.sparsity = (sum(pruned) if pruning is not None else zeros_before) / total
        report.zero_fraction = zeros / total
        report.mean_relative_error = sum(errors) / len(errors)
        report.wall_time_s = time.perf_counter() - start
        self.config, self.pruning_config, self.report = config, pruning, report
        self.model.config.sink_quantization_config = config.to_dict()
        if pruning is not None:
            self.model.config.sink_pruning_config = pruning.to_dict()
        logger.info("quantized %d layers (%s, int%d, group size %s), mean relative error %.4f", len(targets),
                    config.method, config.bits, config.group_size, report.mean_relative_error)
        return self.model, report

    def _write(self, name: str, layer: nn.Linear, new_weight: torch.Tensor, scales: torch.Tensor, errors: list[float],
               results: dict[str, torch.Tensor]) -> None:
        from .methods import read_weight
        from .methods.masks import write_weight

        if not (torch.isfinite(new_weight).all() and torch.isfinite(scales).all()):
            raise FloatingPointError(f"quantizing layer {name!r} produced NaN/inf")
        target = read_weight(layer)
        before = target.detach().to(torch.float32)
        errors.append(float((new_weight - before).norm() / before.norm().clamp_min(1e-12)))
        write_weight(layer, new_weight)  # in place, or into the disk offload folder of a disk-offloaded layer
        # non-persistent: a dense save stays a plain checkpoint; the quantized save reads it
        store_scales(self.model, layer, scales.to(target.dtype))
        results[name] = scales

    def _apply_rtn(self, name, layer, grid, errors, results) -> None:
        from .methods import read_weight
        from .methods.rtn import rtn_quantize

        new_weight, scales = rtn_quantize(read_weight(layer), grid)
        self._write(name, layer, new_weight, scales, errors, results)

    def _calibrate_and_apply(self, run, config, pruning, grid, journal, errors, results, pruned, progress):
        from .methods import read_weight
        from .methods.gptq import gptq_quantize, sparsegpt_quantize

        def quantize_layer(name: str, hessian: torch.Tensor) -> None:
            layer = run.targets[name]
            weight = read_weight(layer)
            if pruning is not None:
                new_weight, mask, scales = sparsegpt_quantize(weight, hessian, grid, sparsity=pruning.sparsity,
                                                              nm=pruning.nm, block_size=pruning.block_size,
                                                              dampening=pruning.dampening)
                pruned.append(int(mask.sum()))
            else:
                new_weight, scales = gptq_quantize(weight, hessian, grid, block_size=config.block_size,
                                                   dampening=config.dampening)
            journal.record(name, layer)
            self._write(name, layer, new_weight, scales, errors, results)

        return self._calibrate(run, quantize_layer, progress)

    # ---- saving ----------------------------------------------------------------------------------------------------
    def save_pretrained(self, save_directory: str | os.PathLike, overwrite: bool = False,
                        save_format: str | None = None, **card_kwargs) -> str:
        """Save atomically (`optimum_sinkprune.hub.save.save_pruned_model`), by default in compressed-tensors'
        quantized layout (`save_format="quantized"`; `"dense"` stores the dequantized weights as floats)."""
        if self.config is None:
            raise ValueError("nothing to save yet: call quantize() first")
        pruning = self.pruning_config.to_dict() if self.pruning_config is not None else (
            getattr(self.model.config, "sink_pruning_config", None))
        if not isinstance(pruning, dict):  # quantized only: the card names the quantization as the method
            pruning = {"method": f"{self.config.method}-int{self.config.bits}"}
        pruning = {**pruning, "quantization": self.config.to_dict()}
        return self._save(save_directory, pruning, overwrite=overwrite, save_format=save_format, **card_kwargs)


def _weight_zeros(layer: nn.Module) -> int:
    """Zeros of `layer.weight`, read where it lives (an accelerate-offloaded weight is a meta tensor on the layer)."""
    from .counting import count_zeros
    from .methods import read_weight

    return count_zeros(read_weight(layer))


def torchao_int8_config():
    """transformers' own config for torchao's int8 weight-only CPU path: pass it as `quantization_config=` to
    `from_pretrained` of a dense (or pruned, densely stored) checkpoint; torchao rounds every linear to int8 per
    output channel at load time (its own round-to-nearest, not GPTQ) and runs its int8 weight-only matmul.
    benchmarks/results/quantization.md (tiny-llada) and quantization_minilm.md (tiny-minilm-dlm) measure it against
    the bf16 model, interleaved; whether it is faster depends on the CPU (it was slower than bf16 on a CPU with
    native bf16 matmuls).

    Returns:
        `transformers.TorchAoConfig`.

    Raises:
        `ImportError`: torchao is not installed (names the install command).
    """
    from transformers import TorchAoConfig

    try:
        from torchao.quantization import Int8WeightOnlyConfig
    except ImportError as err:
        raise ImportError("the int8 weight-only CPU path needs the torchao package: pip install torchao (or "
                          "pip install \"optimum-sinkprune[torchao]\")") from err
    return TorchAoConfig(Int8WeightOnlyConfig())


__all__ = [
    "QUANTIZATION_METHODS",
    "QuantizationConfig",
    "QuantizationReport",
    "SinkAwareQuantizer",
    "is_quantized",
    "quantized_layers",
    "torchao_int8_config",
]
