# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Benchmark: compressed (sparse, compressed-tensors layout) vs dense checkpoints — weight-file size and load time.

Models, in bfloat16: the shipped tiny-llada (d_model 256, 4 layers, vocab 4096, untied LM head) and a random LLaDA
(d_model 512, 8 layers, 8 heads, MLP 1536, vocab 1024). Each is magnitude-pruned in two patterns: 50% unstructured
(per row; stored `sparse-bitmask`) and 2:4 (stored `sparse-24-bitmask`), then saved with `save_pruned_model` twice,
`save_format="dense"` and `"compressed"`, in the same run. Reported per row:

* weight bytes (all `*.safetensors`) of both saves and their ratio, and the ratio over the pruned linears only
  (embeddings, norms and the LM head stay dense in both);
* load time, `AutoModel.from_pretrained(folder)`, dense and compressed loads interleaved, `--repeats` times each (the
  first load of each, which warms caches, is dropped): median, min-max spread;
* that the compressed checkpoint reloads to identical logits.

One CPU thread.

    python benchmarks/bench_compressed.py            # writes benchmarks/results/compressed.{json,md}
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
LARGE = dict(d_model=512, n_heads=8, n_layers=8, mlp_hidden_size=1536, vocab_size=1024, embedding_size=1024,
             mask_token_id=1023, eos_token_id=1, pad_token_id=0, max_sequence_length=512)
PATTERNS = ("unstructured 50%", "2:4")


def build(name: str):
    from transformers import AutoModel

    from optimum_sinkprune.assets import default_model_path
    from optimum_sinkprune.models import LLaDAConfig, LLaDAModelLM

    if name == "tiny-llada":
        return AutoModel.from_pretrained(default_model_path(), dtype=torch.bfloat16).eval()
    torch.manual_seed(0)
    return LLaDAModelLM(LLaDAConfig(**LARGE)).to(torch.bfloat16).eval()


@torch.no_grad()
def magnitude_prune(model, pattern: str) -> None:
    from optimum_sinkprune.adapters import get_adapter
    from optimum_sinkprune.methods.masks import apply_mask, select_mask

    for layer in get_adapter(model).linear_layers(model).values():
        scores = layer.weight.detach().abs().float()
        apply_mask(layer, select_mask(scores, 0.5, (2, 4) if pattern == "2:4" else None, per_row=True))


def linear_bytes(model) -> tuple[int, int]:
    """(dense bytes, stored bytes in the compressed layout) of the pruned linears."""
    from optimum_sinkprune.adapters import get_adapter
    from optimum_sinkprune.hub.compressed import plan_sparse_storage
    from optimum_sinkprune.models.modeling_sparse_storage import SPARSE_24_BITMASK, bitmask_compress, two_four_compress

    plan = plan_sparse_storage(model)
    compress = two_four_compress if plan.format == SPARSE_24_BITMASK else bitmask_compress
    dense = stored = 0
    for name, layer in get_adapter(model).linear_layers(model).items():
        w = layer.weight.detach()
        dense += w.numel() * w.element_size()
        stored += sum(t.numel() * t.element_size() for t in compress(w).values()) if name in plan.targets else (
            w.numel() * w.element_size())
    return dense, stored


def load_seconds(folder: str) -> float:
    from transformers import AutoModel

    start = time.perf_counter()
    AutoModel.from_pretrained(folder)
    return time.perf_counter() - start


def run(repeats: int) -> list[dict]:
    from transformers import AutoModel

    from optimum_sinkprune.hub import save_pruned_model
    from optimum_sinkprune.hub.save import checkpoint_weight_bytes

    rows = []
    ids = torch.randint(0, 1000, (1, 32), generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        for model_name in ("tiny-llada", "llada-d512-8L"):
            for pattern in PATTERNS:
                model = build(model_name)
                magnitude_prune(model, pattern)
                config = {"method": "magnitude", "sparsity": 0.5, "pattern": "2:4" if pattern == "2:4" else
                          "unstructured"}
                base = os.path.join(tmp, f"{model_name}-{pattern.split()[0].replace(':', '')}")
                dense = save_pruned_model(model, base + "-dense", pruning_config=config, save_format="dense")
                compressed = save_pruned_model(model, base + "-compressed", pruning_config=config,
                                               save_format="compressed")
                layout = json.load(open(os.path.join(compressed, "config.json")))["quantization_config"][
                    "sparsity_config"]["format"]
                with torch.no_grad():
                    identical = torch.equal(AutoModel.from_pretrained(compressed)(ids).logits, model(ids).logits)
                times = {"dense": [], "compressed": []}
                for i in range(repeats + 1):  # interleaved; the first of each is a warm-up
                    for kind, folder in (("dense", dense), ("compressed", compressed)):
                        t = load_seconds(folder)
                        if i:
                            times[kind].append(t)
                lin_dense, lin_stored = linear_bytes(model)
                d_bytes, c_bytes = checkpoint_weight_bytes(dense), checkpoint_weight_bytes(compressed)
                rows.append({
                    "model": model_name, "pattern": pattern, "layout": layout, "dtype": "bfloat16",
                    "dense_bytes": d_bytes, "compressed_bytes": c_bytes, "ratio": c_bytes / d_bytes,
                    "linear_ratio": lin_stored / lin_dense, "dense_share": 1 - lin_dense / d_bytes,
                    "identical_logits": identical,
                    "load_dense_s": times["dense"], "load_compressed_s": times["compressed"],
                })
                print(f"{model_name:14s} {pattern:17s} ratio {c_bytes / d_bytes:.3f} (linears "
                      f"{lin_stored / lin_dense:.3f}) load dense {statistics.median(times['dense']) * 1e3:.0f} ms, "
                      f"compressed {statistics.median(times['compressed']) * 1e3:.0f} ms", file=sys.stderr)
    return rows


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e3:.0f} ms ({min(values) * 1e3:.0f}–{max(values) * 1e3:.0f})"


def to_markdown(rows: list[dict], repeats: int, command: str) -> str:
    lines = [
        "# Compressed (sparse) vs dense checkpoints",
        "",
        f"`{command}` — torch {torch.__version__}, {platform.processor() or platform.machine()}, 1 thread, bfloat16, "
        f"magnitude pruning. Load time: `AutoModel.from_pretrained`, dense and compressed interleaved, median of "
        f"{repeats} loads (min–max) after one warm-up each. Load average of the machine (its other work adds to the "
        f"spread): {' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1/5/15 min) at the end of the run.",
        "",
        "| Model | Pattern | Layout | Dense weights | Compressed | Ratio | Ratio (pruned linears) | Never-pruned share "
        "| Load dense | Load compressed | Identical logits |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['pattern']} | `{r['layout']}` | {r['dense_bytes'] / 1e6:.2f} MB | "
            f"{r['compressed_bytes'] / 1e6:.2f} MB | {r['ratio']:.3f}× | {r['linear_ratio']:.3f}× | "
            f"{r['dense_share']:.0%} | "
            f"{_ms(r['load_dense_s'])} | {_ms(r['load_compressed_s'])} | {'yes' if r['identical_logits'] else 'NO'} |"
        )
    lines += [
        "",
        "The pruned linears shrink to ≈ 0.5 (the kept bf16 values) + 1/16 (one bit per entry) = 0.5625× in both",
        "layouts (the bitmask layout adds an int64 offset per row: 8 bytes per row of `in_features` bf16 values).",
        "The whole file also holds the never-pruned embeddings, norms and LM head (their share of the dense file is",
        "the \"never-pruned share\" column), stored dense in both, so the file ratio is about",
        "share + (1 − share) × 0.5625. Loading a compressed checkpoint reads fewer bytes but decompresses every",
        "pruned linear; the weights in memory are dense either way.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", default=os.path.join(RESULTS, "compressed"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = run(args.repeats)
    command = "python benchmarks/bench_compressed.py" + (f" --repeats {args.repeats}" if args.repeats != 7 else "")
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output + ".json", "w", encoding="utf-8") as f:
        json.dump({"command": command, "torch": torch.__version__, "rows": rows}, f, indent=2)
    with open(args.output + ".md", "w", encoding="utf-8") as f:
        f.write(to_markdown(rows, args.repeats, command))
    print(f"wrote {args.output}.md", file=sys.stderr)


if __name__ == "__main__":
    main()
