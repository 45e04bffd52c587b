# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`SinkAwarePruningConfig`: every knob of a pruning run, validated up front, JSON round-trippable and version-stamped.

Saved beside the weights as `sink_pruning_config.json` (PEFT-style) and inside `config.json` as
`sink_pruning_config`, so a pruned checkpoint says how it was made.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .registry import MethodSpec, get_method
from .validation import check_choice, check_float, check_int_fields, int_field

CONFIG_NAME = "sink_pruning_config.json"
CONFIG_FORMAT = 1

# The allowed values of the structured fields (the planner and the removal code check against these too).
ALLOCATIONS = ("uniform", "global")
STRUCTURED_MODES = ("remove", "mask")

# The model families the paper's calibration preset covers (`SinkAwarePruningConfig.paper_preset`): the paper prunes
# LLaDA (lib/prune_llada.py, also MMaDA's LLaDA backbone) and Dream (lib/prune_dream.py).
PAPER_PRESET_FAMILIES = ("llada", "mmada", "dream")
# The paper's calibration (VILA-Lab/Sink-Aware-Pruning, main_llada.py / main_dream.py defaults and lib/prune_*.py):
# 128 windows of the model's length (4096 for LLaDA-8B and Dream-7B) from the wikitext-2 train split, batch 1,
# diffusion steps 50 visited every 5, sink weight sigmoid(5 · (m − (mean + 2·std))), SparseGPT percdamp 0.01 and
# blocksize 128, seed 0.
PAPER_PRESET = {
    "num_samples": 128,
    "seq_len": 4096,
    "seed": 0,
    "batch_size": 1,
    "diffusion_steps": 50,
    "sample_interval": 5,
    "noise_eps": 1e-3,
    "sink_alpha": 5.0,
    "sink_std": 2.0,
    "dampening": 0.01,
    "block_size": 128,
}


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


def check_budget_removes_something(target_param_reduction, head_ratio, mlp_ratio) -> None:
    """Refuse a structured budget of zero (`target_param_reduction=0`, or `head_ratio` and `mlp_ratio` both 0 or
    unset): it would run the whole calibration and remove nothing. The values are already known to be fractions in
    [0, 1) (or None); the structured planner applies the same rule to configs of other types."""
    if target_param_reduction is not None and target_param_reduction == 0:
        raise ValueError(
            f"target_param_reduction={target_param_reduction!r} is not allowed: it must be a number in (0, 1), the "
            "fraction of block parameters to remove; 0 removes nothing, so the run is refused rather than "
            "calibrated for no change"
        )
    if target_param_reduction is None and not (head_ratio or mlp_ratio):
        raise ValueError(
            f"head_ratio={head_ratio!r} with mlp_ratio={mlp_ratio!r} removes nothing: at least one of them must be a "
            "number in (0, 1); the run is refused rather than calibrated for no change"
        )


def calibration_steps(diffusion_steps: int, sample_interval: int) -> list[int]:
    """Diffusion steps visited per calibration sample: interval, 2·interval, …, <= diffusion_steps (the paper's)."""
    return list(range(sample_interval, diffusion_steps + 1, sample_interval))


@dataclass
class SinkAwarePruningConfig:
    r"""Configuration of a pruning run (shaped like optimum's quantization configs).

    Args:
        method (`str`): a registered method (`optimum_sinkprune.registry.method_names()`): unstructured / N:M
            weight pruning (the default is the paper's method), a structured method that removes attention heads
            and MLP channels, or an expert method (`reap_experts`, `sink_experts`) that removes whole experts of a
            mixture-of-experts model. See `docs/methods.md`, `docs/structured.md` and `docs/diffusion_gemma.md`.
        sparsity (`float`): fraction of weights to zero per pruned layer, in [0, 1).
        pattern (`str`): `"unstructured"` or `"N:M"` (keep N of every M consecutive inputs of a row); with N:M the
            sparsity must equal 1 - N/M.
        num_samples (`int`), seq_len (`int`), seed (`int`), batch_size (`int`): calibration.
        diffusion_steps (`int`), sample_interval (`int`), noise_eps (`float`): the noised calibration of the
            diffusion methods, at steps s = interval, 2·interval, …, steps (t = s / steps).
        noise_schedule (`str`, *optional*): "ladder" (t = s / steps) or "uniform" (t ~ U(0, 1] per sample and
            sampled step, stratified across a batch); None: the model family's default (`adapter.noise_defaults()`:
            ladder for LLaDA / MMaDA, uniform for Dream, as the paper's code does). A saved config records the
            value the run used.
        protected_positions (`str`, *optional*): window positions never masked: "none", "first" or "first_last";
            None: the family's default (nothing for LLaDA / MMaDA, first and last for Dream).
        sink_std (`float`), sink_alpha (`float`): sink weight σ = sigmoid(alpha · (m − (mean(m) + sink_std·std(m)))).
        block_size (`int`), dampening (`float`): SparseGPT's column block and relative Hessian dampening.
        targets (`list[str]`, *optional*): module-name patterns (fnmatch, or a role among q,k,v,o,gate,up,down) of
            the linear layers to prune; default every linear layer inside the transformer blocks.
        ignore (`list[str]`): patterns excluded from `targets`. Embeddings and the LM head are never pruned.
        memory_limit_gb (`float`, *optional*): device memory the run may use; default: what the device reports.
        target_param_reduction (`float`, *optional*), head_ratio (`float`, *optional*), mlp_ratio (`float`,
            *optional*), allocation (`str`), structured_mode (`str`), instability_weight (`float`),
            min_heads_per_layer (`int`): structured methods only (see `optimum_sinkprune.structured`).
        expert_ratio (`float`, *optional*): expert methods only, and required by them: the share of experts removed
            from every mixture-of-experts layer, in (0, 1) (`round(expert_ratio · num_experts)` experts go; at least
            `top_k_experts` must remain, which `SinkAwarePruner.prune` checks on the model before calibration).

    Raises:
        `ValueError`: any field outside its allowed values, naming the field, the value and what is allowed. A run
            that would remove nothing is refused here rather than calibrated for no change: `sparsity=0` for a
            weight-pruning method, `target_param_reduction=0`, or `head_ratio` and `mlp_ratio` both 0 / unset.
            (A budget that is positive but rounds to no weight, head or channel on the model at hand is refused by
            `SinkAwarePruner.prune`, also before calibration.)
    """

    method: str = "sink_wanda"
    sparsity: float = 0.5
    pattern: str = "unstructured"
    # calibration
    num_samples: int = int_field(128)
    seq_len: int = int_field(128)
    seed: int = int_field(0, minimum=0)
    batch_size: int = int_field(1)
    # diffusion calibration
    diffusion_steps: int = int_field(50)
    sample_interval: int = int_field(5)
    noise_eps: float = 1e-3
    noise_schedule: str | None = None
    protected_positions: str | None = None
    # sink weighting
    sink_std: float = 2.0
    sink_alpha: float = 5.0
    # SparseGPT
    block_size: int = int_field(128)
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
    min_heads_per_layer: int = int_field(1, minimum=0)
    # expert methods
    expert_ratio: float | None = None

    def __post_init__(self) -> None:
        get_method(self.method)  # raises naming the known methods
        check_float("sparsity", self.sparsity, 0.0, 1.0, open_high=True)
        nm = parse_pattern(self.pattern)
        if nm is not None:
            if self.method_spec.family != "unstructured":
                kind = "structured" if self.is_structured else "expert"
                raise ValueError(f"pattern={self.pattern!r} applies to weight pruning; {kind} method "
                                 f"{self.method!r} needs pattern='unstructured'")
            n, m = nm
            if not math.isclose(self.sparsity, 1 - n / m, abs_tol=1e-9):
                raise ValueError(
                    f"sparsity={self.sparsity} does not match pattern={self.pattern!r}: an N:M pattern keeps N of "
                    f"every M weights, so sparsity must be 1 - N/M = {1 - n / m:g}"
                )
        check_int_fields(self)  # num_samples, seq_len, seed, batch_size, diffusion_steps, ... (`int_field`)
        if self.sample_interval > self.diffusion_steps:
            raise ValueError(f"sample_interval={self.sample_interval} must be <= diffusion_steps="
                             f"{self.diffusion_steps} (steps are sampled at interval, 2·interval, …, steps)")
        check_float("noise_eps", self.noise_eps, 0.0, 1.0, open_high=True)
        from .calibration.noise import PROTECTED_POSITIONS, SCHEDULES  # the noise module owns the allowed values

        if self.noise_schedule is not None:
            check_choice("noise_schedule", self.noise_schedule, SCHEDULES)
        if self.protected_positions is not None:
            check_choice("protected_positions", self.protected_positions, PROTECTED_POSITIONS)
        check_float("sink_std", self.sink_std)
        check_float("sink_alpha", self.sink_alpha, 0.0, open_low=True)
        check_float("dampening", self.dampening, 0.0, open_low=True)
        check_float("instability_weight", self.instability_weight, 0.0)
        if self.memory_limit_gb is not None:
            check_float("memory_limit_gb", self.memory_limit_gb, 0.0, open_low=True)
        self.targets = self._check_patterns("targets", self.targets, allow_none=True)
        self.ignore = self._check_patterns("ignore", self.ignore, allow_none=False)
        # structured fields
        if self.target_param_reduction is not None:
            check_float("target_param_reduction", self.target_param_reduction, 0.0, 1.0, open_high=True)
        for name in ("head_ratio", "mlp_ratio"):
            if getattr(self, name) is not None:
                check_float(name, getattr(self, name), 0.0, 1.0, open_high=True)
        if self.method_spec.family == "unstructured" and self.sparsity == 0:
            raise ValueError(
                f"sparsity={self.sparsity!r} is not allowed for method={self.method!r}: it must be a number in (0, 1); "
                "0 removes no weight, so the run is refused rather than calibrated for no change"
            )
        check_choice("allocation", self.allocation, ALLOCATIONS)
        check_choice("structured_mode", self.structured_mode, STRUCTURED_MODES)
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
            check_budget_removes_something(self.target_param_reduction, self.head_ratio, self.mlp_ratio)
        self._check_expert_fields()

    def _check_expert_fields(self) -> None:
        """`expert_ratio` is required by the expert methods and refused elsewhere; the expert methods take none of
        the weight-pruning or structured selections (they remove whole experts of every layer)."""
        from .registry import method_names

        experts = method_names("experts")
        if not self.is_expert_pruning:
            if self.expert_ratio is not None:
                raise ValueError(f"expert_ratio={self.expert_ratio!r} applies to the expert methods {experts}; "
                                 f"method={self.method!r} does not use it (leave it None)")
            return
        if self.expert_ratio is None:
            raise ValueError(f"method={self.method!r} (expert pruning) needs expert_ratio, the share of experts to "
                             "remove from every layer, a number in (0, 1)")
        check_float("expert_ratio", self.expert_ratio, 0.0, 1.0, open_low=True, open_high=True)
        for name in ("target_param_reduction", "head_ratio", "mlp_ratio"):
            if getattr(self, name) is not None:
                raise ValueError(f"{name}={getattr(self, name)!r} applies to the structured head/channel methods; "
                                 f"method={self.method!r} removes whole experts: give expert_ratio only")
        if self.targets is not None or self.ignore:
            raise ValueError(f"targets={self.targets!r} / ignore={self.ignore!r} select linear layers for weight "
                             f"pruning; method={self.method!r} removes whole experts of every layer: leave them unset")

    @staticmethod
    def _check_patterns(name: str, value: Any, *, allow_none: bool) -> list[str] | None:
        if value is None and allow_none:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"{name}={value!r} is not allowed; give a list of non-empty module-name patterns")
        return list(value)

    # ---- presets -----------------------------------------------------------------------------------
    @classmethod
    def paper_preset(cls, family: str, method: str = "sink_wanda", sparsity: float = 0.5,
                     **overrides: Any) -> SinkAwarePruningConfig:
        """The paper's calibration settings for a model family (`PAPER_PRESET`): 128 windows of 4096 tokens (cut
        from the wikitext-2 train split by `calibration.datasets.paper_calibration_windows`), batch 1, 50 diffusion
        steps visited every 5, sink α 5 and k 2 (`sink_alpha`, `sink_std`), SparseGPT damping 0.01 and block 128,
        seed 0; the family's noise (`adapter.noise_defaults()`: LLaDA / MMaDA ladder with nothing protected, Dream
        uniform with the first and last positions protected) is written into the config.

        Args:
            family (`str`): "llada", "mmada" or "dream" (a model's `config.model_type`; case does not matter).
            method (`str`): a registered weight-pruning (unstructured) method, e.g. "sink_wanda".
            sparsity (`float`): fraction of weights to zero per layer.
            overrides: any other config field, e.g. `seq_len=512` for a smaller run (applied last).

        Returns:
            `SinkAwarePruningConfig`.

        Raises:
            ValueError: an unknown family (the message lists the known ones), a structured method (the preset is
                the paper's weight pruning; the message lists the methods it covers), or an invalid override.
        """
        key = family.lower() if isinstance(family, str) else family
        if key not in PAPER_PRESET_FAMILIES:
            raise ValueError(f"family={family!r} has no paper preset; known families: "
                             f"{', '.join(PAPER_PRESET_FAMILIES)}")
        from .registry import method_names

        allowed = method_names(family="unstructured")
        get_method(method)  # an unknown name raises naming the known methods
        if method not in allowed:
            raise ValueError(f"method={method!r} is not covered by the paper preset (it prunes weights); choose one "
                             f"of {allowed}")
        from .adapters.registry import adapter_for_model_type

        noise = adapter_for_model_type(key).noise_defaults()
        values: dict[str, Any] = dict(PAPER_PRESET, method=method, sparsity=sparsity, noise_schedule=noise.schedule,
                                      protected_positions=noise.protected)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown SinkAwarePruningConfig keys {unknown}; known keys: {sorted(known)}")
        values.update(overrides)
        return cls(**values)

    # ---- derived -----------------------------------------------------------------------------------
    @property
    def method_spec(self) -> MethodSpec:
        """The registered `MethodSpec` of `method`."""
        return get_method(self.method)

    @property
    def is_structured(self) -> bool:
        """True for methods that remove attention heads and MLP channels (family "structured")."""
        return self.method_spec.family == "structured"

    @property
    def is_expert_pruning(self) -> bool:
        """True for methods that remove whole experts of a mixture-of-experts model (family "experts")."""
        return self.method_spec.family == "experts"

    @property
    def uses_diffusion(self) -> bool:
        """True when calibration noises the inputs of a diffusion model with the forward process, so the model (or
        its tokenizer) must define a mask token."""
        return self.method_spec.needs_mask_token

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
        from .version import __version__

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
        return pruning_config_json(self.to_dict())

    @classmethod
    def from_json_string(cls, text: str) -> SinkAwarePruningConfig:
        return cls.from_dict(json.loads(text))

    def save_pretrained(self, save_directory: str | os.PathLike) -> str:
        """Write `sink_pruning_config.json` into `save_directory` (created if needed); returns the file path."""
        return write_pruning_config(save_directory, self.to_dict())

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> SinkAwarePruningConfig:
        """Read a config from a directory holding `sink_pruning_config.json` (or from that file itself)."""
        path = os.fspath(path)
        file = os.path.join(path, CONFIG_NAME) if os.path.isdir(path) else path
        if not os.path.isfile(file):
            raise FileNotFoundError(f"no {CONFIG_NAME} at {path!r}")
        from .validation import read_text_file  # a file that is not UTF-8 is named with its line

        return cls.from_json_string(read_text_file(file, what="pruning config"))


def pruning_config_json(data: Mapping[str, Any]) -> str:
    """The text of `sink_pruning_config.json` for a pruning config dict (sorted keys, two-space indent)."""
    return json.dumps(dict(data), indent=2, sort_keys=True) + "\n"


def write_pruning_config(save_directory: str | os.PathLike, data: Mapping[str, Any]) -> str:
    """The one writer of `sink_pruning_config.json` (`SinkAwarePruningConfig.save_pretrained` and the checkpoint
    saver both call it): `data` as `pruning_config_json` text, written to a temporary name and renamed into place.

    Args:
        save_directory: the folder (created if needed).
        data: the pruning config dict (`SinkAwarePruningConfig.to_dict()`).

    Returns:
        `str`: the path of the written file.

    Raises:
        `ValueError`: `data` is not JSON-serialisable (nothing is written).
    """
    try:
        text = pruning_config_json(data)
    except (TypeError, ValueError) as err:
        raise ValueError(f"the pruning config must be JSON-serialisable: {err}") from err
    os.makedirs(save_directory, exist_ok=True)
    from .files import write_text_atomic

    return write_text_atomic(os.path.join(os.fspath(save_directory), CONFIG_NAME), text)


__all__ = [
    "ALLOCATIONS",
    "CONFIG_NAME",
    "PAPER_PRESET",
    "PAPER_PRESET_FAMILIES",
    "STRUCTURED_MODES",
    "SinkAwarePruningConfig",
    "pruning_config_json",
    "write_pruning_config",
    "calibration_steps",
    "check_budget_removes_something",
    "check_choice",
    "parse_pattern",
]
