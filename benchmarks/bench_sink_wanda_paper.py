# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""sink_wanda wall time next to the paper's own code (Sink-Aware-Pruning, `lib/prune_llada.prune_sink`).

Both prune the same randomly initialised LLaDA (the same weights loaded into the paper's `model.LLaDAModelLM` and
into ours) at 50 % unstructured sparsity from the same noised calibration tokens:

* ours: `SinkAwarePruner(model).prune(SinkAwarePruningConfig(method="sink_wanda", ...), ids)`, timed whole
  (validation, memory estimate, noising, calibration, scoring, masking, report);
* the paper: `lib.prune_llada.prune_sink(args, model, tokenizer, device)`, timed whole, imported from a checkout
  given with `--paper-code` (nothing of it is copied here). Its data loader and its noising are replaced, on the
  imported module only, by functions that hand it our calibration windows and the noised inputs our run draws, in
  the order it asks for them (sample by sample, step by step), so both see the same tokens. Its config class
  predates transformers 5's removal of the `use_cache` default, which is set on the config instance.

The two runs alternate (paper, ours, ours, paper, ...) in one process with one thread, each on freshly loaded
weights; the ratio is ours / paper per pair. The masks of every pruned layer are compared at the end.

    git clone https://github.com/VILA-Lab/Sink-Aware-Pruning /tmp/paper-code
    python benchmarks/bench_sink_wanda_paper.py --paper-code /tmp/paper-code            # 16 × 256 tokens, 3 pairs

Results: benchmarks/results/sink_wanda_vs_paper.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
SHAPE = dict(d_model=512, n_heads=8, n_layers=8, mlp_hidden_size=1408)
VOCAB = 4096
MASK_ID = 3


def _our_config(seq_len: int):
    from optimum_sinkprune import LLaDAConfig

    return LLaDAConfig(vocab_size=VOCAB, embedding_size=VOCAB, mask_token_id=MASK_ID, eos_token_id=2, pad_token_id=0,
                       max_sequence_length=max(1024, seq_len), **SHAPE)


def build_weights(seq_len: int) -> dict:
    """Random LLaDA weights, N(0, 1/in) so the attention is not uniform and sinks form."""
    import torch

    from optimum_sinkprune import LLaDAModelLM

    torch.manual_seed(0)
    model = LLaDAModelLM(_our_config(seq_len)).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, p.shape[1] ** -0.5)
    return {k: v.clone() for k, v in model.state_dict().items()}


def our_model(state: dict, seq_len: int):
    from optimum_sinkprune import LLaDAModelLM

    model = LLaDAModelLM(_our_config(seq_len)).eval()
    model.load_state_dict(state)
    return model


class PaperCode:
    """The paper's LLaDA model class and `prune_sink`, imported from its checkout."""

    def __init__(self, path: str):
        if not os.path.isfile(os.path.join(path, "lib", "prune_llada.py")):
            raise SystemExit(f"--paper-code {path!r} has no lib/prune_llada.py (a Sink-Aware-Pruning checkout)")
        sys.path.insert(0, os.path.abspath(path))
        from lib import prune_llada  # noqa: PLC0415  (the paper's module)
        from model.configuration_llada import LLaDAConfig  # noqa: PLC0415
        from model.modeling_llada import LLaDAModelLM  # noqa: PLC0415

        self.prune_llada = prune_llada
        self.config_cls = LLaDAConfig
        self.model_cls = LLaDAModelLM
        self.commit = _git_head(path)

    def model(self, state: dict, seq_len: int):
        config = self.config_cls(**_our_config(seq_len).to_dict())
        config.use_cache = False  # a default transformers < 5 configs had
        model = self.model_cls(config).eval()
        model.load_state_dict(state)
        model.seqlen = seq_len
        return model

    def prune(self, model, ids, noisy, *, sparsity: float, steps: list[int], diffusion_steps: int, noise_eps: float,
              alpha: float, k_std: float) -> None:
        import torch

        n, num_steps, _ = noisy.shape
        order = iter([(i, k) for i in range(n) for k in range(num_steps)])

        def get_loaders(name, nsamples=128, seed=0, seqlen=2048, tokenizer=None):
            return [(ids[i:i + 1], ids[i:i + 1]) for i in range(n)], None

        def forward_diffusion(input_ids, timestep, total_steps, mask_id, eps):
            i, k = next(order)
            if timestep != steps[k] or not torch.equal(input_ids, ids[i:i + 1]):
                raise RuntimeError(f"the paper's loop asked for sample/step out of order at ({i}, {k})")
            return noisy[i:i + 1, k]

        args = types.SimpleNamespace(nsamples=n, seed=0, sparsity_ratio=sparsity, calib_dataset="wikitext2",
                                     diffusion_steps=diffusion_steps, sample_interval=steps[0], batch_size=1,
                                     noise_eps=noise_eps, sink_std=k_std, sink_alpha=alpha)
        module = self.prune_llada
        saved = module.get_loaders, module._forward_diffusion
        module.get_loaders, module._forward_diffusion = get_loaders, forward_diffusion
        try:
            module.prune_sink(args, model, types.SimpleNamespace(mask_token_id=MASK_ID), torch.device("cpu"))
        finally:
            module.get_loaders, module._forward_diffusion = saved
        if next(order, None) is not None:
            raise RuntimeError("the paper's loop did not consume every noised input")


def _git_head(path: str) -> str | None:
    import subprocess

    try:
        return subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def _masks(model, names) -> dict:
    import torch

    params = dict(model.named_parameters())
    return {name: (params[name + ".weight"] == 0).to(torch.bool).clone() for name in names}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paper-code", required=True, help="a Sink-Aware-Pruning checkout (its lib/ and model/)")
    parser.add_argument("--windows", type=int, default=16, help="calibration windows (samples)")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--pairs", type=int, default=3, help="interleaved (paper, ours) pairs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--paper-commit", default=None,
                        help="the checkout's commit, recorded in the results when DIR is not a git work tree")
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)

    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch

    torch.set_num_threads(args.threads)
    from optimum_sinkprune import SinkAwarePruner, SinkAwarePruningConfig

    paper = PaperCode(args.paper_code)
    state = build_weights(args.seq_len)
    ids = torch.randint(4, VOCAB, (args.windows, args.seq_len), generator=torch.Generator().manual_seed(0))
    config = SinkAwarePruningConfig(method="sink_wanda", sparsity=0.5, num_samples=args.windows,
                                    seq_len=args.seq_len)
    # the noised inputs our run draws (validated plan, then the family's forward process), for the paper's loop
    probe = SinkAwarePruner(our_model(state, args.seq_len))
    run = probe._plan(config, ids, False)
    noisy, _ = probe.adapter.calibration_noise(probe.model, run.ids, run.noise, run.mask_token_id, batch_size=1)
    steps = list(config.sampled_steps)
    targets = list(run.targets)
    del probe, run

    # untimed warm-up of both on one window (lazy initialisation, allocator, rotary caches)
    warm = SinkAwarePruningConfig(method="sink_wanda", sparsity=0.5, num_samples=1, seq_len=args.seq_len)
    SinkAwarePruner(our_model(state, args.seq_len)).prune(warm, ids[:1], progress=False)
    paper.prune(paper.model(state, args.seq_len), ids[:1], noisy[:1], sparsity=0.5, steps=steps,
                diffusion_steps=config.diffusion_steps, noise_eps=config.noise_eps, alpha=config.sink_alpha,
                k_std=config.sink_std)

    times = {"paper": [], "ours": []}
    masks = {}
    for pair in range(args.pairs):
        for impl in (("paper", "ours") if pair % 2 == 0 else ("ours", "paper")):
            if impl == "paper":
                model = paper.model(state, args.seq_len)
                start = time.perf_counter()
                paper.prune(model, ids, noisy, sparsity=0.5, steps=steps, diffusion_steps=config.diffusion_steps,
                            noise_eps=config.noise_eps, alpha=config.sink_alpha, k_std=config.sink_std)
            else:
                model = our_model(state, args.seq_len)
                start = time.perf_counter()
                SinkAwarePruner(model).prune(config, ids, progress=False)
            times[impl].append(time.perf_counter() - start)
            masks[impl] = _masks(model, targets)
            del model
            print(json.dumps({"pair": pair, "impl": impl, "wall_s": times[impl][-1]}), flush=True)

    ratios = [o / p for o, p in zip(times["ours"], times["paper"])]
    same = total = layers_identical = 0
    for name in targets:
        a, b = masks["paper"][name], masks["ours"][name]
        same += int((a == b).sum())
        total += a.numel()
        layers_identical += int(torch.equal(a, b))
    forwards = args.windows * len(steps)
    row = {
        "model": f"LLaDA d{SHAPE['d_model']} L{SHAPE['n_layers']} h{SHAPE['n_heads']} (random weights, float32)",
        "params": sum(v.numel() for v in state.values()),
        "windows": args.windows, "seq_len": args.seq_len, "sampled_steps": len(steps), "pairs": args.pairs,
        "paper_forwards": 2 * forwards, "our_forwards": forwards,
        "paper_wall_s": times["paper"], "ours_wall_s": times["ours"], "ratios": ratios,
        "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
        "ratio_mean": statistics.fmean(ratios),
        "ratio_se": statistics.stdev(ratios) / len(ratios) ** 0.5 if len(ratios) > 1 else None,
        "mask_agreement": same / total, "mask_entries": total, "mask_entries_differing": total - same,
        "layers_identical": layers_identical, "layers": len(targets),
    }
    meta = {"threads": args.threads, "torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.processor() or platform.machine(),
            "paper_code_commit": args.paper_commit or paper.commit,
            "load_average_at_write": os.getloadavg()[0], "command": "python benchmarks/bench_sink_wanda_paper.py "
            f"--paper-code DIR --windows {args.windows} --seq-len {args.seq_len} --pairs {args.pairs}"}
    print(json.dumps(row), flush=True)
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "sink_wanda_vs_paper.json"), "w", encoding="utf-8") as fh:
        json.dump({"meta": meta, "result": row}, fh, indent=2)
    write_markdown(row, meta, args.output)
    return 0


def write_markdown(row: dict, meta: dict, output: str) -> None:
    pairs = " · ".join(f"{o:.1f} / {p:.1f}" for o, p in zip(row["ours_wall_s"], row["paper_wall_s"]))
    se = f" ± {row['ratio_se']:.3f} (se)" if row["ratio_se"] is not None else ""
    lines = [
        "# sink_wanda next to the paper's code",
        "",
        f"{row['model']}, {row['params'] / 1e6:.1f}M parameters; {row['windows']} windows × {row['seq_len']} "
        f"tokens × {row['sampled_steps']} sampled steps, 50 % unstructured, CPU, {meta['threads']} thread; the paper's "
        f"`lib/prune_llada.prune_sink` (commit {str(meta['paper_code_commit'])[:7]}) and our `SinkAwarePruner.prune` "
        "on the same weights and the same noised tokens, timed whole, alternating in one process.",
        "",
        "| paper forwards | our forwards | ours / paper s per pair | ratio median [min–max] | mean | mask entries "
        "differing | identical layers |",
        "|---:|---:|---|---:|---:|---:|---:|",
        f"| {row['paper_forwards']} | {row['our_forwards']} | {pairs} | **{row['ratio_median']:.3f}×** "
        f"[{row['ratio_min']:.3f}–{row['ratio_max']:.3f}] | {row['ratio_mean']:.3f}{se} | "
        f"{row['mask_entries_differing']} of {row['mask_entries']:,} | "
        f"{row['layers_identical']}/{row['layers']} |",
        "",
        "Masks: both score |W| · Σ over (sample, step) ‖(1 − σ) ⊙ X_j‖₂ and keep the top half of each row; the "
        "statistics are the same up to float32 rounding (the paper's code multiplies the inputs and takes "
        "`torch.norm`, ours sums w² X² and takes the square root), so a weight whose score ties its row's threshold "
        "to ~1e-7 can fall on either side.",
        "",
        "The machine is a shared 2-core VM (load average "
        f"{meta['load_average_at_write']:.1f} when written), so absolute seconds are noisy; the ratio pairs runs "
        "made back to back.",
        "",
        f"Regenerate: `{meta['command']}`.",
        "",
    ]
    with open(os.path.join(output, "sink_wanda_vs_paper.md"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
