# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Benchmark: does sink weighting help quantization too, and does pruning compose with quantization on a DLM?

On an embedded DLM (`--model`: the shipped tiny-llada, bfloat16, d_model 256, 4 layers, MLP 768, vocab 4096; or
tiny-minilm-dlm, the BERT-family MiniLM DLM with real attention sinks), in one run:

* dense;
* prune only: sink_wanda and sink_sparsegpt at 50% unstructured and 2:4;
* quantize only: RTN int8, RTN int4, GPTQ int4, sink-aware GPTQ int4 (GPTQ on sink_sparsegpt's Hessians);
* prune, then quantize (the zeros are kept through quantization);
* joint: SparseGPT's sparsify + quantize sweep (sparsegpt + GPTQ, sink_sparsegpt + sink-aware GPTQ).

int4 rows use group size 64 (symmetric, one bf16 scale per 64 input columns). Every row is evaluated with the ELBO
on the same held-out sequences with the same masks (draw k seeded seed + k for every model): paired Δnll vs dense
± its standard error over the draws. Checkpoint size: the weight files `save_pruned_model` writes in the default
format (sparse rows `compressed`, quantized rows `quantized` = compressed-tensors pack-quantized; models whose class
cannot reload a sparse checkpoint, such as the BERT family, are saved dense and the table says so). CPU latency per
denoising step: every model timed interleaved with the others (A B C … A B C …) in the same run, fastest repeat.

    python benchmarks/bench_quantization.py            # writes benchmarks/results/quantization.{json,md}
    python benchmarks/bench_quantization.py --model tiny-minilm-dlm --output benchmarks/results/quantization_minilm
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
GROUP = 64

# name -> (pruning config kwargs or None, quantization config kwargs or None, joint)
PRUNE_50 = dict(sparsity=0.5)
PRUNE_24 = dict(sparsity=0.5, pattern="2:4")
ROWS = {
    "dense": (None, None, False),
    "sink_wanda 50%": (dict(method="sink_wanda", **PRUNE_50), None, False),
    "sink_wanda 2:4": (dict(method="sink_wanda", **PRUNE_24), None, False),
    "sink_sparsegpt 50%": (dict(method="sink_sparsegpt", **PRUNE_50), None, False),
    "sink_sparsegpt 2:4": (dict(method="sink_sparsegpt", **PRUNE_24), None, False),
    "RTN int8": (None, dict(method="rtn", bits=8, group_size=None), False),
    "RTN int4": (None, dict(method="rtn", bits=4, group_size=GROUP), False),
    "GPTQ int4": (None, dict(method="gptq", bits=4, group_size=GROUP), False),
    "sink-GPTQ int4": (None, dict(method="sink_gptq", bits=4, group_size=GROUP), False),
    "sink_wanda 50% → RTN int4": (dict(method="sink_wanda", **PRUNE_50), dict(method="rtn", bits=4, group_size=GROUP),
                                  False),
    "sink_wanda 50% → sink-GPTQ int4": (dict(method="sink_wanda", **PRUNE_50),
                                        dict(method="sink_gptq", bits=4, group_size=GROUP), False),
    "sink_sparsegpt 50% → sink-GPTQ int4": (dict(method="sink_sparsegpt", **PRUNE_50),
                                            dict(method="sink_gptq", bits=4, group_size=GROUP), False),
    "joint sparsegpt 50% + GPTQ int4": (dict(method="sparsegpt", **PRUNE_50),
                                        dict(method="gptq", bits=4, group_size=GROUP), True),
    "joint sink_sparsegpt 50% + sink-GPTQ int4": (dict(method="sink_sparsegpt", **PRUNE_50),
                                                  dict(method="sink_gptq", bits=4, group_size=GROUP), True),
    "joint sink_sparsegpt 2:4 + sink-GPTQ int4": (dict(method="sink_sparsegpt", **PRUNE_24),
                                                  dict(method="sink_gptq", bits=4, group_size=GROUP), True),
}


# paired differences between rows, per ELBO draw (same masks): (label, rows added, rows subtracted)
COMPARISONS = (
    ("sink weighting in GPTQ: sink-GPTQ int4 − GPTQ int4", ("sink-GPTQ int4",), ("GPTQ int4",)),
    ("GPTQ vs round to nearest: GPTQ int4 − RTN int4", ("GPTQ int4",), ("RTN int4",)),
    ("sink weighting in the joint sweep: joint sink − joint plain",
     ("joint sink_sparsegpt 50% + sink-GPTQ int4",), ("joint sparsegpt 50% + GPTQ int4",)),
    ("int4 on top of sink_sparsegpt 50% (prune → sink-GPTQ − prune)",
     ("sink_sparsegpt 50% → sink-GPTQ int4",), ("sink_sparsegpt 50%",)),
    ("interaction: (prune → sink-GPTQ) − prune − sink-GPTQ + dense",
     ("sink_sparsegpt 50% → sink-GPTQ int4", "dense"), ("sink_sparsegpt 50%", "sink-GPTQ int4")),
    ("joint − sequential (sink_sparsegpt 50%, sink-GPTQ int4)",
     ("joint sink_sparsegpt 50% + sink-GPTQ int4",), ("sink_sparsegpt 50% → sink-GPTQ int4",)),
    ("int4 on top of sink_sparsegpt 2:4 (joint − prune)",
     ("joint sink_sparsegpt 2:4 + sink-GPTQ int4",), ("sink_sparsegpt 2:4",)),
    ("int4 on top of sink_wanda 50% (prune → sink-GPTQ − prune)",
     ("sink_wanda 50% → sink-GPTQ int4",), ("sink_wanda 50%",)),
)


def paired(rows: list[dict], plus: tuple[str, ...], minus: tuple[str, ...]) -> tuple[float, float] | None:
    """Mean ± standard error over ELBO draws of Σ plus − Σ minus (None when a row is missing)."""
    from optimum_sinkprune.evaluation.evaluator import mean_and_std_err

    by_name = {r["row"]: r.get("draws") for r in rows}
    if any(by_name.get(name) is None for name in plus + minus):
        return None
    draws = [sum(by_name[n][k] for n in plus) - sum(by_name[n][k] for n in minus)
             for k in range(len(by_name[plus[0]]))]
    return mean_and_std_err(draws)


def build(path, calib, pruning, quant, joint, num_samples, seq_len):
    from optimum_sinkprune import SinkAwarePruner, SinkAwarePruningConfig
    from optimum_sinkprune.hub.load import load_model, load_tokenizer
    from optimum_sinkprune.quantization import QuantizationConfig, SinkAwareQuantizer

    model = load_model(path, dtype=torch.bfloat16)  # the family's Auto class (a masked-LM head for BERT)
    tokenizer = load_tokenizer(path)
    calibration = dict(num_samples=num_samples, seq_len=seq_len, seed=0)
    pcfg = SinkAwarePruningConfig(**pruning, **calibration) if pruning else None
    qcfg = QuantizationConfig(**quant, **calibration) if quant else None
    saver = None
    if pcfg is not None and not joint:
        saver = SinkAwarePruner(model, tokenizer)
        saver.prune(pcfg, calib, progress=False)
    if qcfg is not None:
        saver = SinkAwareQuantizer(model, tokenizer)
        saver.quantize(qcfg, calib, pruning=pcfg if joint else None, progress=False)
    return model, tokenizer, saver


def run(args) -> tuple[list[dict], dict]:
    from optimum_sinkprune.assets import load_calibration_texts, load_heldout_texts
    from optimum_sinkprune.evaluation.evaluator import EvaluationSettings, Evaluator, mean_and_std_err
    from optimum_sinkprune.evaluation.speed import measure_speed
    from optimum_sinkprune.hub import save_pruned_model
    from optimum_sinkprune.hub.save import checkpoint_weight_bytes

    from optimum_sinkprune.hub.load import resolve_model_path

    path = resolve_model_path(args.model)
    calib = load_calibration_texts()
    models, sizes, layouts = {}, {}, {}
    torchao, torchao_error = torchao_model(path) if not args.only else (None, None)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (pruning, quant, joint) in ROWS.items():
            if args.only and name not in args.only and name != "dense":
                continue
            print(f"building {name}", file=sys.stderr)
            model, tokenizer, saver = build(path, calib, pruning, quant, joint, args.num_samples, args.seq_len)
            folder = os.path.join(tmp, f"row{len(models)}")
            if saver is None:
                folder = save_pruned_model(model, folder, pruning_config={"method": "dense"})
            else:
                folder = saver.save_pretrained(folder)
            qconfig = json.load(open(os.path.join(folder, "config.json"))).get("quantization_config") or {}
            layouts[name] = qconfig.get("format") or (qconfig.get("sparsity_config") or {}).get("format") or "dense"
            sizes[name] = checkpoint_weight_bytes(folder)
            models[name] = model
    if torchao is not None:
        models[TORCHAO_ROW], sizes[TORCHAO_ROW], layouts[TORCHAO_ROW] = torchao, None, "torchao Int8Tensor (memory)"
    settings = EvaluationSettings(num_sequences=args.num_sequences, seq_len=128, mc_num=args.mc_num, batch_size=8,
                                  num_prompts=1, prompt_tokens=32, gen_length=args.steps, steps=args.steps,
                                  speed_repeats=args.speed_repeats, speed_warmup=1)
    evaluator = Evaluator(tokenizer, texts=load_heldout_texts(), dense_model=models["dense"], settings=settings,
                          progress=False)
    import time

    start = time.perf_counter()
    dense = evaluator.dense_likelihood()
    prompt = torch.tensor([evaluator.prompts[0].prompt_ids], dtype=torch.long)
    speed = measure_speed(models, prompt, steps=settings.steps, gen_length=settings.gen_length,
                          repeats=settings.speed_repeats, warmup=settings.speed_warmup, tokenizer=tokenizer)
    print(f"timed {len(models)} models in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    rows = []
    for name, model in models.items():
        lik = dense if name == "dense" else evaluator.likelihood(model)
        nll, nll_se = mean_and_std_err(lik.draws)
        delta, delta_se = mean_and_std_err([a - b for a, b in zip(lik.draws, dense.draws)])
        zeros = total = 0
        from optimum_sinkprune.adapters import get_adapter

        for layer in get_adapter(model).linear_layers(model).values():
            if type(layer.weight.data) is torch.Tensor:  # torchao's int8 tensors are not counted
                zeros += int((layer.weight == 0).sum())
                total += layer.weight.numel()
        rows.append({"row": name, "nll": nll, "nll_se": nll_se, "delta_nll": delta, "delta_se": delta_se,
                     "draws": list(lik.draws),
                     "sparsity": zeros / total if total else None, "layout": layouts[name], "bytes": sizes[name],
                     "latency_ms_per_step": speed[name].latency_ms_per_step,
                     "latency_all": speed[name].latency_ms_per_step_all})
        print(f"{name:45s} Δnll {delta:+.4f} ± {delta_se:.4f}  {(sizes[name] or 0) / 1e6:.2f} MB  "
              f"{speed[name].latency_ms_per_step:.2f} ms/step", file=sys.stderr)
    info = {"model": args.model, "torchao": _torchao_version(), "torchao_error": torchao_error,
            "threads": torch.get_num_threads(), "torch": torch.__version__, "loadavg": os.getloadavg(),
            "settings": settings.to_dict(), "num_samples": args.num_samples, "seq_len": args.seq_len,
            "int8_kernel": int8_kernel_speed() if not args.only else None}
    return rows, info


TORCHAO_ROW = "torchao int8 weight-only (TorchAoConfig, RTN per channel)"


def torchao_model(path):
    """The dense checkpoint loaded through transformers' `TorchAoConfig(Int8WeightOnlyConfig())` (torchao quantizes
    every linear to int8 per output channel at load time and runs its int8 weight-only CPU matmul) and None, or
    (None, the error) when torchao cannot be imported."""
    from optimum_sinkprune.hub.load import load_model
    from optimum_sinkprune.quantization import torchao_int8_config

    try:
        config = torchao_int8_config()
    except ImportError as err:
        return None, str(err)
    return load_model(path, dtype=torch.bfloat16, quantization_config=config), None


def _torchao_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torchao")
    except PackageNotFoundError:
        return None


def int8_kernel_speed(repeats: int = 30) -> dict | None:
    """torch's CPU int8 weight-only matmul (`torch._weight_int8pack_mm`, what torchao's int8 weight-only CPU path
    calls) vs the bf16 matmul, on one tiny-llada MLP projection (768 x 256) and a full-width LLaDA-8B one
    (12288 x 4096), batch of 32 tokens, interleaved, fastest repeat. None when this torch build lacks it."""
    import time

    if not hasattr(torch.ops.aten, "_weight_int8pack_mm"):
        return None
    out = {}
    for label, (n, k) in (("768x256", (768, 256)), ("12288x4096", (12288, 4096))):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(32, k, generator=g).to(torch.bfloat16)
        w = torch.randn(n, k, generator=g)
        scale = w.abs().amax(dim=1) / 127
        w_int8 = torch.round(w / scale[:, None]).clamp(-128, 127).to(torch.int8)
        w_bf16 = (w_int8.float() * scale[:, None]).to(torch.bfloat16)
        scale = scale.to(torch.bfloat16)
        ref = torch.nn.functional.linear(x, w_bf16)
        got = torch.ops.aten._weight_int8pack_mm(x, w_int8, scale)
        err = float((got.float() - ref.float()).abs().max() / ref.float().abs().max())
        times = {"bf16": [], "int8": []}
        for _ in range(repeats):
            for kind in ("bf16", "int8"):
                start = time.perf_counter()
                if kind == "bf16":
                    torch.nn.functional.linear(x, w_bf16)
                else:
                    torch.ops.aten._weight_int8pack_mm(x, w_int8, scale)
                times[kind].append(time.perf_counter() - start)
        out[label] = {"bf16_ms": min(times["bf16"]) * 1e3, "int8_ms": min(times["int8"]) * 1e3,
                      "relative_error": err}
    return out


def _ratio_text(rows: list[dict], name: str, dense: dict) -> str | None:
    row = next((r for r in rows if r["row"] == name), None)
    if row is None:
        return None
    return f"{row['latency_ms_per_step'] / dense['latency_ms_per_step']:.2f}×"


def spread(times: list[float]) -> float:
    """(median − fastest) / fastest of one row's timed repeats."""
    ordered = sorted(times)
    return (ordered[len(ordered) // 2] - ordered[0]) / ordered[0]


def paired_latency_ratio(row: dict, dense: dict) -> float:
    """Median over timing rounds of (row / dense in the same round): the models are timed interleaved, so a round's
    ratio cancels the machine load both saw; the fastest-repeat ratio is shown beside it."""
    import statistics

    a, b = row.get("latency_all") or [], dense.get("latency_all") or []
    if not a or len(a) != len(b):
        return row["latency_ms_per_step"] / dense["latency_ms_per_step"]
    return statistics.median(x / y for x, y in zip(a, b))


def to_markdown(rows: list[dict], info: dict, command: str) -> str:
    dense = next(r for r in rows if r["row"] == "dense")
    s = info["settings"]
    model = info.get("model") or "tiny-llada"
    spreads = [spread(r["latency_all"]) for r in rows if r.get("latency_all")]
    dense_layouts = [r["row"] for r in rows if r["row"] != "dense" and r["layout"] == "dense"]
    lines = [
        f"# Quantization, alone and composed with pruning ({model})",
        "",
        f"`{command}` — torch {info['torch']}, {platform.processor() or platform.machine()}, {info['threads']} thread "
        f"(shared 2-core machine; load average {' / '.join(f'{x:.1f}' for x in info['loadavg'])} at the end). "
        f"Model: the embedded {model} in bfloat16. "
        f"Calibration: {info['num_samples']} samples × {info['seq_len']} tokens of the shipped calibration texts, "
        f"seed 0. ELBO: {s['num_sequences']} held-out sequences × {s['seq_len']} tokens, {s['mc_num']} Monte-Carlo "
        "draws with the same masks for every row; Δnll = mean over draws of (row − dense) nats/token ± its standard "
        "error. Size: weight files of the default save format. Latency: one denoising step (batch 1, "
        f"{s['gen_length']} generated tokens, {s['steps']} steps), all rows interleaved in one run, fastest of "
        f"{s['speed_repeats']} repeats.",
        "",
        "| Row | Zeros (block linears) | Layout | Weights | vs dense | Δnll vs dense ± se | ms / step (fastest) | "
        "vs dense (fastest) | vs dense (median of paired rounds) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        delta = "—" if r["row"] == "dense" else f"{r['delta_nll']:+.4f} ± {r['delta_se']:.4f}"
        zeros = "—" if r["sparsity"] is None else f"{r['sparsity']:.1%}"
        size = "—" if r["bytes"] is None else f"{r['bytes'] / 1e6:.2f} MB"
        ratio = "—" if r["bytes"] is None else f"{r['bytes'] / dense['bytes']:.3f}×"
        lines.append(
            f"| {r['row']} | {zeros} | `{r['layout']}` | {size} | {ratio} | {delta} | "
            f"{r['latency_ms_per_step']:.2f} | {r['latency_ms_per_step'] / dense['latency_ms_per_step']:.2f}× | "
            f"{paired_latency_ratio(r, dense):.2f}× |")
    lines += ["", f"Dense ELBO NLL: {dense['nll']:.4f} ± {dense['nll_se']:.4f} nats/token.", ""]
    pairs = [(label, paired(rows, plus, minus)) for label, plus, minus in COMPARISONS]
    pairs = [(label, value) for label, value in pairs if value is not None]
    if pairs:
        lines += [
            "Paired differences between rows (per ELBO draw, same masks; nats/token ± standard error; |mean| "
            "below ~2 se is noise):",
            "",
            "| Comparison | Δnll ± se |",
            "|---|---|",
        ]
        lines += [f"| {label} | {mean:+.4f} ± {se:.4f} |" for label, (mean, se) in pairs]
        lines.append("")
    if dense_layouts:
        lines += [
            f"Sizes: {len(dense_layouts)} pruned rows are stored `dense` — this model's class does not decompress "
            "sparse compressed-tensors checkpoints in transformers 5.x (it would load random weights), so the "
            "default save writes the zeros densely and the file is as large as the dense one. The quantized rows "
            "are real compressed-tensors pack-quantized files that transformers loads itself.",
            "",
        ]
    if spreads:
        lines += [
            f"Latency: the repeats of a row spread (median − fastest) / fastest by {min(spreads):.0%} to "
            f"{max(spreads):.0%} in this run (the JSON keeps all of them), so the fastest-repeat ratios are noise "
            "within that range; the last column, the median over rounds of the ratio to the dense model timed in "
            "the same round, cancels most of the shared load. "
            "The sparse and quantized rows compute with dense bf16 weights (the in-memory model, and what "
            "transformers' compressed-tensors loader gives on CPU): neither sparsity nor the compressed-tensors "
            "int4/int8 layouts have a CPU kernel in this stack.",
            "",
        ]
    torchao = _ratio_text(rows, TORCHAO_ROW, dense)
    if torchao is not None:
        lines += [
            "The torchao row loads the dense checkpoint through transformers' `TorchAoConfig(Int8WeightOnlyConfig())` "
            f"(`optimum_sinkprune.quantization.torchao_int8_config()`, torchao {info.get('torchao')}, "
            f"`pip install optimum-sinkprune[torchao]`): {torchao} the dense latency per step (fastest repeats), "
            f"{paired_latency_ratio(next(r for r in rows if r['row'] == TORCHAO_ROW), dense):.2f}× as the median "
            "of paired rounds, in this run.",
            "",
        ]
    elif info.get("torchao_error"):
        lines += [f"No torchao row: {info['torchao_error']}", ""]
    kernel = info.get("int8_kernel")
    if kernel:
        lines += [
            "## CPU int8 weight-only kernel",
            "",
            "torch's CPU int8 weight-only matmul (`torch.ops.aten._weight_int8pack_mm`, what torchao's int8 "
            "weight-only CPU path calls) against the bf16 linear on random weights, batch of 32 tokens, "
            "interleaved, fastest of 30 — a tiny-llada MLP projection and a full-width LLaDA-8B MLP projection.",
            "",
            "| Weight (out × in) | bf16 linear | int8 weight-only | speed-up | max relative error |",
            "|---|---|---|---|---|",
        ]
        for label, k in kernel.items():
            lines.append(f"| {label} | {k['bf16_ms']:.3f} ms | {k['int8_ms']:.3f} ms | "
                         f"{k['bf16_ms'] / k['int8_ms']:.2f}× | {k['relative_error']:.1e} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-llada", help="an embedded model's name or a local DLM folder")
    parser.add_argument("--num-samples", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--num-sequences", type=int, default=8)
    parser.add_argument("--mc-num", type=int, default=8)
    parser.add_argument("--speed-repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8, help="denoising steps (= generated tokens) when timing")
    parser.add_argument("--only", nargs="*", help="rows to run besides dense (a quick check)")
    parser.add_argument("--output", default=os.path.join(RESULTS, "quantization"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows, info = run(args)
    command = "python benchmarks/bench_quantization.py" + "".join(
        f" --{k.replace('_', '-')} {v}" for k, v in vars(args).items()
        if k not in ("only", "output") and v != parser.get_default(k))
    if args.only:
        print(to_markdown(rows, info, command))
        return
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output + ".json", "w", encoding="utf-8") as f:
        json.dump({"command": command, "info": info, "rows": rows}, f, indent=2, default=str)
    with open(args.output + ".md", "w", encoding="utf-8") as f:
        f.write(to_markdown(rows, info, command))
    print(f"wrote {args.output}.md", file=sys.stderr)


if __name__ == "__main__":
    main()
