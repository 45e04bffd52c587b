# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Model cards for pruned checkpoints, rendered with `huggingface_hub.ModelCard.from_template` from the Jinja
template shipped in `optimum_sinkprune/hub/model_cards/`."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

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

# Measurements a card should report; the ones missing from `eval_results` are listed as "not measured".
STANDARD_MEASUREMENTS = {
    "perplexity": "ELBO perplexity (lower is better)",
    "masked_accuracy": "masked-token accuracy",
    "tokens_per_second": "generation speed (tokens/s)",
}

SINK_SYMBOLS = (
    r"$m$ is the attention mass a token receives (summed over heads and layers) at a sampled denoising step, "
    r"$\bar m$ and $s_m$ its mean and standard deviation over positions, $\alpha$ = `sink_alpha`, $k$ = `sink_std`, "
    r"and the sum runs over calibration samples $x$ and sampled steps $t$"
)
STRUCTURED_SYMBOLS = (
    r"$z$ standardises over the heads still present, $X_h$ is head $h$'s output, $p_h(t)$ its dominant sink "
    r"position at denoising step $t$, $\lambda$ = `instability_weight`, $a_c$ the activation of MLP channel $c$ and "
    r"$\sigma$ the sink weight of each token"
)
# method -> (display name, what it scores, the equation)
METHODS = {
    "magnitude": (
        "Magnitude pruning",
        "weights are ranked by their absolute value",
        r"S_{ij} = |W_{ij}|",
    ),
    "wanda": (
        "Wanda (Sun et al., 2023)",
        "weight magnitude times the L2 norm of the layer's input feature over clean calibration tokens",
        r"S_{ij} = |W_{ij}| \cdot \lVert X_j \rVert_2",
    ),
    "sparsegpt": (
        "SparseGPT (Frantar & Alistarh, 2023)",
        "optimal-brain-surgeon saliency with the inverse Hessian of the layer inputs, and error compensation",
        r"S_{ij} = \frac{W_{ij}^2}{[H^{-1}]_{jj}^2}, \quad H = \tfrac{2}{n} X^\top X + \lambda I",
    ),
    "sink_wanda": (
        "Sink-Aware Wanda (Myrzakhan et al., 2026)",
        "Wanda statistics on noised inputs along the denoising trajectory, with attention-sink tokens down-weighted",
        r"\sigma = \operatorname{sigmoid}\big(\alpha\,(m - (\bar m + k\,s_m))\big), \quad "
        r"S_{ij} = |W_{ij}| \cdot \sum_{(x, t)} \lVert (1 - \sigma) \odot X_j \rVert_2",
    ),
    "sink_sparsegpt": (
        "Sink-Aware SparseGPT (Myrzakhan et al., 2026)",
        "SparseGPT with the Hessian built from sink-down-weighted inputs",
        r"H = \tfrac{2}{n} \tilde X^\top \tilde X + \lambda I, \quad \tilde X = (1 - \bar\sigma) \odot X",
    ),
    "wanda_diffusion": (
        "Wanda on diffusion-noised inputs (ablation)",
        "Wanda statistics on the same noised inputs as Sink-Aware Wanda, without sink weighting",
        r"S_{ij} = |W_{ij}| \cdot \sum_{(x, t)} \lVert X_j \rVert_2",
    ),
    "sink_heads": (
        "Sink-aware head and channel pruning (structured)",
        "attention heads ranked by their output contribution and by how much their dominant sink position moves "
        "across the denoising trajectory (variance over steps); MLP channels by a structured Wanda score with "
        "sink-down-weighted activations; the lowest-scored heads and channels are removed",
        r"\text{score}_h = z(\lVert X_h \rVert_2 \, \lVert W_o[:, h] \rVert_F) "
        r"- \lambda\, z(\operatorname{Var}_t[p_h(t)]), "
        r"\quad \text{score}_c = \lVert W_{down}[:, c] \rVert_2 \, \lVert (1 - \sigma) \odot a_c \rVert_2",
    ),
    "magnitude_heads": (
        "Magnitude head and channel pruning (structured baseline)",
        "heads and MLP channels ranked by the norm of their weights",
        r"\text{score}_h = \lVert W_{q,k,v,o}[h] \rVert_F, \quad \text{score}_c = \lVert W_{down}[:, c] \rVert_2",
    ),
    "random_heads": (
        "Random head and channel pruning (structured baseline)",
        "heads and MLP channels removed at random (seeded)",
        None,
    ),
    "activation_heads": (
        "Activation-importance head and channel pruning (structured baseline)",
        "heads ranked by output contribution, channels by structured Wanda, without sink weighting",
        r"\text{score}_h = \lVert X_h \rVert_2 \, \lVert W_o[:, h] \rVert_F, \quad "
        r"\text{score}_c = \lVert W_{down}[:, c] \rVert_2 \, \lVert a_c \rVert_2",
    ),
}
STRUCTURED_METHODS = ("sink_heads", "magnitude_heads", "random_heads", "activation_heads")
# labels of further metrics the evaluation module reports
METRIC_LABELS = {
    "latency_per_step": "latency per denoising step",
    "bleu_vs_reference": "BLEU vs reference continuation",
    "rouge_l_vs_reference": "ROUGE-L vs reference continuation",
    "bleu_vs_dense": "BLEU vs the base model's output",
    "rouge_l_vs_dense": "ROUGE-L vs the base model's output",
}

_SECRET_PATTERNS = (
    re.compile(r"hf_[A-Za-z0-9]{8,}"),
    re.compile(r"(--token[= ])\S+"),
    re.compile(r"(token\s*=\s*)['\"][^'\"]+['\"]"),
)


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


def _display_model(name: str | None) -> str | None:
    """How the card names the base model: the Hub id, or only the folder name of a local path (no local paths)."""
    if not name:
        return None
    return name if is_hub_repo_id(name) else Path(name).name or name


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
        if key == "versions":
            continue
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
) -> ModelCard:
    r"""Build the model card of a pruned checkpoint.

    Rendered with `ModelCard.from_template` from `optimum_sinkprune/hub/model_cards/pruned_model_card.jinja`.
    Metadata: `base_model` (only a Hub id; a local path is not valid metadata), `library_name`, `tags`
    (sink-aware-pruning, pruned, diffusion-language-model, optimum-sinkprune and the method), `pipeline_tag`,
    `license` when known and `model-index` with the measured results. No `base_model_relation`: the Hub has none for
    pruning. Anything resembling a token is redacted from the card.

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
    if method in STRUCTURED_METHODS or pruning_config.get("target_param_reduction") is not None:
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
    title = model_name or f"{base_display or 'Model'} pruned with {method}"
    if model_name is None and budget:
        title += f" ({', '.join(budget)})"

    method_name, method_summary, equation = METHODS.get(
        method, (method, "see `sink_pruning_config` in config.json for its definition", None)
    )
    tags = list(dict.fromkeys([*BASE_TAGS, method.replace("_", "-")]))

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
        unit = f" ({entry['unit']})" if entry.get("unit") else ""
        pruned, base = entry.get("pruned"), entry.get("base")
        eval_rows.append(
            (label + unit, entry.get("dataset") or "", _fmt_num(base), _fmt_num(pruned), _ratio(pruned, base))
        )
        if pruned is not None:
            card_eval_results.append(
                EvalResult(
                    task_type=entry.get("task_type", PIPELINE_TAG),
                    dataset_type=entry.get("dataset_type") or entry.get("dataset") or "custom",
                    dataset_name=entry.get("dataset") or entry.get("dataset_type") or "custom",
                    metric_type=metric,
                    metric_value=pruned,
                    metric_name=label,
                )
            )
    not_measured = [label for key, label in STANDARD_MEASUREMENTS.items() if results.get(key, {}).get("pruned") is None]

    card_data = ModelCardData(
        base_model=base_model if is_hub_repo_id(base_model) else None,
        library_name=LIBRARY_NAME,
        pipeline_tag=PIPELINE_TAG,
        license=license,
        tags=tags,
        model_name=title if card_eval_results else None,
        eval_results=card_eval_results or None,
    )
    calibration = {
        key: pruning_config[key]
        for key in ("calibration", "calibration_dataset", "dataset", "num_samples", "seq_len", "batch_size", "seed",
                    "diffusion_steps", "sample_interval", "noise_eps")
        if pruning_config.get(key) is not None
    }
    # what the run actually used (e.g. fewer samples than asked, forward passes), from the pruning report
    if isinstance(report.get("calibration"), Mapping):
        calibration.update({f"used {k}": v for k, v in report["calibration"].items() if v is not None})
    if reproduce_command is None:
        reproduce_command = default_reproduce_command(pruning_config, base_model)
    load_id = "REPO_ID"
    card = ModelCard.from_template(
        card_data,
        template_path=default_template_path(),
        title=title,
        base_display=base_display,
        method=method,
        method_name=method_name,
        method_summary=method_summary,
        equation=equation,
        equation_symbols=SINK_SYMBOLS if method in ("sink_wanda", "sink_sparsegpt") else (
            STRUCTURED_SYMBOLS if method == "sink_heads" else None),
        budget=", ".join(budget) if budget else None,
        structured_mode=(pruning_config.get("structured_mode") or "remove") if method in STRUCTURED_METHODS else None,
        hyperparameters=_flatten(pruning_config),
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
        paper_url=PAPER_URL,
        citation=CITATION,
    )
    return ModelCard(redact_secrets(str(card)))


def default_reproduce_command(pruning_config: Mapping, base_model: str | None) -> str:
    """A `sinkprune prune` command line rebuilt from the pruning config (used when the caller gives none)."""
    base = _display_model(base_model) or "BASE_MODEL"
    parts = ["sinkprune", "prune", base, "--method", str(pruning_config["method"])]
    keys = ("sparsity", "pattern", "target_param_reduction", "num_samples", "seq_len", "seed", "batch_size",
            "diffusion_steps", "sample_interval")
    structured = pruning_config["method"] in STRUCTURED_METHODS
    for key in keys:
        if structured and key in ("sparsity", "pattern"):
            continue
        if pruning_config.get(key) is not None:
            parts += [f"--{key.replace('_', '-')}", str(pruning_config[key])]
    return " ".join(parts + ["--output", "OUTPUT_DIR"])
