# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Full-width check on one accelerator: LLaDA-8B's real width, random weights, a few blocks.

A LLaDA model of LLaDA-8B's width (d_model 4096, 32 heads, MLP 12288, vocab 126464) with `--layers` blocks and
random weights N(0, 1/in) is built directly on the device (meta device, then `to_empty`, so nothing is initialised
twice). Cases, each in its own subprocess (so peak memory is measured from a clean process):

* `sink_wanda`, `sink_sparsegpt`: `SinkAwarePruner.prune` at 50 %, one calibration window of `--seq-len` tokens:
  total time, time in the calibration forwards, time per block, peak extra memory on the device next to the up-front
  estimate (`report.memory_estimate`), and host RSS;
* `structured`: `sink_heads` at a 38 % block-parameter budget with removal (`structured_mode="remove"`), then the
  diffusion sampler, dense and pruned interleaved (tokens/s, speed-up, FLOP bound = dense / pruned FLOPs of one
  forward), then `save_pretrained` → `from_pretrained` of the pruned model and its logits against those before
  saving; time and peak extra memory of every step.

Peak extra memory: on an accelerator `torch.accelerator.max_memory_allocated` minus the allocation when the step
starts; on the CPU the process's peak RSS (VmHWM, reset at the start) minus its RSS then.

    python benchmarks/gpu_check.py                      # first accelerator, 4 blocks, bfloat16, 4096 tokens
    python benchmarks/gpu_check.py --device xpu:0 --layers 2
    python benchmarks/gpu_check.py --cpu                # 2 blocks, float32, 128 tokens (a few minutes per case)
    python benchmarks/gpu_check.py --cpu --cases structured

Sized, from FLOP counts and the CPU timings, for under 8 minutes on one H100/H200-class GPU at the defaults (builds
on the device take seconds; the longest case is `sink_sparsegpt`, whose column loop is latency-bound); not yet run on
a GPU. Results: benchmarks/results/gpu_check.{json,md}
(accelerator) or gpu_check_cpu.{json,md} (`--cpu`); the cases of one invocation are merged into an existing file's
other cases, so a mode's cases can run one at a time.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

from bench_scale import WIDTH, _reset_peak, _status_kb, _timed  # noqa: E402

CASES = ("sink_wanda", "sink_sparsegpt", "structured")
HEAD_BUDGET = 0.38


# ---------------------------------------------------------------------------------------------------------------------
# device, model, meters
# ---------------------------------------------------------------------------------------------------------------------
def pick_device(name: str | None, cpu: bool):
    """The device to run on: the CPU with `cpu`, `name` when given, else the first accelerator torch finds."""
    import torch

    if cpu:
        return torch.device("cpu")
    if name:
        return torch.device(name)
    if torch.accelerator.is_available():
        return torch.accelerator.current_accelerator()
    raise SystemExit("no accelerator is available to torch here: pass --device, or run the CPU mode with --cpu")


def build_model(layers: int, device, dtype, seed: int = 0, width: dict | None = None):
    """Full-width LLaDA with `layers` blocks built on `device`: matrices N(0, 1/in), norm scales 1, biases 0."""
    import torch

    from optimum_sinkprune import LLaDAConfig, LLaDAModelLM

    config = LLaDAConfig(n_layers=layers, max_sequence_length=4096, **(width or WIDTH))
    with torch.device("meta"):
        model = LLaDAModelLM(config)
    model = model.to_empty(device=device).to(dtype).eval()
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0, p.shape[1] ** -0.5, generator=generator)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.fill_(1.0)
    return model


class Meter:
    """Wall time and peak extra memory of one step, on the device (accelerator allocator or, on the CPU, RSS)."""

    def __init__(self, device):
        self.device = device
        self.accelerator = device.type != "cpu"

    def sync(self) -> None:
        import torch

        if self.accelerator:
            torch.accelerator.synchronize(self.device)

    def __enter__(self):
        import torch

        gc.collect()
        self.sync()
        if self.accelerator:
            torch.accelerator.reset_peak_memory_stats(self.device)
            self.base = torch.accelerator.memory_allocated(self.device)
        self.host_base = _status_kb("VmRSS") * 1024
        _reset_peak()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        import torch

        self.sync()
        self.seconds = time.perf_counter() - self.start
        self.host_peak_extra = _status_kb("VmHWM") * 1024 - self.host_base
        self.host_after = _status_kb("VmRSS") * 1024
        if self.accelerator:
            self.peak_extra = torch.accelerator.max_memory_allocated(self.device) - self.base
        else:
            self.peak_extra = self.host_peak_extra
        return False

    def row(self, step: str, **extra) -> dict:
        return {"step": step, "seconds": self.seconds, "peak_extra_bytes": self.peak_extra,
                "host_peak_extra_bytes": self.host_peak_extra, "host_rss_before_bytes": self.host_base,
                "host_rss_after_bytes": self.host_after, **extra}


# a narrow model of the same vocabulary, to try the script end to end in seconds (`--smoke`; not a measurement)
SMOKE_WIDTH = dict(WIDTH, d_model=256, n_heads=4, mlp_hidden_size=768)


def _width(opts) -> dict:
    return SMOKE_WIDTH if opts.smoke else WIDTH


def _weights_bytes(module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


# ---------------------------------------------------------------------------------------------------------------------
# cases (run in a worker subprocess)
# ---------------------------------------------------------------------------------------------------------------------
def case_unstructured(opts, device, dtype) -> dict:
    import torch

    from optimum_sinkprune import SinkAwarePruner, SinkAwarePruningConfig
    from optimum_sinkprune.calibration import pipeline as pipeline_module

    with Meter(device) as build:
        model = build_model(opts.layers, device, dtype, width=_width(opts))
    pruner = SinkAwarePruner(model)
    block_bytes = _weights_bytes(pruner.adapter.blocks(model)[0])
    sections: dict[str, float] = {}
    stack: list[float] = []
    import optimum_sinkprune.methods as methods_module

    for name in ("dense", "sequential"):
        _timed(pipeline_module.CalibrationPipeline, name, sections, "forwards", stack)
    # exclusive times: with the sequential order the masks (and SparseGPT's reconstruction) run inside the pipeline
    _timed(methods_module, "layer_mask", sections, "mask", stack)
    _timed(methods_module, "apply_mask", sections, "apply", stack)
    estimates = _capture_estimates()
    config = SinkAwarePruningConfig(method=opts.case, sparsity=0.5, num_samples=1, seq_len=opts.seq_len)
    ids = torch.randint(0, 126000, (1, opts.seq_len), generator=torch.Generator().manual_seed(1))
    with Meter(device) as run:
        report = pruner.prune(config, ids, progress=False)[1]
    est = report.memory_estimate or {}
    forwards = sections.get("forwards", 0.0)
    return {
        "case": opts.case, "seq_len": opts.seq_len, "layers": opts.layers, "build_s": build.seconds,
        "total_s": run.seconds, "forwards_s": forwards, "mask_s": sections.get("mask", 0.0),
        "apply_s": sections.get("apply", 0.0), "per_block_s": run.seconds / opts.layers,
        "forward_passes": report.calibration.get("forward_passes"), "sparsity": report.total_sparsity,
        "peak_extra_bytes": run.peak_extra, "host_peak_extra_bytes": run.host_peak_extra,
        "estimate_device_bytes": est.get("device_bytes"), "estimate_host_bytes": est.get("host_bytes"),
        "estimate_disk_bytes": estimates[0].disk_bytes if estimates else None,
        "estimate_parts": estimates[0].parts if estimates else None, "block_weight_bytes": block_bytes,
        "model_weight_bytes": _weights_bytes(model),
    }


def _capture_estimates() -> list:
    """Keep every `MemoryEstimate` the run computes (the report keeps only its totals): parts and disk bytes."""
    from optimum_sinkprune.calibration import engine

    seen: list = []
    original = engine.estimate_memory

    def wrapper(*args, **kwargs):
        seen.append(original(*args, **kwargs))
        return seen[-1]

    engine.estimate_memory = wrapper
    return seen


def _shared_copy(model):
    """A deep copy of `model` that shares the embedding and output head (structured pruning changes blocks only),
    so the dense and pruned models fit side by side at full width."""
    from optimum_sinkprune.adapters import get_adapter

    blocks = {id(p) for block in get_adapter(model).blocks(model) for p in block.parameters()}
    memo = {id(p): p for p in model.parameters() if id(p) not in blocks}
    return copy.deepcopy(model, memo)


def forward_flops(model, seq: int) -> float:
    """FLOPs of one forward over `seq` tokens: every linear layer (LM head included), attention scores and sum."""
    from bench_structured import forward_flops as flops

    return flops(model, seq)


def time_sampler(models: dict, *, prompt_len: int, gen_length: int, steps: int, reps: int, vocab: int, meter_device):
    """Wall time of `generate` per model, interleaved (dense, pruned, dense, ...) after one warm-up each."""
    import torch

    from optimum_sinkprune.diffusion import generate

    prompt = torch.randint(4, vocab - 1, (1, prompt_len), generator=torch.Generator().manual_seed(0))
    prompt = prompt.to(meter_device)
    times: dict[str, list[float]] = {name: [] for name in models}
    meter = Meter(meter_device)
    with torch.no_grad():
        for model in models.values():
            generate(model, prompt, steps=1, gen_length=gen_length, block_length=gen_length)
        for _ in range(reps):
            for name, model in models.items():
                meter.sync()
                start = time.perf_counter()
                generate(model, prompt, steps=steps, gen_length=gen_length, block_length=gen_length)
                meter.sync()
                times[name].append(time.perf_counter() - start)
    return times


def case_structured(opts, device, dtype) -> dict:
    import torch

    from optimum_sinkprune import SinkAwarePruner, SinkAwarePruningConfig
    from optimum_sinkprune.models import LLaDAModelLM
    from optimum_sinkprune.structured import block_parameter_count

    steps = []
    with Meter(device) as m:
        dense = build_model(opts.layers, device, dtype, width=_width(opts))
    steps.append(m.row("build dense model"))
    with Meter(device) as m:
        model = _shared_copy(dense)
    steps.append(m.row("copy blocks (embedding and head shared)"))
    config = SinkAwarePruningConfig(method="sink_heads", target_param_reduction=HEAD_BUDGET, structured_mode="remove",
                                    num_samples=1, seq_len=opts.seq_len)
    ids = torch.randint(0, 126000, (1, opts.seq_len), generator=torch.Generator().manual_seed(1))
    pruner = SinkAwarePruner(model)
    with Meter(device) as m:
        report = pruner.prune(config, ids, progress=False)[1]
    structured = report.structured or {}
    steps.append(m.row("sink_heads: calibrate, score, remove"))

    seq = opts.sampler_tokens
    gen = opts.gen_length
    models = {"dense": dense, f"sink_heads {round(100 * HEAD_BUDGET)}%": model}
    times = time_sampler(models, prompt_len=seq - gen, gen_length=gen, steps=opts.sampler_steps, reps=opts.reps,
                         vocab=WIDTH["vocab_size"], meter_device=device)
    best_dense = min(times["dense"])
    sampler = []
    for name, timed in models.items():
        best = min(times[name])
        bound = forward_flops(dense, seq) / forward_flops(timed, seq)
        sampler.append({"model": name, "tokens": seq, "gen_length": gen, "steps": opts.sampler_steps,
                        "latency_best_s": best, "latency_median_s": statistics.median(times[name]),
                        "latency_all_s": times[name], "tokens_per_s": gen / best, "speedup": best_dense / best,
                        "flop_bound": bound, "fraction_of_bound": (best_dense / best) / bound,
                        "block_params": block_parameter_count(timed)})

    probe = torch.randint(0, 126000, (1, 64), generator=torch.Generator().manual_seed(2)).to(device)
    with torch.no_grad():
        reference = model(probe).logits.float().cpu()
    del dense, models, timed
    with tempfile.TemporaryDirectory(dir=opts.tmp) as tmp:
        with Meter(device) as m:
            pruner.save_pretrained(tmp)
        disk = sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp) if f.endswith(".safetensors"))
        steps.append(m.row("save_pretrained", checkpoint_bytes=disk))
        del model, pruner
        gc.collect()
        with Meter(device) as m:
            reloaded = LLaDAModelLM.from_pretrained(tmp, dtype=dtype, device_map=str(device)).eval()
        steps.append(m.row("from_pretrained (the pruned model freed first)"))
        with Meter(device) as m, torch.no_grad():  # the first forward reads every weight (memory-mapped files)
            logits = reloaded(probe).logits.float().cpu()
        steps.append(m.row("first forward of the reloaded model (64 tokens)"))
    identical = bool(torch.equal(logits, reference))
    return {
        "case": "structured", "seq_len": opts.seq_len, "layers": opts.layers, "head_budget": HEAD_BUDGET,
        "realised_reduction": structured.get("realised_reduction"), "pruned_heads": structured.get("pruned_heads"),
        "mlp_widths": structured.get("mlp_widths"), "steps": steps, "sampler": sampler,
        "reload_logits_identical": identical,
        "reload_max_abs_diff": float((logits - reference).abs().max()),
        "reload_shapes_match": [tuple(p.shape) for p in reloaded.parameters()][:12],
    }


def worker(opts) -> dict:
    import torch

    torch.set_num_threads(opts.threads)
    device = pick_device(opts.device, opts.cpu)
    dtype = getattr(torch, opts.dtype)
    torch.manual_seed(0)
    if opts.case == "structured":
        return case_structured(opts, device, dtype)
    return case_unstructured(opts, device, dtype)


# ---------------------------------------------------------------------------------------------------------------------
# driver and report
# ---------------------------------------------------------------------------------------------------------------------
def _gb(value) -> str:
    return "–" if value is None else f"{value / 1e9:.2f}"


def _seconds(value) -> str:
    return "–" if value is None else f"{value:.1f}"


def _ratio(num, den) -> str:
    return "–" if not num or not den else f"{num / den:.2f}"


def markdown(result: dict) -> str:
    env = result["env"]
    lines = [
        f"# Full-width check ({env['mode']})", "",
        f"LLaDA of LLaDA-8B's width (d_model 4096, 32 heads, MLP 12288, vocab 126464), {env['layers']} blocks, random "
        f"weights, {env['dtype']}, device `{env['device']}` ({env['device_name']}), torch {env['torch']}, "
        f"{env['threads']} CPU threads, machine {env['machine']} ({env['cpus']} cores; load average at the start "
        f"{env['load']}). Each case is its own subprocess.", "",
    ]
    if env["device"] == "cpu":
        lines += ["**No GPU was available: every number here was measured on the CPU.** The accelerator mode "
                  "(`python benchmarks/gpu_check.py`, 4 blocks, bfloat16, 4096 tokens) has not been run; its GPU "
                  "numbers do not exist yet.", ""]
    rows = [r for r in result["cases"].values() if r["case"] != "structured"]
    if rows:
        lines += ["## Weight pruning (50 %, one calibration window)", "",
                  "| method | tokens | total (s) | calibration forwards (s) | masks / reconstruction (s) | per block "
                  "(s) | peak extra memory (GB) | estimate (GB) | estimate / measured | host peak extra (GB) | "
                  "restore copies on disk, estimated (GB) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            est = r["estimate_device_bytes"]
            lines.append(
                f"| {r['case']} | {r['seq_len']} | {r['total_s']:.1f} | {r['forwards_s']:.1f} | "
                f"{_seconds(r.get('mask_s'))} | {r['per_block_s']:.1f} | {_gb(r['peak_extra_bytes'])} | "
                f"{_gb(est)} | {_ratio(est, r['peak_extra_bytes'])} | {_gb(r['host_peak_extra_bytes'])} | "
                f"{_gb(r['estimate_disk_bytes'])} |")
        lines += ["", "Load average when each case started: " + "; ".join(
            f"{r['case']} {r.get('load_at_start', '?')}" for r in rows) + "."]
        block = rows[0]["block_weight_bytes"]
        lines += ["", f"One block's weights: {block / 1e9:.3f} GB; the model's: "
                  f"{rows[0]['model_weight_bytes'] / 1e9:.2f} GB.", ""]
    s = result["cases"].get("structured")
    if s:
        verdict = "identical" if s["reload_logits_identical"] else "DIFFERENT"
        lines += [f"## Structured: sink_heads at {round(100 * s['head_budget'])} % of block parameters, removal, "
                  "save and reload", "",
                  f"Calibration: one window of {s['seq_len']} tokens. Realised block-parameter reduction: "
                  f"{100 * (s['realised_reduction'] or 0):.1f} %; MLP widths {s['mlp_widths']}. Reloaded with "
                  f"`from_pretrained`: logits on 64 probe tokens **{verdict}** (max |Δ| "
                  f"{s['reload_max_abs_diff']:.3g}).", "",
                  "| step | time (s) | peak extra memory (GB) | host peak extra (GB) | host RSS before → after (GB) "
                  "| note |", "|---|---|---|---|---|---|"]
        for st in s["steps"]:
            note = f"checkpoint {st['checkpoint_bytes'] / 1e9:.2f} GB" if "checkpoint_bytes" in st else ""
            lines.append(f"| {st['step']} | {st['seconds']:.1f} | {_gb(st['peak_extra_bytes'])} | "
                         f"{_gb(st['host_peak_extra_bytes'])} | {_gb(st['host_rss_before_bytes'])} → "
                         f"{_gb(st['host_rss_after_bytes'])} | {note} |")
        lines += ["", f"Load average when this case started: {s.get('load_at_start', '?')}."]
        smp = s["sampler"][0]
        lines += ["", f"Diffusion sampler: {smp['tokens']} tokens ({smp['tokens'] - smp['gen_length']} prompt + "
                  f"{smp['gen_length']} generated), {smp['steps']} steps, batch 1, {result['env']['reps']} "
                  "interleaved runs per model after one warm-up; best run used. FLOP bound: dense / pruned FLOPs of "
                  "one forward (linear layers incl. the LM head, attention).", "",
                  "| model | block params | latency best / median (s) | tokens/s | speed-up | FLOP bound | "
                  "speed-up / bound |", "|---|---|---|---|---|---|---|"]
        for r in s["sampler"]:
            lines.append(f"| {r['model']} | {r['block_params']:,} | {r['latency_best_s']:.2f} / "
                         f"{r['latency_median_s']:.2f} | {r['tokens_per_s']:.2f} | {r['speedup']:.2f}× | "
                         f"{r['flop_bound']:.2f}× | {r['fraction_of_bound']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def _device_name(opts) -> str:
    import torch

    device = pick_device(opts.device, opts.cpu)
    if device.type == "cpu":
        return platform.processor() or platform.machine()
    module = getattr(torch, device.type, None)
    name = getattr(module, "get_device_name", None)
    return name(device) if name else device.type


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu", action="store_true", help="CPU mode: 2 blocks, float32, short sequences")
    parser.add_argument("--device", default=None, help="torch device (default: the first accelerator)")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--layers", type=int, default=None, help="blocks (default: 4 on an accelerator, 2 with --cpu)")
    parser.add_argument("--seq-len", type=int, default=None, help="calibration tokens (default 4096; 128 with --cpu)")
    parser.add_argument("--sampler-tokens", type=int, default=None, help="prompt + generated (4096; 64 with --cpu)")
    parser.add_argument("--gen-length", type=int, default=None, help="generated tokens (256; 32 with --cpu)")
    parser.add_argument("--sampler-steps", type=int, default=None, help="sampler steps (32; 2 with --cpu)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--dtype", default=None, help="bfloat16 on an accelerator, float32 with --cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tmp", default=None, help="folder for the temporary checkpoint (default: the system's)")
    parser.add_argument("--output", default=None)
    parser.add_argument("--smoke", action="store_true", help="d_model 256 instead of 4096: try the script (writes "
                        "nothing unless --output is given)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    defaults = ({"layers": 2, "seq_len": 128, "sampler_tokens": 64, "gen_length": 32, "sampler_steps": 2,
                 "dtype": "float32"} if opts.cpu else
                {"layers": 4, "seq_len": 4096, "sampler_tokens": 4096, "gen_length": 256, "sampler_steps": 32,
                 "dtype": "bfloat16"})
    for key, value in defaults.items():
        if getattr(opts, key) is None:
            setattr(opts, key, value)
    if opts.worker:
        row = worker(opts)
        with open(opts.json, "w", encoding="utf-8") as fh:
            json.dump(row, fh)
        return

    import torch

    output = opts.output or os.path.join(RESULTS, "gpu_check_cpu" if opts.cpu else "gpu_check")
    if opts.smoke and not opts.output:
        output = os.path.join(tempfile.gettempdir(), "gpu_check_smoke")
    device = pick_device(opts.device, opts.cpu)
    previous = {}
    if os.path.isfile(output + ".json"):
        with open(output + ".json", encoding="utf-8") as fh:
            previous = json.load(fh).get("cases", {})
    env = {"mode": "CPU mode, no GPU" if device.type == "cpu" else "accelerator", "device": str(device),
           "device_name": _device_name(opts), "torch": torch.__version__, "layers": opts.layers, "dtype": opts.dtype,
           "threads": opts.threads, "reps": opts.reps, "machine": platform.machine(), "cpus": os.cpu_count(),
           "load": ", ".join(f"{x:.2f}" for x in os.getloadavg())}
    if device.type == "cpu":
        print("No GPU: running on the CPU; these are not GPU numbers.", flush=True)
    cases = dict(previous)
    for case in opts.cases:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "out.json")
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--case", case, "--json", out]
            for key in ("layers", "seq_len", "sampler_tokens", "gen_length", "sampler_steps", "reps", "dtype",
                        "threads", "tmp", "device"):
                value = getattr(opts, key)
                if value is not None:
                    cmd += [f"--{key.replace('_', '-')}", str(value)]
            for flag in ("cpu", "smoke"):
                if getattr(opts, flag):
                    cmd.append(f"--{flag}")
            load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
            start = time.perf_counter()
            subprocess.run(cmd, check=True, env=dict(os.environ, PYTHONPATH=ROOT))
            with open(out, encoding="utf-8") as fh:
                row = json.load(fh)
        row["wall_s"] = time.perf_counter() - start
        row["env"] = env
        row["load_at_start"] = load
        cases[case] = row
        print(json.dumps({k: v for k, v in row.items() if k not in ("steps", "sampler", "env", "pruned_heads",
                                                                   "reload_shapes_match")}), flush=True)
        result = {"env": env, "cases": cases}
        os.makedirs(os.path.dirname(output), exist_ok=True)
        with open(output + ".json", "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)
        with open(output + ".md", "w", encoding="utf-8") as fh:
            fh.write(markdown(result))
    print(markdown({"env": env, "cases": cases}))


if __name__ == "__main__":
    main()
