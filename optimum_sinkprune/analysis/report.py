# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`SinkReport`: the sink analysis of one model (and optionally an AR baseline) on one batch of text."""

from __future__ import annotations

import inspect
import json
import logging
import os
from dataclasses import dataclass, field

import torch
from torch import nn

from ..adapters import get_adapter
from .trajectory import DEFAULT_MOVE_THRESHOLD, SinkTrajectory, forward_process_trajectory, generation_trajectory

logger = logging.getLogger(__name__)

REPORT_FORMAT_VERSION = 1

# The forward-process and capture settings that `build_sink_report` passes on to `forward_process_trajectory` (for the
# model and the AR baseline alike); their defaults are that function's, so they are written once.
TRAJECTORY_SETTINGS = ("steps", "sample_interval", "eps", "seed", "schedule", "protected", "top_k", "k_std",
                       "chunk_size")


def _trajectory_settings(**overrides) -> dict:
    """`TRAJECTORY_SETTINGS` with the defaults of `forward_process_trajectory`, updated by `overrides`.

    Raises:
        TypeError: a keyword that is not one of `TRAJECTORY_SETTINGS`, naming it and the allowed ones.
    """
    unknown = sorted(set(overrides) - set(TRAJECTORY_SETTINGS))
    if unknown:
        raise TypeError(f"build_sink_report() got unexpected keyword argument(s) {unknown}; besides its own parameters "
                        f"it takes the trajectory settings {TRAJECTORY_SETTINGS}")
    parameters = inspect.signature(forward_process_trajectory).parameters
    return {name: overrides.get(name, parameters[name].default) for name in TRAJECTORY_SETTINGS}


@dataclass
class SinkReport:
    """Sink dynamics of a model over the forward process, optionally with an AR baseline and a generation run.

    Attributes:
        model_name (`str`): name or path of the analysed model.
        trajectory (`SinkTrajectory`): the model's forward-process trajectory.
        ar_model_name (`str`, *optional*), ar_trajectory (`SinkTrajectory`, *optional*): the AR baseline on the
            same text (its input repeats over steps).
        generation (`SinkTrajectory`, *optional*): the model's sink statistics along a sampler run.
        settings (`dict`): the arguments the report was built with.
        move_threshold (`float`): a head "moves" when its dominant sink spans more than this many positions.
    """

    model_name: str
    trajectory: SinkTrajectory
    ar_model_name: str | None = None
    ar_trajectory: SinkTrajectory | None = None
    generation: SinkTrajectory | None = None
    settings: dict = field(default_factory=dict)
    move_threshold: float = DEFAULT_MOVE_THRESHOLD

    def summary(self) -> str:
        """The headline numbers as a small Markdown table (a string, like `PruningReport.summary()`); the numbers
        themselves are in `statistics()` and in `to_dict()["summary"]`."""
        return summary_markdown(self)

    def statistics(self) -> dict:
        """Headline numbers per trajectory: moving-head fraction (range > `move_threshold`), mean / median per-head
        variance of the dominant sink position, token-kind frequencies, top-k share."""
        return {
            "model_name": self.model_name,
            "model": self.trajectory.summary(self.move_threshold),
            "ar_model_name": self.ar_model_name,
            "ar_baseline": None if self.ar_trajectory is None else self.ar_trajectory.summary(self.move_threshold),
            "generation": None if self.generation is None else self.generation.summary(self.move_threshold),
        }

    def to_dict(self) -> dict:
        return {
            "format_version": REPORT_FORMAT_VERSION,
            "model_name": self.model_name,
            "ar_model_name": self.ar_model_name,
            "move_threshold": self.move_threshold,
            "settings": self.settings,
            "summary": self.statistics(),
            "trajectory": self.trajectory.to_dict(),
            "ar_trajectory": None if self.ar_trajectory is None else self.ar_trajectory.to_dict(),
            "generation": None if self.generation is None else self.generation.to_dict(),
        }

    def to_json(self, path: str | os.PathLike | None = None, indent: int | None = None) -> str:
        """The report as JSON text; also written to `path` when given."""
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> SinkReport:
        """Load a report from JSON text or from a file path."""
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            if not os.path.isfile(text) and not os.path.isdir(text):
                raise FileNotFoundError(f"{text!r} is neither JSON text nor an existing report file")
            from ..validation import read_text_file  # a folder or a file that is not UTF-8 is named as such

            text = read_text_file(text, what="sink report")
        data = json.loads(text)
        version = data.get("format_version")
        if version != REPORT_FORMAT_VERSION:
            raise ValueError(f"report format_version={version!r} is not supported (expected {REPORT_FORMAT_VERSION})")
        return cls(
            model_name=data["model_name"],
            trajectory=SinkTrajectory.from_dict(data["trajectory"]),
            ar_model_name=data.get("ar_model_name"),
            ar_trajectory=None if data.get("ar_trajectory") is None else SinkTrajectory.from_dict(data["ar_trajectory"]),
            generation=None if data.get("generation") is None else SinkTrajectory.from_dict(data["generation"]),
            settings=dict(data.get("settings", {})),
            move_threshold=float(data.get("move_threshold", DEFAULT_MOVE_THRESHOLD)),
        )


def _name(model: nn.Module, given: str | None) -> str:
    if given:
        return given
    return str(getattr(model.config, "_name_or_path", "") or type(model).__name__)


def build_sink_report(
    model: nn.Module,
    input_ids: torch.LongTensor,
    *,
    attention_mask: torch.Tensor | None = None,
    ar_model: nn.Module | None = None,
    ar_input_ids: torch.LongTensor | None = None,
    ar_attention_mask: torch.Tensor | None = None,
    move_threshold: float = DEFAULT_MOVE_THRESHOLD,
    generation_prompt: torch.LongTensor | None = None,
    generation_kwargs: dict | None = None,
    generation_sample_interval: int = 1,
    model_name: str | None = None,
    ar_model_name: str | None = None,
    progress: bool = True,
    **trajectory_kwargs,
) -> SinkReport:
    """Analyse the sink dynamics of `model` (and optionally an AR baseline on the same text).

    Args:
        model (`nn.Module`): a supported DLM (an AR model works too: its input repeats over steps).
        input_ids (`torch.LongTensor`): [batch, seq] clean calibration text.
        attention_mask (`torch.Tensor`, *optional*): its padding mask.
        ar_model (`nn.Module`, *optional*): an autoregressive baseline.
        ar_input_ids (`torch.LongTensor`, *optional*), ar_attention_mask: the same text tokenized for the AR model
            (default: `input_ids` / `attention_mask`, right when both models share a tokenizer).
        move_threshold (`float`): positions a dominant sink must span to count as moving.
        generation_prompt (`torch.LongTensor`, *optional*): also analyse a sampler run from this prompt.
        generation_kwargs (`dict`, *optional*): keyword arguments of `diffusion.generate`.
        generation_sample_interval (`int`): analyse every n-th canvas of the sampler run.
        model_name (`str`, *optional*), ar_model_name (`str`, *optional*): names stored in the report.
        progress (`bool`): tqdm bars.
        trajectory_kwargs: the settings of `forward_process_trajectory` (`TRAJECTORY_SETTINGS`, with that function's
            defaults), used for the model and the AR baseline alike: `steps`, `sample_interval`, `eps`, `seed` (the
            forward process, t = s/steps), `schedule`, `protected` (its schedule and never-masked positions; default:
            the model family's, as in calibration), `top_k`, `k_std`, `chunk_size` (sink statistics and capture
            settings, also used for the generation run).

    Returns:
        `SinkReport`.

    Raises:
        `TypeError`: a keyword argument that is neither a parameter above nor one of `TRAJECTORY_SETTINGS`.
    """
    if ar_model is not None:
        ar_adapter = get_adapter(ar_model)
        if ar_adapter.is_diffusion:
            logger.warning("the AR baseline %s is a diffusion model; its input will be noised too", _name(ar_model, ar_model_name))
    options = _trajectory_settings(**trajectory_kwargs)
    common = dict(options, progress=progress)
    trajectory = forward_process_trajectory(model, input_ids, attention_mask=attention_mask, **common)
    ar_trajectory = None
    if ar_model is not None:
        ar_ids = input_ids if ar_input_ids is None else ar_input_ids
        ar_mask = attention_mask if ar_input_ids is None else ar_attention_mask
        ar_trajectory = forward_process_trajectory(ar_model, ar_ids, attention_mask=ar_mask, **common)
    generation = None
    if generation_prompt is not None:
        generation = generation_trajectory(
            model, generation_prompt, sample_interval=generation_sample_interval, top_k=options["top_k"],
            k_std=options["k_std"], chunk_size=options["chunk_size"], progress=progress, **(generation_kwargs or {}),
        )
    settings = {
        **{name: options[name] for name in ("steps", "sample_interval", "eps", "seed", "top_k", "k_std")},
        "num_samples": int(input_ids.shape[0]),
        "seq_len": int(input_ids.shape[1]),
        "generation_kwargs": {k: v for k, v in (generation_kwargs or {}).items() if isinstance(v, (int, float, str))},
    }
    return SinkReport(
        model_name=_name(model, model_name),
        trajectory=trajectory,
        ar_model_name=None if ar_model is None else _name(ar_model, ar_model_name),
        ar_trajectory=ar_trajectory,
        generation=generation,
        settings=settings,
        move_threshold=move_threshold,
    )


def summary_markdown(report: SinkReport) -> str:
    """A small Markdown table of `report.statistics()` (DLM vs AR, and the generation run when present)."""
    s = report.statistics()
    cols = [("forward process: " + report.model_name, s["model"])]
    if s["ar_baseline"] is not None:
        cols.append(("AR baseline: " + str(report.ar_model_name), s["ar_baseline"]))
    if s["generation"] is not None:
        cols.append(("generation: " + report.model_name, s["generation"]))
    rows = [
        ("heads whose sink moves > %g positions" % report.move_threshold, lambda d: f"{100 * d['moving_head_fraction']:.1f}%"),
        ("mean per-head variance of sink position", lambda d: f"{d['mean_position_variance']:.2f}"),
        ("median per-head variance", lambda d: f"{d['median_position_variance']:.2f}"),
        ("mean per-head range (positions)", lambda d: f"{d['mean_position_range']:.2f}"),
        ("sink on first token", lambda d: f"{100 * d['token_kind_frequencies']['first']:.1f}%"),
        ("sink on [MASK] token", lambda d: f"{100 * d['token_kind_frequencies']['mask']:.1f}%"),
        ("sink on other real token", lambda d: f"{100 * d['token_kind_frequencies']['real']:.1f}%"),
        ("mean top-k share", lambda d: f"{d['mean_topk_share']:.3f}"),
        ("steps × samples × heads", lambda d: f"{d['num_steps']} × {d['num_samples']} × {d['num_heads']}"),
    ]
    lines = ["| statistic | " + " | ".join(c[0] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for label, fmt in rows:
        lines.append(f"| {label} | " + " | ".join(fmt(c[1]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


__all__ = ["REPORT_FORMAT_VERSION", "TRAJECTORY_SETTINGS", "SinkReport", "build_sink_report", "summary_markdown"]
