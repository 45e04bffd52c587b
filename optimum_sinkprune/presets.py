# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The paper's calibration preset, end to end: its config (`SinkAwarePruningConfig.paper_preset`), its calibration
windows (`calibration.datasets`: wikitext-2 train, cut as the paper's code cuts it) and the memory estimate of a
run from a model's config alone (`calibration.memory.estimate_memory` on a meta-device model: nothing is
downloaded or allocated).

```python
>>> from optimum_sinkprune.presets import LLADA_8B_CONFIG_FILE, estimate_model_memory, paper_config
>>> config = paper_config("llada", "sink_wanda", 0.5)
>>> print(estimate_model_memory(LLADA_8B_CONFIG_FILE, config).summary())  # doctest: +SKIP
```
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import torch

from .configuration import SinkAwarePruningConfig

PRESETS = ("paper",)  # the `--preset` choices of the prune command
LLADA_8B_CONFIG_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "configs",
                                    "llada-8b-base.json")


def load_model_config(name_or_path: str | os.PathLike):
    """A model's `PretrainedConfig` without its weights: a `config.json`-style file, a local folder or a Hub id
    (read with `AutoConfig`, never with remote code: our registered LLaDA / MMaDA / Dream classes read them)."""
    import optimum_sinkprune  # noqa: F401  (registers LLaDA / MMaDA / Dream with the Auto classes)
    from transformers import AutoConfig

    path = os.fspath(name_or_path)
    if os.path.isfile(path):
        from .validation import read_text_file  # a file that is not UTF-8 is named with its line

        data = json.loads(read_text_file(path, what="model config"))
        model_type = data.pop("model_type", None)
        if model_type is None:
            raise ValueError(f"{path!r} has no 'model_type'; it is not a model config.json")
        data.pop("auto_map", None)  # our registered class reads it; the remote code is not needed
        return AutoConfig.for_model(model_type, **data)
    return AutoConfig.from_pretrained(path)


def model_family(model_config) -> str:
    """The family key of a model config (`config.model_type`, lower case: "llada", "mmada", "dream", ...)."""
    return str(getattr(model_config, "model_type", "")).lower()


def paper_config(family: str, method: str = "sink_wanda", sparsity: float = 0.5, **overrides: Any):
    """`SinkAwarePruningConfig.paper_preset` (kept here so the preset's three parts are found together)."""
    return SinkAwarePruningConfig.paper_preset(family, method, sparsity, **overrides)


def paper_calibration_data(tokenizer, config: SinkAwarePruningConfig, data: Any = None) -> torch.LongTensor:
    """The paper's calibration windows for `config` ([num_samples, seq_len] token ids).

    Args:
        tokenizer: the model's tokenizer.
        config: the run's config (its `num_samples`, `seq_len` and `seed`).
        data: where the wikitext-2 train rows come from: None (the user's cache; offline, only the cache), a local
            copy (`calibration.datasets.load_dataset_texts`), or a list of texts.

    Raises:
        FileNotFoundError: the dataset is missing offline (the message says how to give a local copy).
        ValueError: too little text for one window, a bad argument.
    """
    from .calibration.datasets import load_dataset_texts, paper_calibration_windows

    if isinstance(data, (list, tuple)) and all(isinstance(t, str) for t in data):
        rows = list(data)
    else:
        rows = load_dataset_texts(data)
    return paper_calibration_windows(tokenizer, rows, num_samples=config.num_samples, seq_len=config.seq_len,
                                     seed=config.seed)


@dataclass(frozen=True)
class ModelMemoryEstimate:
    """What a pruning run needs, from the model's config: its weights plus the estimator's extra bytes.

    Attributes:
        parameters: the model's parameter count.
        weight_bytes: parameters x the dtype's size.
        accelerator_bytes: weights + the run's extra bytes on the compute device (`MemoryEstimate.parts`, less the
            host activations).
        host_bytes: calibration data the run keeps in host memory.
        parts: the estimator's parts, in bytes.
        dtype: the dtype the weights are counted in.
    """

    parameters: int
    weight_bytes: int
    accelerator_bytes: int
    host_bytes: int
    parts: dict[str, int]
    dtype: str

    def summary(self) -> str:
        gib = 1024**3
        extra = ", ".join(f"{k} {v / gib:.2f} GiB" for k, v in self.parts.items() if k != "host activations")
        return (f"{self.parameters / 1e9:.2f}B parameters: weights {self.weight_bytes / gib:.1f} GiB ({self.dtype}) + "
                f"calibration {(self.accelerator_bytes - self.weight_bytes) / gib:.2f} GiB ({extra}) = about "
                f"{self.accelerator_bytes / gib:.1f} GiB on the accelerator; {self.host_bytes / gib:.2f} GiB of "
                "calibration data in host memory (an estimate from shapes; allow 10-20% for the allocator)")

    def to_dict(self) -> dict[str, Any]:
        return {"parameters": self.parameters, "weight_bytes": self.weight_bytes,
                "accelerator_bytes": self.accelerator_bytes, "host_bytes": self.host_bytes, "parts": dict(self.parts),
                "dtype": self.dtype}


def estimate_model_memory(model_config, config: SinkAwarePruningConfig, *,
                          dtype: str | torch.dtype = "bfloat16") -> ModelMemoryEstimate:
    """The memory of pruning a model with `config`, from its config alone: the model is built on the meta device
    (no weights are read or allocated) and `calibration.memory.estimate_memory` sizes the run.

    Args:
        model_config: a `PretrainedConfig`, or what `load_model_config` reads (a config file, a folder, a Hub id).
        config: the pruning config (e.g. `SinkAwarePruningConfig.paper_preset(...)`).
        dtype: the weights' dtype (a name or a `torch.dtype`).

    Raises:
        ValueError: an unknown dtype, a model without an adapter, targets that match nothing.
    """
    from transformers import AutoModel

    from .adapters import get_adapter
    from .calibration.memory import estimate_memory
    from .pruner import select_targets

    if isinstance(dtype, str):
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ValueError(f"dtype={dtype!r} is not a torch dtype name (e.g. 'bfloat16', 'float32')")
        dtype = getattr(torch, dtype)
    if not hasattr(model_config, "model_type"):
        model_config = load_model_config(model_config)
    with torch.device("meta"):
        model = AutoModel.from_config(model_config, dtype=dtype)
    adapter = get_adapter(model)
    targets = select_targets(model, adapter, config.targets, config.ignore)
    estimate = estimate_memory(model, adapter, targets, config=config)
    params = sum(p.numel() for p in model.parameters())
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    host = int(estimate.parts.get("host activations", 0))
    extra = sum(v for k, v in estimate.parts.items() if k != "host activations")
    return ModelMemoryEstimate(parameters=int(params), weight_bytes=int(weights),
                               accelerator_bytes=int(weights + extra), host_bytes=host,
                               parts={k: int(v) for k, v in estimate.parts.items()}, dtype=str(dtype).split(".")[-1])


__all__ = [
    "LLADA_8B_CONFIG_FILE",
    "PRESETS",
    "ModelMemoryEstimate",
    "estimate_model_memory",
    "load_model_config",
    "model_family",
    "paper_calibration_data",
    "paper_config",
]
