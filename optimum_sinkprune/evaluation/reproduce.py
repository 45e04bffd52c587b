# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Reproduce the paper's table: prune with the paper preset, evaluate the dense and the pruned model with
lm-evaluation-harness at the paper's per-task settings (`paper_tasks`), and set the scores beside the published
ones (`paper_results`) in a Markdown table.

```python
>>> from optimum_sinkprune.evaluation.reproduce import reproduce_paper
>>> result = reproduce_paper(model, tokenizer, method="sink_wanda", sparsity=0.5,
...                          tasks=["arc_challenge", "piqa"])  # doctest: +SKIP
>>> print(result.markdown)  # doctest: +SKIP
```

Every request runs through `SinkPruneDLM` with `paper_task=<task>`, so the estimator, `mc_num`, `cfg_scale`,
batch size and generation settings are the paper script's; `num_fewshot` is the script's too. A task that lm-eval
knows under another name (a local copy, a variant) runs with a paper task's settings as `NAME=PAPER_TASK`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .paper_tasks import PaperResultTable, PaperTaskSettings, paper_results, paper_task_names, paper_task_settings

logger = logging.getLogger(__name__)

# lm-eval metric keys in order of preference for the table (the README does not say which one it reports)
METRIC_PREFERENCE = ("acc_norm,none", "acc,none", "exact_match,flexible-extract", "exact_match,strict-match",
                     "exact_match,none", "pass@1,create_test", "pass@1,none", "mc2,none")
PAPER_TABLE = "llada_8b_unstructured"


def default_tasks(table: str = PAPER_TABLE) -> tuple[str, ...]:
    """The lm-eval tasks of a published table's columns, in the README's order."""
    return tuple(paper_results(table).columns.values())


@dataclass(frozen=True)
class ReproduceTask:
    """A task to run (`name`, as lm-eval knows it) and the paper task whose settings it runs with."""

    name: str
    settings: PaperTaskSettings

    @property
    def paper_task(self) -> str:
        return self.settings.task


def resolve_tasks(specs: Sequence[str], family: str = "llada") -> list[ReproduceTask]:
    """Parse `NAME` / `NAME=PAPER_TASK` specs and look up the paper settings of each (before any work).

    Raises:
        ValueError: an empty list, a malformed spec, a task given twice, or a task without paper settings (the
            message lists the tasks that have them).
    """
    if isinstance(specs, str):
        specs = [specs]
    if not specs:
        raise ValueError("tasks is empty; give at least one lm-eval task, e.g. "
                         f"{', '.join(paper_task_names(family)[:3])}")
    out = []
    for spec in specs:
        name, _, paper = str(spec).partition("=")
        name, paper = name.strip(), (paper.strip() or name.strip())
        if not name:
            raise ValueError(f"task {spec!r} is not NAME or NAME=PAPER_TASK")
        if any(t.name == name for t in out):
            raise ValueError(f"task {name!r} is given twice in tasks={list(specs)}; each lm-eval task runs once")
        out.append(ReproduceTask(name=name, settings=paper_task_settings(paper, family)))
    return out


@dataclass(frozen=True)
class TaskScore:
    """One task's score: the lm-eval metric used, its value and standard error (fractions), and what ran."""

    task: str
    paper_task: str
    metric: str
    value: float
    stderr: float | None
    num_fewshot: int | None
    model_args: dict[str, Any]
    samples: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "paper_task": self.paper_task, "metric": self.metric, "value": self.value,
                "stderr": self.stderr, "num_fewshot": self.num_fewshot, "model_args": dict(self.model_args),
                "samples": self.samples}


def pick_metric(task_results: dict[str, Any], task: str) -> tuple[str, float, float | None]:
    """(metric, value, stderr) of one task's lm-eval results, by `METRIC_PREFERENCE`.

    Raises:
        ValueError: the results hold none of the metrics (the message lists what they hold).
    """
    for key in METRIC_PREFERENCE:
        value = task_results.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            name, _, filt = key.partition(",")
            stderr = task_results.get(f"{name}_stderr,{filt}")
            stderr = float(stderr) if isinstance(stderr, (int, float)) and math.isfinite(stderr) else None
            return key, float(value), stderr
    held = sorted(k for k in task_results if "," in k)
    raise ValueError(f"the lm-eval results of {task!r} hold none of the metrics {METRIC_PREFERENCE}; they hold {held}")


def evaluate_paper_tasks(
    model: nn.Module,
    tokenizer,
    tasks: Sequence[ReproduceTask],
    *,
    task_manager=None,
    limit: int | float | None = None,
    mc_num: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, TaskScore]:
    """Run each task with lm-eval at its paper settings (one `simple_evaluate` per task: shots and model arguments
    differ between tasks).

    Args:
        model / tokenizer: the model to evaluate (not copied).
        tasks: from `resolve_tasks`.
        task_manager: an `lm_eval.tasks.TaskManager` (e.g. with `include_path` for local tasks); default lm-eval's.
        limit: lm-eval's `limit` (documents per task; a fraction below 1), for a quick run. None: every document.
        mc_num: replace the paper's Monte-Carlo draws (quick runs only; the batch becomes gcd(mc_num, batch)).
        seed: seed of the mask draws (the same for every model).
        progress: show lm-eval's and our progress bars.

    Returns:
        `dict[str, TaskScore]` keyed by task name.
    """
    import lm_eval

    from .lm_eval_model import SinkPruneDLM

    scores = {}
    for task in tasks:
        overrides: dict[str, Any] = {}
        if mc_num is not None:
            batch = int(task.settings.model_args.get("batch_size", mc_num))
            overrides = {"mc_num": mc_num, "batch_size": math.gcd(mc_num, batch)}
        lm = SinkPruneDLM(model=model, tokenizer=tokenizer, paper_task=task.paper_task, seed=seed,
                          progress=progress, **overrides)
        start = time.perf_counter()
        results = lm_eval.simple_evaluate(
            model=lm, tasks=[task.name], num_fewshot=task.settings.num_fewshot, task_manager=task_manager,
            limit=limit, log_samples=False, bootstrap_iters=1000,
            confirm_run_unsafe_code=task.settings.confirm_run_unsafe_code,
        )
        if results is None or task.name not in results.get("results", {}):
            raise ValueError(f"lm-eval returned no results for task {task.name!r}")
        metric, value, stderr = pick_metric(results["results"][task.name], task.name)
        n = results.get("n-samples", {}).get(task.name, {}).get("effective")
        args = {"estimator": lm.estimator, "mc_num": lm.mc_num, "batch_size": lm.batch_size,
                "cfg_scale": lm.cfg_scale, "is_check_greedy": lm.is_check_greedy}
        scores[task.name] = TaskScore(task=task.name, paper_task=task.paper_task, metric=metric, value=value,
                                      stderr=stderr, num_fewshot=task.settings.num_fewshot, model_args=args,
                                      samples=None if n is None else int(n))
        logger.info("%s: %s = %.4f (%.0f s)", task.name, metric, value, time.perf_counter() - start)
    return scores


def _cell(score: TaskScore | None) -> str:
    if score is None:
        return "-"
    if score.stderr is None:
        return f"{100 * score.value:.2f}"
    return f"{100 * score.value:.2f} ± {100 * score.stderr:.2f}"


def _mean(values: list[float]) -> str:
    return f"{sum(values) / len(values):.2f}" if values else "-"


def markdown_table(
    dense: dict[str, TaskScore],
    pruned: dict[str, TaskScore],
    *,
    method: str,
    sparsity: float,
    model: str,
    table: PaperResultTable | None = None,
) -> str:
    """Our dense and pruned scores beside the published rows of `table` (percent; ours with ± one standard error
    from lm-eval). "Avg" is the mean over the tasks shown; the published average (over the README's benchmarks) is
    its own column."""
    tasks = list(dict.fromkeys([*dense, *pruned]))
    paper_tasks = {t: (dense.get(t) or pruned.get(t)).paper_task for t in tasks}
    headers = ["Model", "Method", "Sparsity", "Avg (tasks shown)", "Published Avg", *tasks]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join([":---"] * 3 + [":---:"] * (len(headers) - 3)) + "|"]
    for label, scores, meth, sp in (("ours", dense, "dense", 0.0), ("ours", pruned, method, sparsity)):
        values = [100 * scores[t].value for t in tasks if t in scores]
        cells = [f"{label}: {model}", meth, f"{100 * sp:.0f}%", _mean(values), "-", *(_cell(scores.get(t)) for t in tasks)]
        lines.append("| " + " | ".join(cells) + " |")
    if table is not None:
        for meth in ("dense", method):
            try:
                row = table.row(meth)
            except ValueError:
                continue
            if meth != "dense" and not math.isclose(row.sparsity, sparsity):
                continue
            shown = [row.scores.get(paper_tasks[t]) for t in tasks]
            avg = _mean([v for v in shown if v is not None]) if all(v is not None for v in shown) else "-"
            cells = [f"paper: {table.model}", meth, f"{100 * row.sparsity:.0f}%", avg, f"{row.avg:.2f}",
                     *("-" if v is None else f"{v:.2f}" for v in shown)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@dataclass
class ReproduceResult:
    """What `reproduce_paper` measured: the config, both models' scores, the Markdown table and its notes."""

    config: dict[str, Any]
    dense: dict[str, TaskScore]
    pruned: dict[str, TaskScore]
    markdown: str
    notes: list[str] = field(default_factory=list)
    pruning_summary: str = ""
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"config": dict(self.config), "dense": {k: v.to_dict() for k, v in self.dense.items()},
                "pruned": {k: v.to_dict() for k, v in self.pruned.items()}, "markdown": self.markdown,
                "notes": list(self.notes), "pruning_summary": self.pruning_summary, "seconds": dict(self.seconds)}

    def report(self) -> str:
        """The table and its notes, as Markdown."""
        return self.markdown + "".join(f"\n- {n}" for n in self.notes) + "\n"


def reproduce_paper(
    model: nn.Module,
    tokenizer,
    *,
    method: str = "sink_wanda",
    sparsity: float = 0.5,
    tasks: Sequence[str] | None = None,
    calibration_data: Any = None,
    config_overrides: dict[str, Any] | None = None,
    task_manager=None,
    limit: int | float | None = None,
    mc_num: int | None = None,
    model_name: str | None = None,
    progress: bool = True,
    pruner_callback=None,
) -> ReproduceResult:
    """Prune `model` in place with the paper preset and evaluate it before and after at the paper's settings.

    Validates everything first (the preset for the model's family, the tasks, the calibration windows, the memory
    estimate of the run), then: dense evaluation → pruning → pruned evaluation → the table.

    Args:
        model / tokenizer: a loaded LLaDA / MMaDA / Dream model and its tokenizer (pruned in place).
        method / sparsity: the pruning method (a weight-pruning method of the registry) and sparsity.
        tasks: lm-eval tasks (`NAME` or `NAME=PAPER_TASK`); default the columns of the paper's LLaDA-8B table.
        calibration_data: a local copy of wikitext-2 train (see `calibration.datasets.load_dataset_texts`) or a
            list of texts; None: the `datasets` cache.
        config_overrides: fields replacing the preset's (e.g. `num_samples`, `seq_len` for a small run).
        task_manager / limit / mc_num / progress: see `evaluate_paper_tasks`.
        model_name: how the table names the model.
        pruner_callback: called with the `SinkAwarePruner` after pruning (e.g. to save the checkpoint).

    Returns:
        `ReproduceResult`.

    Raises:
        ValueError: a family without a preset, a task without paper settings, bad calibration data or overrides.
        FileNotFoundError: wikitext-2 is missing offline.
        MemoryError: the run does not fit (the numbers are in the message).
    """
    from ..adapters import get_adapter
    from ..calibration.memory import check_memory, estimate_memory
    from ..configuration import SinkAwarePruningConfig
    from ..presets import model_family, paper_calibration_data
    from ..pruner import SinkAwarePruner, select_targets

    family = model_family(model.config)
    config = SinkAwarePruningConfig.paper_preset(family, method, sparsity, **(config_overrides or {}))
    protocol = getattr(get_adapter(model), "likelihood_protocol", "llada")
    resolved = resolve_tasks(list(tasks) if tasks is not None else list(default_tasks()), protocol)
    windows = paper_calibration_data(tokenizer, config, calibration_data)
    adapter = get_adapter(model)
    estimate = estimate_memory(model, adapter, select_targets(model, adapter, config.targets, config.ignore),
                               config=config)
    limit_bytes = int(config.memory_limit_gb * 1024**3) if config.memory_limit_gb is not None else None
    check_memory(estimate, limit_bytes=limit_bytes)  # before hours of evaluation, not after
    seconds: dict[str, float] = {}

    start = time.perf_counter()
    dense = evaluate_paper_tasks(model, tokenizer, resolved, task_manager=task_manager, limit=limit, mc_num=mc_num,
                                 progress=progress)
    seconds["dense evaluation"] = time.perf_counter() - start
    start = time.perf_counter()
    pruner = SinkAwarePruner(model, tokenizer, base_model=model_name)
    _, report = pruner.prune(config, windows, progress=progress)
    seconds["pruning"] = time.perf_counter() - start
    if pruner_callback is not None:
        pruner_callback(pruner)
    start = time.perf_counter()
    pruned = evaluate_paper_tasks(model, tokenizer, resolved, task_manager=task_manager, limit=limit, mc_num=mc_num,
                                  progress=progress)
    seconds["pruned evaluation"] = time.perf_counter() - start

    table = paper_results(PAPER_TABLE) if family in ("llada",) else None
    name = model_name or getattr(model.config, "_name_or_path", None) or type(model).__name__
    markdown = markdown_table(dense, pruned, method=method, sparsity=sparsity, model=name, table=table)
    metrics = sorted({f"{s.task}: {s.metric}" for s in dense.values()})
    notes = [
        "Ours: lm-eval scores in percent, ± one standard error (lm-eval's), same mask draws for both models; "
        f"metric per task: {', '.join(metrics)}.",
        "Settings per task: the paper's (" + "; ".join(
            f"{t.name}: {t.settings.num_fewshot}-shot, "
            + ", ".join(f"{k}={v}" for k, v in dense[t.name].model_args.items()) for t in resolved) + ").",
        f"Pruning: {method} at {100 * sparsity:.0f}% with the paper preset ({config.num_samples} windows x "
        f"{config.seq_len} tokens, steps {config.sampled_steps[0]}..{config.diffusion_steps} every "
        f"{config.sample_interval}, noise {config.noise_schedule} / protected {config.protected_positions}).",
    ]
    if table is not None:
        notes += [f"Paper: {table.title}, {table.source['repository']}@{table.source['commit'][:7]} "
                  f"{table.source['file']}."] + list(table.notes)
    else:
        notes.append(f"The paper publishes no table for the {family} family; only our rows are shown.")
    if limit is not None:
        notes.append(f"limit={limit}: a subset of each task's documents (not comparable with the paper).")
    if mc_num is not None:
        notes.append(f"mc_num={mc_num} replaces the paper's Monte-Carlo draws (not comparable with the paper).")
    return ReproduceResult(config=config.to_dict(), dense=dense, pruned=pruned, markdown=markdown, notes=notes,
                           pruning_summary=report.summary(), seconds=seconds)


__all__ = [
    "METRIC_PREFERENCE",
    "PAPER_TABLE",
    "ReproduceResult",
    "ReproduceTask",
    "TaskScore",
    "default_tasks",
    "evaluate_paper_tasks",
    "markdown_table",
    "pick_metric",
    "reproduce_paper",
    "resolve_tasks",
]
