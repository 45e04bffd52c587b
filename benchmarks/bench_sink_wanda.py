# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""sink_wanda calibration: our single forward per (sample, step) vs the paper's two-pass procedure.

Both compute the same statistic — per linear layer, Σ over (sample, step) of ‖(1 − σ) ⊙ X_j‖₂ with σ from the
attention mass summed over layers — on the same noised inputs of the same randomly initialised LLaDA model:

* two-pass (as in the paper's released code): pass 1 runs the model with eager attention that materialises every
  head's full [batch, heads, seq, seq] probability matrix and sums it into the mass; pass 2 runs the model again with
  activation hooks on every linear layer and reduces (1 − σ) ⊙ X at once.
* single-pass (`optimum_sinkprune.calibration.engine.collect_dense_norms`): one forward with the attention-mass probe
  (chunked, attention output and mass from the same probabilities) and input hooks on one layer per distinct input
  (q/k/v share one, gate/up share one); the inputs are reduced once σ is known.

Each implementation runs in its own subprocess (one thread), so its peak RSS (ru_maxrss) is its own. Results go to
benchmarks/results/sink_wanda.{json,md}.

    python benchmarks/bench_sink_wanda.py            # both sizes
    python benchmarks/bench_sink_wanda.py --quick    # fewer samples
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

SIZES = {
    # the shipped tiny model's shape, and a larger one
    "small (d256 L4 h8)": dict(d_model=256, n_heads=8, n_layers=4, mlp_hidden_size=1024),
    "medium (d512 L8 h8)": dict(d_model=512, n_heads=8, n_layers=8, mlp_hidden_size=1408),
}
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _build(size: str, seq_len: int, num_samples: int, dtype: str = "float32"):
    import torch

    from optimum_sinkprune import LLaDAConfig, LLaDAModelLM
    from optimum_sinkprune.calibration import engine
    from optimum_sinkprune.configuration import SinkAwarePruningConfig

    torch.manual_seed(0)
    config = LLaDAConfig(vocab_size=4096, embedding_size=4096, mask_token_id=3, eos_token_id=2, pad_token_id=0,
                         max_sequence_length=max(1024, seq_len), **SIZES[size])
    model = LLaDAModelLM(config).eval()
    with torch.no_grad():  # O(1)-scale weights so attention is not uniform
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, p.shape[1] ** -0.5)
    model = model.to(getattr(torch, dtype))
    pcfg = SinkAwarePruningConfig(method="sink_wanda", num_samples=num_samples, seq_len=seq_len)
    ids = torch.randint(4, 4096, (num_samples, seq_len), generator=torch.Generator().manual_seed(0))
    noisy = engine.noised_samples(ids, pcfg.sampled_steps, diffusion_steps=pcfg.diffusion_steps, mask_token_id=3,
                                  noise_eps=pcfg.noise_eps, seed=0)
    return model, pcfg, noisy


def two_pass(model, noisy, *, alpha: float, k_std: float):
    """The paper's procedure: mass from materialised attention matrices, then a second forward with hooks."""
    import torch
    from transformers.modeling_utils import AttentionInterface

    from optimum_sinkprune.adapters import get_adapter
    from optimum_sinkprune.models.modeling_dlm_utils import eager_attention_forward

    adapter = get_adapter(model)
    layers = adapter.linear_layers(model)
    acc = {name: torch.zeros(layer.in_features) for name, layer in layers.items()}
    collected = []

    def eager_with_mass(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        out, probs = eager_attention_forward(module, query, key, value, attention_mask, scaling=scaling)
        collected.append(probs.float().sum(dim=(1, 2)))  # full [b, h, s, s] matrix -> [b, s]
        return out, None

    AttentionInterface.register("bench_eager_mass", eager_with_mass)
    sigma = None

    def hook(name):
        def fn(_module, args):
            x = args[0].float() * (1.0 - sigma)[..., None]
            acc[name] += torch.linalg.vector_norm(x, dim=1).sum(dim=0)

        return fn

    previous = model.config._attn_implementation
    with torch.no_grad():
        for i in range(noisy.shape[0]):
            for k in range(noisy.shape[1]):
                ids = noisy[i:i + 1, k]
                collected.clear()
                model.config._attn_implementation = "bench_eager_mass"
                try:
                    model(input_ids=ids)  # pass 1
                finally:
                    model.config._attn_implementation = previous
                mass = sum(collected)
                mean = mass.mean(dim=1, keepdim=True)
                std = mass.std(dim=1, keepdim=True, unbiased=False)
                sigma = torch.sigmoid(alpha * (mass - (mean + k_std * std)))
                handles = [layer.register_forward_pre_hook(hook(name)) for name, layer in layers.items()]
                try:
                    model(input_ids=ids)  # pass 2
                finally:
                    for h in handles:
                        h.remove()
    return acc


def worker(size: str, impl: str, seq_len: int, num_samples: int, out_path: str, dtype: str) -> None:
    import torch

    torch.set_num_threads(1)
    from optimum_sinkprune.adapters import get_adapter
    from optimum_sinkprune.calibration import engine

    model, pcfg, noisy = _build(size, seq_len, num_samples, dtype)
    rss_setup = _rss_mb()
    peak_setup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if impl == "two_pass":
        stats = two_pass(model, noisy, alpha=pcfg.sink_alpha, k_std=pcfg.sink_std)
    else:
        adapter = get_adapter(model)
        stats, _ = engine.collect_dense_norms(model, adapter, adapter.linear_layers(model), noisy, sink=True,
                                              sink_alpha=pcfg.sink_alpha, sink_std=pcfg.sink_std, progress=False)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    torch.save({k: v.clone() for k, v in stats.items()}, out_path + ".pt")
    with open(out_path, "w", encoding="utf-8") as fh:
        json.dump({"wall_s": wall, "peak_rss_mb": peak, "rss_after_setup_mb": rss_setup,
                   "peak_before_run_mb": peak_setup, "forwards": int(noisy.shape[0] * noisy.shape[1]),
                   "params": sum(p.numel() for p in model.parameters())}, fh)


def run_pair(size: str, seq_len: int, num_samples: int, tmp: str, dtype: str) -> dict:
    import torch

    from optimum_sinkprune.methods import unstructured_row_mask

    out = {}
    for impl in ("two_pass", "single_pass"):
        path = os.path.join(tmp, f"{impl}.json")
        subprocess.run([sys.executable, __file__, "--worker", size, impl, str(seq_len), str(num_samples), path,
                        dtype], check=True)
        with open(path, encoding="utf-8") as fh:
            out[impl] = json.load(fh)
        out[impl]["stats"] = torch.load(path + ".pt")
    a, b = out["two_pass"].pop("stats"), out["single_pass"].pop("stats")
    max_rel = max(float(((a[n] - b[n]).abs() / a[n].abs().clamp_min(1e-12)).max()) for n in a)
    # same result: the masks the statistics select on random weights of each layer's shape
    gen = torch.Generator().manual_seed(0)
    agree = total = 0
    for n in a:
        w = torch.randn(8, a[n].numel(), generator=gen).abs()
        ma, mb = unstructured_row_mask(w * a[n], 0.5), unstructured_row_mask(w * b[n], 0.5)
        agree += int((ma == mb).sum())
        total += ma.numel()
    tp, sp = out["two_pass"], out["single_pass"]
    return {
        "size": size, "dtype": dtype, "params": tp["params"], "seq_len": seq_len, "num_samples": num_samples,
        "forwards_single_pass": sp["forwards"], "forwards_two_pass": 2 * tp["forwards"],
        "two_pass_wall_s": tp["wall_s"], "single_pass_wall_s": sp["wall_s"],
        "wall_ratio": sp["wall_s"] / tp["wall_s"],
        "two_pass_peak_rss_mb": tp["peak_rss_mb"], "single_pass_peak_rss_mb": sp["peak_rss_mb"],
        "two_pass_rss_growth_mb": tp["peak_rss_mb"] - tp["rss_after_setup_mb"],
        "single_pass_rss_growth_mb": sp["peak_rss_mb"] - sp["rss_after_setup_mb"],
        "max_relative_difference": max_rel, "mask_agreement": agree / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs=6, metavar=("SIZE", "IMPL", "SEQ", "N", "OUT", "DTYPE"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seq-len", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--num-samples", type=int, default=None)
    parser.add_argument("--bf16-seq-len", type=int, nargs="*", default=[512],
                        help="also run bfloat16 models (how DLMs are deployed) at these lengths")
    parser.add_argument("--sizes", nargs="+", choices=["small", "medium"], default=["small", "medium"],
                        help="model sizes to run (default both)")
    parser.add_argument("--append", action="store_true",
                        help="merge the new rows into the existing results (same size/seq/dtype rows are replaced)")
    args = parser.parse_args()
    if args.worker:
        size, impl, seq, n, out, dtype = args.worker
        worker(size, impl, int(seq), int(n), out, dtype)
        return
    import tempfile

    num_samples = args.num_samples or (2 if args.quick else 4)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sizes = [size for size in SIZES if size.split()[0] in args.sizes]
        runs = [(size, seq, "float32") for size in sizes for seq in args.seq_len]
        runs += [(size, seq, "bfloat16") for size in sizes for seq in args.bf16_seq_len]
        for size, seq_len, dtype in runs:
            row = run_pair(size, seq_len, num_samples, tmp, dtype)
            print(json.dumps(row), flush=True)
            rows.append(row)
    os.makedirs(RESULTS, exist_ok=True)
    previous = os.path.join(RESULTS, "sink_wanda.json")
    if args.append and os.path.isfile(previous):
        with open(previous, encoding="utf-8") as fh:
            old = json.load(fh)["results"]
        key = lambda r: (r["size"], r["seq_len"], r["dtype"])  # noqa: E731
        new_keys = {key(r) for r in rows}
        rows = [r for r in old if key(r) not in new_keys] + rows
        num_samples = old[0].get("num_samples", num_samples) if old else num_samples
    meta = {"machine": platform.processor() or platform.machine(), "threads": 1, "python": platform.python_version(),
            "sampled_steps": 10, "batch_size": 1, "note": "each implementation in its own subprocess; CPU shared "
            "with other jobs, so absolute times are noisy, ratios are measured side by side"}
    with open(os.path.join(RESULTS, "sink_wanda.json"), "w", encoding="utf-8") as fh:
        json.dump({"meta": meta, "results": rows}, fh, indent=2)
    write_markdown(rows, num_samples)


def write_markdown(rows: list[dict], num_samples: int) -> None:
    lines = [
        "# sink_wanda calibration: single forward vs the paper's two passes",
        "",
        f"Same definition, same noised inputs ({num_samples} samples × 10 sampled steps, batch 1), random LLaDA "
        "weights, CPU, 1 thread. Each implementation runs in its own process; peak RSS is that process's maximum, "
        "growth is peak minus RSS after building the model.",
        "",
        "| model | dtype | params | seq | two-pass s | single-pass s | time ratio | two-pass peak RSS MB (growth) | "
        "single-pass peak RSS MB (growth) | max rel. diff | same mask entries |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|:-:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['dtype']} | {r['params'] / 1e6:.1f}M | {r['seq_len']} | {r['two_pass_wall_s']:.2f} | "
            f"{r['single_pass_wall_s']:.2f} | **{r['wall_ratio']:.2f}×** | {r['two_pass_peak_rss_mb']:.0f} "
            f"({r['two_pass_rss_growth_mb']:.0f}) | {r['single_pass_peak_rss_mb']:.0f} "
            f"({r['single_pass_rss_growth_mb']:.0f}) | {r['max_relative_difference']:.1e} | "
            f"{r['mask_agreement']:.2%} |")
    lines += [
        "",
        "Time: one forward per (sample, step) instead of two, attention computed once (the mass comes from the same "
        "chunked probabilities as the attention output), and the final norm and LM head skipped.",
        "",
        "Memory: the two-pass procedure materialises each layer's full [heads, seq, seq] attention; the single pass "
        "never does (query chunks of at most 2 MiB) but, because σ needs the mass summed over *all* layers, keeps "
        "the inputs of each distinct input group (q/k/v, o, gate/up, down) of every layer for the duration of one "
        "forward: layers × Σ widths × seq values in the model's dtype. That grows linearly with the sequence, the "
        "two-pass attention matrices quadratically: with float32 weights at 128–512 tokens the single pass peaks a "
        "few MB higher, at 2048 tokens it peaks lower; with bfloat16 weights (how DLMs are run) the kept inputs halve "
        "while the two-pass softmax stays float32, and the single pass has the lower peak.",
        "",
        "Result: float32 statistics agree to < 1e-6 relative and select identical masks (the parity tests check the "
        "same against a straightforward implementation). In bfloat16 the two runs use different attention kernels "
        "(eager/sdpa vs the probe's float32 chunks), so activations differ by bf16 rounding: 99.99% of mask entries "
        "agree.",
        "",
        "Regenerate: `python benchmarks/bench_sink_wanda.py` (`--num-samples`, `--seq-len`, `--bf16-seq-len`).",
        "",
    ]
    with open(os.path.join(RESULTS, "sink_wanda.md"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))


if __name__ == "__main__":
    main()
