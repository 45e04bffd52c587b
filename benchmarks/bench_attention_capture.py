# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Benchmark: cost of attention-mass capture next to a plain forward, chunked vs full agreement, peak memory.

Model: the tiny LLaDA family scaled up (d_model 512, 8 heads, 4 layers, MLP 1536, vocab 1024), random weights (timing
only). One CPU thread. For each sequence length (256 / 1024 / 4096, batch 1) the variants run interleaved, `repeats`
times each, and the median is reported:

* `plain`: the model's forward (sdpa), no capture;
* `hooks`: q/k projection hooks + chunked column sums next to the model's own sdpa attention;
* `interface`: the transformers attention-interface route (one chunked pass computes output and mass).

Agreement: max |Δ| of the per-head mass (values up to `max_head_mass`) between a single full chunk and the default
chunking / 64-query chunks (both routes), and between the two routes. Peak memory: each variant runs in a fresh subprocess, reporting the increase of the process's
peak RSS during the call.

    python benchmarks/bench_attention_capture.py            # writes benchmarks/results/attention_capture.{json,md}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
CONFIG = dict(
    d_model=512, n_heads=8, n_layers=4, mlp_hidden_size=1536, vocab_size=1024, embedding_size=1024,
    mask_token_id=1023, eos_token_id=1, pad_token_id=0, max_sequence_length=4096, rope_theta=10000.0,
)
# `--width 8b`: one block of LLaDA-8B's real width (the vocabulary kept small, so the LM head does not hide the blocks)
CONFIG_8B = dict(CONFIG, d_model=4096, n_heads=32, n_layers=1, mlp_hidden_size=12288)
VARIANTS = ("plain", "hooks", "interface")
SMALL_CHUNK = 64  # forces many chunks at every length for the agreement check
MMAP_THRESHOLD = 1 << 20


def build_model():
    from optimum_sinkprune.models import LLaDAConfig, LLaDAModelLM

    torch.manual_seed(0)
    model = LLaDAModelLM(LLaDAConfig(**CONFIG)).eval()
    if CONFIG["d_model"] > 1024:  # N(0, 1/in) weights: O(1) activations, a non-uniform attention at full width
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.Linear):
                    module.weight.normal_(0.0, module.in_features ** -0.5)
    return model


def call(model, variant: str, ids: torch.Tensor, chunk_size=None):
    from optimum_sinkprune.calibration import attention_mass

    with torch.no_grad():
        if variant == "plain":
            return model(input_ids=ids).logits
        return attention_mass(model, ids, per_head=True, chunk_size=chunk_size, method=variant)


def _proc_status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_child(variant: str, seq: int, chunk_size: int | None) -> None:
    """Run in a subprocess: print the peak-RSS increase (MiB) caused by one call."""
    torch.set_num_threads(1)
    model = build_model()
    ids = torch.randint(2, 1000, (1, seq), generator=torch.Generator().manual_seed(0))
    call(model, "plain", ids[:, :8])  # lazy init out of the way
    if _reset_peak():
        before = _proc_status_kib("VmRSS")
        call(model, variant, ids, chunk_size)
        after = _proc_status_kib("VmHWM")
    else:  # ru_maxrss never decreases: only meaningful when the call exceeds model construction's peak
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        call(model, variant, ids, chunk_size)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_increase_mib": (after - before) / 1024.0}))


def measure_memory(variant: str, seq: int, chunk_size: int | None) -> float:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", variant, str(seq), str(chunk_size or 0)]
    # A fixed mmap threshold: glibc's dynamic threshold otherwise keeps freed 16 MiB score blocks on the heap and the
    # RSS then measures allocator retention, not what the computation needs.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout.strip().splitlines()[-1]
    return float(json.loads(out)["peak_increase_mib"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seqs", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true", help="skip the subprocess peak-memory measurements")
    parser.add_argument(
        "--memory-only", action="store_true",
        help="keep the timing rows of an existing attention_capture.json and re-measure the memory columns",
    )
    parser.add_argument("--output", default=RESULTS)
    parser.add_argument("--width", choices=("d512", "8b"), default="d512",
                        help="d512: the 4-layer d_model 512 model; 8b: one block of LLaDA-8B's width (d_model 4096, 32 "
                             "heads, MLP 12288) with a small vocabulary; timing of plain vs interface only, written "
                             "to attention_capture_8b_width.{json,md}")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.width == "8b":
        CONFIG.update(CONFIG_8B)
        return timing_only(args.seqs, args.repeats, args.output)
    if args.child:
        variant, seq, chunk = args.child
        peak_rss_child(variant, int(seq), int(chunk) or None)
        return 0

    from tqdm.auto import tqdm

    from optimum_sinkprune.calibration.attention import DEFAULT_MIN_ROWS, default_chunk_size

    torch.set_num_threads(1)
    if args.memory_only:
        with open(os.path.join(args.output, "attention_capture.json")) as f:
            previous = json.load(f)
        rows = previous["rows"]
        for row in tqdm(rows, desc="memory"):
            for variant in VARIANTS:
                row[f"{variant}_peak_mib"] = measure_memory(variant, row["seq"], None)
            row["hooks_full_chunk_peak_mib"] = measure_memory("hooks", row["seq"], row["seq"])
        write_results(rows, previous["repeats"], args.output, memory=True)
        return 0
    model = build_model()
    rows = []
    for seq in tqdm(args.seqs, desc="sequence lengths"):
        ids = torch.randint(2, 1000, (1, seq), generator=torch.Generator().manual_seed(seq))
        for variant in VARIANTS:  # warm-up
            call(model, variant, ids)
        times = {v: [] for v in VARIANTS}
        for _ in range(args.repeats):
            for variant in VARIANTS:  # interleaved: load changes hit every variant alike
                start = time.perf_counter()
                call(model, variant, ids)
                times[variant].append(time.perf_counter() - start)
        med = {v: statistics.median(ts) for v, ts in times.items()}
        chunked = call(model, "hooks", ids)
        small = call(model, "hooks", ids, chunk_size=SMALL_CHUNK)
        full = call(model, "hooks", ids, chunk_size=seq)
        via_interface = call(model, "interface", ids)
        via_interface_small = call(model, "interface", ids, chunk_size=SMALL_CHUNK)
        chunk = default_chunk_size(1, CONFIG["n_heads"], seq, min_rows=DEFAULT_MIN_ROWS)
        # per repeat, each capture over the plain forward of the same round: the spread of the ratio
        paired = {v: [t / p for t, p in zip(times[v], times["plain"])] for v in ("hooks", "interface")}
        row = {
            "seq": seq,
            "default_chunk": chunk,
            "plain_s": med["plain"],
            "hooks_s": med["hooks"],
            "interface_s": med["interface"],
            "hooks_overhead": med["hooks"] / med["plain"],
            "interface_overhead": med["interface"] / med["plain"],
            "hooks_overhead_range": [min(paired["hooks"]), max(paired["hooks"])],
            "interface_overhead_range": [min(paired["interface"]), max(paired["interface"])],
            "chunked_vs_full_max_abs": float((chunked - full).abs().max()),
            "chunk64_vs_full_max_abs": float(
                max((small - full).abs().max(), (via_interface_small - full).abs().max())
            ),
            "hooks_vs_interface_max_abs": float((chunked - via_interface).abs().max()),
            "max_head_mass": float(full.max()),
            "extra_scores_mib_chunked": 1 * chunk * seq * 4 / 2**20,  # one head's block at a time
            "extra_scores_mib_full": 1 * CONFIG["n_heads"] * seq * seq * 4 / 2**20,
        }
        del chunked, small, full, via_interface, via_interface_small
        if not args.no_memory:
            for variant in VARIANTS:
                row[f"{variant}_peak_mib"] = measure_memory(variant, seq, None)
            row["hooks_full_chunk_peak_mib"] = measure_memory("hooks", seq, seq)
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_results(rows, args.repeats, args.output, memory=not args.no_memory)
    return 0


def _save(output: str, stem: str, result: dict, lines: list[str]) -> None:
    """Write `<stem>.json` and `<stem>.md` under `output` (the same record for both modes) and print the table."""
    result.update(torch=torch.__version__, machine=platform.processor() or platform.machine(),
                  load_average_at_write=os.getloadavg() if hasattr(os, "getloadavg") else None)
    os.makedirs(output, exist_ok=True)
    with open(os.path.join(output, f"{stem}.json"), "w") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(output, f"{stem}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def timing_only(seqs: list[int], repeats: int, output: str) -> int:
    """Plain forward vs interface capture, interleaved, at each length (the full-width mode: no hooks route, no
    memory subprocesses; agreement only between the default chunk and 64-query chunks)."""
    from tqdm.auto import tqdm

    torch.set_num_threads(1)
    model = build_model()
    rows = []
    for seq in tqdm(seqs, desc="sequence lengths"):
        ids = torch.randint(2, 1000, (1, seq), generator=torch.Generator().manual_seed(seq))
        call(model, "plain", ids[:, :64])  # lazy init out of the way
        times = {"plain": [], "interface": []}
        for _ in range(repeats):
            for variant in times:
                start = time.perf_counter()
                out = call(model, variant, ids)
                times[variant].append(time.perf_counter() - start)
            captured = out
        small = call(model, "interface", ids, chunk_size=SMALL_CHUNK) if seq <= 1024 else None
        ratios = [t / p for t, p in zip(times["interface"], times["plain"])]
        row = {"seq": seq, "plain_s": statistics.median(times["plain"]),
               "interface_s": statistics.median(times["interface"]), "ratios": ratios,
               "interface_overhead": statistics.median(ratios),
               "interface_overhead_range": [min(ratios), max(ratios)],
               "chunk64_vs_default_max_abs": None if small is None else float((small - captured).abs().max())}
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"benchmark": "attention_capture_8b_width", "model": {"family": "LLaDA (random weights)", **CONFIG},
              "batch": 1, "threads": 1, "repeats": repeats, "rows": rows}
    load = os.getloadavg() if hasattr(os, "getloadavg") else ()
    lines = [
        "# Attention-mass capture at LLaDA-8B width",
        "",
        f"One LLaDA block of LLaDA-8B's width (d_model {CONFIG['d_model']}, {CONFIG['n_heads']} heads, MLP "
        f"{CONFIG['mlp_hidden_size']}), vocabulary {CONFIG['vocab_size']} (small, so the output layer does not hide "
        f"the block), random N(0, 1/in) weights, float32; batch 1, 1 CPU thread, torch {torch.__version__}; "
        f"{repeats} interleaved rounds (plain, capture, plain, capture, ...). Overhead = time of "
        "`attention_mass(per_head=True, method=\"interface\")` / time of a plain sdpa forward of the same round: "
        "median and [min–max] of the rounds. Load average when written: "
        f"{', '.join(f'{x:.2f}' for x in load)}.",
        "",
        "| seq | plain forward (s) | capture (s) | overhead, median [min–max] | max abs diff: 64-query chunks vs default |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        diff = "–" if r["chunk64_vs_default_max_abs"] is None else f"{r['chunk64_vs_default_max_abs']:.2e}"
        lines.append(f"| {r['seq']} | {r['plain_s']:.2f} | {r['interface_s']:.2f} | {r['interface_overhead']:.2f}× "
                     f"[{r['interface_overhead_range'][0]:.2f}–{r['interface_overhead_range'][1]:.2f}] | {diff} |")
    lines += ["", "Regenerate: `python benchmarks/bench_attention_capture.py --width 8b --seqs 1024 4096 --repeats 3`."]
    _save(output, "attention_capture_8b_width", result, lines)
    return 0


def _range(row: dict, variant: str) -> str:
    spread = row.get(f"{variant}_overhead_range")
    return f"[{spread[0]:.2f}–{spread[1]:.2f}]" if spread else ""


def write_results(rows: list[dict], repeats: int, output: str, memory: bool) -> None:
    result = {
        "benchmark": "attention_capture",
        "model": {"family": "LLaDA (random weights)", **CONFIG},
        "batch": 1,
        "threads": 1,
        "repeats": repeats,
        "malloc_mmap_threshold": MMAP_THRESHOLD,
        "rows": rows,
    }
    lines = [
        "# Attention-mass capture: overhead, agreement, memory",
        "",
        f"LLaDA d_model {CONFIG['d_model']}, {CONFIG['n_heads']} heads, {CONFIG['n_layers']} layers, random weights; "
        f"batch 1, 1 CPU thread, torch {torch.__version__}; median of {repeats} interleaved runs. "
        "Overhead = time of `attention_mass(per_head=True)` / time of a plain forward (sdpa). Absolute times depend on "
        "the machine's load (the variants run interleaved, so the ratios compare like with like); [min–max] is the "
        "spread of the per-round ratios. The capture works one head and one query chunk at a time (default: a block "
        "near 1 MiB, at least 128 queries).",
        "",
        "| seq | plain forward (s) | hooks (s) | interface (s) | hooks overhead | interface overhead | "
        "default chunk | max abs diff: default chunk vs full | chunk 64 vs full | hooks vs interface |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['seq']} | {r['plain_s']:.3f} | {r['hooks_s']:.3f} | {r['interface_s']:.3f} | "
            f"{r['hooks_overhead']:.2f}× {_range(r, 'hooks')} | {r['interface_overhead']:.2f}× "
            f"{_range(r, 'interface')} | {r['default_chunk']} | "
            f"{r['chunked_vs_full_max_abs']:.2e} | {r['chunk64_vs_full_max_abs']:.2e} | "
            f"{r['hooks_vs_interface_max_abs']:.2e} |"
        )
    if memory:
        lines += [
            "",
            f"Peak RSS increase during one call (MiB, fresh process each, MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD}):",
            "",
            "| seq | plain | hooks (chunked) | interface (chunked) | hooks, one full chunk | "
            "score block: one head chunked / all heads full (MiB) |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['seq']} | {r['plain_peak_mib']:.0f} | {r['hooks_peak_mib']:.0f} | {r['interface_peak_mib']:.0f} | "
                f"{r['hooks_full_chunk_peak_mib']:.0f} | {r['extra_scores_mib_chunked']:.0f} / "
                f"{r['extra_scores_mib_full']:.0f} |"
            )
    _save(output, "attention_capture", result, lines)


if __name__ == "__main__":
    raise SystemExit(main())
