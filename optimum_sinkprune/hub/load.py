# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The one model loader: a local folder, a Hub id or the name of an embedded model -> `(model, tokenizer)`.

Every entry point (the pruner, the evaluator, the CLI, the demo, the benchmarks) loads through here, so they agree on
the Auto class (`AutoModelForCausalLM`: our LLaDA / MMaDA / Dream classes and native causal LMs with their LM head),
on dtype names, on evaluation mode and on `trust_remote_code`, which is passed on exactly as the caller gave it and
is never switched on here.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from torch import nn

# the models shipped in optimum_sinkprune/assets are usable by name wherever a model path is asked for
from ..assets import EMBEDDED_MODELS, embedded_model_path

logger = logging.getLogger(__name__)



def resolve_model_path(name_or_path: str | os.PathLike) -> str:
    """Where to load `name_or_path` from: an existing local path as given, else the folder of an embedded model
    (`"tiny-llada"`, `"tiny-llama-ar"`, `"tiny-minilm-dlm"`), else the string itself (a Hub id).

    Args:
        name_or_path: a local folder, a Hub id or an embedded model's name.

    Returns:
        `str`: the path or Hub id to pass to `from_pretrained`.

    Raises:
        `ValueError`: `name_or_path` is not a non-empty string or path.
        `FileNotFoundError`: an embedded model whose files are missing from the installation.
    """
    if not isinstance(name_or_path, (str, os.PathLike)) or not os.fspath(name_or_path):
        raise ValueError(f"model must be a local folder, a Hub id or one of {sorted(EMBEDDED_MODELS)}, "
                         f"got {name_or_path!r}")
    path = os.fspath(name_or_path)
    from .save import recover_interrupted_save

    recover_interrupted_save(path)  # a save killed mid-overwrite may have left the checkpoint beside its folder
    if os.path.exists(path):
        return path
    if path in EMBEDDED_MODELS:
        return embedded_model_path(path)
    _check_hub_id(path)
    return path


def _check_hub_id(name: str) -> None:
    """Fail at once, in one line, for a name that can only be a Hub id but cannot be one (bad syntax), or that is
    not cached while the Hub is off (`HF_HUB_OFFLINE`), instead of after the Hub client's retries."""
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    where = f"neither a local folder nor an embedded model ({', '.join(sorted(EMBEDDED_MODELS))})"
    try:
        validate_repo_id(name)
    except HFValidationError as err:
        raise ValueError(f"model {name!r} is {where}, and not a valid Hub id ({err})") from None
    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return  # cached: transformers uses the cache when the Hub cannot be reached
    if constants.HF_HUB_OFFLINE:
        raise OSError(f"model {name!r} is {where}, and not in the Hub cache while HF_HUB_OFFLINE is set")


def check_model_reachable(name_or_path: str | os.PathLike, *, timeout: float = 5.0) -> str:
    """Resolve a model argument and, for a Hub id that is not cached, probe the Hub once with a short timeout, so
    that a name that is neither local, embedded nor reachable fails in one line instead of after the download
    client's retries (~30 s). The command line calls it before loading.

    Args:
        name_or_path: see `resolve_model_path`.
        timeout: seconds the probe waits.

    Returns:
        `str`: the resolved path or Hub id.

    Raises:
        `ValueError` / `OSError`: see `resolve_model_path`; `OSError` also when the Hub cannot be reached.
    """
    from huggingface_hub import constants, get_session, try_to_load_from_cache

    path = resolve_model_path(name_or_path)
    if os.path.exists(path) or isinstance(try_to_load_from_cache(path, "config.json"), str):
        return path
    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception as err:  # any transport failure (DNS, refused, timeout) means the Hub is out of reach
        raise OSError(f"model {path!r} is neither a local folder nor an embedded model "
                      f"({', '.join(sorted(EMBEDDED_MODELS))}), and the Hub ({constants.ENDPOINT}) cannot be reached "
                      f"({type(err).__name__}); check the name, or set HF_HUB_OFFLINE=1 to use the cache only") from None
    return path


def torch_dtype(dtype: str | torch.dtype | None) -> torch.dtype | str | None:
    """A dtype argument as `from_pretrained` takes it: a `torch.dtype`, a torch dtype name ("float32", "bfloat16",
    ...), "auto" (the checkpoint's), or None (transformers' default).

    Raises:
        `ValueError`: `dtype` names no torch dtype.
    """
    if dtype is None or isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    if isinstance(dtype, str) and isinstance(getattr(torch, dtype, None), torch.dtype):
        return getattr(torch, dtype)
    raise ValueError(f"dtype={dtype!r} is not a torch dtype name (e.g. 'float32', 'bfloat16') or 'auto'")


def _auto_class_name(path: str) -> str:
    """The Auto class the family's adapter asks for (`AutoModelForMaskedLM` for BERT-family masked LMs) when `path` is
    a local folder whose config.json names a supported model type; `AutoModelForCausalLM` otherwise (our LLaDA /
    MMaDA / Dream classes and native causal LMs). Reads the file only: no network, no remote code."""
    import json

    from ..adapters import UnsupportedModelError, adapter_for_model_type

    config_file = os.path.join(path, "config.json")
    try:
        with open(config_file, encoding="utf-8") as fh:
            model_type = json.load(fh).get("model_type")
    except (OSError, ValueError, AttributeError):
        return "AutoModelForCausalLM"  # a Hub id, or a folder from_pretrained will report on itself
    try:
        return adapter_for_model_type(model_type).auto_model_class if model_type else "AutoModelForCausalLM"
    except UnsupportedModelError:
        return "AutoModelForCausalLM"


def load_model(
    name_or_path: str | os.PathLike,
    *,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    trust_remote_code: bool = False,
    **from_pretrained_kwargs: Any,
) -> nn.Module:
    """Load a model with the Auto class its family needs (`AutoModelForCausalLM`, or `AutoModelForMaskedLM` for
    BERT-family masked LMs), in eval mode.

    Args:
        name_or_path: a local folder, a Hub id or an embedded model's name (see `resolve_model_path`).
        dtype: see `torch_dtype`; None keeps transformers' default.
        device: move the loaded model there (default: where it loads, the CPU unless `device_map` says otherwise).
        trust_remote_code: passed on to transformers as given (our registered classes need no remote code).
        from_pretrained_kwargs: further `from_pretrained` arguments (`revision`, ...), among them accelerate's
            placement: `device_map` ("auto", or {module name: device, "cpu" or "disk"}), `offload_folder` (where
            "disk" entries live; pruned weights of disk-offloaded blocks are written there) and `max_memory`
            ({device: size such as "10GiB"}).

    Returns:
        the model, in eval mode.

    Raises:
        `ValueError`: a bad `name_or_path` or `dtype`; an `offload_folder` that is not a writable folder; a
            `device_map` that puts a module on "meta", or on "disk" (also as "auto" resolved it) without an
            `offload_folder`; a `max_memory` that is not {device: size}.
        `MemoryError`: a `max_memory` under which no device holds one transformer block's weights (with both
            numbers; checked before loading).
        `MissingMLMHeadError`: a BERT-family checkpoint without its masked-LM head (an encoder only); the message
            names the head and how to add one.
    """
    import transformers

    path = resolve_model_path(name_or_path)
    kwargs = dict(from_pretrained_kwargs)
    if dtype is not None:
        kwargs["dtype"] = torch_dtype(dtype)
    if not isinstance(trust_remote_code, bool):
        raise ValueError(f"trust_remote_code must be True or False, got {trust_remote_code!r}")
    kwargs["trust_remote_code"] = trust_remote_code  # the caller's choice, passed on unchanged
    auto_name = _auto_class_name(path)
    auto_class = getattr(transformers, auto_name)
    # placement arguments checked before anything is read or written (the offload folder is made by the load)
    _check_placement(path, auto_class, kwargs)
    from .compressed import load_sink_quantized, sink_quantized_storage

    storage = sink_quantized_storage(path, **kwargs)
    if storage is not None:  # our layout for quantized expert / shared weights: decoded here, scales restored
        model = load_sink_quantized(auto_class, path, storage, kwargs)
    elif auto_name == "AutoModelForMaskedLM" and "output_loading_info" not in kwargs:
        # the class always has its head: only the loading info tells a head missing from the checkpoint
        model, info = auto_class.from_pretrained(path, output_loading_info=True, **kwargs)
        from ..adapters import get_adapter

        get_adapter(model).check_loaded_head(model, info.get("missing_keys"))
    else:
        model = auto_class.from_pretrained(path, **kwargs)
    from ..offload import check_device_map

    # the map "auto" / "balanced" resolved to: a block on disk needs a folder its pruned weights are written to
    check_device_map(getattr(model, "hf_device_map", None), kwargs.get("offload_folder"))
    if device is not None:
        model = model.to(device)
    return model.eval()


def _check_placement(path: str, auto_class, kwargs: dict[str, Any]) -> None:
    """Refuse, before loading, an offload folder that is not writable, an explicit device map with a module on
    "meta" or on "disk" without an offload folder, and an accelerate `max_memory` below one block's weights (sized on
    a meta-device copy of the model built from its config; no weights are read)."""
    from ..offload import check_device_map, check_max_memory, check_offload_folder, parse_max_memory

    folder = kwargs.get("offload_folder")
    if folder is not None:
        check_offload_folder(folder)
    check_device_map(kwargs.get("device_map"), folder)
    max_memory = kwargs.get("max_memory")
    if max_memory is None:
        return
    parse_max_memory(max_memory)
    from transformers import AutoConfig

    from ..adapters import UnsupportedModelError, get_adapter
    from ..calibration.memory import block_weight_bytes

    config = AutoConfig.from_pretrained(path, trust_remote_code=kwargs.get("trust_remote_code", False))
    dtype = kwargs.get("dtype")
    if not isinstance(dtype, torch.dtype):  # None or "auto": the checkpoint's dtype, as transformers loads it
        dtype = torch_dtype(getattr(config, "dtype", None) or "float32")
        dtype = dtype if isinstance(dtype, torch.dtype) else torch.float32
    with torch.device("meta"):
        model = auto_class.from_config(config, dtype=dtype)
    try:
        adapter = get_adapter(model)
    except UnsupportedModelError:
        return  # a family without an adapter: accelerate places it on its own
    check_max_memory(max_memory, block_weight_bytes(model, adapter, dtype))


def load_tokenizer(name_or_path: str | os.PathLike, *, trust_remote_code: bool = False, required: bool = True):
    """The tokenizer saved with a model (`AutoTokenizer`); with `required=False`, None when there is none.

    Raises:
        `OSError` / `ValueError`: no tokenizer could be loaded and `required` is True.
    """
    from transformers import AutoTokenizer

    path = resolve_model_path(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        if required:
            raise
        logger.info("no tokenizer loaded from %s (%s)", path, err)
        return None


def load_model_and_tokenizer(
    name_or_path: str | os.PathLike,
    *,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    trust_remote_code: bool = False,
    tokenizer_required: bool = True,
    **from_pretrained_kwargs: Any,
):
    """`(model, tokenizer)` from a local folder, a Hub id or an embedded model's name.

    Args:
        name_or_path: see `resolve_model_path`.
        dtype, device, trust_remote_code, from_pretrained_kwargs: see `load_model`.
        tokenizer_required: raise when the model has no tokenizer (else the tokenizer is None).

    Returns:
        `(model, tokenizer)`, the model in eval mode.

    Raises:
        `ValueError` / `OSError`: see `load_model` and `load_tokenizer`.
    """
    model = load_model(name_or_path, dtype=dtype, device=device, trust_remote_code=trust_remote_code,
                       **from_pretrained_kwargs)
    tokenizer = load_tokenizer(name_or_path, trust_remote_code=trust_remote_code, required=tokenizer_required)
    return model, tokenizer


__all__ = ["EMBEDDED_MODELS", "check_model_reachable", "load_model", "load_model_and_tokenizer", "load_tokenizer", "resolve_model_path",
           "torch_dtype"]
