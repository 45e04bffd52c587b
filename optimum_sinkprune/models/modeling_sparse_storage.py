# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Sparse weight storage in the compressed-tensors layout, and reading it back.

This file is copied next to the weights of every saved LLaDA / MMaDA / Dream checkpoint (it is imported by
`modeling_dlm_utils.py`), so it imports only torch, safetensors and transformers: a checkpoint stored sparse loads in
plain transformers too. transformers 5.x and compressed-tensors >= 0.15 no longer decompress the sparse formats
themselves (the sparse compressors were removed from compressed-tensors after 0.14), so the model classes do it.

Formats (the tensor names and dtypes of compressed-tensors' sparse compressors, for a linear `<prefix>.weight`):

* `sparse-bitmask` (any sparsity): `<prefix>.shape` (int64 `[rows, cols]`), `<prefix>.compressed` (the non-zero
  values in row-major order, 1-D), `<prefix>.bitmask` (uint8 `[rows, ceil(cols / 8)]`, bit `j % 8` of byte `j // 8`
  flags column `j`), `<prefix>.row_offsets` (int64, index of each row's first value in `compressed`).
* `sparse-24-bitmask` (2:4 along the input columns): `<prefix>.shape` (int64 `[[rows], [cols]]`),
  `<prefix>.compressed` (`[rows, cols / 2]`, two values per group of four), `<prefix>.bitmask` as above.

The checkpoint's `config.json` names the format in `quantization_config.sparsity_config.format`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from types import MappingProxyType

import torch

SPARSE_BITMASK = "sparse-bitmask"
SPARSE_24_BITMASK = "sparse-24-bitmask"
# format -> the tensors stored per compressed weight (besides these, the checkpoint holds ordinary dense tensors)
FORMAT_PARAMS = MappingProxyType({
    SPARSE_BITMASK: ("shape", "compressed", "bitmask", "row_offsets"),
    SPARSE_24_BITMASK: ("shape", "compressed", "bitmask"),
})
QUANT_METHOD = "compressed-tensors"
_HUB_KWARGS = ("cache_dir", "force_download", "proxies", "token", "revision", "local_files_only", "subfolder")


def pack_bitmask(mask: torch.Tensor) -> torch.Tensor:
    """Pack a boolean `[rows, cols]` mask into uint8 `[rows, ceil(cols / 8)]`, least significant bit first."""
    rows, cols = mask.shape
    padded = torch.zeros(rows, -(-cols // 8) * 8, dtype=torch.uint8)
    padded[:, :cols] = mask.to(torch.uint8)
    bits = padded.view(rows, -1, 8) << torch.arange(8, dtype=torch.uint8)
    return bits.sum(dim=2, dtype=torch.uint8)


def unpack_bitmask(packed: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Inverse of `pack_bitmask`: the boolean mask of `shape`."""
    rows, cols = shape
    bits = (packed.to(torch.uint8).unsqueeze(-1) >> torch.arange(8, dtype=torch.uint8)) & 1
    return bits.reshape(rows, -1)[:, :cols].bool()


def is_two_four(weight: torch.Tensor) -> bool:
    """Whether every group of four consecutive input columns of a 2-D `weight` holds at most two non-zeros."""
    if weight.dim() != 2 or weight.shape[1] % 4:
        return False
    return bool(((weight != 0).reshape(weight.shape[0], -1, 4).sum(dim=2) <= 2).all())


def bitmask_compress(weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """`sparse-bitmask` tensors of a 2-D weight (keys: the parameter names of `FORMAT_PARAMS`)."""
    weight = weight.detach().cpu()
    mask = weight != 0
    counts = mask.sum(dim=1)
    return {
        "shape": torch.tensor(list(weight.shape), dtype=torch.int64),
        "compressed": weight[mask].contiguous(),
        "bitmask": pack_bitmask(mask),
        "row_offsets": (torch.cumsum(counts, 0) - counts).to(torch.int64),
    }


def two_four_compress(weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """`sparse-24-bitmask` tensors of a 2-D weight that is 2:4 sparse along its input columns.

    Raises:
        ValueError: the weight is not 2-D with a multiple of 4 columns and at most 2 non-zeros per group of 4.
    """
    weight = weight.detach().cpu()
    if not is_two_four(weight):
        raise ValueError(f"a weight of shape {tuple(weight.shape)} is not 2:4 sparse along its input columns")
    rows, cols = weight.shape
    groups = weight.reshape(rows, cols // 4, 4)
    # keep exactly two entries per group: every non-zero (at most two), padded with zeros of the same group
    keep_idx = groups.abs().float().topk(2, dim=2).indices.sort(dim=2).values
    keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(2, keep_idx, True).reshape(rows, cols)
    return {
        "shape": torch.tensor([[rows], [cols]], dtype=torch.int64),
        "compressed": weight[keep].reshape(rows, cols // 2).contiguous(),
        "bitmask": pack_bitmask(keep),
    }


def decompress_weight(fmt: str, tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The dense weight from its stored tensors (`shape`, `compressed`, `bitmask`, ...) in format `fmt`.

    Raises:
        ValueError: an unknown format, or tensors that do not describe a weight of the stored shape.
    """
    if fmt not in FORMAT_PARAMS:
        raise ValueError(f"unknown sparse format {fmt!r}; known: {sorted(FORMAT_PARAMS)}")
    shape = [int(x) for x in tensors["shape"].flatten().tolist()]
    cols = shape[-1] if shape else 1
    rows = tensors["bitmask"].numel() // max(tensors["bitmask"].shape[-1], 1) if shape else 1
    mask = unpack_bitmask(tensors["bitmask"].reshape(rows, -1), (rows, cols)).reshape(shape)
    values = tensors["compressed"].flatten()
    if int(mask.sum()) != values.numel():
        raise ValueError(f"{fmt} data is inconsistent: the bitmask flags {int(mask.sum())} entries but "
                         f"{values.numel()} values are stored")
    dense = torch.zeros(shape, dtype=values.dtype)
    dense[mask] = values
    return dense


def decompress_state_dict(fmt: str, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A checkpoint's tensors with every compressed weight (`<prefix>.shape`, `<prefix>.compressed`, ...) replaced by
    the dense `<prefix>.weight`; every other tensor is passed through."""
    params = FORMAT_PARAMS[fmt] if fmt in FORMAT_PARAMS else ()
    prefixes = {name[: -len(".compressed")] for name in tensors if name.endswith(".compressed")}
    out = {}
    for name, value in tensors.items():
        prefix, _, param = name.rpartition(".")
        if prefix in prefixes and param in params:
            continue
        out[name] = value
    for prefix in sorted(prefixes):
        missing = [p for p in params if f"{prefix}.{p}" not in tensors]
        if not params or missing:
            raise ValueError(f"compressed weight {prefix!r} lacks {missing or params} for format {fmt!r}")
        out[f"{prefix}.weight"] = decompress_weight(fmt, {p: tensors[f"{prefix}.{p}"] for p in params})
    return out


def sparse_format(config) -> str | None:
    """The sparse storage format named by a config (object or dict) with a compressed-tensors
    `quantization_config`, or None for a densely stored checkpoint."""
    qconfig = config.get("quantization_config") if isinstance(config, Mapping) else (
        getattr(config, "quantization_config", None))
    if not isinstance(qconfig, Mapping) or qconfig.get("quant_method") != QUANT_METHOD:
        return None
    sparsity = qconfig.get("sparsity_config") or {}
    return sparsity.get("format") if sparsity.get("format") in FORMAT_PARAMS else None


def read_weight_files(path: str | os.PathLike, **hub_kwargs) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint's safetensors weight files (one file, or the shards its index names), from a local
    folder or a Hub repo (`hub_kwargs`: `cache_dir`, `revision`, `token`, ... as `from_pretrained` takes them)."""
    from safetensors.torch import load_file
    from transformers.utils import cached_file

    path = os.fspath(path)
    kwargs = {k: v for k, v in hub_kwargs.items() if k in _HUB_KWARGS and v is not None}
    kwargs["_raise_exceptions_for_missing_entries"] = False
    index = cached_file(path, "model.safetensors.index.json", **kwargs)
    if index is not None:
        with open(index, encoding="utf-8") as f:
            names = sorted(set(json.load(f)["weight_map"].values()))
    else:
        names = ["model.safetensors"]
    tensors: dict[str, torch.Tensor] = {}
    for name in names:
        file = cached_file(path, name, **kwargs)
        if file is None:
            raise FileNotFoundError(f"{path} has no weight file {name!r}")
        tensors.update(load_file(file))
    return tensors


def read_sparse_checkpoint(path: str | os.PathLike, fmt: str, **hub_kwargs) -> dict[str, torch.Tensor]:
    """Read every safetensors weight file of a checkpoint (a local folder or a Hub repo) and decompress it.

    Args:
        path: the folder or repo id.
        fmt: the sparse format the checkpoint was saved in (see `sparse_format`).
        hub_kwargs: `cache_dir`, `revision`, `token`, ... as `from_pretrained` takes them.

    Returns:
        `dict[str, torch.Tensor]`: the dense state dict.
    """
    return decompress_state_dict(fmt, read_weight_files(path, **hub_kwargs))


def sparse_checkpoint(model_class, pretrained_model_name_or_path, kwargs: Mapping):
    """For `from_pretrained` of our model classes: when the checkpoint is stored in a sparse format, its config, its
    decompressed (dense) state dict and the remaining `from_pretrained` keyword arguments, to load with
    `from_pretrained(None, config=config, state_dict=state_dict, **rest)`; None for any other checkpoint.

    transformers still creates its compressed-tensors quantizer from `quantization_config` (which needs
    `compressed-tensors` installed and names the package otherwise) but leaves the sparse tensors to us."""
    if pretrained_model_name_or_path is None or kwargs.get("state_dict") is not None:
        return None
    config = kwargs.get("config")
    hub_kwargs = {k: kwargs[k] for k in _HUB_KWARGS if kwargs.get(k) is not None}
    if config is None or isinstance(config, (str, os.PathLike)):
        config, _ = model_class.config_class.from_pretrained(
            config or pretrained_model_name_or_path, return_unused_kwargs=True, **hub_kwargs)
    fmt = sparse_format(config)
    if fmt is None:
        return None
    state_dict = read_sparse_checkpoint(pretrained_model_name_or_path, fmt, **hub_kwargs)
    rest = {k: v for k, v in kwargs.items() if k not in _HUB_KWARGS and k != "config"}
    return config, state_dict, rest
