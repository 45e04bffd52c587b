# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`SinkAwarePruningConfig`: every knob of a pruning run, validated up front, JSON round-trippable and version-stamped.

Saved beside the weights as `sink_pruning_config.json` (PEFT-style) and inside `config.json` as
`sink_pruning_config`, so a pruned checkpoint says how it was made.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

CONFIG_NAME = "sink_pruning_config.json"
CONFIG_FORMAT = 1

# Unstructured / N:M weight pruning (optimum_sinkprune.methods).
UNSTRUCTURED_METHODS = ("magnitude", "wanda", "sparsegpt", "sink_wanda", "sink_sparsegpt", "wanda_diffusion")
# Head and MLP-channel removal (optimum_sinkprune.structured).
STRUCTURED_METHODS = ("sink_heads", "magnitude_heads", "random_heads", "activation_heads")
KNOWN_METHODS = UNSTRUCTURED_METHODS + STRUCTURED_METHODS
# Methods whose calibration runs the masked-diffusion forward process (they need a mask token).
DIFFUSION_METHODS = ("sink_wanda", "sink_sparsegpt", "wanda_diffusion", "sink_heads")
ALLOCATIONS = ("uniform", "global")
STRUCTURED_MODES = ("remove", "mask")


def parse_pattern(pattern: str) -> tuple[int, int] | None:
    """`"unstructured"` -> None, `"N:M"` -> (N, M) with 0 < N < M (keep N of every M consecutive inputs).

    Raises:
        ValueError: naming the pattern when it is neither form or N >= M.
    """
    if pattern == "unstructured":
        return None
    parts = pattern.split(":") if isinstance(pattern, str) else []
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"pattern={pattern!r} is not allowed; use 'unstructured' or 'N:M' with integers, e.g. '2:4'")
    n, m = int(parts[0]), int(parts[1])
    if not 0 < n < m:
        raise ValueError(f"pattern={pattern!r}: N:M needs 0 < N < M (keep N weights of every M), got N={n}, M={m}")
    return n, m


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r} is not allowed; it must be an integer >= {minimum}")


def _check_float(name: str, value: Any, low: float | None = None, high: float | None = None, *, open_high=False,
                 open_low=False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if open_low else value >= low
    if ok and high is not None:
        ok = value < high if open_high else value <= high
    if not ok:
        lo = "" if low is None else f"{'>' if open_low else '>='} {low}"
        hi = "" if high is None else f"{'<' if open_high else '<='} {high}"
        rng = " and ".join(p for p in (lo, hi) if p) or "finite"
        raise ValueError(f"{name}={value!r} is not allowed; it must be a finite number {rng}")


def calibration_steps(diffusion_steps: int, sample_interval: int) -> list[int]:
    """Diffusion steps visited per calibration sample: interval, 2·interval, …, <= diffusion_steps (the paper's)."""
    return list(range(sample_interval, diffusion_steps + 1, sample_interval))


@dataclass
class SinkAwarePruningConfig:
    r"""Configuration of a pruning run (shaped like optimum's quantization configs).

    Args:
        method (`str`): one of `magnitude`, `wanda`, `sparsegpt`, `sink_wanda` (the paper's method),
            `sink_sparsegpt`, `wanda_diffusion` (ablation: Wanda on noised inputs, no sink weighting) — unstructured /
            N:M weight pruning — or the structured methods `sink_heads`, `magnitude_heads`, `random_heads`,
            `activation_heads` (remove attention heads and MLP channels). See `docs/methods.md`.
        sparsity (`float`): fraction of weights to zero per pruned layer, in [0, 1).
        pattern (`str`): `"unstructured"` or `"N:M"` (keep N of every M consecutive inputs of a row); with N:M the
            sparsity must equal 1 - N/M.
        num_samples (`int`), seq_len (`int`), seed (`int`), batch_size (`int`): calibration.
        diffusion_steps (`int`), sample_interval (`int`), noise_eps (`float`): the noised calibration of the
            diffusion methods, at steps s = interval, 2·interval, …, steps (t = s / steps).
        sink_std (`float`), sink_alpha (`float`): sink weight σ = sigmoid(alpha · (m − (mean(m) + sink_std·std(m)))).
        block_size (`int`), dampening (`float`): SparseGPT's column block and relative Hessian dampening.
        targets (`list[str]`, *optional*): module-name patterns (fnmatch, or a role among q,k,v,o,gate,up,down) of
            the linear layers to prune; default every linear layer inside the transformer blocks.
        ignore (`list[str]`): patterns excluded from `targets`. Embeddings and the LM head are never pruned.
        memory_limit_gb (`float`, *optional*): device memory the run may use; default: what the device reports.
        target_param_reduction (`float`, *optional*), head_ratio (`float`, *optional*), mlp_ratio (`float`,
            *optional*), allocation (`str`), structured_mode (`str`), instability_weight (`float`),
            min_heads_per_layer (`int`): structured methods only (see `optimum_sinkprune.structured`).
    """

    method: str = "sink_wanda"
    sparsity: float = 0.5
    pattern: str = "unstructured"
    # calibration
    num_samples: int = 128
    seq_len: int = 128
    seed: int = 0
    batch_size: int = 1
    # diffusion calibration
    diffusion_steps: int = 50
    sample_interval: int = 5
    noise_eps: float = 1e-3
    # sink weighting
    sink_std: float = 2.0
    sink_alpha: float = 5.0
    # SparseGPT
    block_size: int = 128
    dampening: float = 0.01
    # which layers
    targets: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    memory_limit_gb: float | None = None
    # structured methods
    target_param_reduction: float | None = None
    head_ratio: float | None = None
    mlp_ratio: float | None = None
    allocation: str = "uniform"
    structured_mode: str = "remove"
    instability_weight: float = 1.0
    min_heads_per_layer: int = 1

    def __post_init__(self) -> None:
        if self.method not in KNOWN_METHODS:
            raise ValueError(f"method={self.method!r} is unknown; known methods: {', '.join(KNOWN_METHODS)}")
        _check_float("sparsity", self.sparsity, 0.0, 1.0, open_high=True)
        nm = parse_pattern(self.pattern)
        if nm is not None:
            if self.is_structured:
                raise ValueError(f"pattern={self.pattern!r} applies to weight pruning; structured method "
                                 f"{self.method!r} needs pattern='unstructured'")
            n, m = nm
            if not math.isclose(self.sparsity, 1 - n / m, abs_tol=1e-9):
                raise ValueError(
                    f"sparsity={self.sparsity} does not match pattern={self.pattern!r}: an N:M pattern keeps N of "
                    f"every M weights, so sparsity must be 1 - N/M = {1 - n / m:g}"
                )
        for name, minimum in (("num_samples", 1), ("seq_len", 1), ("seed", 0), ("batch_size", 1),
                              ("diffusion_steps", 1), ("sample_interval", 1), ("block_size", 1),
                              ("min_heads_per_layer", 0)):
            _check_int(name, getattr(self, name), minimum)
        if self.sample_interval > self.diffusion_steps:
            raise ValueError(f"sample_interval={self.sample_interval} must be <= diffusion_steps="
                             f"{self.diffusion_steps} (steps are sampled at interval, 2·interval, …, steps)")
        _check_float("noise_eps", self.noise_eps, 0.0, 1.0, open_high=True)
        _check_float("sink_std", self.sink_std)
        _check_float("sink_alpha", self.sink_alpha, 0.0, open_low=True)
        _check_float("dampening", self.dampening, 0.0, open_low=True)
        _check_float("instability_weight", self.instability_weight, 0.0)
        if self.memory_limit_gb is not None:
            _check_float("memory_limit_gb", self.memory_limit_gb, 0.0, open_low=True)
        self.targets = self._check_patterns("targets", self.targets, allow_none=True)
        self.ignore = self._check_patterns("ignore", self.ignore, allow_none=False)
        # structured fields
        if self.target_param_reduction is not None:
            _check_float("target_param_reduction", self.target_param_reduction, 0.0, 1.0, open_high=True)
        for name in ("head_ratio", "mlp_ratio"):
            if getattr(self, name) is not None:
                _check_float(name, getattr(self, name), 0.0, 1.0, open_high=True)
        if self.allocation not in ALLOCATIONS:
            raise ValueError(f"allocation={self.allocation!r} is not one of {ALLOCATIONS}")
        if self.structured_mode not in STRUCTURED_MODES:
            raise ValueError(f"structured_mode={self.structured_mode!r} is not one of {STRUCTURED_MODES}")
        if self.is_structured:
            explicit = self.head_ratio is not None or self.mlp_ratio is not None
            if self.target_param_reduction is not None and explicit:
                raise ValueError(
                    f"give either target_param_reduction (={self.target_param_reduction}) or head_ratio/mlp_ratio "
                    f"(={self.head_ratio}/{self.mlp_ratio}) for method={self.method!r}, not both"
                )
            if self.target_param_reduction is None and not explicit:
                raise ValueError(f"method={self.method!r} (structured) needs target_param_reduction or "
                                 "head_ratio/mlp_ratio")

    @staticmethod
    def _check_patterns(name: str, value: Any, *, allow_none: bool) -> list[str] | None:
        if value is None and allow_none:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"{name}={value!r} is not allowed; give a list of non-empty module-name patterns")
        return list(value)

    # ---- derived -----------------------------------------------------------------------------------
    @property
    def is_structured(self) -> bool:
        return self.method in STRUCTURED_METHODS

    @property
    def uses_diffusion(self) -> bool:
        """True when calibration noises the inputs with the forward process (a mask token is needed)."""
        return self.method in DIFFUSION_METHODS

    @property
    def nm(self) -> tuple[int, int] | None:
        return parse_pattern(self.pattern)

    @property
    def sampled_steps(self) -> list[int]:
        """Diffusion steps visited per sample: interval, 2·interval, …, <= diffusion_steps."""
        return calibration_steps(self.diffusion_steps, self.sample_interval)

    # ---- serialisation -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict, stamped with `sinkprune_version` and `config_format`."""
        from . import __version__

        out = asdict(self)
        out["sinkprune_version"] = __version__
        out["config_format"] = CONFIG_FORMAT
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SinkAwarePruningConfig:
        """Inverse of `to_dict`; rejects unknown keys and newer `config_format`s."""
        data = dict(data)
        fmt = data.pop("config_format", CONFIG_FORMAT)
        data.pop("sinkprune_version", None)
        if not isinstance(fmt, int) or fmt > CONFIG_FORMAT:
            raise ValueError(f"config_format={fmt!r} is newer than this optimum-sinkprune supports ({CONFIG_FORMAT}); "
                             "upgrade optimum-sinkprune")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown SinkAwarePruningConfig keys {unknown}; known keys: {sorted(known)}")
        return cls(**data)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json_string(cls, text: str) -> SinkAwarePruningConfig:
        return cls.from_dict(json.loads(text))

    def save_pretrained(self, save_directory: str | os.PathLike) -> str:
        """Write `sink_pruning_config.json` into `save_directory` (created if needed); returns the file path."""
        os.makedirs(save_directory, exist_ok=True)
        path = os.path.join(save_directory, CONFIG_NAME)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(self.to_json_string())
        os.replace(tmp, path)
        return path

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> SinkAwarePruningConfig:
        """Read a config from a directory holding `sink_pruning_config.json` (or from that file itself)."""
        path = os.fspath(path)
        file = os.path.join(path, CONFIG_NAME) if os.path.isdir(path) else path
        if not os.path.isfile(file):
            raise FileNotFoundError(f"no {CONFIG_NAME} at {path!r}")
        with open(file, encoding="utf-8") as fh:
            return cls.from_json_string(fh.read())


__all__ = [
    "CONFIG_NAME",
    "DIFFUSION_METHODS",
    "KNOWN_METHODS",
    "STRUCTURED_METHODS",
    "UNSTRUCTURED_METHODS",
    "SinkAwarePruningConfig",
    "parse_pattern",
]
