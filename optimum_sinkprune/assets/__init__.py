# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Assets shipped inside the package: the tiny default models and the text splits they were trained / evaluated on.

* `tiny-llada/`: a ~5.5M-parameter LLaDA masked-diffusion LM (the default model of the examples, tests and CLI).
* `tiny-llama-ar/`: a `LlamaForCausalLM` of the same shape, trained on the same data (the autoregressive baseline).
* `tiny-minilm-dlm/`: a 22.7M-parameter `BertForMaskedLM` masked-diffusion LM adapted from the pretrained MiniLM-L6
  encoder of sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0) by `scripts/train_minilm_dlm.py`: a testbed with
  real attention sinks.
* `data/heldout.jsonl`: held-out documents (KJV chapters and Shakespeare scenes never seen in training).
* `data/calibration.jsonl`: ~600-character passages from the train split, for pruning calibration.

Everything is rebuilt by `scripts/build_corpus.py`, `scripts/train_tiny_models.py` and
`scripts/evaluate_tiny_models.py`; see `data/README.md` for sources and licenses.
"""

from __future__ import annotations

import os

ASSETS_DIR = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.path.join(ASSETS_DIR, "data")
DEFAULT_MODEL_DIR = os.path.join(ASSETS_DIR, "tiny-llada")
DEFAULT_AR_MODEL_DIR = os.path.join(ASSETS_DIR, "tiny-llama-ar")
MINILM_MODEL_DIR = os.path.join(ASSETS_DIR, "tiny-minilm-dlm")
# the embedded models by name (usable wherever a model id is accepted) -> (folder, what it is)
EMBEDDED_MODELS = {
    "tiny-llada": ("tiny-llada", "default diffusion model"),
    "tiny-llama-ar": ("tiny-llama-ar", "autoregressive baseline"),
    "tiny-minilm-dlm": ("tiny-minilm-dlm", "MiniLM masked-diffusion model"),
}
HELDOUT_FILE = os.path.join(DATA_DIR, "heldout.jsonl")
CALIBRATION_FILE = os.path.join(DATA_DIR, "calibration.jsonl")
TEXT_SPLITS = ("held-out", "calibration")  # load_texts(split): HELDOUT_FILE, CALIBRATION_FILE

_REBUILD_HINT = (
    "The packaged assets are missing or incomplete; reinstall optimum-sinkprune, or rebuild them from a source "
    "checkout with `python scripts/build_corpus.py` and `python scripts/train_tiny_models.py`."
)

__all__ = [
    "ASSETS_DIR",
    "CALIBRATION_FILE",
    "DEFAULT_AR_MODEL_DIR",
    "DEFAULT_MODEL_DIR",
    "EMBEDDED_MODELS",
    "MINILM_MODEL_DIR",
    "HELDOUT_FILE",
    "TEXT_SPLITS",
    "default_ar_model_path",
    "default_model_path",
    "embedded_model_path",
    "load_calibration_texts",
    "load_heldout_texts",
    "load_texts",
]


def _model_path(path: str, what: str) -> str:
    required = ("config.json", "model.safetensors", "tokenizer.json")
    missing = [f for f in required if not os.path.isfile(os.path.join(path, f))]
    if missing:
        raise FileNotFoundError(f"The shipped {what} at {path} lacks {', '.join(missing)}. {_REBUILD_HINT}")
    return path


def embedded_model_path(name: str) -> str:
    """Folder of an embedded model by name (`"tiny-llada"`, `"tiny-llama-ar"`, `"tiny-minilm-dlm"`).

    Args:
        name (`str`): one of `EMBEDDED_MODELS`.

    Returns:
        `str`: absolute path of the model folder.

    Raises:
        `ValueError`: an unknown name.
        `FileNotFoundError`: the folder, its weights, config or tokenizer is missing.
    """
    if name not in EMBEDDED_MODELS:
        raise ValueError(f"name must be one of the embedded models {sorted(EMBEDDED_MODELS)}, got {name!r}")
    folder, what = EMBEDDED_MODELS[name]
    path = {"tiny-llada": DEFAULT_MODEL_DIR, "tiny-llama-ar": DEFAULT_AR_MODEL_DIR}.get(name)
    return _model_path(path or os.path.join(ASSETS_DIR, folder), what)


def default_model_path() -> str:
    """Path of the shipped tiny LLaDA diffusion LM (a folder loadable with `AutoModel.from_pretrained`).

    The model is registered with the Auto classes when `optimum_sinkprune` is imported:

    ```python
    >>> import optimum_sinkprune
    >>> from transformers import AutoModel, AutoTokenizer
    >>> from optimum_sinkprune.assets import default_model_path
    >>> model = AutoModel.from_pretrained(default_model_path())
    >>> tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    ```

    Returns:
        `str`: absolute path of the `tiny-llada` folder.

    Raises:
        `FileNotFoundError`: if the folder, its weights, config or tokenizer is missing.
    """
    return _model_path(DEFAULT_MODEL_DIR, "default diffusion model")


def default_ar_model_path() -> str:
    """Path of the shipped tiny autoregressive baseline (`LlamaForCausalLM`, same shape and data as the DLM).

    Returns:
        `str`: absolute path of the `tiny-llama-ar` folder.

    Raises:
        `FileNotFoundError`: if the folder, its weights, config or tokenizer is missing.
    """
    return _model_path(DEFAULT_AR_MODEL_DIR, "default autoregressive model")


def load_texts(split: str, limit: int | None = None) -> list[str]:
    """The rows of a shipped text split (`TEXT_SPLITS`), in file order.

    Args:
        split (`str`): "held-out" (`data/heldout.jsonl`) or "calibration" (`data/calibration.jsonl`).
        limit (`int`, *optional*): return at most this many rows.

    Returns:
        `list[str]`: one string per document or passage.

    Raises:
        `FileNotFoundError`: if the split's file is missing.
        `ValueError`: if `split` is not one of `TEXT_SPLITS`, or `limit` is not a positive integer.
    """
    from ..texts import read_texts  # the package's one text reader

    if split not in TEXT_SPLITS:
        raise ValueError(f"split={split!r} is not a shipped text split; use one of {TEXT_SPLITS}")
    path = HELDOUT_FILE if split == "held-out" else CALIBRATION_FILE  # read now: the paths may be re-pointed
    if not os.path.isfile(path):
        raise FileNotFoundError(f"The {split} split is missing: {path} does not exist. {_REBUILD_HINT}")
    return read_texts(path, limit=limit, what=split)


def load_heldout_texts(limit: int | None = None) -> list[str]:
    """`load_texts("held-out", limit)`: the held-out documents (KJV chapters and Shakespeare scenes)."""
    return load_texts("held-out", limit)


def load_calibration_texts(limit: int | None = None) -> list[str]:
    """`load_texts("calibration", limit)`: calibration passages (~600 characters each) from the training split."""
    return load_texts("calibration", limit)
