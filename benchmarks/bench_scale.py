# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Pruning at full LLaDA-8B width: wall time, time in the calibration forwards, peak extra host memory, estimate.

A LLaDA model of LLaDA-8B's real width (d_model 4096, 32 heads, MLP 12288, vocab 126464) with a few blocks and
random weights (float32, CPU) is pruned with `sink_wanda` (50 %, one calibration window, the default noise ladder:
10 forwards) at each sequence length. Per run, in its own subprocess:

* total: wall time of `SinkAwarePruner.prune`;
* forwards: time inside the calibration pipeline (`CalibrationPipeline.dense` / `.sequential`: the forwards and the
  observers' reductions), so `total − forwards` is the work after calibration (scoring, masking, applying, counting);
* peak extra host memory: the process's peak RSS during `prune` (VmHWM, reset just before) minus its RSS with the
  model loaded, next to the up-front estimate (`report.memory_estimate["host_bytes"]`) and one block's weight bytes;
* sections: wall time of the pruner's pieces (mask selection, applying, parameter counting, report), from wrappers
  installed in the subprocess only.

`--baseline DIR` runs the same cases with the package found in DIR (a copy of an earlier tree), side by side in the
same invocation, so "before" and "after" share the machine's load. Results: benchmarks/results/scale.{json,md}.

    python benchmarks/bench_scale.py                                  # 256 and 512 tokens, two blocks
    python benchmarks/bench_scale.py --baseline /tmp/old-tree --repeats 2
    python benchmarks/bench_scale.py --py-spy                         # also a sampled profile per run
"""

from __future__ import annotations

import argparse
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
WIDTH = dict(d_model=4096, n_heads=32, mlp_hidden_size=12288, vocab_size=126464, embedding_size=126464)


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    # "5" resets the peak resident set size (VmHWM) of this process to its current RSS
    with open("/proc/self/clear_refs", "w", encoding="utf-8") as fh:
        fh.write("5")


def build_model(layers: int, seed: int = 0):
    """Full-width LLaDA with `layers` blocks, weights N(0, 1/in) (O(1) activations, attention not uniform)."""
    import torch

    from optimum_sinkprune import LLaDAConfig, LLaDAModelLM

    torch.manual_seed(seed)
    config = LLaDAConfig(n_layers=layers, max_sequence_length=4096, **WIDTH)
    model = LLaDAModelLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, p.shape[1] ** -0.5)
    return model


def _timed(owner, name: str, sections: dict[str, float], label: str, stack: list[float]) -> None:
    """Wrap `owner.name` so its exclusive wall time (less that of wrapped calls inside it) adds to `sections[label]`;
    `stack` is shared by every wrapper of one run."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        stack.append(0.0)  # time of wrapped calls inside this one
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - start
            inner = stack.pop()
            sections[label] = sections.get(label, 0.0) + elapsed - inner
            if stack:
                stack[-1] += elapsed

    setattr(owner, name, wrapper)


def worker(args) -> dict:
    if args.package:
        sys.path.insert(0, args.package)
    import gc

    import torch

    torch.set_num_threads(args.threads)
    import optimum_sinkprune
    from optimum_sinkprune import SinkAwarePruner, SinkAwarePruningConfig
    from optimum_sinkprune import pruner as pruner_module
    from optimum_sinkprune.calibration import pipeline as pipeline_module

    t0 = time.perf_counter()
    model = build_model(args.layers)
    build_s = time.perf_counter() - t0
    pruner = SinkAwarePruner(model)
    blocks = pruner.adapter.blocks(model)
    block_bytes = sum(p.numel() * p.element_size() for p in blocks[0].parameters())
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())

    sections: dict[str, float] = {}
    stack: list[float] = []
    import optimum_sinkprune.methods as methods_module
    from optimum_sinkprune import validation as validation_module

    for owner, name, label in (
        (pipeline_module.CalibrationPipeline, "dense", "calibration forwards"),
        (pipeline_module.CalibrationPipeline, "sequential", "calibration forwards"),
        (methods_module, "layer_mask", "scores + mask"),
        (methods_module, "apply_mask", "apply mask"),
        (pruner_module, "_parameter_counts", "parameter counts"),
        (pruner_module.SinkAwarePruner, "_report", "report"),
        (pruner_module.SinkAwarePruner, "_plan", "validate + estimate"),
        (validation_module, "check_finite_parameters", "finite check"),
    ):
        _timed(owner, name, sections, label, stack)

    config = SinkAwarePruningConfig(method=args.method, sparsity=0.5, num_samples=args.samples, seq_len=args.seq_len)
    ids = torch.randint(0, 126000, (args.samples, args.seq_len), generator=torch.Generator().manual_seed(1))
    gc.collect()
    rss_model = _status_kb("VmRSS") * 1024
    _reset_peak()
    start = time.perf_counter()
    _, report = pruner.prune(config, ids, progress=False)
    total = time.perf_counter() - start
    peak = _status_kb("VmHWM") * 1024
    est = report.memory_estimate or {}
    return {
        "version": getattr(optimum_sinkprune, "__version__", "?"),
        "package": os.path.dirname(os.path.dirname(optimum_sinkprune.__file__)),
        "method": args.method, "seq_len": args.seq_len, "samples": args.samples, "layers": args.layers,
        "threads": args.threads, "build_s": build_s, "total_s": total,
        "forwards_s": sections.get("calibration forwards", 0.0), "sections_s": sections,
        "forward_passes": report.calibration.get("forward_passes"),
        "rss_model_bytes": rss_model, "peak_bytes": peak, "peak_extra_bytes": peak - rss_model,
        "estimate_host_bytes": est.get("host_bytes"), "estimate_device_bytes": est.get("device_bytes"),
        "block_weight_bytes": block_bytes, "model_weight_bytes": model_bytes,
        "sparsity": report.total_sparsity,
    }


def _run_case(label: str, package: str | None, seq_len: int, opts, spy_dir: str | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--seq-len", str(seq_len), "--layers",
               str(opts.layers), "--threads", str(opts.threads), "--samples", str(opts.samples), "--method",
               opts.method, "--json", out]
        if package:
            cmd += ["--package", package]
        env = dict(os.environ, PYTHONPATH=package or ROOT)
        if spy_dir:
            os.makedirs(spy_dir, exist_ok=True)
            flame = os.path.join(spy_dir, f"{label}-{seq_len}.txt")
            cmd = ["py-spy", "record", "--format", "raw", "--rate", "20", "-o", flame, "--"] + cmd
        subprocess.run(cmd, check=True, env=env)
        with open(out, encoding="utf-8") as fh:
            row = json.load(fh)
    row["label"] = label
    if spy_dir:
        row["py_spy_top"] = _spy_summary(flame)
    return row


def _spy_summary(path: str, top: int = 8) -> list[tuple[str, float]]:
    """Share of the samples taken inside `SinkAwarePruner.prune`, per innermost frame of optimum_sinkprune (from
    py-spy's raw collapsed stacks; the model build before it is left out)."""
    counts: dict[str, int] = {}
    total = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            if not n.isdigit() or "prune (optimum_sinkprune/pruner.py" not in stack:
                continue
            total += int(n)
            ours = [f for f in stack.split(";") if "optimum_sinkprune/" in f]
            name, _, where = ours[-1].partition(" (")
            key = f"{name} ({where.replace('optimum_sinkprune/', '')}"
            counts[key] = counts.get(key, 0) + int(n)
    return [(k, v / max(total, 1)) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:top]]


def _summarise(rows: list[dict]) -> list[dict]:
    """Mean and spread over repeats of each (label, seq_len)."""
    keys = sorted({(r["label"], r["seq_len"]) for r in rows}, key=lambda k: (k[1], k[0] != "before", k[0]))
    out = []
    for label, seq in keys:
        group = [r for r in rows if r["label"] == label and r["seq_len"] == seq]

        def stat(field, group=group):
            values = [r[field] for r in group]
            return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)

        out.append({"label": label, "seq_len": seq, "n": len(group), "total": stat("total_s"),
                    "forwards": stat("forwards_s"), "peak_extra": stat("peak_extra_bytes"),
                    "estimate": group[0]["estimate_host_bytes"], "block": group[0]["block_weight_bytes"],
                    "rss_model": group[0]["rss_model_bytes"], "sections": group[0]["sections_s"],
                    "py_spy_top": group[0].get("py_spy_top")})
    return out


def _markdown(summary: list[dict], opts, load: str) -> str:
    gb = 1e9
    lines = [
        "# Pruning at full LLaDA-8B width (CPU)",
        "",
        f"LLaDA of LLaDA-8B's width (d_model 4096, 32 heads, MLP 12288, vocab 126464), {opts.layers} blocks, random "
        f"weights, float32, CPU, {opts.threads} threads; `{opts.method}` 50 %, {opts.samples} calibration window(s), "
        "10 noised forwards each. Each row is its own subprocess; rows of one table ran in one invocation, "
        f"interleaved, on the same machine. Machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; load average at the start: {load}. "
        "Time: mean ± standard deviation over the repeats (n). Memory: peak RSS during `prune` minus the RSS with "
        "the model loaded.",
        "",
        "| code | tokens | n | total (s) | calibration forwards (s) | total / forwards | peak extra host (GB) | "
        "× one block's weights | estimate (GB) | estimate / measured |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        est = s["estimate"]
        lines.append(
            f"| {s['label']} | {s['seq_len']} | {s['n']} | {s['total'][0]:.1f} ± {s['total'][1]:.1f} | "
            f"{s['forwards'][0]:.1f} ± {s['forwards'][1]:.1f} | {s['total'][0] / max(s['forwards'][0], 1e-9):.2f} | "
            f"{s['peak_extra'][0] / gb:.2f} ± {s['peak_extra'][1] / gb:.2f} | {s['peak_extra'][0] / s['block']:.2f} | "
            f"{(est or 0) / gb:.2f} | {(est or 0) / max(s['peak_extra'][0], 1):.2f} |"
        )
    lines += ["", f"Model RSS {summary[0]['rss_model'] / gb:.2f} GB; one block's weights "
              f"{summary[0]['block'] / gb:.3f} GB.", "",
              "## Where the time went (first repeat, exclusive seconds per section; rest: restore copies, checks, "
              "Python)", "",
              "| code | tokens | " + " | ".join(SECTION_ORDER) + " | rest |",
              "|---|---|" + "---|" * (len(SECTION_ORDER) + 1)]
    for s in summary:
        sec = s["sections"]
        rest = s["total"][0] - sum(sec.get(k, 0.0) for k in SECTION_ORDER)
        lines.append(f"| {s['label']} | {s['seq_len']} | " + " | ".join(f"{sec.get(k, 0.0):.1f}" for k in SECTION_ORDER)
                     + f" | {rest:.1f} |")
    if any(s.get("py_spy_top") for s in summary):
        lines += ["", "## Sampled profile (py-spy, innermost frame in optimum_sinkprune, share of samples)", ""]
        for s in summary:
            if s.get("py_spy_top"):
                top = "; ".join(f"{name} {share:.0%}" for name, share in s["py_spy_top"])
                lines.append(f"- {s['label']}, {s['seq_len']} tokens: {top}")
    return "\n".join(lines) + "\n"


SECTION_ORDER = ["finite check", "validate + estimate", "calibration forwards", "scores + mask", "apply mask",
                 "parameter counts", "report"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq-lens", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--method", default="sink_wanda")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--baseline", default=None, help="folder holding an earlier optimum_sinkprune package")
    parser.add_argument("--baseline-seq-lens", type=int, nargs="+", default=None,
                        help="sequence lengths the baseline runs at (default: all of --seq-lens)")
    parser.add_argument("--py-spy", action="store_true", help="record each run with py-spy (sampled profile)")
    parser.add_argument("--output", default=os.path.join(RESULTS, "scale"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seq-len", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--package", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.worker:
        row = worker(opts)
        with open(opts.json, "w", encoding="utf-8") as fh:
            json.dump(row, fh)
        return
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    variants = ([("before", opts.baseline)] if opts.baseline else []) + [("after", None)]
    rows = []
    spy_dir = os.path.join(RESULTS, "scale_profiles") if opts.py_spy else None
    for _ in range(opts.repeats):
        for seq in opts.seq_lens:
            for label, package in variants:
                if label == "before" and opts.baseline_seq_lens and seq not in opts.baseline_seq_lens:
                    continue
                row = _run_case(label, package, seq, opts, spy_dir)
                print(json.dumps({k: row[k] for k in ("label", "seq_len", "total_s", "forwards_s",
                                                      "peak_extra_bytes", "estimate_host_bytes")}), flush=True)
                rows.append(row)
    summary = _summarise(rows)
    os.makedirs(os.path.dirname(opts.output), exist_ok=True)
    with open(opts.output + ".json", "w", encoding="utf-8") as fh:
        json.dump({"rows": rows, "load_average": load}, fh, indent=1)
    with open(opts.output + ".md", "w", encoding="utf-8") as fh:
        fh.write(_markdown(summary, opts, load))
    print(_markdown(summary, opts, load))


if __name__ == "__main__":
    main()
