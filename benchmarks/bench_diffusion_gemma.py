# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""DiffusionGemma benchmark: dense vs pruned, side by side in one run, on a random text configuration.

The model is transformers' `DiffusionGemmaForBlockDiffusion` with a text config sized to run in a few minutes on one
CPU thread (4 layers — sliding, full, sliding, full — hidden 256, 8 heads of 32 in 4 kv groups on the sliding layers,
full-attention layers with head size 64 and one kv head, dense MLP 1024, 16 experts of width 256 with top-4 routing,
vocab 2048, canvas 32) and a one-layer vision tower of width 16 (it cannot be left out). **The weights are random**
(N(0, 1/fan_in) for matrices and for the tied embedding, 1 + N(0, 0.1²) for norms and scales), so nothing here says
how a trained model's quality changes: the likelihood columns only say how far each pruned model moves from the dense
one.

Variants (each pruned from a copy of the same dense model):

* `reap_experts` / `sink_experts` at `expert_ratio=0.5` (8 of 16 experts per layer removed; the REAP-style baseline
  and the sink-aware score), through `SinkAwarePruningConfig` + `SinkAwarePruner`;
* kv groups + dense-MLP channels removed with `structured.prune_structure`: half the kv groups of every sliding layer
  (the full-attention layers have one kv group and keep it) and half the dense-MLP channels of every layer, the
  lowest by weight norm (a hand-made magnitude choice);
* the registered structured methods `sink_heads` and `magnitude_heads` through `SinkAwarePruningConfig(method=...,
  target_param_reduction=r)` + `SinkAwarePruner`, with r the share of the decoder-layer parameters the previous
  variant removed (the same budget; the planner splits it between kv groups and MLP channels itself);
* `sink_wanda` 50% unstructured (dense storage: no shape changes, so no speed-up is expected).

Calibration (the calibrated methods): 8 random text windows of 96 tokens (context 64 + canvas 32), the model's own
uniform-token forward process at 4 ladder steps. Reported per variant:

* parameters (whole model, and the decoder's text layers, which the encoder shares);
* latency of one denoising step (a decoder forward over the canvas of 32 tokens, batch 1, given the encoder's cache
  of a 64-token context and the previous step's logits for self-conditioning): one measurement = the mean of
  `--steps` consecutive steps; `--repeats` measurements per variant, interleaved across variants (rotating order);
  median and inter-quartile range, and the speed-up against dense with the IQR of the per-repeat paired ratios;
* canvas-masked cross-entropy, the model's own likelihood of the clean canvas given the context and the noised canvas
  (uniform-token noise at t = 0.25, 0.5, 0.75, 1.0; every canvas position), on 32 held-out random windows; the paired
  Δ vs dense with its standard error over windows; and the mean KL(dense ‖ pruned) of the canvas predictions, with
  its standard error. With random weights these measure distance from the dense model, not quality.

    python benchmarks/bench_diffusion_gemma.py --threads 1      # ~2-4 min; writes results/diffusion_gemma.{json,md}
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import platform
import statistics
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

import optimum_sinkprune  # noqa: F401  (registers the model classes and loading hooks)
from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.calibration.noise import NoiseSchedule
from optimum_sinkprune.configuration import SinkAwarePruningConfig
from optimum_sinkprune.counting import count_parameters
from optimum_sinkprune.pruner import SinkAwarePruner
from optimum_sinkprune.structured import block_parameter_count, prune_structure

RESULTS = Path(__file__).parent / "results"
VOCAB = 2048
CANVAS = 32
CONTEXT = 64
TEXT = dict(
    vocab_size=VOCAB, hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=8,
    num_key_value_heads=4, head_dim=32, global_head_dim=64, num_global_key_value_heads=1, sliding_window=64,
    layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"], num_experts=16,
    top_k_experts=4, moe_intermediate_size=256, max_position_embeddings=512, pad_token_id=0, eos_token_id=1,
    bos_token_id=2,
)
VISION = dict(
    model_type="gemma4_vision", hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
    num_key_value_heads=2, head_dim=8, position_embedding_size=16, patch_size=4, pooling_kernel_size=1,
)
# the multimodal tokens sit at the top of the vocabulary; text ids are drawn below them and above pad/eos/bos
IMAGE_TOKEN, BOI_TOKEN, EOI_TOKEN = VOCAB - 1, VOCAB - 3, VOCAB - 2
TEXT_IDS = (3, VOCAB - 3)
CALIBRATION = dict(num_samples=8, seq_len=CONTEXT + CANVAS, diffusion_steps=4, sample_interval=1, seed=0)
EVAL_WINDOWS = 32
EVAL_NOISE = NoiseSchedule(diffusion_steps=4, sample_interval=1, seed=123)


def build_model(seed: int = 0):
    """The random DiffusionGemma (eval mode): matrices N(0, 1/fan_in) as in the tests' fixture, and the tied
    embedding too (Gemma scales it by sqrt(hidden), so the residual stream starts at O(1) and the logits of the tied
    head stay O(1) instead of saturating the softmax)."""
    from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion

    config = DiffusionGemmaConfig(text_config=TEXT, vision_config=VISION, canvas_length=CANVAS,
                                  boi_token_id=BOI_TOKEN, eoi_token_id=EOI_TOKEN, image_token_id=IMAGE_TOKEN)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DiffusionGemmaForBlockDiffusion(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():  # tied parameters appear once
            noise = torch.randn(p.shape, generator=gen)
            if p.dim() >= 2:
                p.copy_(noise / p.shape[-1] ** 0.5)
            else:
                p.copy_(1.0 + 0.1 * noise)
    return model.eval()


def text_ids(n: int, seq: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(TEXT_IDS[0], TEXT_IDS[1], (n, seq), generator=gen)


# ------------------------------------------------------------------------------------------------------------------
# the variants
# ------------------------------------------------------------------------------------------------------------------
def prune_with(model, config: SinkAwarePruningConfig, calibration: torch.Tensor) -> dict:
    start = time.perf_counter()
    _, report = SinkAwarePruner(model).prune(config, calibration, progress=False)
    out = {"prune_s": time.perf_counter() - start}
    if report.experts is not None:
        out["kept_experts"] = report.experts["kept"]
        out["scores"] = report.experts["scores"]
    if report.structured is not None:
        st = report.structured
        out.update(target_param_reduction=config.target_param_reduction, removed_heads=st["removed_heads"],
                   mlp_widths=st["mlp_widths"], realised_reduction=st["realised_reduction"])
    return out


@torch.no_grad()
def magnitude_structure(model) -> dict:
    """Remove the lower half (by weight norm) of the kv groups of every layer that has more than one, and of the
    dense-MLP channels of every layer, with `prune_structure`."""
    from optimum_sinkprune.structured.pruner import channel_weight_norms

    adapter = get_adapter(model)
    heads, channels = {}, {}
    _, channel_norms = channel_weight_norms(model, adapter)
    for i, block in enumerate(adapter.blocks(model)):
        q_heads, kv_heads, hd = adapter.layer_head_geometry(model, i)
        group = q_heads // kv_heads
        if kv_heads > 1:
            norms = []
            for g in range(kv_heads):
                sq = adapter.projection(block, "q").weight[g * group * hd:(g + 1) * group * hd].square().sum()
                sq = sq + adapter.projection(block, "o").weight[:, g * group * hd:(g + 1) * group * hd].square().sum()
                for role in ("k", "v"):
                    if adapter.has_projection(block, role):
                        sq = sq + adapter.projection(block, role).weight[g * hd:(g + 1) * hd].square().sum()
                norms.append(float(sq))
            drop = sorted(range(kv_heads), key=lambda g: norms[g])[: kv_heads // 2]
            heads[i] = sorted(h for g in drop for h in range(g * group, (g + 1) * group))
        width = len(channel_norms[i])
        channels[i] = sorted(torch.argsort(channel_norms[i])[: width // 2].tolist())
    start = time.perf_counter()
    prune_structure(model, heads=heads, channels=channels, adapter=adapter)
    return {"prune_s": time.perf_counter() - start, "removed_heads": {str(k): v for k, v in heads.items()},
            "removed_channels_per_layer": [len(channels[i]) for i in sorted(channels)]}


def build_variants(calibration: torch.Tensor, progress: bool):
    dense = build_model()
    plans = [
        ("reap_experts 50%", lambda m: prune_with(m, SinkAwarePruningConfig(method="reap_experts", expert_ratio=0.5,
                                                                           **CALIBRATION), calibration)),
        ("sink_experts 50%", lambda m: prune_with(m, SinkAwarePruningConfig(method="sink_experts", expert_ratio=0.5,
                                                                           **CALIBRATION), calibration)),
        ("kv groups + MLP channels 50%", magnitude_structure),
    ]

    def same_budget(method):  # the decoder-layer share the hand-made structured variant removed
        def plan(model):
            before = block_parameter_count(dense)
            share = (before - block_parameter_count(variants["kv groups + MLP channels 50%"])) / before
            return prune_with(model, SinkAwarePruningConfig(method=method, target_param_reduction=share,
                                                            **CALIBRATION), calibration)
        return plan

    plans += [
        ("sink_heads, same budget", same_budget("sink_heads")),
        ("magnitude_heads, same budget", same_budget("magnitude_heads")),
        ("sink_wanda 50% unstructured", lambda m: prune_with(m, SinkAwarePruningConfig(
            method="sink_wanda", sparsity=0.5, **CALIBRATION), calibration)),
    ]
    variants, info = {"dense": dense}, {"dense": {}}
    for name, plan in tqdm(plans, desc="pruning", disable=not progress):
        model = copy.deepcopy(dense)
        info[name] = plan(model)
        variants[name] = model.eval()
    return variants, info


# ------------------------------------------------------------------------------------------------------------------
# measurements
# ------------------------------------------------------------------------------------------------------------------
def parameter_rows(variants) -> dict:
    rows = {}
    for name, model in variants.items():
        adapter = get_adapter(model)
        layers = sum(p.numel() for block in adapter.blocks(model) for p in block.parameters())
        rows[name] = {"params": count_parameters(model).params, "decoder_layer_params": layers,
                      "num_experts": adapter.num_experts(model)}
    return rows


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], statistics.median(values), q[2]


@torch.no_grad()
def latency(variants, *, repeats: int, steps: int, progress: bool) -> dict:
    """Per variant: seconds per denoising step, `repeats` measurements of `steps` steps each, interleaved."""
    context, canvas = text_ids(1, CONTEXT, seed=11), text_ids(1, CANVAS, seed=12)
    prepared = {}
    for name, model in variants.items():
        adapter = get_adapter(model)
        cache = adapter.encode_context(model, context)
        logits = adapter.denoiser_logits(model, None, canvas, cache=cache)
        again = adapter.denoiser_logits(model, None, canvas, cache=cache)
        if not torch.equal(logits, again):  # a step must not change the cache it reads
            raise RuntimeError(f"{name}: repeated denoising steps on one encoder cache differ")
        prepared[name] = (adapter, model, cache, logits)
    names = list(variants)
    times = {name: [] for name in names}
    for r in tqdm(range(repeats + 1), desc="latency", disable=not progress):
        order = names[r % len(names):] + names[: r % len(names)]  # rotate: no variant always runs first
        for name in order:
            adapter, model, cache, logits = prepared[name]
            start = time.perf_counter()
            for _ in range(steps):
                adapter.denoiser_logits(model, None, canvas, cache=cache, self_conditioning_logits=logits)
            if r:  # the first round warms up
                times[name].append((time.perf_counter() - start) / steps)
    out = {}
    for name in names:
        q1, med, q3 = quartiles(times[name])
        ratios = [d / t for d, t in zip(times["dense"], times[name])]
        r1, rmed, r3 = quartiles(ratios)
        out[name] = {"median_ms": med * 1e3, "q1_ms": q1 * 1e3, "q3_ms": q3 * 1e3, "speedup_median": rmed,
                     "speedup_q1": r1, "speedup_q3": r3, "samples_ms": [t * 1e3 for t in times[name]]}
    return out


@torch.no_grad()
def likelihood(variants, *, progress: bool) -> dict:
    """Canvas-masked CE per held-out window (mean over noise levels and canvas positions), its paired Δ vs dense, and
    KL(dense ‖ variant) per window; means and standard errors over windows."""
    dense = variants["dense"]
    adapter = get_adapter(dense)
    windows = text_ids(EVAL_WINDOWS, CONTEXT + CANVAS, seed=99)
    noisy, times = adapter.calibration_noise(dense, windows, EVAL_NOISE)
    context, clean = adapter.split_window(dense, windows)
    ce = {name: torch.zeros(EVAL_WINDOWS, dtype=torch.float64) for name in variants}
    kl = {name: torch.zeros(EVAL_WINDOWS, dtype=torch.float64) for name in variants}
    steps = noisy.shape[1]
    for w in tqdm(range(EVAL_WINDOWS), desc="likelihood", disable=not progress):
        reference = None
        for name, model in variants.items():  # dense first: the reference of the KL
            cache = adapter.encode_context(model, context[w:w + 1].expand(steps, -1))
            logits = adapter.denoiser_logits(model, None, noisy[w, :, -CANVAS:], cache=cache).double()
            logp = torch.log_softmax(logits, dim=-1)
            target = clean[w:w + 1].expand(steps, -1)
            ce[name][w] = -logp.gather(-1, target[..., None]).mean()
            if reference is None:
                reference = logp
            kl[name][w] = (reference.exp() * (reference - logp)).sum(-1).mean()
    out = {}
    for name in variants:
        delta = ce[name] - ce["dense"]
        out[name] = {"ce": float(ce[name].mean()), "ce_se": float(ce[name].std() / EVAL_WINDOWS ** 0.5),
                     "delta_ce": float(delta.mean()), "delta_ce_se": float(delta.std() / EVAL_WINDOWS ** 0.5),
                     "kl_from_dense": float(kl[name].mean()), "kl_se": float(kl[name].std() / EVAL_WINDOWS ** 0.5)}
    out["_noise_levels"] = sorted({round(float(t), 4) for t in times.flatten()})
    return out


# ------------------------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------------------------
def expert_overlap(info) -> list[int]:
    reap, sink = info["reap_experts 50%"]["kept_experts"], info["sink_experts 50%"]["kept_experts"]
    return [len(set(reap[k]) & set(sink[k])) for k in sorted(reap, key=int)]


def score_change(info) -> float:
    """Largest relative change of an expert's score from the sink weighting, |S_sink − S_reap| / S_reap."""
    reap = torch.tensor(info["reap_experts 50%"]["scores"], dtype=torch.float64)
    sink = torch.tensor(info["sink_experts 50%"]["scores"], dtype=torch.float64)
    return float(((sink - reap).abs() / reap.clamp_min(1e-30)).max())


def write_markdown(report: dict) -> str:
    env, params, lat, lik = report["env"], report["params"], report["latency"], report["likelihood"]
    dense = params["dense"]
    lines = [
        "# DiffusionGemma: dense vs pruned (random weights)", "",
        f"torch {env['torch']}, transformers {env['transformers']}, torch.set_num_threads({env['threads']}), "
        f"{env['machine']}; wall time {env['wall_s']:.0f} s. Model: `DiffusionGemmaForBlockDiffusion`, text config "
        "4 layers (sliding, full, sliding, full), hidden 256, 8 heads (sliding: head 32, 4 kv groups; full: head 64, "
        "1 kv head), dense MLP 1024, 16 experts of width 256, top-4, vocab 2048, canvas 32; **random weights**: the "
        "likelihood columns measure how far each pruned model moves from the dense one, not quality. Calibration: "
        f"{CALIBRATION['num_samples']} random windows of {CALIBRATION['seq_len']} tokens (context 64 + canvas 32), "
        "4 ladder steps of the model's own uniform-token forward process.", "",
        "Latency: one denoising step = a decoder forward over the 32-token canvas (batch 1) given the encoder cache of "
        f"a 64-token context and self-conditioning logits; {env['repeats']} interleaved measurements of "
        f"{env['steps']} steps per variant; median [IQR]; speed-up = median of the per-repeat paired ratios "
        "dense / variant [IQR]. The machine's cores were shared with another job, so the IQR is wider than on an "
        "idle machine.", "",
        "Likelihood: canvas-masked cross-entropy of the clean canvas given the context and the noised canvas (t = "
        f"{', '.join(str(t) for t in lik['_noise_levels'])}; every canvas position), {EVAL_WINDOWS} held-out random "
        "windows; Δ = variant − dense, paired per window, ± standard error; KL(dense ‖ variant) of the canvas "
        "predictions ± standard error.", "",
        "| variant | params | decoder-layer params | experts | step latency (ms), median [IQR] | speed-up [IQR] | "
        "CE (nats) | Δ CE vs dense | KL from dense |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in params:
        p, t, q = params[name], lat[name], lik[name]
        lines.append(
            f"| {name} | {p['params']:,} ({p['params'] / dense['params']:.3f}×) | {p['decoder_layer_params']:,} "
            f"({p['decoder_layer_params'] / dense['decoder_layer_params']:.3f}×) | {p['num_experts']} | "
            f"{t['median_ms']:.2f} [{t['q1_ms']:.2f}–{t['q3_ms']:.2f}] | {t['speedup_median']:.2f}× "
            f"[{t['speedup_q1']:.2f}–{t['speedup_q3']:.2f}] | {q['ce']:.3f} ± {q['ce_se']:.3f} | "
            f"{q['delta_ce']:+.4f} ± {q['delta_ce_se']:.4f} | {q['kl_from_dense']:.4f} ± {q['kl_se']:.4f} |")
    overlap = report["expert_overlap"]
    lines += [
        "",
        f"Experts kept by both `reap_experts` and `sink_experts`, per layer (of 8): {overlap}; the sink weighting "
        f"changed an expert's score by at most {100 * report['expert_score_max_relative_change']:.1f}%.",
        "",
        "Structured rows: " + "; ".join(
            f"{name}: heads removed {info['removed_heads']}"
            + (f", MLP widths {info['mlp_widths']}" if "mlp_widths" in info
               else f", MLP channels removed per layer {info['removed_channels_per_layer']}")
            for name, info in report["pruning"].items() if "removed_heads" in info)
        + " (the registered methods plan the split of the same budget themselves: whole kv groups of the sliding "
        "layers, the full-attention layers keep their single kv group).",
        "",
        "What the numbers can and cannot say: expert pruning halves the expert parameters but not the expert FLOPs "
        "per token (every token still runs its top-4 experts), so its step-time change comes from the per-expert "
        "work of transformers' MoE forward, which runs once per expert that receives a token; removing kv groups and "
        "MLP channels shrinks matrices every token multiplies; unstructured 50% keeps every shape (dense storage, no "
        "sparse kernels). With random weights, no Δ CE or KL here says anything about a trained model's quality.",
        "",
        "Reproduce: `python benchmarks/bench_diffusion_gemma.py --threads 1`.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--repeats", type=int, default=30, help="latency measurements per variant (default 30)")
    parser.add_argument("--steps", type=int, default=5, help="denoising steps per measurement (default 5)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--output", default=str(RESULTS), help="folder for diffusion_gemma.{json,md}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    progress = not args.no_progress
    start = time.perf_counter()
    calibration = text_ids(CALIBRATION["num_samples"], CALIBRATION["seq_len"], seed=5)
    variants, info = build_variants(calibration, progress)
    import transformers

    report = {
        "env": {"torch": torch.__version__, "transformers": transformers.__version__, "threads": args.threads,
                "machine": platform.machine(), "repeats": args.repeats, "steps": args.steps},
        "weights": "random (N(0, 1/fan_in) matrices and embedding, 1 + N(0, 0.01) norms); no quality claim",
        "text_config": TEXT, "calibration": CALIBRATION,
        "params": parameter_rows(variants),
        "latency": latency(variants, repeats=args.repeats, steps=args.steps, progress=progress),
        "likelihood": likelihood(variants, progress=progress),
        "pruning": info,
        "expert_overlap": expert_overlap(info),
        "expert_score_max_relative_change": score_change(info),
    }
    report["env"]["wall_s"] = time.perf_counter() - start
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "diffusion_gemma.json").write_text(json.dumps(report, indent=2) + "\n")
    text = write_markdown(report)
    (out / "diffusion_gemma.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
