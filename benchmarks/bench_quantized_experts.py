# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Benchmark: quantized DiffusionGemma checkpoints (packed expert tensors and the weights the encoder and decoder
stacks share) — weight-file size, load time and exact reload.

A random DiffusionGemma in bfloat16 (text: hidden 256, 4 layers alternating sliding / full attention, dense MLP 512
beside 8 experts of width 256 (top 2), vocab 2048, canvas 16; a one-layer vision tower of width 16) is quantized
weight-only with round to nearest (int8 one scale per row; int4 group size 64) — every block linear and every
expert slice of `experts.gate_up_proj` / `experts.down_proj` — and saved with `save_pruned_model`'s default format,
which for this model is the `sinkprune-pack-quantized` layout (compressed-tensors cannot describe packed 3-D expert
tensors nor weights shared by two modules). A 50% magnitude-pruned copy shows what sparsity alone gives this native
class: stored dense by default, `sinkprune-sparse-bitmask` with `save_format="compressed"`. Reported per row: weight
bytes of the file and of the quantized tensors alone, vs the dense save; load time through
`optimum_sinkprune.hub.load.load_model`, dense and quantized loads interleaved, median of `--repeats` after one
warm-up each; whether the reload gives identical denoiser logits.

    python benchmarks/bench_quantized_experts.py     # writes benchmarks/results/quantized_experts.{json,md}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
TEXT = dict(vocab_size=2048, hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
            num_key_value_heads=2, head_dim=64, global_head_dim=64, num_global_key_value_heads=1, sliding_window=16,
            layer_types=["sliding_attention", "full_attention"] * 2, num_experts=8, top_k_experts=2,
            moe_intermediate_size=256, max_position_embeddings=256, pad_token_id=0, eos_token_id=1, bos_token_id=2)
VISION = dict(model_type="gemma4_vision", hidden_size=16, intermediate_size=32, num_hidden_layers=1,
              num_attention_heads=2, num_key_value_heads=2, head_dim=8, position_embedding_size=16, patch_size=4,
              pooling_kernel_size=1)
CANVAS = 16
ROWS = {
    "RTN int8 (one scale per row)": dict(method="rtn", bits=8, group_size=None),
    "RTN int4 (group 64)": dict(method="rtn", bits=4, group_size=64),
}


def build():
    from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion

    config = DiffusionGemmaConfig(text_config=TEXT, vision_config=VISION, canvas_length=CANVAS, boi_token_id=2045,
                                  eoi_token_id=2046, image_token_id=2047)
    torch.manual_seed(0)
    model = DiffusionGemmaForBlockDiffusion(config)
    with torch.no_grad():  # O(1) weights: logits far from uniform
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) / p.shape[-1] ** 0.5 if p.dim() >= 2 else 1 + 0.1 * torch.randn_like(p))
    return model.to(torch.bfloat16).eval()


def logits(model):
    from optimum_sinkprune.adapters import get_adapter

    g = torch.Generator().manual_seed(0)
    ctx, canvas = torch.randint(3, 2000, (2, 32), generator=g), torch.randint(3, 2000, (2, CANVAS), generator=g)
    with torch.no_grad():
        return get_adapter(model).denoiser_logits(model, ctx, canvas)


def tensor_bytes(folder: str, keys) -> int:
    from safetensors import safe_open

    total = 0
    for name in sorted(os.listdir(folder)):
        if name.endswith(".safetensors"):
            with safe_open(os.path.join(folder, name), "pt") as f:
                for key in f.keys():
                    if any(key == k or key.startswith(f"{k}_") for k in keys):
                        t = f.get_slice(key)
                        numel = 1
                        for d in t.get_shape():
                            numel *= d
                        total += numel * {"I32": 4, "I64": 8, "BF16": 2, "F32": 4, "I8": 1}[t.get_dtype()]
    return total


def load_seconds(folder: str) -> float:
    from optimum_sinkprune.hub.load import load_model

    start = time.perf_counter()
    load_model(folder)
    return time.perf_counter() - start


def run(repeats: int) -> tuple[list[dict], dict]:
    from optimum_sinkprune import QuantizationConfig, SinkAwarePruner, SinkAwarePruningConfig, SinkAwareQuantizer
    from optimum_sinkprune.hub import save_pruned_model
    from optimum_sinkprune.hub.compressed import STORAGE_KEY
    from optimum_sinkprune.hub.load import load_model
    from optimum_sinkprune.hub.save import checkpoint_weight_bytes

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = build()
        dense = os.path.join(tmp, "dense")
        model.save_pretrained(dense)  # a plain checkpoint: every row starts from load_model(dense)
        dense_bytes = checkpoint_weight_bytes(dense)
        info = {"parameters": sum(p.numel() for p in model.parameters()),
                "expert_parameters": sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)}
        for name, qkwargs in ROWS.items():
            model = load_model(dense)
            quantizer = SinkAwareQuantizer(model)
            _, report = quantizer.quantize(QuantizationConfig(**qkwargs), progress=False)
            folder = quantizer.save_pretrained(os.path.join(tmp, f"q{len(rows)}"))
            storage = json.load(open(os.path.join(folder, "config.json")))[STORAGE_KEY]
            keys = storage["tensors"]
            experts = [k for k in keys if ".experts." in k]
            identical = torch.equal(logits(load_model(folder)), logits(model))
            times = {"dense": [], "quantized": []}
            for i in range(repeats + 1):
                for kind, f in (("dense", dense), ("quantized", folder)):
                    t = load_seconds(f)
                    if i:
                        times[kind].append(t)
            rows.append({
                "row": name, "layout": storage["format"], "layers": len(report.layers),
                "expert_slices": sum(".experts." in n for n in report.layers),
                "dense_bytes": dense_bytes, "bytes": checkpoint_weight_bytes(folder),
                "quantized_dense_bytes": tensor_bytes(dense, keys), "quantized_bytes": tensor_bytes(folder, keys),
                "expert_dense_bytes": tensor_bytes(dense, experts), "expert_bytes": tensor_bytes(folder, experts),
                "identical_logits": identical, "load_dense_s": times["dense"], "load_s": times["quantized"],
                "relative_error": report.mean_relative_error,
            })
            print(f"{name}: {rows[-1]['bytes'] / dense_bytes:.3f}x, identical {identical}", file=sys.stderr)
        model = load_model(dense)
        SinkAwarePruner(model).prune(SinkAwarePruningConfig(method="magnitude", sparsity=0.5), progress=False)
        folder = save_pruned_model(model, os.path.join(tmp, "pruned"), pruning_config={"method": "magnitude"})
        info["pruned_50"] = {"bytes": checkpoint_weight_bytes(folder), "dense_bytes": dense_bytes,
                             "identical_logits": torch.equal(logits(load_model(folder)), logits(model)),
                             "layout": (json.load(open(os.path.join(folder, "config.json"))).get("quantization_config")
                                        or {}).get("format", "dense")}
        folder = save_pruned_model(model, os.path.join(tmp, "pruned-c"), pruning_config={"method": "magnitude"},
                                   save_format="compressed")
        info["pruned_50_compressed"] = {
            "bytes": checkpoint_weight_bytes(folder),
            "identical_logits": torch.equal(logits(load_model(folder)), logits(model)),
            "layout": json.load(open(os.path.join(folder, "config.json")))[STORAGE_KEY]["format"]}
    return rows, info


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e3:.0f} ms ({min(values) * 1e3:.0f}–{max(values) * 1e3:.0f})"


def to_markdown(rows: list[dict], info: dict, repeats: int, command: str) -> str:
    lines = [
        "# Quantized DiffusionGemma checkpoints (packed experts, shared weights)",
        "",
        f"`{command}` — torch {torch.__version__}, {platform.processor() or platform.machine()}, 1 thread, bfloat16. "
        f"A random DiffusionGemma of {info['parameters'] / 1e6:.2f}M parameters "
        f"({info['expert_parameters'] / 1e6:.2f}M in the packed expert tensors). Load: `load_model`, dense and "
        f"quantized interleaved, median of {repeats} (min–max) after one warm-up each; load average "
        f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} at the end.",
        "",
        "| Row | Layout | Quantized matrices (expert slices) | Weights vs dense | Quantized tensors vs dense | "
        "Expert tensors vs dense | Load dense | Load quantized | Identical logits |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['row']} | `{r['layout']}` | {r['layers']} ({r['expert_slices']}) | "
            f"{r['bytes'] / 1e6:.2f} / {r['dense_bytes'] / 1e6:.2f} MB = {r['bytes'] / r['dense_bytes']:.3f}× | "
            f"{r['quantized_bytes'] / r['quantized_dense_bytes']:.3f}× | "
            f"{r['expert_bytes'] / r['expert_dense_bytes']:.3f}× | {_ms(r['load_dense_s'])} | {_ms(r['load_s'])} | "
            f"{'yes' if r['identical_logits'] else 'NO'} |")
    p, c = info["pruned_50"], info["pruned_50_compressed"]
    lines += [
        "",
        f"50% magnitude-pruned, not quantized: the default save is `{p['layout']}`, {p['bytes'] / 1e6:.2f} MB = "
        f"{p['bytes'] / p['dense_bytes']:.3f}× the dense file (identical logits on reload: "
        f"{'yes' if p['identical_logits'] else 'NO'}) — transformers 5.x does not decompress sparse "
        "compressed-tensors checkpoints for this native class, and the default stays loadable by plain "
        f"`from_pretrained`; `save_format=\"compressed\"` stores it in `{c['layout']}`, {c['bytes'] / 1e6:.2f} MB = "
        f"{c['bytes'] / p['dense_bytes']:.3f}× (identical logits through `load_model`: "
        f"{'yes' if c['identical_logits'] else 'NO'}).",
        "",
        "The quantized tensors shrink to bits/16 of their bf16 size plus one bf16 scale per row and group (int8 per "
        "row: 0.5 + 1/in; int4 group 64: 0.25 + 1/64). The file also holds the never-quantized embeddings (tied to "
        "the LM head), norms, router, self-conditioning and the vision tower. Each weight the encoder and decoder "
        "stacks share is stored once, as in the dense save.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default=os.path.join(RESULTS, "quantized_experts"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows, info = run(args.repeats)
    command = "python benchmarks/bench_quantized_experts.py" + (
        f" --repeats {args.repeats}" if args.repeats != 5 else "")
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output + ".json", "w", encoding="utf-8") as f:
        json.dump({"command": command, "torch": torch.__version__, "info": info, "rows": rows}, f, indent=2)
    with open(args.output + ".md", "w", encoding="utf-8") as f:
        f.write(to_markdown(rows, info, args.repeats, command))
    print(f"wrote {args.output}.md", file=sys.stderr)


if __name__ == "__main__":
    main()
