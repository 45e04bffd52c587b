# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sinkprune demo`: the main job, end to end. On the embedded default model: generate, analyse attention sinks,
prune with Sink-Aware Wanda (unstructured) and Sink-Aware head/channel removal (structured), evaluate both against the
dense model in one run, save both checkpoints with their model cards, and return / print a before/after table.

The demo is application code, so it lives in `optimum_sinkprune.commands` next to the CLI that runs it rather than
in the library: it strings library calls together, prints, and chooses sizes; nothing in the library imports it.
`run_demo` is the Python entry point, `run(args)` the `sinkprune demo` subcommand.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch and the library load when the demo runs, not for `sinkprune --help`
    import torch
    from torch import nn

    from ..evaluation import EvaluationResult, EvaluationSettings

logger = logging.getLogger(__name__)

# The sizes of each demo run, by name (`DemoSettings.preset`): "full" is the real thing, "quick" a smoke run.
# "evaluation" holds the `EvaluationSettings` keywords.
DEMO_PRESETS: dict[str, dict] = {
    "full": dict(analysis_samples=4, analysis_seq_len=128, analysis_steps=50, analysis_interval=10,
                 calibration_samples=32, calibration_seq_len=128, diffusion_steps=50, sample_interval=10,
                 demo_gen_length=64, demo_steps=64,
                 evaluation=dict(num_sequences=16, seq_len=128, mc_num=8, num_prompts=8, prompt_tokens=48,
                                 gen_length=32, steps=32, speed_repeats=3)),
    "quick": dict(analysis_samples=2, analysis_seq_len=48, analysis_steps=10, analysis_interval=5,
                  calibration_samples=4, calibration_seq_len=48, diffusion_steps=10, sample_interval=5,
                  demo_gen_length=8, demo_steps=4,
                  evaluation=dict(num_sequences=2, seq_len=48, mc_num=2, batch_size=2, num_prompts=2, prompt_tokens=16,
                                  gen_length=8, steps=4, speed_repeats=1, speed_warmup=0)),
}


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of one demo run (`preset(name)` with a name of `DEMO_PRESETS`: `full()` for the real thing, `quick()`
    for a smoke run)."""

    analysis_samples: int
    analysis_seq_len: int
    analysis_steps: int
    analysis_interval: int
    calibration_samples: int
    calibration_seq_len: int
    diffusion_steps: int
    sample_interval: int
    demo_gen_length: int
    demo_steps: int
    evaluation: EvaluationSettings

    @classmethod
    def preset(cls, name: str) -> DemoSettings:
        """The sizes of the preset `name` (a key of `DEMO_PRESETS`).

        Raises:
            ValueError: naming the preset and the known ones.
        """
        from ..evaluation import EvaluationSettings

        if name not in DEMO_PRESETS:
            raise ValueError(f"name={name!r} is not a demo preset; use one of {tuple(DEMO_PRESETS)}")
        sizes = dict(DEMO_PRESETS[name])
        evaluation = EvaluationSettings(**sizes.pop("evaluation"))
        return cls(**sizes, evaluation=evaluation)

    @classmethod
    def full(cls) -> DemoSettings:
        return cls.preset("full")

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls.preset("quick")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["evaluation"] = self.evaluation.to_dict()
        return out


@dataclass
class DemoResult:
    """What `run_demo` produced.

    Attributes:
        output_dir: where everything was written (`results.json`, `results.md`, `sink_analysis/`, checkpoints).
        prompt / generation: the sampler demo (prompt text and the dense model's continuation).
        sink_summary: `SinkReport.statistics()` of the dense model.
        results: dense first, then each pruned model (`EvaluationResult`).
        checkpoints: name -> saved checkpoint folder.
        table: the short before/after table (Markdown); `results.md` has every column.
        settings: the sizes used; wall_time_s: the whole run.
    """

    output_dir: str
    prompt: str
    generation: str
    sink_summary: dict
    results: list[EvaluationResult]
    checkpoints: dict[str, str]
    table: str
    settings: dict
    wall_time_s: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["results"] = [r.to_dict() for r in self.results]
        return out


def _check_fraction(name: str, value: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < high:
        raise ValueError(f"{name} must be a number in (0, {high}), got {value!r}")


def _prepare_output(output_dir: str, overwrite: bool) -> str:
    output_dir = os.path.abspath(os.fspath(output_dir))
    if os.path.isfile(output_dir):
        raise FileExistsError(f"output_dir {output_dir!r} is a file")
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not overwrite:
        raise FileExistsError(f"output_dir {output_dir!r} exists and is not empty; pass overwrite=True (--overwrite)")
    os.makedirs(output_dir, exist_ok=True)
    return output_dir


def prune_copy(dense: nn.Module, tokenizer, config, calibration, *, progress: bool = True):
    """Prune a deep copy of `dense` with `config` (a `SinkAwarePruningConfig`); returns `(model, PruningReport)`."""
    from ..pruner import SinkAwarePruner

    model = copy.deepcopy(dense)
    pruner = SinkAwarePruner(model, tokenizer)
    model, report = pruner.prune(config, calibration, progress=progress)
    return model, report


def save_with_card(
    model: nn.Module,
    directory: str,
    *,
    tokenizer,
    config,
    report,
    result: EvaluationResult,
    dense_result: EvaluationResult,
    dense_checkpoint_bytes: int | None,
    save_dtype: torch.dtype,
    base_model: str,
    sink_report_json: str | None = None,
    plots: dict[str, str] | None = None,
    reproduce_command: str | None = None,
    overwrite: bool = True,
) -> str:
    """Save `model` (cast to `save_dtype`, the dense checkpoint's dtype, so sizes compare) with its model card holding
    the measured results; fills `result.checkpoint_bytes`."""
    from ..evaluation import card_eval_results
    from ..evaluation.metrics import checkpoint_bytes
    from ..hub import save_pruned_model

    to_save = copy.deepcopy(model).to(save_dtype)
    report_dict = report.to_dict()
    report_dict.update(
        params_before=dense_result.num_parameters,
        nonzero_params_before=dense_result.nonzero_parameters,
        checkpoint_bytes_before=dense_checkpoint_bytes,
    )
    path = save_pruned_model(
        to_save, directory, tokenizer=tokenizer, pruning_config=config.to_dict(), report=report_dict,
        sink_report_json=sink_report_json, plots=plots, overwrite=overwrite, base_model=base_model,
        eval_results=card_eval_results(result, dense_result), reproduce_command=reproduce_command,
    )
    result.checkpoint_bytes = checkpoint_bytes(path)
    return path


def run_demo(
    output_dir: str | os.PathLike,
    *,
    model_path: str | None = None,
    ar_model_path: str | None = None,
    heldout_texts: list[str] | None = None,
    calibration_texts: list[str] | None = None,
    quick: bool = False,
    unstructured_sparsity: float = 0.5,
    structured_reduction: float = 0.38,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> DemoResult:
    """Run the whole Sink-Aware Pruning pipeline on one model and compare against the dense model.

    Steps: load; generate from a held-out prompt with the diffusion sampler; sink analysis (forward process and the
    sampler run, plus the AR baseline when given) with plots; prune with `sink_wanda` (unstructured) and `sink_heads`
    (structured, `remove` mode); evaluate the dense and both pruned models in one run (same masks, same prompts,
    speed interleaved with the dense model); save both checkpoints with model cards; write `results.json` and
    `results.md` (the before/after table).

    Args:
        output_dir: folder for everything (must be empty unless `overwrite`).
        model_path: the dense DLM (default: the embedded tiny LLaDA, `optimum_sinkprune.assets.default_model_path()`).
        ar_model_path: an autoregressive baseline for the sink analysis (default: the embedded tiny Llama when
            `model_path` is the default, else none).
        heldout_texts: evaluation texts (default: the embedded held-out split).
        calibration_texts: pruning / analysis texts (default: the embedded calibration split).
        quick: a smoke-sized run (seconds; numbers are not meaningful).
        unstructured_sparsity: sparsity of `sink_wanda`, in (0, 1).
        structured_reduction: fraction of block parameters `sink_heads` removes, in (0, 1).
        seed: seed of calibration windows, masks and evaluation draws.
        overwrite: reuse a non-empty `output_dir`.
        progress: tqdm bars.

    Returns:
        `DemoResult`.
    """
    import torch
    from tqdm.auto import tqdm

    from ..analysis import build_sink_report, plot_report, summary_markdown
    from ..calibration.data import get_calibration_dataset
    from ..counting import count_parameters
    from ..evaluation import Evaluator, format_table
    from ..evaluation.metrics import checkpoint_bytes
    from ..configuration import SinkAwarePruningConfig
    from ..diffusion import generate
    from ..hub.load import load_model, load_model_and_tokenizer, resolve_model_path

    _check_fraction("unstructured_sparsity", unstructured_sparsity, 1.0)
    _check_fraction("structured_reduction", structured_reduction, 1.0)
    start = time.perf_counter()
    settings = DemoSettings.quick() if quick else DemoSettings.full()
    if model_path is None or heldout_texts is None or calibration_texts is None or ar_model_path is None:
        from .. import assets

        if model_path is None:
            model_path = assets.default_model_path()
            if ar_model_path is None:
                try:
                    ar_model_path = assets.default_ar_model_path()
                except FileNotFoundError as err:  # the AR baseline is a comparison, not part of the pipeline
                    logger.warning("sink analysis without the AR baseline: %s", err)
        heldout_texts = heldout_texts if heldout_texts is not None else assets.load_heldout_texts()
        calibration_texts = calibration_texts if calibration_texts is not None else assets.load_calibration_texts()
    model_path = resolve_model_path(model_path)  # an embedded name ("tiny-llada") becomes its folder
    output_dir = _prepare_output(output_dir, overwrite)
    stages = tqdm(total=6, desc="sinkprune demo", disable=not progress, position=0)

    # 1. load ---------------------------------------------------------------------------------------------------------
    stages.set_postfix_str("load")
    dense, tokenizer = load_model_and_tokenizer(model_path)
    save_dtype = next(dense.parameters()).dtype
    dense = dense.float()  # compute in float32 on CPU; checkpoints are saved back in the original dtype
    dense_bytes = checkpoint_bytes(model_path) if os.path.isdir(model_path) else None
    logger.info("loaded %s (%s parameters, saved as %s)", model_path, f"{count_parameters(dense).params:,}", save_dtype)
    evaluator = Evaluator(tokenizer, texts=heldout_texts, dense_model=dense, settings=settings.evaluation,
                          progress=progress)  # fmt: skip
    stages.update(1)

    # 2. generate -----------------------------------------------------------------------------------------------------
    stages.set_postfix_str("generate")
    prompt = evaluator.prompts[0]
    prompt_ids = torch.tensor([prompt.prompt_ids], dtype=torch.long)
    out = generate(dense, prompt_ids, steps=settings.demo_steps, gen_length=settings.demo_gen_length,
                   block_length=settings.demo_gen_length // 2 if settings.demo_gen_length >= 64 else
                   settings.demo_gen_length, progress=progress, tokenizer=tokenizer)  # fmt: skip
    generation = tokenizer.decode(out.sequences[0, prompt_ids.shape[1] :].tolist(), skip_special_tokens=True)
    logger.info("dense generation: %r -> %r", prompt.prompt_text[-60:], generation)
    stages.update(1)

    # 3. sink analysis ------------------------------------------------------------------------------------------------
    stages.set_postfix_str("sink analysis")
    analysis_ids = get_calibration_dataset(tokenizer, calibration_texts, num_samples=settings.analysis_samples,
                                           seq_len=settings.analysis_seq_len, seed=seed, model=dense)  # fmt: skip
    ar_model = None
    if ar_model_path is not None:
        ar_model = load_model(ar_model_path, dtype="float32")  # the AR baseline, computed in float32 too
    report = build_sink_report(
        dense, analysis_ids, ar_model=ar_model, steps=settings.analysis_steps,
        sample_interval=settings.analysis_interval, seed=seed, generation_prompt=prompt_ids[:, : min(
            prompt_ids.shape[1], 33)],
        generation_kwargs=dict(steps=settings.demo_steps // 2 or 1, gen_length=settings.demo_gen_length // 2 or 1,
                               block_length=settings.demo_gen_length // 2 or 1, tokenizer=tokenizer),
        model_name=os.path.basename(os.path.normpath(model_path)),
        ar_model_name=None if ar_model_path is None else os.path.basename(os.path.normpath(ar_model_path)),
        progress=progress,
    )
    analysis_dir = os.path.join(output_dir, "sink_analysis")
    os.makedirs(analysis_dir, exist_ok=True)
    sink_json = os.path.join(analysis_dir, "sink_report.json")
    report.to_json(sink_json)
    with open(os.path.join(analysis_dir, "summary.md"), "w", encoding="utf-8") as f:
        f.write(summary_markdown(report))
    plots = plot_report(report, analysis_dir)
    del ar_model
    stages.update(1)

    # 4. prune --------------------------------------------------------------------------------------------------------
    stages.set_postfix_str("prune")
    common = dict(num_samples=settings.calibration_samples, seq_len=settings.calibration_seq_len, seed=seed,
                  diffusion_steps=settings.diffusion_steps, sample_interval=settings.sample_interval)  # fmt: skip
    configs = {
        f"sink_wanda-{round(100 * unstructured_sparsity)}": SinkAwarePruningConfig(
            method="sink_wanda", sparsity=unstructured_sparsity, **common),
        f"sink_heads-{round(100 * structured_reduction)}": SinkAwarePruningConfig(
            method="sink_heads", target_param_reduction=structured_reduction, structured_mode="remove", **common),
    }
    pruned = {}
    for name, config in configs.items():
        logger.info("pruning %s", name)
        pruned[name] = prune_copy(dense, tokenizer, config, calibration_texts, progress=progress)
    stages.update(1)

    # 5. evaluate -----------------------------------------------------------------------------------------------------
    stages.set_postfix_str("evaluate")
    dense_result = evaluator.evaluate_dense(measure_speed=False)
    dense_result.checkpoint_bytes = dense_bytes
    results = {}
    for name, (model, prune_report) in pruned.items():
        results[name] = evaluator.evaluate(
            model, name=name, extra={"method": configs[name].method, "pruning_wall_time_s": prune_report.wall_time_s}
        )
    # the dense row shows the dense timing of the first interleaved run (its speed-up is 1 by definition)
    first = next(iter(results.values()))
    dense_result.speed, dense_result.speedup_vs_dense = first.dense_speed, 1.0
    stages.update(1)

    # 6. save ---------------------------------------------------------------------------------------------------------
    stages.set_postfix_str("save")
    checkpoints = {}
    for name, (model, prune_report) in pruned.items():
        checkpoints[name] = save_with_card(
            model, os.path.join(output_dir, name), tokenizer=tokenizer, config=configs[name], report=prune_report,
            result=results[name], dense_result=dense_result, dense_checkpoint_bytes=dense_bytes,
            save_dtype=save_dtype, base_model=model_path, sink_report_json=sink_json, plots=plots,
            overwrite=True,
        )
    all_results = [dense_result, *results.values()]
    table = format_table(all_results, compact=True)
    s = settings.evaluation
    notes = [
        f"ELBO perplexity: {s.mc_num} Monte-Carlo draws x {s.num_sequences} held-out sequences of {s.seq_len} tokens, "
        f"the same masks for every model (seed {seed}); ± is one standard error, Δnll is the paired difference.",
        f"Generation: {len(evaluator.prompts)} held-out prompts (continuation and summary-style), {s.gen_length} "
        f"tokens, {s.steps} steps, greedy; BLEU/ROUGE-L vs the true text (ref) and vs the dense output (dense).",
        f"Speed: fastest of {s.speed_repeats} or more sampler runs per model (up to {3 * s.speed_repeats} while "
        "they spread > 10%; '(noisy)' marks a figure that stayed spread), interleaved with the dense model, "
        f"{torch.get_num_threads()} threads; ms/step shows the model (dense) of the same run.",
        "Checkpoints are saved in the dense checkpoint's dtype "
        f"({str(save_dtype).replace('torch.', '')}); {_storage_note(pruned)}",
    ]
    if quick:
        notes.append("--quick: smoke-sized run; the numbers are not meaningful.")
    wall = time.perf_counter() - start
    result = DemoResult(
        output_dir=output_dir, prompt=prompt.prompt_text, generation=generation, sink_summary=report.statistics(),
        results=all_results, checkpoints=checkpoints, table=table, settings=settings.to_dict(), wall_time_s=wall,
        notes=notes,
    )
    with open(os.path.join(output_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(result.to_dict(), f, indent=2)
    with open(os.path.join(output_dir, "results.md"), "w", encoding="utf-8") as f:
        f.write("# sinkprune demo\n\n" + format_table(all_results) + "\n\n" + "\n".join(f"- {n}" for n in notes)
                + "\n")
    stages.update(1)
    stages.close()
    logger.info("demo finished in %.1f s; results in %s", wall, output_dir)
    return result


# ------------------------------------------------------------------------------------------------------------------
# `sinkprune demo`
# ------------------------------------------------------------------------------------------------------------------
NAME = "demo"
HELP = (
    "Run Sink-Aware Pruning end to end on the embedded tiny LLaDA: generate, analyse attention sinks, prune with "
    "sink_wanda (50%) and sink_heads (38% of block parameters), evaluate against the dense model, save both "
    "checkpoints with model cards, print a before/after table"
)


def _storage_note(pruned: dict) -> str:
    """How the demo's checkpoints store their pruning, as the save really did it (compressed needs a model class
    that loads compressed checkpoints back)."""
    from ..hub.compressed import COMPRESSED, resolve_save_format

    sparse = [model for model, report in pruned.values() if report.structured is None]
    if sparse and all(resolve_save_format(model, None)[0] == COMPRESSED for model in sparse):
        return ("unstructured sparsity is stored compressed (compressed-tensors bitmask: non-zeros plus a bitmask, so "
                "the file is smaller), structured pruning removes the weights.")
    kind = type(sparse[0]).__name__ if sparse else "this model"
    return (f"unstructured zeros are stored densely ({kind} does not load compressed checkpoints in transformers), so "
            "only structured pruning, which removes the weights, makes the file smaller.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="sinkprune-demo",
                        help="output folder, relative to the current folder (ignored by git in a checkout)")
    parser.add_argument("--model", default=None,
                        help="a DLM folder, Hub id or embedded model name instead of the embedded tiny-llada")
    parser.add_argument("--quick", action="store_true", help="smoke-sized run (seconds; numbers not meaningful)")
    parser.add_argument("--sparsity", type=float, default=0.5, help="sink_wanda sparsity (default 0.5)")
    parser.add_argument("--param-reduction", type=float, default=0.38,
                        help="fraction of block parameters sink_heads removes (default 0.38)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="reuse a non-empty output folder")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    from .cli import progress_enabled, set_threads

    set_threads(args.threads)
    result = run_demo(
        args.output, model_path=args.model, quick=args.quick, unstructured_sparsity=args.sparsity,
        structured_reduction=args.param_reduction, seed=args.seed, overwrite=args.overwrite,
        progress=progress_enabled(args),
    )
    print(f"\nprompt: ...{result.prompt[-80:]!r}\ndense model continues: {result.generation!r}\n")
    print(result.table)
    print()
    for note in result.notes:
        print(f"- {note}")
    print(f"\nsaved: {', '.join(result.checkpoints.values())}")
    print(f"everything went to {result.output_dir}")
    print(f"sink analysis: {os.path.join(result.output_dir, 'sink_analysis')}  results: "
          f"{os.path.join(result.output_dir, 'results.md')}")
    print(f"done in {result.wall_time_s:.0f} s")
    return 0
