# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Straightforward reference implementations of every weight-pruning method, written independently of the
library's engine: loops over samples and steps, full attention matrices, whole-model forwards with hooks, explicit
formulas. The parity tests compare the library's masks with these."""

from __future__ import annotations

import math

import torch
from torch import nn

from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.diffusion import forward_process
from optimum_sinkprune.models.modeling_dlm_utils import apply_rotary


def prunable(model) -> dict[str, nn.Linear]:
    adapter = get_adapter(model)
    out = {}
    for i, block in enumerate(adapter.blocks(model)):
        for role in ("q", "k", "v", "o", "gate", "up", "down"):
            out[adapter.projection_name(i, role)] = adapter.projection(block, role)
    return out


# The sorts below read the scores as Python floats (`tolist()`: the same values `float(scores[r, j])` gives, read
# once rather than element by element) and break ties by index.
def lowest_per_row(scores: torch.Tensor, k: int) -> torch.Tensor:
    mask = torch.zeros_like(scores, dtype=torch.bool)
    for r, row in enumerate(scores.tolist()):
        order = sorted(range(len(row)), key=lambda j: (row[j], j))
        mask[r, order[:k]] = True
    return mask


def lowest_overall(scores: torch.Tensor, k: int) -> torch.Tensor:
    flat = scores.reshape(-1).tolist()
    order = sorted(range(len(flat)), key=lambda j: (flat[j], j))
    mask = torch.zeros(len(flat), dtype=torch.bool)
    mask[order[:k]] = True
    return mask.reshape(scores.shape)


def nm_reference(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    mask = []
    for row in scores.tolist():
        pruned = [False] * len(row)
        for g in range(0, len(row), m):
            for j in sorted(range(g, g + m), key=lambda j: (row[j], j))[: m - n]:
                pruned[j] = True
        mask.append(pruned)
    return torch.tensor(mask, dtype=torch.bool).reshape(scores.shape)


def choose(scores, sparsity, nm, per_row=True):
    if nm is not None:
        return nm_reference(scores, *nm)
    if per_row:
        return lowest_per_row(scores, int(scores.shape[1] * sparsity))
    return lowest_overall(scores, int(scores.numel() * sparsity))


@torch.no_grad()
def inputs_of(model, layers: dict[str, nn.Linear], ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run the whole model on `ids` [b, s]; return each layer's input [b, s, in]."""
    got = {}
    handles = [layer.register_forward_pre_hook(lambda mod, args, n=name: got.__setitem__(n, args[0].detach().clone()))
               for name, layer in layers.items()]
    try:
        model(input_ids=ids)
    finally:
        for h in handles:
            h.remove()
    return got


@torch.no_grad()
def full_attention_mass(model, ids: torch.Tensor) -> torch.Tensor:
    """m_j = Σ_layers Σ_heads Σ_queries softmax(q kᵀ/√d)_{ij}, from full attention matrices. ids: [1, s] -> [s]."""
    adapter = get_adapter(model)
    blocks = adapter.blocks(model)
    qk = {}
    handles = []
    for i, block in enumerate(blocks):
        for role in ("q", "k"):
            handles.append(adapter.projection(block, role).register_forward_hook(
                lambda mod, a, out, key=(i, role): qk.__setitem__(key, out.detach().clone())))
    try:
        model(input_ids=ids)
    finally:
        for h in handles:
            h.remove()
    s = ids.shape[1]
    d = adapter.head_dim(model)
    cos, sin = adapter.rotary_cos_sin(model, torch.arange(s)[None], torch.float32)
    total = torch.zeros(s, dtype=torch.float64)
    for i in range(len(blocks)):
        q = qk[(i, "q")].reshape(1, s, -1, d).transpose(1, 2).float()
        k = qk[(i, "k")].reshape(1, s, -1, d).transpose(1, 2).float()
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        rep = q.shape[1] // k.shape[1]
        k = k.repeat_interleave(rep, dim=1)
        attn = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)  # [1, h, s, s] materialised
        total += attn[0].sum(dim=(0, 1)).double()
    return total.float()


def sigma_of(mass: torch.Tensor, alpha: float, k_std: float) -> torch.Tensor:
    mean = mass.mean()
    std = ((mass - mean) ** 2).mean().sqrt()
    return torch.sigmoid(alpha * (mass - (mean + k_std * std)))


def noisy_sample(ids_row: torch.Tensor, step_index_seed: tuple[int, int], steps, total, mask_id, eps):
    seed, i = step_index_seed
    per_sample = torch.randint(0, 2**31, (i + 1,), generator=torch.Generator().manual_seed(seed))[i]
    gen = torch.Generator().manual_seed(int(per_sample))
    out = []
    for s in steps:
        noisy, _, _ = forward_process(ids_row[None], s / total, mask_id, eps=eps, generator=gen)
        out.append(noisy)
    return out


@torch.no_grad()
def reference_dense_norms(model, ids, config, *, sink: bool) -> dict[str, torch.Tensor]:
    """sink_wanda / wanda_diffusion statistic: Σ_(sample, step) ‖(1 − σ) X_j‖₂; σ from a separate full-matrix pass."""
    mask_id = get_adapter(model).mask_token_id(model)
    layers = prunable(model)
    acc = {name: torch.zeros(layer.in_features, dtype=torch.float64) for name, layer in layers.items()}
    for i in range(ids.shape[0]):
        for noisy in noisy_sample(ids[i], (config.seed, i), config.sampled_steps, config.diffusion_steps, mask_id,
                                  config.noise_eps):
            w = 1 - sigma_of(full_attention_mass(model, noisy), config.sink_alpha, config.sink_std) if sink else None
            xs = inputs_of(model, layers, noisy)  # second pass with activation hooks
            for name, x in xs.items():
                x = x[0].double()
                if w is not None:
                    x = x * w.double()[:, None]
                acc[name] += torch.sqrt((x ** 2).sum(dim=0))
    return acc


@torch.no_grad()
def reference_prune(model, ids, config) -> dict[str, torch.Tensor]:
    """Prune `model` in place with the reference definitions; return the masks."""
    adapter = get_adapter(model)
    layers = prunable(model)
    nm = config.nm
    masks = {}
    if config.method == "magnitude":
        for name, layer in layers.items():
            masks[name] = choose(layer.weight.abs(), config.sparsity, nm, per_row=False)
    elif config.method in ("sink_wanda", "wanda_diffusion"):
        norms = reference_dense_norms(model, ids, config, sink=config.method == "sink_wanda")
        for name, layer in layers.items():
            masks[name] = choose(layer.weight.abs().double() * norms[name][None, :], config.sparsity, nm)
    else:
        token_w = None
        if config.method == "sink_sparsegpt":
            mask_id = adapter.mask_token_id(model)
            token_w = []
            for i in range(ids.shape[0]):
                sig = [sigma_of(full_attention_mass(model, nz), config.sink_alpha, config.sink_std)
                       for nz in noisy_sample(ids[i], (config.seed, i), config.sampled_steps, config.diffusion_steps,
                                              mask_id, config.noise_eps)]
                token_w.append(1 - torch.stack(sig).mean(0))
        for b in range(adapter.num_layers(model)):
            block_layers = {n: l for n, l in layers.items() if n.startswith(adapter.block_name(b) + ".")}
            xs = {name: [] for name in block_layers}
            for i in range(ids.shape[0]):  # whole-model forward per sample; earlier blocks already pruned
                for name, x in inputs_of(model, block_layers, ids[i:i + 1]).items():
                    xs[name].append(x[0])
            for name, layer in block_layers.items():
                x = torch.stack(xs[name])  # [n, s, in]
                if config.method == "wanda":
                    norm = torch.sqrt((x.double() ** 2).sum(dim=(0, 1)) / (x.shape[0] * x.shape[1]))
                    masks[name] = choose(layer.weight.abs().double() * norm[None, :], config.sparsity, nm)
                    layer.weight[masks[name]] = 0
                else:
                    if token_w is not None:
                        x = x * torch.stack(token_w)[..., None]
                    flat = x.reshape(-1, x.shape[-1]).double()
                    h = 2 * flat.T @ flat / x.shape[0]
                    new_w, masks[name] = naive_sparsegpt(layer.weight.double(), h, config)
                    layer.weight.copy_(new_w.float())
        return masks
    for name, layer in layers.items():
        layer.weight[masks[name]] = 0
    return masks


def naive_sparsegpt(w: torch.Tensor, h: torch.Tensor, config):
    """SparseGPT without lazy batching: after each column, update all later columns at once (float64)."""
    w = w.clone()
    cols = w.shape[1]
    h = h.clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    h += config.dampening * torch.diag(h).mean() * torch.eye(cols, dtype=h.dtype)
    u = torch.linalg.cholesky(torch.linalg.inv(h), upper=True)
    mask = torch.zeros_like(w, dtype=torch.bool)
    nm = config.nm
    bs = config.block_size
    for j in range(cols):
        if nm is None and j % bs == 0:
            end = min(j + bs, cols)
            metric = w[:, j:end] ** 2 / torch.diag(u)[j:end][None, :] ** 2
            mask[:, j:end] = lowest_overall(metric, int(metric.numel() * config.sparsity))
        if nm is not None and j % nm[1] == 0:
            metric = w[:, j:j + nm[1]] ** 2 / torch.diag(u)[j:j + nm[1]][None, :] ** 2
            mask[:, j:j + nm[1]] = nm_reference(metric, *nm)
        q = torch.where(mask[:, j], torch.zeros_like(w[:, j]), w[:, j])
        err = (w[:, j] - q) / u[j, j]
        w[:, j] = q
        w[:, j + 1:] -= err[:, None] * u[j, j + 1:][None, :]
    return w, mask
