# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Checks of bad input, made before any calibration, weight or file changes: argument values (`check_int`,
`check_float`, `check_choice`: one wording for every config and settings class) and the model a pruning run starts
from, made in the validate step.

`check_finite_parameters` is called by every run (weight pruning in `SinkAwarePruner._plan`, structured pruning in
`prune_structured` / `SinkAwarePruner._prune_structured`): NaN or inf in a weight would otherwise surface later as a
non-finite calibration statistic of some downstream layer (blamed on activation overflow), or, for the weight-only
methods, be kept silently in the pruned model.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import nn

# Elements per step of the detailed NaN/inf count (run only on a tensor already found bad, and by the fallback scan
# for dtypes `torch.aminmax` does not support): bounds the boolean temporaries to a few MiB whatever the tensor's size.
_CHUNK = 1 << 20


def check_int(name: str, value: Any, minimum: int) -> None:
    """Raise `ValueError` naming the argument and its value unless `value` is an integer (not a bool) >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r} is not allowed; it must be an integer >= {minimum}")


_MINIMUM = "sinkprune_minimum"  # the metadata key of `int_field`


def int_field(default: int, *, minimum: int = 1) -> Any:
    """A dataclass field holding an integer >= `minimum` (default 1), checked by `check_int_fields`: the bound is
    declared with the field, so no separate list of names to check can miss one."""
    return field(default=default, metadata={_MINIMUM: minimum})


def check_int_fields(settings: Any) -> None:
    """`check_int` on every field of the dataclass instance `settings` declared with `int_field`, in field order."""
    for f in fields(settings):
        if _MINIMUM in f.metadata:
            check_int(f.name, getattr(settings, f.name), f.metadata[_MINIMUM])


def check_float(name: str, value: Any, low: float | None = None, high: float | None = None, *, open_high=False,
                open_low=False) -> None:
    """Raise `ValueError` naming the argument, its value and the allowed range unless `value` is a finite number (not
    a bool) within [`low`, `high`] (an end is open with `open_low` / `open_high`; None: unbounded)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if open_low else value >= low
    if ok and high is not None:
        ok = value < high if open_high else value <= high
    if not ok:
        lo = "" if low is None else f"{'>' if open_low else '>='} {low}"
        hi = "" if high is None else f"{'<' if open_high else '<='} {high}"
        rng = " and ".join(p for p in (lo, hi) if p) or "finite"
        raise ValueError(f"{name}={value!r} is not allowed; it must be a finite number {rng}")


def check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    """Raise `ValueError` naming the argument, its value and the allowed values when `value` is not one of them."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {allowed}")


class NonFiniteWeightsError(FloatingPointError, ValueError):
    """A parameter (or buffer) of the model holds NaN or inf: the model itself is bad input. Both a
    `FloatingPointError` (as non-finite statistics are) and a `ValueError` (as other bad input is)."""


@dataclass(frozen=True)
class NonFiniteTensor:
    """The first tensor found holding NaN/inf: its name, kind ("parameter" / "buffer"), shape and bad counts."""

    name: str
    kind: str
    shape: tuple[int, ...]
    nan: int
    inf: int


def _extremes_bad(low: float, high: float, *, allow_inf: bool) -> bool:
    """Whether a tensor whose minimum and maximum are `low` and `high` holds NaN (min/max propagate it), or inf
    (then the minimum is -inf or the maximum +inf) unless `allow_inf`. Pure."""
    if math.isnan(low) or math.isnan(high):
        return True
    return not allow_inf and (math.isinf(low) or math.isinf(high))


def _chunks(tensor: torch.Tensor):
    """The flattened tensor in pieces of `_CHUNK` elements; one-byte floats (float8) widened exactly to float32, as
    `isnan` / `isinf` have no kernels for them."""
    for chunk in tensor.reshape(-1).split(_CHUNK):
        yield chunk.float() if chunk.element_size() == 1 else chunk


def _has_bad(tensor: torch.Tensor, *, allow_inf: bool) -> bool:
    """Whether `tensor` holds NaN (or inf unless `allow_inf`), from one streaming min/max reduction: no temporary the
    size of the tensor, one host sync. Complex tensors are read through their real view; dtypes without a min/max
    kernel fall back to a chunked `isfinite` scan."""
    t = tensor.detach()
    if t.is_complex():
        t = torch.view_as_real(t)
    try:
        low, high = torch.stack(torch.aminmax(t)).tolist()
    except (RuntimeError, NotImplementedError):  # e.g. float8
        for chunk in _chunks(t):
            ok = ~torch.isnan(chunk) if allow_inf else torch.isfinite(chunk)
            if not bool(ok.all()):
                return True
        return False
    return _extremes_bad(low, high, allow_inf=allow_inf)


def first_non_finite(
    tensors: Iterable[tuple[str, torch.Tensor]], *, kind: str = "parameter", allow_inf: bool = False
) -> NonFiniteTensor | None:
    """The first of the named tensors (in the given order) holding NaN, or inf unless `allow_inf`; None when all are
    finite. Integer, boolean and meta (not materialised) tensors are skipped. Pure: reads only.

    Args:
        tensors: `(name, tensor)` pairs, e.g. `model.named_parameters()`.
        kind: what the tensors are, for the result ("parameter", "buffer").
        allow_inf: only NaN counts as bad (buffers such as attention masks hold -inf on purpose).

    Returns:
        `NonFiniteTensor` or None.
    """
    for name, tensor in tensors:
        if not (tensor.is_floating_point() or tensor.is_complex()) or tensor.is_meta or tensor.numel() == 0:
            continue
        if _has_bad(tensor, allow_inf=allow_inf):
            t = tensor.detach()
            # only on a hit: the exact counts for the message, chunk by chunk
            nan = sum(int(torch.isnan(c).sum()) for c in _chunks(t))
            inf = sum(int(torch.isinf(c).sum()) for c in _chunks(t))
            return NonFiniteTensor(name=name, kind=kind, shape=tuple(t.shape), nan=nan, inf=0 if allow_inf else inf)
    return None


def check_finite_parameters(model: nn.Module, *, argument: str = "model") -> None:
    """Raise when a parameter (weights, biases, norm scales, embeddings; accelerate-offloaded ones read from memory or
    disk) holds NaN or inf, or a floating buffer holds NaN, naming the first one (in module order, then buffers).

    Args:
        model: the model about to be pruned.
        argument: how the caller names the model, for the message.

    Raises:
        `NonFiniteWeightsError` (a `FloatingPointError` and a `ValueError`): naming the parameter, its shape and how
            many NaN / inf values it holds.
    """
    from .offload import parameter_values

    bad = first_non_finite(parameter_values(model), kind="parameter")
    if bad is None:
        bad = first_non_finite(model.named_buffers(), kind="buffer", allow_inf=True)
    if bad is None:
        return
    counts = " and ".join(f"{n} {what}" for n, what in ((bad.nan, "NaN"), (bad.inf, "inf")) if n)
    raise NonFiniteWeightsError(
        f"{argument} {bad.kind} {bad.name!r} (shape {list(bad.shape)}) holds {counts} value(s); pruning needs every "
        f"parameter (weights, biases, norms) finite, so nothing was changed. The checkpoint is damaged, or its values "
        "overflowed when it was cast to a narrower dtype: reload it (in float32 or bfloat16 if it was cast to float16)"
    )


def weights_removed(
    shape: tuple[int, int], sparsity: float, *, nm: tuple[int, int] | None, per_row: bool, reconstruct: bool,
    block_size: int,
) -> int:
    """How many weights an unstructured mask removes from a `[out, in]` layer, by the masks' own floor counts
    (`methods.masks`: per row `floor(in · sparsity)`, per matrix `floor(out · in · sparsity)`; SparseGPT per column
    block `floor(out · block · sparsity)`); N:M patterns remove `out · (in // M) · (M − N)`. Pure.
    """
    out, inp = int(shape[0]), int(shape[1])
    if nm is not None:
        n, m = nm
        return out * (inp // m) * (m - n)
    if reconstruct:
        blocks = [min(block_size, inp - start) for start in range(0, inp, block_size)]
        return sum(int(out * width * sparsity) for width in blocks)
    if per_row:
        return out * int(inp * sparsity)
    return int(out * inp * sparsity)


def smallest_removing_sparsity(
    shape: tuple[int, int], *, per_row: bool, reconstruct: bool, block_size: int
) -> float:
    """The smallest sparsity (rounded up to three significant digits) at which `weights_removed` is positive for an
    unstructured mask of a `[out, in]` layer. Pure."""
    out, inp = int(shape[0]), int(shape[1])
    group = inp if per_row and not reconstruct else out * (min(block_size, inp) if reconstruct else inp)
    value = 1.0 / max(group, 1)
    scale = 10 ** (2 - math.floor(math.log10(value)))
    return math.ceil(value * scale) / scale


# ---------------------------------------------------------------------------------------------------------------------
# text inputs (calibration texts, held-out evaluation texts, the files they come from)
# ---------------------------------------------------------------------------------------------------------------------
def check_texts(texts, *, argument: str) -> list[str]:
    """Check a list (or tuple) of texts given in memory and return it as a list.

    Args:
        texts: the texts.
        argument: how the caller names them, for the messages ("calibration data", "texts", ...).

    Raises:
        `ValueError`: an empty list, an element that is not a `str` (naming its index and type), or texts that are
            all blank.
    """
    if not isinstance(texts, (list, tuple)):
        raise ValueError(f"{argument} must be a list of texts (str), got {type(texts).__name__}")
    if not texts:
        raise ValueError(f"{argument} is an empty {type(texts).__name__}; give at least one text")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            hint = ""
            if isinstance(text, (int, list, tuple)) and not isinstance(text, bool):
                hint = "; token ids go in a torch.LongTensor ([n, seq] or a 1-D stream), not in a list"
            raise ValueError(f"{argument}: element {index} is {_article(type(text).__name__)} ({_short(text)}), not "
                             f"a text; every element must be a str{hint}")
    if not any(text.strip() for text in texts):
        raise ValueError(f"{argument}: all {len(texts)} texts are empty or blank; give at least one non-blank text")
    return list(texts)


def _article(name: str) -> str:
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_text_file(path, *, what: str) -> str:
    """The path of a text file to read, as a string, after checking that it is an existing file.

    Raises:
        `IsADirectoryError`: `path` is a folder (the message says so; a folder of files is not read as one file).
        `FileNotFoundError`: nothing exists at `path`.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{what} file {path!r} is a folder, not a file; give the path of a .txt or .jsonl "
                                "file inside it")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} file {path!r} does not exist")
    return path


def not_utf8_error(path: str, *, what: str) -> ValueError:
    """The error for a text file that is not valid UTF-8: names the file, the first bad line and byte, and how to
    convert it (the package reads every text file as UTF-8)."""
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as err:
                byte = raw[err.start]
                converted = "converted" + (os.path.splitext(path)[1] or ".txt")
                return ValueError(
                    f"{what} file {path!r} is not UTF-8 text: line {line_no}, byte {err.start + 1} (0x{byte:02x}) "
                    f"cannot be decoded ({err.reason}). Text files are read as UTF-8: convert it, e.g. "
                    f"`iconv -f LATIN1 -t UTF-8 {path!r} > {converted}` (use the file's real encoding: cp1252, "
                    "UTF-16, ...), or in Python read it with open(path, encoding=<its encoding>) and write it back "
                    "with encoding='utf-8'"
                )
    return ValueError(f"{what} file {path!r} is not UTF-8 text; convert it to UTF-8")  # pragma: no cover


def read_text_lines(path, *, what: str):
    """Yield `(line number, line)` of a UTF-8 text file (line ends kept, universal newlines), checking the path
    first (`check_text_file`).

    Raises:
        `IsADirectoryError`, `FileNotFoundError`: as `check_text_file`.
        `ValueError`: the file is not valid UTF-8 (`not_utf8_error`: the file, line and byte, and how to convert it).
    """
    path = check_text_file(path, what=what)
    try:
        with open(path, encoding="utf-8") as fh:
            yield from enumerate(fh, 1)
    except UnicodeDecodeError:
        raise not_utf8_error(path, what=what) from None


def read_text_file(path, *, what: str) -> str:
    """The whole text of a UTF-8 file (a JSON config, a report), with the same checks and messages as
    `read_text_lines` (folder, missing file, not UTF-8 with the line and byte)."""
    return "".join(line for _, line in read_text_lines(path, what=what))


__all__ = [
    "NonFiniteTensor",
    "NonFiniteWeightsError",
    "check_choice",
    "check_finite_parameters",
    "check_text_file",
    "check_texts",
    "check_float",
    "check_int",
    "check_int_fields",
    "first_non_finite",
    "int_field",
    "not_utf8_error",
    "read_text_file",
    "read_text_lines",
    "smallest_removing_sparsity",
    "weights_removed",
]
