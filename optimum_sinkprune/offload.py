# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Weights that accelerate keeps off the module (CPU and disk offload): where each one lives, reading it, writing it
back, and the up-front checks of device maps, offload folders and memory limits.

A module dispatched by accelerate with offloading holds its parameters on the `meta` device; its hook's
`weights_map` (a `PrefixedDataset` over a dict or an `OffloadedWeightsLoader`) gives the real tensor on each forward:

* **CPU offload** (`cpu_offload`, `device_map` entries "cpu" of an offloaded model): the map holds the tensor itself,
  which is changed in place.
* **disk offload** (`device_map` entries "disk", `disk_offload`, `dispatch_model(offload_dir=...)`): every read
  gives a fresh copy, from a `<name>.dat` memory map in the offload folder or straight from the checkpoint's
  safetensors file. A changed weight is written as `<name>.dat` into the offload folder (through a temporary file
  and a rename) and its entry in the loader's index (and the folder's `index.json`) is pointed at it, so the next
  forward, `save_pretrained` and a reload of the folder see the new values; the checkpoint itself is never written.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

# accelerate's names for the places of a device map that are not devices
DISK = "disk"
META = "meta"


@dataclass
class OffloadSlot:
    """Where the real value of an offloaded parameter lives.

    Attributes:
        mapping: the base mapping of the hook's weights map (a dict, or accelerate's `OffloadedWeightsLoader`).
        key: the parameter's key in `mapping`.
        on_disk: every read is a fresh copy from a file (writes go to `folder`).
        folder: the loader's offload folder (`save_folder`; None when it has none).
    """

    mapping: Mapping
    key: str
    on_disk: bool
    folder: str | None


def _weights_map(module: nn.Module) -> Mapping | None:
    """The weights map of `module`'s accelerate hook, or None without one."""
    hook = getattr(module, "_hf_hook", None)
    # a chain of hooks (`add_hook_to_module(..., append=True)`): the one that offloads
    hooks = list(getattr(hook, "hooks", ())) or [hook]
    return next((h.weights_map for h in hooks if getattr(h, "weights_map", None) is not None), None)


def _unwrap(mapping: Mapping, key: str = "") -> tuple[Mapping, str]:
    """The base mapping under accelerate's `PrefixedDataset` wrappers (possibly nested) and `key` in it."""
    while hasattr(mapping, "dataset") and hasattr(mapping, "prefix"):
        key = f"{mapping.prefix}{key}"
        mapping = mapping.dataset
    return mapping, key


def offload_slot(module: nn.Module, name: str) -> OffloadSlot | None:
    """The slot of `module`'s parameter `name` in its accelerate hook's weights map, or None without one."""
    weights_map = _weights_map(module)
    if weights_map is None:
        return None
    mapping, key = _unwrap(weights_map, name)
    in_memory = getattr(mapping, "state_dict", None)
    index = getattr(mapping, "index", None)
    if index is not None and not (isinstance(in_memory, Mapping) and key in in_memory):
        folder = getattr(mapping, "save_folder", None)
        return OffloadSlot(mapping, key, True, os.fspath(folder) if folder is not None else None)
    return OffloadSlot(mapping, key, False, None)


def offload_sources(model: nn.Module) -> list[str]:
    """The files and folders from which `model`'s disk-offloaded weights are read on every use (absolute paths,
    sorted): each offload folder (its `.dat` files and `index.json`) and each checkpoint file that accelerate
    offloads from in place (the `safetensors_file` of an index entry). Deleting or replacing one of them breaks the
    model's next forward; empty for a model without disk offload."""
    paths: set[str] = set()
    seen: set[int] = set()
    for module in model.modules():
        weights_map = _weights_map(module)
        if weights_map is None:
            continue
        mapping, _ = _unwrap(weights_map)
        index = getattr(mapping, "index", None)
        if id(mapping) in seen or index is None:  # CPU offload (a dict in memory) reads no file
            continue
        seen.add(id(mapping))
        folder = getattr(mapping, "save_folder", None)
        if folder is not None:
            paths.add(os.path.abspath(folder))
        for entry in index.values():
            source = entry.get("safetensors_file") if isinstance(entry, Mapping) else None
            if source:
                paths.add(os.path.abspath(source))
    return sorted(paths)


def module_device(module: nn.Module) -> torch.device:
    """Where `module` computes: accelerate's execution device when dispatched, else its first real parameter's
    device."""
    hook = getattr(module, "_hf_hook", None)
    exec_device = getattr(hook, "execution_device", None)
    if exec_device is not None:
        # accelerate gives a device, a name or an accelerator index; torch.device maps each to the right backend
        return exec_device if isinstance(exec_device, torch.device) else torch.device(exec_device)
    for p in module.parameters():
        if p.device.type != "meta":
            return p.device
    for sub in module.modules():
        sub_hook = getattr(sub, "_hf_hook", None)
        if getattr(sub_hook, "execution_device", None) is not None:
            return module_device(sub)
    return torch.device("cpu")


def input_device(model: nn.Module) -> torch.device:
    """Device the token ids must be on: the input embedding's (`module_device`, so accelerate's execution device when
    the embedding is offloaded or the blocks are spread over devices); a model without `get_input_embeddings`
    computes where its first real parameter is."""
    getter = getattr(model, "get_input_embeddings", None)
    embedding = getter() if callable(getter) else None
    return module_device(embedding if isinstance(embedding, nn.Module) else model)


def _describe(module: nn.Module, module_name: str | None) -> str:
    return repr(module_name) if module_name else type(module).__name__


def read_tensor(module: nn.Module, name: str, module_name: str | None = None) -> torch.Tensor:
    """`module.<name>` as a real tensor: the parameter's data, or the offloaded value (for disk offload: a fresh copy,
    changes to it are not kept; write them with `write_tensor`).

    Raises:
        ValueError: the parameter is on the meta device with no offload map, or its offloaded value is itself meta.
    """
    param = getattr(module, name)
    if param.device.type != META:
        return param.data
    slot = offload_slot(module, name)
    where = _describe(module, module_name)
    if slot is None:
        raise ValueError(f"{where}.{name} is on the meta device and has no accelerate offload map: its values are "
                         "neither in memory nor on disk; load the model with a device map of devices, 'cpu' or "
                         "'disk' (with offload_folder), not 'meta'")
    try:
        value = slot.mapping[slot.key]
    except KeyError:
        raise ValueError(f"{where}.{name} is on the meta device and its offload map has no entry "
                         f"{slot.key!r}") from None
    if value.device.type == META:
        raise ValueError(f"{where}.{name} is on the meta device in its offload map as well: its values are neither "
                         "in memory nor on disk; load the model with a device map of devices, 'cpu' or 'disk' (with "
                         "offload_folder)")
    return value


def named_value(model: nn.Module, name: str, tensor: torch.Tensor) -> torch.Tensor:
    """`tensor`, the entry `name` of `model`'s state dict or parameters, as a real tensor: itself, or for an
    accelerate-offloaded one (meta) its value read with `read_tensor` (a fresh copy for disk offload)."""
    if not tensor.is_meta:
        return tensor
    prefix, _, attr = name.rpartition(".")
    return read_tensor(model.get_submodule(prefix) if prefix else model, attr, prefix or None)


def parameter_values(module: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """`(full name, values)` of every parameter of `module`, tied ones once (in `named_parameters()` order): the
    parameter's data, or for an accelerate-offloaded one (meta on the module) its value read from the CPU offload map
    or the disk offload folder, one at a time; a meta parameter with no offloaded value is yielded as it is (meta)."""
    seen: set[int] = set()
    for module_name, sub in module.named_modules():
        for name, param in sub.named_parameters(recurse=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            value = param.detach()
            if param.device.type == META:
                try:
                    value = read_tensor(sub, name, module_name)
                except ValueError:
                    pass
            yield (f"{module_name}.{name}" if module_name else name), value


@torch.no_grad()
def write_tensor(module: nn.Module, name: str, value: torch.Tensor) -> None:
    """Write `value` as `module.<name>` where the parameter lives: in place on the module or in the CPU offload map,
    or, for disk offload, as a new `.dat` file in the offload folder with the loader's index pointed at it. The value
    is cast to the parameter's dtype.

    Raises:
        ValueError: see `read_tensor`; a disk-offloaded parameter whose loader has no offload folder.
    """
    param = getattr(module, name)
    if tuple(value.shape) != tuple(param.shape):
        raise ValueError(f"value of shape {tuple(value.shape)} does not match {name} of shape {tuple(param.shape)}")
    slot = offload_slot(module, name) if param.device.type == META else None
    if slot is None or not slot.on_disk:
        target = read_tensor(module, name)
        target.copy_(value.to(device=target.device, dtype=target.dtype))
        return
    if slot.folder is None:
        raise ValueError(f"{type(module).__name__}.{name} is offloaded to disk and read from the checkpoint, with no "
                         "offload folder to write a changed copy to; load the model with offload_folder=<a writable "
                         "folder>")
    entry = write_dat(slot.folder, slot.key, value.detach().to(dtype=param.dtype))
    slot.mapping.index[slot.key] = entry
    update_offload_index(slot.folder, {slot.key: entry})


def write_dat(folder: str, key: str, tensor: torch.Tensor) -> dict[str, Any]:
    """Write `tensor` as accelerate's memory-mapped `<folder>/<key>.dat` (bfloat16 as int16, float8 as int8, as
    `accelerate.utils.offload_weight` does) through a temporary file and a rename. Returns its index entry."""
    import numpy as np

    dtype_name = str(tensor.dtype).removeprefix("torch.")
    data = tensor.detach().cpu().contiguous()
    if tensor.dtype == torch.bfloat16:
        data = data.view(torch.int16)
    elif dtype_name.startswith("float8_"):
        data = data.view(torch.int8)
    array = data.numpy()
    special = dtype_name == "bfloat16" or dtype_name.startswith("float8_")  # numpy has neither: stored as ints
    entry = {"dtype": dtype_name if special else str(array.dtype), "shape": list(array.shape)}
    os.makedirs(folder, exist_ok=True)  # removed since the load: made again (its other files are the checkpoint's)
    path = os.path.join(folder, f"{key}.dat")
    fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        flat = array.reshape(1) if array.ndim == 0 else array
        mapped = np.memmap(tmp, dtype=flat.dtype, mode="w+", shape=flat.shape)
        mapped[:] = flat[:]
        mapped.flush()
        del mapped
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return entry


def update_offload_index(folder: str, entries: dict[str, dict[str, Any]]) -> None:
    """Merge `entries` into `<folder>/index.json` (accelerate's offload index), written atomically."""
    from .files import write_text_atomic

    path = os.path.join(folder, "index.json")
    current: dict[str, Any] = {}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as fh:
            current = json.load(fh)
    current.update(entries)
    write_text_atomic(path, json.dumps(current, indent=2))


# ------------------------------------------------------------------------------------------------------------------
# up-front checks
# ------------------------------------------------------------------------------------------------------------------
def check_offload_folder(folder: str | os.PathLike, *, argument: str = "offload_folder") -> str:
    """Raise `ValueError` unless `folder` is (or can be made as) a folder this process can write files in: probed by
    creating and deleting a file, so read-only file systems and missing permissions are caught. A folder the check
    creates is removed again (the loader makes it when it needs it). Returns the path."""
    path = os.fspath(folder)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{argument}={path!r} is not a folder (a file is there); pass a writable folder")
    made = []
    try:
        probe_dir = path
        missing = []
        while not os.path.exists(probe_dir):
            missing.append(probe_dir)
            parent = os.path.dirname(probe_dir.rstrip(os.sep)) or "."
            if parent == probe_dir:
                break
            probe_dir = parent
        for directory in reversed(missing):
            os.mkdir(directory)
            made.append(directory)
        fd, probe = tempfile.mkstemp(prefix=".sinkprune-write-probe-", dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise ValueError(f"{argument}={path!r} is not a writable folder ({err.strerror or err}); pass a folder this "
                         "process can create files in") from None
    finally:
        for directory in reversed(made):
            try:
                os.rmdir(directory)
            except OSError:
                pass
    return path


def check_device_map(device_map: Any, offload_folder: str | os.PathLike | None, *,
                     in_memory_for: str | None = None) -> None:
    """Raise `ValueError` for an explicit device map that puts a module on "meta" (no weights anywhere), or on "disk"
    without an offload folder (where pruned weights are written), or on "disk" at all for a run that needs every
    block in memory (`in_memory_for` names it, e.g. `"method='sink_heads'"`: see `check_not_offloaded`); names the
    modules. "auto" and other strategy names, and None, are left to accelerate."""
    if not isinstance(device_map, Mapping):
        return
    def names(place: str) -> list[str]:  # accelerate's "" is the whole model
        return [name or "the whole model ('')" for name, where in device_map.items() if str(where) == place]

    on_meta = names(META)
    if on_meta:
        raise ValueError(f"device_map puts {on_meta} on 'meta', where they have no weights; allowed values are a "
                         "device ('cpu', an accelerator index or name such as 0) or 'disk' (with offload_folder)")
    on_disk = names(DISK)
    if on_disk and in_memory_for is not None:
        raise _needs_memory(in_memory_for, on_disk, "placed on 'disk' by device_map")
    if on_disk and offload_folder is None:
        raise ValueError(f"device_map puts {on_disk} on 'disk' but offload_folder is not given; pass "
                         "offload_folder=<a writable folder> (disk-offloaded weights that are pruned are written "
                         "there)")


def check_offloaded_modules(modules: dict[str, nn.Module]) -> None:
    """Raise `ValueError`, naming the module, when a parameter of one of `modules` ({full name: module}, e.g. the
    transformer blocks) cannot be read (meta without an offload map) or, offloaded to disk, cannot be written back
    (no offload folder, or one that is not writable)."""
    checked: set[str] = set()  # each offload folder is probed once
    for module_name, module in modules.items():
        for sub_name, sub in module.named_modules():
            for pname, param in sub.named_parameters(recurse=False):
                if param.device.type != META:
                    continue
                full = ".".join(p for p in (module_name, sub_name) if p)
                slot = offload_slot(sub, pname)
                if slot is None:
                    raise ValueError(f"block {module_name!r} has {full}.{pname} on the meta device with no accelerate "
                                     "offload map: its weights are neither in memory nor on disk; load the model "
                                     "with a device map that puts it on a device, 'cpu' or 'disk' (with "
                                     "offload_folder)")
                if slot.on_disk:
                    if slot.folder is None:
                        raise ValueError(f"block {module_name!r} is offloaded to disk without an offload folder, so "
                                         "its pruned weights cannot be written; load the model with "
                                         "offload_folder=<a writable folder>")
                    if slot.folder in checked:
                        continue
                    try:
                        check_offload_folder(slot.folder)
                        checked.add(slot.folder)
                    except ValueError as err:
                        raise ValueError(f"block {module_name!r} is offloaded to disk and its pruned weights are "
                                         f"written to the offload folder, but {err}") from None


def check_not_offloaded(modules: dict[str, nn.Module], *, what: str) -> None:
    """Raise `ValueError`, naming the offloaded modules, when any of `modules` ({full name: module}, e.g. the blocks)
    holds an accelerate-offloaded parameter (meta on the module: CPU or disk offload). Removing heads, channels or
    experts changes the shapes of the parameters, which accelerate's offload maps and hooks hold at their loaded
    shapes, so these methods need every block in memory on a device. `what` names the run in the message
    (`"method='sink_heads'"`)."""
    offloaded = [name for name, module in modules.items()
                 if any(param.device.type == META for param in module.parameters())]
    if offloaded:
        raise _needs_memory(what, offloaded, "offloaded (weights on the meta device)")


def _needs_memory(what: str, names: list[str], where: str) -> ValueError:
    shown = ", ".join(repr(name) for name in names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return ValueError(
        f"{what} removes parameters and changes layer shapes, which accelerate's CPU / disk offload cannot follow, "
        f"but {shown} {'is' if len(names) == 1 else 'are'} {where}; load the model with every block on a device or "
        "in CPU memory (no 'disk', no max_memory that offloads), or use an unstructured method, which works with "
        "offload"
    )


# ------------------------------------------------------------------------------------------------------------------
# memory limits (accelerate's max_memory)
# ------------------------------------------------------------------------------------------------------------------
def parse_max_memory(max_memory: Any) -> dict[Any, int]:
    """accelerate's `max_memory` ({device: bytes or a size such as "10GiB"}) as {device: bytes}.

    Raises:
        ValueError: not a dict, or a value that is not a size.
    """
    if not isinstance(max_memory, Mapping) or not max_memory:
        raise ValueError(f"max_memory={max_memory!r} must be a non-empty dict of device -> size (bytes or a string "
                         "such as '10GiB'), e.g. {0: '20GiB', 'cpu': '60GiB'}")
    from accelerate.utils import convert_file_size_to_int

    out = {}
    for device, size in max_memory.items():
        try:
            value = convert_file_size_to_int(size) if isinstance(size, str) else int(size)
        except (ValueError, TypeError):
            value = None
        if value is None or isinstance(size, bool) or value < 0:
            raise ValueError(f"max_memory[{device!r}]={size!r} is not a size; use bytes (an int) or a string such as "
                             "'10GiB' or '500MB'")
        out[device] = value
    return out


def check_max_memory(max_memory: Any, block_bytes: dict[str, int], *, extra_bytes: int = 0,
                     what: str = "weights") -> None:
    """Raise `MemoryError` when no compute device of `max_memory` (every key but "disk") can hold the largest block:
    a block runs whole on one device (offloaded blocks are loaded onto their execution device for their forward),
    with `extra_bytes` of working memory beside its weights.

    Args:
        max_memory: accelerate's {device: size}.
        block_bytes: {block name: bytes of its weights}.
        extra_bytes: working memory one block's step needs besides its weights (0 at load time).
        what: how the need is described in the message.
    """
    limits = parse_max_memory(max_memory)
    compute = {device: size for device, size in limits.items() if str(device) != DISK}
    if not block_bytes:
        return
    largest_name = max(block_bytes, key=block_bytes.get)
    need = block_bytes[largest_name] + extra_bytes
    if not compute:
        raise MemoryError(f"max_memory={dict(max_memory)!r} gives no device to run on (only 'disk'); every block "
                          f"runs on a device, and the largest ({largest_name}) needs {need / 1024**2:.2f} MiB")
    best = max(compute, key=compute.get)
    if compute[best] < need:
        detail = f"{block_bytes[largest_name] / 1024**2:.2f} MiB of weights"
        if extra_bytes:
            detail += f" + {extra_bytes / 1024**2:.2f} MiB of working memory"
        raise MemoryError(
            f"max_memory={dict(max_memory)!r} allows at most {compute[best] / 1024**2:.2f} MiB "
            f"({compute[best]} bytes) on any device ({best!r}), but one block ({largest_name}) needs "
            f"{need / 1024**2:.2f} MiB ({need} bytes: {detail}) on the device it runs on; raise max_memory for "
            "that device to at least the block's need"
        )


def module_bytes(module: nn.Module, dtype: torch.dtype | None = None) -> int:
    """Bytes of `module`'s parameters and buffers (in `dtype` for floating tensors when given; meta tensors count)."""
    total = 0
    for tensor in list(module.parameters()) + list(module.buffers()):
        size = (torch.empty((), dtype=dtype).element_size() if dtype is not None and tensor.is_floating_point()
                else tensor.element_size())
        total += tensor.numel() * size
    return total


__all__ = [
    "named_value",
    "DISK",
    "META",
    "OffloadSlot",
    "check_device_map",
    "check_max_memory",
    "check_not_offloaded",
    "check_offload_folder",
    "check_offloaded_modules",
    "input_device",
    "module_bytes",
    "module_device",
    "offload_slot",
    "offload_sources",
    "parse_max_memory",
    "read_tensor",
    "update_offload_index",
    "write_dat",
    "write_tensor",
]
