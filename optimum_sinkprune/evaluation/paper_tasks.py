# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The paper's lm-eval settings per task, and its published results, read from the JSON files shipped beside this
module (`paper_tasks.json`, `paper_results.json`; each records the repository and commit it was read from).

```python
>>> from optimum_sinkprune.evaluation.paper_tasks import paper_task_settings
>>> s = paper_task_settings("arc_challenge")            # LLaDA's protocol (eval_llada.sh)
>>> s.num_fewshot, s.model_args["cfg_scale"], s.model_args["mc_num"]
(0, 0.5, 128)
>>> s.model_args_string()                               # for `--model_args` of the sinkprune-dlm model
'estimator=official,mc_num=128,batch_size=8,cfg_scale=0.5,is_check_greedy=False'
```
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

TASKS_FILE = "paper_tasks.json"
RESULTS_FILE = "paper_results.json"

# settings of a task line that are arguments of the lm-eval model (the rest are lm-eval's own options)
_MODEL_ARG_KEYS = ("mc_num", "batch_size", "cfg_scale", "is_check_greedy", "steps", "gen_length", "block_length")


def _read(name: str) -> dict:
    return json.loads(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class PaperTaskSettings:
    """One task as the paper's (or Dream's) evaluation script runs it.

    Attributes:
        task: lm-eval task name.
        family: the protocol it belongs to ("llada" or "dream").
        output_type: "loglikelihood" or "generate_until".
        num_fewshot: shots, or None where the script keeps the task's default.
        model_args: arguments of the `sinkprune-dlm` model that reproduce the script's settings.
        confirm_run_unsafe_code: the task executes generated code (lm-eval's `confirm_run_unsafe_code`).
        source: where the settings were read (repository, commit, files).
    """

    task: str
    family: str
    output_type: str
    num_fewshot: int | None
    model_args: dict[str, Any]
    confirm_run_unsafe_code: bool = False
    source: dict[str, Any] = field(default_factory=dict)

    def model_args_string(self) -> str:
        """`key=value,...` for lm-eval's `--model_args` (append `pretrained=...`)."""
        return ",".join(f"{k}={v}" for k, v in self.model_args.items())


def paper_families() -> tuple[str, ...]:
    """The protocols with shipped settings ("llada", "dream")."""
    return tuple(_read(TASKS_FILE)["protocols"])


def _protocol(family: str) -> dict:
    protocols = _read(TASKS_FILE)["protocols"]
    if family not in protocols:
        raise ValueError(f"no paper settings for family {family!r}; known families: {', '.join(protocols)}")
    return protocols[family]


def paper_task_names(family: str = "llada") -> tuple[str, ...]:
    """Tasks with shipped settings for `family`, in the script's order.

    Raises:
        ValueError: for an unknown family (the message lists the known ones).
    """
    return tuple(_protocol(family)["tasks"])


def paper_task_settings(task: str, family: str = "llada") -> PaperTaskSettings:
    """The script's settings of `task` under `family`'s protocol (aliases such as "gpqa" are resolved).

    Args:
        task: lm-eval task name.
        family: "llada" (the paper's eval_llada.sh, also for LLaDA-family models such as MMaDA) or "dream"
            (Dream's eval_dream_mc.sh).

    Returns:
        a `PaperTaskSettings`.

    Raises:
        ValueError: for an unknown family, or a task without settings (the message lists the tasks that have them).
    """
    proto = _protocol(family)
    name = proto.get("aliases", {}).get(task, task)
    if name not in proto["tasks"]:
        raise ValueError(
            f"task {task!r} has no paper settings for {family}; tasks with settings: {', '.join(proto['tasks'])}"
        )
    spec = dict(proto["tasks"][name])
    model_args: dict[str, Any] = {"estimator": "official"}
    model_args.update({k: spec[k] for k in _MODEL_ARG_KEYS if k in spec})
    if spec["output_type"] == "generate_until" and proto["defaults"].get("gen_length_ignores_max_gen_toks"):
        model_args["use_max_gen_toks"] = False
    return PaperTaskSettings(
        task=name,
        family=family,
        output_type=spec["output_type"],
        num_fewshot=spec.get("num_fewshot"),
        model_args=model_args,
        confirm_run_unsafe_code=bool(spec.get("confirm_run_unsafe_code", False)),
        source=dict(proto["source"]),
    )


@dataclass(frozen=True)
class PaperResultRow:
    """One published row: method ("dense" or a method name of the registry), sparsity, the published average and
    the per-task scores (percent, keyed by lm-eval task name)."""

    method: str
    sparsity: float
    avg: float
    scores: dict[str, float]


@dataclass(frozen=True)
class PaperResultTable:
    """A published results table (see `paper_results`).

    Attributes:
        name / title / model: the table's key, its heading in the README and the model evaluated.
        columns: README column heading -> lm-eval task name.
        rows: the published rows, in the README's order.
        notes: what the README leaves open (for example that Avg covers benchmarks not shown).
        source: repository, commit and file the numbers were read from.
    """

    name: str
    title: str
    model: str
    columns: dict[str, str]
    rows: tuple[PaperResultRow, ...]
    notes: tuple[str, ...]
    source: dict[str, Any]

    def row(self, method: str) -> PaperResultRow:
        """The row of `method`.

        Raises:
            ValueError: when the table has no such row (the message lists the methods it has).
        """
        for r in self.rows:
            if r.method == method:
                return r
        raise ValueError(f"table {self.name!r} has no row {method!r}; rows: {', '.join(r.method for r in self.rows)}")


def paper_results(table: str = "llada_8b_unstructured") -> PaperResultTable:
    """A results table of the paper's README, as published.

    Raises:
        ValueError: for an unknown table name (the message lists the shipped ones).
    """
    data = _read(RESULTS_FILE)
    tables = data["tables"]
    if table not in tables:
        raise ValueError(f"no published table {table!r}; shipped tables: {', '.join(tables)}")
    t = tables[table]
    rows = tuple(
        PaperResultRow(method=r["method"], sparsity=float(r["sparsity"]), avg=float(r["avg"]), scores=dict(r["scores"]))
        for r in t["rows"]
    )
    return PaperResultTable(
        name=table,
        title=t["title"],
        model=t["model"],
        columns=dict(t["columns"]),
        rows=rows,
        notes=tuple(t.get("notes", ())),
        source=dict(data["source"]),
    )
