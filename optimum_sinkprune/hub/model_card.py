# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Model cards for pruned checkpoints, rendered with `huggingface_hub.ModelCard.from_template` from the Jinja
template shipped in `optimum_sinkprune/hub/model_cards/`."""

from __future__ import annotations

import logging
import math
import re
import shlex
from collections.abc import Mapping
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..registry import CardText, get_method, is_method

logger = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).parent / "model_cards"
TEMPLATE_NAME = "pruned_model_card.jinja"
LIBRARY_NAME = "transformers"
PIPELINE_TAG = "text-generation"
BASE_TAGS = ("sink-aware-pruning", "pruned", "diffusion-language-model", "optimum-sinkprune")
PAPER_URL = "https://arxiv.org/abs/2602.17664"
CITATION = """@article{myrzakhan2026sinkaware,
  title   = {Sink-Aware Pruning for Diffusion Language Models},
  author  = {Myrzakhan and others},
  journal = {arXiv preprint arXiv:2602.17664},
  year    = {2026}
}"""

# Measurements a card should report; the ones missing from `eval_results` are listed as "not measured". Labels carry
# no unit: the unit is added once, from the entry or from METRIC_UNITS.
STANDARD_MEASUREMENTS = {
    "perplexity": "ELBO perplexity bound (lower is better)",
    "masked_accuracy": "masked-token accuracy",
    "tokens_per_second": "generation speed",
}

# labels of further metrics the evaluation module reports
METRIC_LABELS = {
    "latency_per_step": "latency per denoising step",
    "bleu_vs_reference": "BLEU vs reference continuation",
    "rouge_l_vs_reference": "ROUGE-L vs reference continuation",
    "bleu_vs_dense": "BLEU vs the base model's output",
    "rouge_l_vs_dense": "ROUGE-L vs the base model's output",
}
METRIC_UNITS = {"tokens_per_second": "tokens/s", "latency_per_step": "ms"}
# words an entry may give as its "unit" that are no unit (shown nowhere)
_NOT_UNITS = ("ELBO bound",)
# model-index `dataset.type` of measurements on the embedded held-out split (entries may give their own dataset id)
HELDOUT_DATASET_TYPE = "optimum-sinkprune/heldout"
# hyper-parameters that belong to one family of methods (the rest apply to every method)
STRUCTURED_KEYS = ("target_param_reduction", "head_ratio", "mlp_ratio", "allocation", "structured_mode",
                   "instability_weight", "min_heads_per_layer")
UNSTRUCTURED_KEYS = ("sparsity", "pattern", "targets", "ignore")
RECONSTRUCT_KEYS = ("block_size", "dampening")
SINK_KEYS = ("sink_std", "sink_alpha")
NOISE_KEYS = ("diffusion_steps", "sample_interval", "noise_eps", "noise_schedule", "protected_positions")
DATA_KEYS = ("num_samples", "seq_len", "batch_size")

_SECRET_PATTERNS = (
    re.compile(r"hf_[A-Za-z0-9]{8,}"),
    re.compile(r"(--token[= ])\S+"),
    re.compile(r"(token\s*=\s*)['\"][^'\"]+['\"]"),
)


def method_card_text(method: str) -> CardText:
    """The card text of a registered method; for a method this installation does not know, a pointer to the
    config saved with the checkpoint."""
    if is_method(method):
        return get_method(method).card
    return CardText(name=method, summary="see `sink_pruning_config` in config.json for its definition")


def default_template_path() -> str:
    """Path of the Jinja template used for pruned-model cards."""
    return str(TEMPLATE_DIR / TEMPLATE_NAME)


def redact_secrets(text: str) -> str:
    """Remove anything that looks like a Hugging Face token (`hf_...`, `--token X`, `token="..."`)."""
    text = _SECRET_PATTERNS[0].sub("hf_***", text)
    text = _SECRET_PATTERNS[1].sub(r"\1***", text)
    return _SECRET_PATTERNS[2].sub(r"\1'***'", text)


def is_hub_repo_id(name: str | None) -> bool:
    """Whether `name` is a Hub model id (`namespace/name`) and not a local folder."""
    if not name or Path(name).exists():
        return False
    if ".." in name or "--" in name:
        return False
    return re.fullmatch(r"[A-Za-z0-9][\w.\-]{0,95}/[\w.\-]{1,96}", name) is not None


def embedded_model_name(name: str | None) -> str | None:
    """The embedded model's name ("tiny-llada", ...) when `name` is that name or its folder, else None."""
    if not name:
        return None
    from ..assets import EMBEDDED_MODELS, embedded_model_path

    if name in EMBEDDED_MODELS and not Path(name).exists():
        return name
    for embedded in EMBEDDED_MODELS:
        try:
            folder = embedded_model_path(embedded)
        except FileNotFoundError:
            continue
        if Path(name).exists() and Path(name).resolve() == Path(folder).resolve():
            return embedded
    return None


def portable_model_name(name: str | None) -> str | None:
    """How cards, histories and reproduce commands name a model: a Hub id as is, an embedded model by its name
    (which every installation resolves), any other local folder by its folder name only (no machine paths)."""
    if not name:
        return None
    name = str(name)
    if is_hub_repo_id(name):
        return name
    return embedded_model_name(name) or Path(name).name or name


_display_model = portable_model_name


def _metadata_base_model(name: str | None) -> str | None:
    """`base_model` metadata: the Hub id when the model came from the Hub, else the embedded model's name."""
    if is_hub_repo_id(name):
        return name
    return embedded_model_name(name)


def method_hyperparameters(pruning_config: Mapping) -> dict:
    """The entries of a pruning config that the config's method uses (the registry knows its family, whether it
    calibrates, noises, weights sinks or reconstructs); `versions` is left out (the card shows it separately)."""
    method = pruning_config.get("method")
    if not is_method(method):
        return {k: v for k, v in pruning_config.items() if k != "versions"}
    spec = get_method(method)
    drop = set(UNSTRUCTURED_KEYS if spec.family == "structured" else STRUCTURED_KEYS)
    if spec.family == "experts":  # whole experts go: neither the weight nor the head/channel selections apply
        drop.update(UNSTRUCTURED_KEYS)
    if not spec.reconstruct:
        drop.update(RECONSTRUCT_KEYS)
    if not spec.sink:
        drop.update(SINK_KEYS)
    if not spec.noised:
        drop.update(NOISE_KEYS)
    if not spec.needs_data:
        drop.update(DATA_KEYS + ("seed",) if method != "random_heads" else DATA_KEYS)
    return {k: v for k, v in pruning_config.items() if k != "versions" and k not in drop}


def _round(x: float) -> float:
    """4 significant digits (model-index values)."""
    return float(f"{x:.4g}")


def _hub_dataset_ids(history: list[Mapping]) -> list[str]:
    """Hub dataset ids among the calibration data of the pruning steps (names with a namespace, no spaces)."""
    ids = []
    for step in history:
        data = step.get("calibration_data")
        if isinstance(data, str) and is_hub_repo_id(data):
            ids.append(data)
    return list(dict.fromkeys(ids))


def _first(mapping: Mapping | None, *keys):
    for key in keys:
        if mapping and mapping.get(key) is not None:
            return mapping[key]
    return None


def _fmt_count(n) -> str:
    if n is None:
        return "not measured"
    n = float(n)
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit} ({int(n):,})"
    return f"{int(n):,}"


def _fmt_bytes(n) -> str:
    if n is None:
        return "not measured"
    n = float(n)
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)} B"


def _fmt_num(x) -> str:
    if x is None:
        return "not measured"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    return f"{x:,}" if isinstance(x, int) else f"{x:.4g}"


def _fmt_optional(x) -> str | None:
    return None if x is None else _fmt_num(x)


def _ratio(after, before) -> str:
    if after is None or before in (None, 0):
        return ""
    return f"{after / before:.3f}×"


def _flatten(config: Mapping, prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if value is None or value == [] or value == {}:  # unset options (e.g. structured knobs of a weight method)
            continue
        if isinstance(value, Mapping):
            rows.extend(_flatten(value, f"{name}."))
        else:
            rows.append((name, "`" + str(value).replace("|", "\\|").replace("`", "'") + "`"))
    return rows


def _normalise_eval_results(eval_results: Mapping | None) -> dict[str, dict]:
    """`{metric: number}` or `{metric: {"pruned": x, "base": y, "dataset": ..., "dataset_type": ..., "unit": ...}}`
    -> the second form. Non-finite numbers are treated as not measured."""
    out = {}
    for metric, value in (eval_results or {}).items():
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"eval_results keys must be metric names, got {metric!r}")
        entry = dict(value) if isinstance(value, Mapping) else {"pruned": value}
        for side in ("pruned", "base"):
            v = entry.get(side)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise ValueError(f"eval_results[{metric!r}][{side!r}] must be a number, got {v!r}")
            if v is not None and not math.isfinite(v):
                entry[side] = None
        out[metric] = entry
    return out


def build_model_card(
    *,
    pruning_config: dict,
    report: dict | None,
    base_model: str | None,
    eval_results: dict | None = None,
    sink_plot: str | None = None,
    reproduce_command: str | None = None,
    license: str | None = None,
    model_name: str | None = None,
    history: list[Mapping] | None = None,
) -> ModelCard:
    r"""Build the model card of a pruned checkpoint.

    Rendered with `ModelCard.from_template` from `optimum_sinkprune/hub/model_cards/pruned_model_card.jinja`.
    Metadata: `base_model` (the Hub id, or the embedded model's name; never a local path), `datasets` (Hub ids of
    the calibration data), `library_name`, `tags` (sink-aware-pruning, pruned, diffusion-language-model,
    optimum-sinkprune, the method, `sparse` and the N:M pattern for weight pruning, `structured-pruning`,
    `expert-pruning` for the expert methods;
    `quantized` and `int4`/`int8` when the config carries a `quantization`, which for a quantized-only checkpoint
    replaces `pruned` and `sparse` and names the title), `pipeline_tag`, `license` when known and `model-index` with
    the measured results (4 significant digits). No `base_model_relation`: the Hub has none for pruning. Anything
    resembling a token is redacted from the card.

    Args:
        pruning_config (`dict`): the pruning config (must name its `method`); `versions` is shown separately.
        report (`dict`, *optional*): pruning report; the card reads `params_before`/`params_after`,
            `nonzero_params_before`/`nonzero_params_after`, `checkpoint_bytes_before`/`checkpoint_bytes_after`,
            `total_sparsity` and `wall_time_s` (missing numbers are shown as "not measured").
        base_model (`str`, *optional*): Hub id or local path of the dense model.
        eval_results (`dict`, *optional*): measured numbers only, `{metric: value}` or `{metric: {"pruned": x,
            "base": y, "dataset": "held-out split", "dataset_type": "...", "unit": "..."}}`. Standard measurements
            that are absent (perplexity, masked accuracy, tokens/s) are listed as not measured.
        sink_plot (`str`, *optional*): repo-relative path of the sink-dynamics plot (e.g. `plots/sink_dynamics.png`).
        reproduce_command (`str`, *optional*): the command that produced the checkpoint.
        license (`str`, *optional*): the license (the base model's, usually).
        model_name (`str`, *optional*): the card title; defaults to a name built from the base model and method.
        history (`list[dict]`, *optional*): `config.json`'s `sink_pruning_history` (one entry per pruning step:
            method, config, base model, calibration data, package version); the card lists the steps, and names
            the calibration datasets that are Hub ids in its `datasets` metadata.

    Returns:
        `huggingface_hub.ModelCard`
    """
    if not isinstance(pruning_config, Mapping):
        raise ValueError(f"pruning_config must be a dict, got {type(pruning_config).__name__}")
    method = pruning_config.get("method")
    if not isinstance(method, str) or not method:
        raise ValueError(f"pruning_config must name its 'method' (a string), got {method!r}")
    if sink_plot is not None and (Path(sink_plot).is_absolute() or ".." in Path(sink_plot).parts):
        raise ValueError(f"sink_plot={sink_plot!r} must be a path relative to the checkpoint folder")
    results = _normalise_eval_results(eval_results)
    report = dict(report or {})

    base_display = _display_model(base_model)
    budget = []
    structured = is_method(method, "structured")
    experts = is_method(method, "experts")
    if experts:
        if pruning_config.get("expert_ratio") is not None:
            budget.append(f"{float(pruning_config['expert_ratio']):.0%} of experts removed")
    elif structured or pruning_config.get("target_param_reduction") is not None:
        reduction = pruning_config.get("target_param_reduction")
        if reduction is not None:
            budget.append(f"{float(reduction):.0%} of block parameters removed")
        for key, what in (("head_ratio", "heads"), ("mlp_ratio", "MLP channels")):
            if pruning_config.get(key) is not None:
                budget.append(f"{float(pruning_config[key]):.0%} of {what}")
    else:
        if pruning_config.get("sparsity") is not None:
            budget.append(f"{float(pruning_config['sparsity']):.0%} sparsity")
        if pruning_config.get("pattern"):
            budget.append(str(pruning_config["pattern"]))
    quantization = pruning_config.get("quantization")
    quantization = quantization if isinstance(quantization, Mapping) else None
    # a quantized-only checkpoint (no pruning step): the quantizer names its method "<method>-int<bits>"
    quantized_only = quantization is not None and not is_method(method)
    if quantized_only:
        group = quantization.get("group_size")
        title = model_name or (f"{base_display or 'Model'} quantized with {quantization.get('method')} "
                               f"(int{quantization.get('bits')}, "
                               f"{f'group size {group}' if group else 'one scale per row'})")
    else:
        title = model_name or f"{base_display or 'Model'} pruned with {method}"
        if model_name is None and budget:
            title += f" ({', '.join(budget)})"

    text = method_card_text(method)
    history = [dict(step) for step in (history or []) if isinstance(step, Mapping)]
    family_tags = ["structured-pruning"] if structured else ["expert-pruning"] if experts else ["sparse"]
    if not structured and pruning_config.get("pattern") not in (None, "unstructured"):
        family_tags.append(str(pruning_config["pattern"]))
    tags = [*BASE_TAGS, *family_tags, method.replace("_", "-")]
    if quantization is not None:
        tags += ["quantized", f"int{quantization.get('bits')}"]
    if quantized_only:  # nothing was pruned: the zeros are weights that rounded to 0
        tags = [t for t in tags if t not in ("pruned", "sparse")]
    tags = list(dict.fromkeys(tags))

    size_rows = []
    for label, before_keys, after_keys, fmt in (
        ("Parameters", ("params_before", "parameters_before"), ("params_after", "parameters_after"), _fmt_count),
        ("Non-zero parameters", ("nonzero_params_before",), ("nonzero_params_after",), _fmt_count),
        ("Checkpoint size (weights)", ("checkpoint_bytes_before", "size_bytes_before"),
         ("checkpoint_bytes_after", "size_bytes_after"), _fmt_bytes),
    ):
        before, after = _first(report, *before_keys), _first(report, *after_keys)
        size_rows.append((label, fmt(before), fmt(after), _ratio(after, before)))

    eval_rows, card_eval_results = [], []
    for metric, entry in results.items():
        label = STANDARD_MEASUREMENTS.get(metric) or METRIC_LABELS.get(metric, metric)
        unit = entry.get("unit") or METRIC_UNITS.get(metric)
        if unit in _NOT_UNITS or (unit and f"({unit})" in label):
            unit = None
        shown = f"{label} ({unit})" if unit else label
        pruned, base = entry.get("pruned"), entry.get("base")
        eval_rows.append(
            (shown, entry.get("dataset") or "", _fmt_num(base), _fmt_num(pruned), _ratio(pruned, base))
        )
        if pruned is not None:
            card_eval_results.append(
                EvalResult(
                    task_type=entry.get("task_type", PIPELINE_TAG),
                    dataset_type=entry.get("dataset_type") or HELDOUT_DATASET_TYPE,
                    dataset_name=entry.get("dataset") or entry.get("dataset_type") or HELDOUT_DATASET_TYPE,
                    metric_type=metric,
                    metric_value=_round(pruned),
                    metric_name=shown,
                )
            )
    not_measured = [f"{label} ({METRIC_UNITS[key]})" if key in METRIC_UNITS else label
                    for key, label in STANDARD_MEASUREMENTS.items() if results.get(key, {}).get("pruned") is None]

    card_data = ModelCardData(
        base_model=_metadata_base_model(base_model),
        datasets=_hub_dataset_ids(history) or None,
        library_name=LIBRARY_NAME,
        pipeline_tag=PIPELINE_TAG,
        license=license,
        tags=tags,
        model_name=title if card_eval_results else None,
        eval_results=card_eval_results or None,
    )
    used = method_hyperparameters(pruning_config)
    calibration = {
        key: used[key]
        for key in ("calibration", "calibration_dataset", "dataset", "num_samples", "seq_len", "batch_size", "seed",
                    "diffusion_steps", "sample_interval", "noise_eps", "noise_schedule", "protected_positions")
        if used.get(key) is not None
    }
    if history and history[-1].get("calibration_data"):
        calibration = {"data": history[-1]["calibration_data"], **calibration}
    # what the run actually used (e.g. fewer samples than asked, forward passes), from the pruning report
    if isinstance(report.get("calibration"), Mapping):
        calibration.update({f"used {k}": v for k, v in report["calibration"].items() if v is not None})
    if reproduce_command is None:
        last = history[-1] if history else {}
        reproduce_command = prune_command(pruning_config, base_model or "BASE_MODEL",
                                          data=last.get("calibration_data"))
    load_id = "REPO_ID"
    card = ModelCard.from_template(
        card_data,
        template_path=default_template_path(),
        title=title,
        base_display=base_display,
        method=method,
        method_name=text.name,
        method_summary=text.summary,
        equation=text.equation,
        equation_symbols=text.symbols,
        budget=", ".join(budget) if budget else None,
        structured_mode=(pruning_config.get("structured_mode") or "remove") if structured else None,
        hyperparameters=_flatten(method_hyperparameters(pruning_config)),
        history=[
            {"method": step.get("method"), "base_model": portable_model_name(step.get("base_model")) or "?",
             "calibration_data": step.get("calibration_data"), "version": step.get("optimum_sinkprune")}
            for step in history
        ],
        calibration=calibration,
        versions=dict(pruning_config.get("versions") or {}),
        total_sparsity=_fmt_optional(_first(report, "total_sparsity", "sparsity")),
        wall_time=_fmt_optional(_first(report, "wall_time_s", "wall_time")),
        size_rows=size_rows,
        eval_rows=eval_rows,
        not_measured=not_measured,
        sink_plot=sink_plot,
        reproduce_command=reproduce_command,
        load_id=load_id,
        storage=dict(report.get("storage") or {"format": "dense"}),
        paper_url=PAPER_URL,
        citation=CITATION,
    )
    return ModelCard(redact_secrets(str(card)))


def default_reproduce_command(pruning_config: Mapping, base_model: str | None, data: str | None = None) -> str:
    """The `sinkprune prune` command rebuilt from a pruning config (what cards saved without one show)."""
    return prune_command(pruning_config, base_model or "BASE_MODEL", data=data)


def _data_argument(data: str | None) -> tuple[str | None, str | None]:
    """(`--data` value, note) for the calibration data of a run: the CLI's default (the shipped split) needs no
    `--data`; a Hub dataset or a file is named; anything else (texts or token ids given in Python) gets a note."""
    from ..calibration.data import SHIPPED_CALIBRATION
    from ..calibration.datasets import DATASET_ALIASES

    if data is None or data == SHIPPED_CALIBRATION:
        return None, None
    for alias, source in DATASET_ALIASES.items():
        if data == source.path:
            return alias, None
    if data.startswith(("data-free", "token ids")) or data.endswith(" texts") or data.startswith(SHIPPED_CALIBRATION):
        return "CALIBRATION.jsonl", f"calibration data: {data} (save them as .jsonl, one {{\"text\": ...}} per line)"
    return data, None


def prune_command(pruning_config: Mapping, model: str, *, data: str | None = None,
                  output: str | None = None, preset: str | None = None) -> str:
    """The one builder of the `sinkprune prune` command that reproduces a run: the CLI, the Python API and the demo
    all stamp it into their cards. It is portable: the model is named as `portable_model_name` does (a Hub id, an
    embedded model's name, a folder name), data by a dataset alias or a file name, never a path of this machine.

    Args:
        pruning_config: the run's config (`SinkAwarePruningConfig.to_dict()`).
        model: the model the run started from (Hub id, embedded name or a local folder).
        data: the calibration data as `describe_calibration_data` names it, or the `--data` file the run read
            (None: the CLI's default, the shipped calibration split).
        output: the `--output` folder (default: `<model>-<method>`); only its name is kept.
        preset: the `--preset` the run used.

    Returns:
        `str`: the command, each argument shell-quoted (preceded by a `#` note line when the data was given in
        Python and has to be written to a file first).
    """
    model = portable_model_name(model) or "BASE_MODEL"
    method = str(pruning_config["method"])
    parts = ["sinkprune", "prune", model, "--method", method]
    if preset is not None:
        parts += ["--preset", preset]
    used = method_hyperparameters(pruning_config)
    keys = ("sparsity", "pattern", "target_param_reduction", "expert_ratio", "num_samples", "seq_len", "seed",
            "batch_size", "diffusion_steps", "sample_interval", "noise_schedule", "protected_positions")
    for key in keys:
        if used.get(key) is not None:
            parts += [f"--{key.replace('_', '-')}", str(used[key])]
    value, note = _data_argument(None if data is None else str(data))
    if value is not None:
        parts += ["--data", Path(value).name if Path(value).exists() else value]
    name = Path(output).name if output else f"{Path(model).name}-{method.replace('_', '-')}"
    command = " ".join(shlex.quote(p) for p in parts + ["--output", name])
    return f"# {note}\n{command}" if note else command
