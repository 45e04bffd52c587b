# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Structured pruning benchmark: smaller and faster, and at what quality.

One run, side by side:

* speed (diffusion sampler, fixed steps and length) of dense vs pruned models at 20 / 38 / 50 % of transformer-block
  parameters removed, on a scaled-up LLaDA config (d_model 512, 8 layers, 8 heads, MLP 1536, random weights: speed
  depends on shapes only) and on the shipped tiny DLM; next to each measured speed-up the FLOP-proportional bound
  (dense FLOPs / pruned FLOPs of one forward, linear layers incl. the LM head plus attention scores);
* parameters and checkpoint bytes (float32 safetensors);
* quality on the shipped DLM: ELBO perplexity and masked-token accuracy on held-out text (same masks and seed for
  every model) for `sink_heads` and each baseline at equal budget.

    python benchmarks/bench_structured.py            # everything, ~10 min on 2 CPU threads
    python benchmarks/bench_structured.py --part speed

Writes benchmarks/results/structured.json and .md.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

import optimum_sinkprune  # noqa: F401  (registers the Auto classes)
from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.diffusion import elbo_log_likelihood, generate
from optimum_sinkprune.models.pruned_loading import register_pruned_loading
from optimum_sinkprune.models import LLaDAConfig, LLaDAModelLM
from optimum_sinkprune.structured import block_parameter_count, prune_structured

RESULTS = Path(__file__).parent / "results"
REDUCTIONS = (0.2, 0.38, 0.5)
METHODS = ("sink_heads", "activation_heads", "magnitude_heads", "random_heads")


class BudgetConfig:
    """The structured fields of `SinkAwarePruningConfig` (kept minimal so the benchmark runs on its own)."""

    def __init__(self, method: str, reduction: float, **calibration):
        self.method = method
        self.target_param_reduction = reduction
        self.allocation = "uniform"
        self.structured_mode = "remove"
        for key, value in calibration.items():
            setattr(self, key, value)


def make_config(method: str, reduction: float, **calibration):
    try:
        from optimum_sinkprune.configuration import SinkAwarePruningConfig

        return SinkAwarePruningConfig(method=method, target_param_reduction=reduction, allocation="uniform",
                                      structured_mode="remove", **calibration)
    except ImportError:
        return BudgetConfig(method, reduction, **calibration)


# ------------------------------------------------------------------------------------------------------------------
# pure accounting
# ------------------------------------------------------------------------------------------------------------------
def forward_flops(model: nn.Module, seq: int) -> float:
    """Multiply-add FLOPs (×2) of one forward over `seq` tokens: every linear layer (LM head included) plus the
    attention scores and weighted sum (4 · seq² · head_dim per head and layer)."""
    adapter = get_adapter(model)
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    if getattr(model.config, "weight_tying", False):
        linear += model.get_input_embeddings().weight.numel()
    hd = adapter.head_dim(model)
    heads = sum(adapter.num_heads(model, i) for i in range(adapter.num_layers(model)))
    return 2.0 * linear * seq + 4.0 * seq * seq * hd * heads


def total_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def checkpoint_size(model: nn.Module) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        return sum(f.stat().st_size for f in Path(tmp).glob("*.safetensors"))


# ------------------------------------------------------------------------------------------------------------------
# speed
# ------------------------------------------------------------------------------------------------------------------
@torch.no_grad()
def time_sampler(models: dict[str, nn.Module], *, prompt_len: int, gen_length: int, steps: int, reps: int,
                 vocab: int) -> dict[str, float]:
    """Fastest and median wall time of `generate` per model. Runs are interleaved (dense, pruned, …, dense, …) so that
    load from other processes hits every model alike; speed-ups use the fastest run, the least disturbed one."""
    prompt = torch.randint(4, vocab, (1, prompt_len), generator=torch.Generator().manual_seed(0))
    times: dict[str, list[float]] = {name: [] for name in models}
    for name, model in models.items():  # warm-up
        generate(model, prompt, steps=min(steps, 2), gen_length=gen_length, block_length=gen_length)
    for _ in tqdm(range(reps), desc=f"sampler {prompt_len + gen_length} tokens", leave=False):
        for name, model in models.items():
            start = time.perf_counter()
            generate(model, prompt, steps=steps, gen_length=gen_length, block_length=gen_length)
            times[name].append(time.perf_counter() - start)
    return {name: (min(t), statistics.median(t)) for name, t in times.items()}


def speed_rows(models: dict[str, nn.Module], *, lengths: list[tuple[int, int, int]], reps: int, vocab: int):
    rows = []
    dense = models["dense"]
    for prompt_len, gen_length, steps in lengths:
        seq = prompt_len + gen_length
        latency = time_sampler(models, prompt_len=prompt_len, gen_length=gen_length, steps=steps, reps=reps,
                               vocab=vocab)
        for name, model in models.items():
            bound = forward_flops(dense, seq) / forward_flops(model, seq)
            speedup = latency["dense"][0] / latency[name][0]
            rows.append({
                "model": name,
                "tokens": seq,
                "steps": steps,
                "latency_s": latency[name][0],
                "latency_median_s": latency[name][1],
                "tokens_per_s": gen_length / latency[name][0],
                "speedup": speedup,
                "flop_bound": bound,
                "fraction_of_bound": speedup / bound,
            })
    return rows


def size_rows(models: dict[str, nn.Module]):
    dense = models["dense"]
    dense_block = block_parameter_count(dense)
    rows = []
    for name, model in models.items():
        rows.append({
            "model": name,
            "params": total_params(model),
            "block_params": block_parameter_count(model),
            "block_reduction": 1 - block_parameter_count(model) / dense_block,
            "checkpoint_bytes": checkpoint_size(model),
        })
    return rows


def scaled_up_models(reductions) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    config = LLaDAConfig(d_model=512, n_heads=8, n_layers=8, mlp_hidden_size=1536, vocab_size=4096,
                         embedding_size=4096, max_sequence_length=1024, mask_token_id=3, eos_token_id=2,
                         pad_token_id=0, bos_token_id=1)
    dense = LLaDAModelLM(config).eval()
    models = {"dense": dense}
    for r in reductions:
        pruned = copy.deepcopy(dense)
        # speed depends on shapes only: weight-magnitude scores, uniform allocation
        prune_structured(pruned, config=make_config("magnitude_heads", r), calibration_ids=None, progress=False)
        models[f"pruned {round(100 * r)}%"] = pruned
    return models


# ------------------------------------------------------------------------------------------------------------------
# quality on the shipped DLM
# ------------------------------------------------------------------------------------------------------------------
def shipped_dlm():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from optimum_sinkprune.assets import default_model_path

    path = default_model_path()
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    return path, model, tokenizer


def quality(model, eval_ids, *, mc_num: int) -> dict:
    maskable = torch.ones_like(eval_ids, dtype=torch.bool)
    maskable[:, 0] = False  # BOS is never masked nor scored
    res = elbo_log_likelihood(model, eval_ids, mc_num=mc_num, maskable=maskable, seed=0, batch_size=16)
    return {"elbo_ppl": res.perplexity, "ppl_ci": list(res.perplexity_ci), "masked_accuracy": res.masked_accuracy}


def run_shipped(args, report: dict, *, do_quality: bool, do_speed: bool) -> None:
    from optimum_sinkprune.assets import load_calibration_texts, load_heldout_texts
    from optimum_sinkprune.calibration.data import get_calibration_dataset
    from optimum_sinkprune.evaluation.data import build_eval_sequences

    path, dense, tokenizer = shipped_dlm()
    train_info = {}
    if os.path.isfile(os.path.join(path, "training_args.json")):
        train_info = json.loads(Path(path, "training_args.json").read_text())
    report["shipped_model"] = {"path": os.path.relpath(path, Path(__file__).parent.parent),
                               "steps_done": train_info.get("steps_done"), "finished": train_info.get("finished"),
                               "num_parameters": total_params(dense)}
    calibration = dict(num_samples=args.calib_samples, seq_len=128, seed=0, batch_size=8, diffusion_steps=50,
                       sample_interval=10)
    pruned_for_speed = {"dense": dense}
    if do_quality:
        calib = get_calibration_dataset(tokenizer, load_calibration_texts(), num_samples=args.calib_samples,
                                        seq_len=128, seed=0, model=dense)
        eval_ids = build_eval_sequences(tokenizer, load_heldout_texts(), seq_len=128,
                                        num_sequences=args.eval_sequences, bos_token_id=tokenizer.bos_token_id)
        rows = [{"method": "dense", "target": 0.0, "block_reduction": 0.0, **quality(dense, eval_ids, mc_num=args.mc)}]
        jobs = [(r, m) for r in REDUCTIONS for m in METHODS]
        for r, method in tqdm(jobs, desc="shipped DLM: prune + ELBO"):
            model = copy.deepcopy(dense)
            result = prune_structured(model, config=make_config(method, r, **calibration), calibration_ids=calib,
                                      progress=False)
            rows.append({"method": method, "target": r, "block_reduction": result.realised_reduction,
                         "pruned_heads": {str(k): v for k, v in result.pruned_heads.items()},
                         "mlp_widths": result.mlp_widths, **quality(model, eval_ids, mc_num=args.mc)})
            if method == "sink_heads":
                pruned_for_speed[f"sink_heads {round(100 * r)}%"] = model
        report["shipped_quality"] = rows
        report["shipped_quality_setup"] = {"calibration_samples": args.calib_samples,
                                           "eval_sequences": args.eval_sequences, "seq_len": 128, "mc_num": args.mc,
                                           "mask_seed": 0, **calibration}
    else:  # uniform allocation: the same shapes (hence speed) as sink_heads at the same budget
        for r in REDUCTIONS:
            model = copy.deepcopy(dense)
            prune_structured(model, config=make_config("magnitude_heads", r), calibration_ids=None, progress=False)
            pruned_for_speed[f"pruned {round(100 * r)}%"] = model
    if do_speed:
        report["shipped_size"] = size_rows(pruned_for_speed)
        report["shipped_speed"] = speed_rows(pruned_for_speed, lengths=[(16, 112, 16)], reps=args.reps,
                                             vocab=dense.config.vocab_size)


# ------------------------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------------------------
def _md_speed(rows) -> list[str]:
    out = ["| model | tokens | steps | latency (s), best / median | tokens/s | speed-up | FLOP bound | speed-up / bound |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['model']} | {r['tokens']} | {r['steps']} | {r['latency_s']:.3f} / {r['latency_median_s']:.3f} | "
                   f"{r['tokens_per_s']:.1f} | "
                   f"{r['speedup']:.2f}× | {r['flop_bound']:.2f}× | {r['fraction_of_bound']:.2f} |")
    return out


def _md_size(rows) -> list[str]:
    out = ["| model | params | block params | block reduction | checkpoint (MB) |", "|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['model']} | {r['params']:,} | {r['block_params']:,} | {100 * r['block_reduction']:.1f}% | "
                   f"{r['checkpoint_bytes'] / 1e6:.2f} |")
    return out


def write_markdown(report: dict) -> str:
    lines = ["# Structured pruning: size, speed, quality", "",
             f"torch {report['env']['torch']}, transformers {report['env']['transformers']}, "
             f"torch.set_num_threads({report['env']['threads']}), {report['env']['machine']}. "
             "Speed: LLaDA diffusion sampler, batch 1, one block, fixed steps; "
             f"{report['env']['reps']} interleaved runs per model, speed-up and tokens/s from the fastest run. FLOP "
             "bound = dense / pruned FLOPs of one forward (linear layers incl. LM head, attention scores). The 2 cores were "
             "shared with other jobs: the gap between best and median shows that interference, hence best-of-N.", ""]
    if "scaled_speed" in report:
        lines += ["## Scaled-up config (d_model 512, 8 layers, 8 heads, MLP 1536, random weights)", ""]
        lines += _md_size(report["scaled_size"]) + [""] + _md_speed(report["scaled_speed"]) + [""]
    if report.get("shipped_model"):
        info = report["shipped_model"]
        lines += ["## Shipped tiny DLM", "",
                  f"Checkpoint: {info['path']} (training steps done: {info['steps_done']}, finished: "
                  f"{info['finished']}).", ""]
        if "shipped_size" in report:
            lines += _md_size(report["shipped_size"]) + [""] + _md_speed(report["shipped_speed"]) + [""]
    if "shipped_quality" in report:
        setup = report["shipped_quality_setup"]
        lines += [f"ELBO on {setup['eval_sequences']} held-out sequences × {setup['seq_len']} tokens, "
                  f"{setup['mc_num']} mask draws (seed {setup['mask_seed']}, the same masks for every model); "
                  f"calibration {setup['calibration_samples']} samples, steps every {setup['sample_interval']} of "
                  f"{setup['diffusion_steps']}.", "",
                  "| target | method | block reduction | ELBO perplexity (±2 s.e.) | masked accuracy |",
                  "|---|---|---|---|---|"]
        for r in report["shipped_quality"]:
            lo, hi = r["ppl_ci"]
            lines.append(f"| {100 * r['target']:.0f}% | {r['method']} | {100 * r['block_reduction']:.1f}% | "
                         f"{r['elbo_ppl']:.2f} ({lo:.2f}–{hi:.2f}) | {100 * r['masked_accuracy']:.2f}% |")
        lines += ["", "sink_heads against each baseline at equal budget (ELBO perplexity, lower is better):", ""]
        lines += [f"* {line}" for line in quality_verdicts(report["shipped_quality"])]
        lines.append("")
    return "\n".join(lines)


def quality_verdicts(rows) -> list[str]:
    """One line per budget: sink_heads' perplexity next to each baseline's, and whether it is at least as good."""
    out = []
    for target in sorted({r["target"] for r in rows if r["method"] != "dense"}):
        at = {r["method"]: r for r in rows if r["target"] == target}
        ours = at["sink_heads"]["elbo_ppl"]
        parts = []
        for method in METHODS[1:]:
            theirs = at[method]["elbo_ppl"]
            parts.append(f"{method} {theirs:.2f} ({'sink_heads better or equal' if ours <= theirs else 'sink_heads worse'})")
        out.append(f"{100 * target:.0f}%: sink_heads {ours:.2f} vs " + "; ".join(parts))
    return out


def rewrite_markdown(json_path: str | os.PathLike) -> str:
    """Regenerate the .md next to a results .json (no measurement)."""
    path = Path(json_path)
    text = write_markdown(json.loads(path.read_text()))
    path.with_suffix(".md").write_text(text + "\n")
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("all", "speed", "quality"), default="all")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--mc", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="sampler steps on the scaled-up config")
    parser.add_argument("--calib-samples", type=int, default=16)
    parser.add_argument("--eval-sequences", type=int, default=32)
    parser.add_argument("--long", action="store_true", help="also time 1024-token generation on the scaled-up config")
    parser.add_argument("--out", default=str(RESULTS / "structured"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    register_pruned_loading()
    import transformers

    report = {"env": {"torch": torch.__version__, "transformers": transformers.__version__, "threads": args.threads,
                      "reps": args.reps, "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                      "python": sys.version.split()[0]}}
    if args.part in ("all", "speed"):
        models = scaled_up_models(REDUCTIONS)
        report["scaled_size"] = size_rows(models)
        lengths = [(16, 240, args.steps)] + ([(16, 1008, 2)] if args.long else [])
        report["scaled_speed"] = speed_rows(models, lengths=lengths, reps=args.reps, vocab=4096)
        del models
    try:
        from optimum_sinkprune.assets import default_model_path

        default_model_path()
        have_shipped = True
    except (FileNotFoundError, ImportError):
        have_shipped = False
    if have_shipped:
        run_shipped(args, report, do_quality=args.part in ("all", "quality"), do_speed=args.part in ("all", "speed"))
    else:
        report["shipped_model"] = None  # not trained yet: run `python benchmarks/bench_structured.py` again later
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.part != "all" and out.with_suffix(".json").is_file():
        # a partial run updates its own sections and keeps the other part's (each part is measured in one run)
        previous = json.loads(out.with_suffix(".json").read_text())
        report = {**previous, **report, "env_" + args.part: report["env"]}
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(write_markdown(report) + "\n")
    print(write_markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
