# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Assets shipped inside the package: the tiny default models and the text splits they were trained / evaluated on.

* `tiny-llada/`: a ~5.5M-parameter LLaDA masked-diffusion LM (the default model of the examples, tests and CLI).
* `tiny-llama-ar/`: a `LlamaForCausalLM` of the same shape, trained on the same data (the autoregressive baseline).
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
HELDOUT_FILE = os.path.join(DATA_DIR, "heldout.jsonl")
CALIBRATION_FILE = os.path.join(DATA_DIR, "calibration.jsonl")

_REBUILD_HINT = (
    "The packaged assets are missing or incomplete; reinstall optimum-sinkprune, or rebuild them from a source "
    "checkout with `python scripts/build_corpus.py` and `python scripts/train_tiny_models.py`."
)

__all__ = [
    "ASSETS_DIR",
    "CALIBRATION_FILE",
    "DEFAULT_AR_MODEL_DIR",
    "DEFAULT_MODEL_DIR",
    "HELDOUT_FILE",
    "default_ar_model_path",
    "default_model_path",
    "load_calibration_texts",
    "load_heldout_texts",
]


def _model_path(path: str, what: str) -> str:
    required = ("config.json", "model.safetensors", "tokenizer.json")
    missing = [f for f in required if not os.path.isfile(os.path.join(path, f))]
    if missing:
        raise FileNotFoundError(f"The shipped {what} at {path} lacks {', '.join(missing)}. {_REBUILD_HINT}")
    return path


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


def _load_texts(path: str, limit: int | None, name: str) -> list[str]:
    from ..calibration.data import read_texts

    if not os.path.isfile(path):
        raise FileNotFoundError(f"The {name} split is missing: {path} does not exist. {_REBUILD_HINT}")
    return read_texts(path, limit=limit, what=name)


def load_heldout_texts(limit: int | None = None) -> list[str]:
    """The held-out documents (KJV chapters and Shakespeare scenes), never used for training or calibration.

    Args:
        limit (`int`, *optional*): return at most this many documents (in file order).

    Returns:
        `list[str]`: one string per document.

    Raises:
        `FileNotFoundError`: if `data/heldout.jsonl` is missing.
        `ValueError`: if `limit` is not a positive integer.
    """
    return _load_texts(HELDOUT_FILE, limit, "held-out")


def load_calibration_texts(limit: int | None = None) -> list[str]:
    """Calibration passages (~600 characters each, whole words) drawn from the training split.

    Args:
        limit (`int`, *optional*): return at most this many passages (in file order; the order is already random).

    Returns:
        `list[str]`: one string per passage.

    Raises:
        `FileNotFoundError`: if `data/calibration.jsonl` is missing.
        `ValueError`: if `limit` is not a positive integer.
    """
    return _load_texts(CALIBRATION_FILE, limit, "calibration")
