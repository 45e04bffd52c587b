# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Publishing a saved pruned checkpoint to the Hugging Face Hub in one commit, with retries on transient errors."""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import shlex
import shutil
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants, get_token
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import filter_repo_objects, get_session
from huggingface_hub.utils import validate_repo_id as _hf_validate_repo_id

from .model_card import redact_secrets
from .save import CONFIG_KEY

logger = logging.getLogger(__name__)

TRANSIENT_STATUS_CODES = (408, 429, 500, 502, 503, 504)
BASE_RETRY_DELAY_S = 2.0
MAX_RETRY_DELAY_S = 60.0
# Remote files a previous push may have left that this checkpoint no longer has (e.g. a different shard count, or a
# report of an earlier pruning):
# deleted in the same commit so the repo mirrors the folder. Other remote files are left alone.
STALE_PATTERNS = ("*.safetensors", "model.safetensors.index.json", "plots/*", "pruning_report.json",
                  "sink_report.json", "sampler_config.json")
REPO_ID_PLACEHOLDER = "<repo-or-folder>"
DEFAULT_COMMIT_MESSAGE = "Upload pruned model with optimum-sinkprune"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
# seconds to wait for a connection, and for each answer (or each write of an upload), before counting a request as
# failed (then retried with the back-off): huggingface_hub's shared client is built without any timeout
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 120.0
TIMEOUT_ENV = "SINKPRUNE_HUB_TIMEOUT"


class MissingTokenError(ValueError):
    """No Hugging Face token was given or found (argument, `HF_TOKEN`, or `hf auth login`)."""


class HubPushError(RuntimeError):
    """Pushing failed. The message says why and the command to retry; it never contains the token.

    Attributes:
        status_code (`int` or `None`): the HTTP status of the last failure, if any.
        retry_command (`str`): the `sinkprune push ...` command that retries this push.
    """

    def __init__(self, message: str, *, status_code: int | None, retry_command: str):
        super().__init__(message)
        self.status_code = status_code
        self.retry_command = retry_command


def validate_repo_id(repo_id: str) -> str:
    """Check that `repo_id` is a Hub model id `namespace/name` and return it.

    Raises:
        `ValueError`: naming the value and the rules.
    """
    rules = (
        "expected 'namespace/name' (your user or organisation name, a slash, the model name) using letters, digits, "
        "'-', '_' and '.', at most 96 characters, without '--' or '..' and not ending in '.git'"
    )
    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"repo_id={repo_id!r} is not a valid Hub model id: {rules}")
    try:
        _hf_validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ValueError(f"repo_id={repo_id!r} is not a valid Hub model id: {rules}") from err
    return repo_id


def validate_checkpoint_folder(folder: str | os.PathLike) -> Path:
    """Check that `folder` is a pruned checkpoint written by `save_pruned_model`: a `config.json` carrying
    `sink_pruning_config`, safetensors weights (every shard of an index present) and no pickle weight files.

    Returns:
        `Path`: the folder.

    Raises:
        `FileNotFoundError`: the folder does not exist.
        `ValueError`: it is not a pruned checkpoint (the message says what is missing).
    """
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"folder={str(folder)!r} is not a directory")
    how = "save it with optimum_sinkprune.hub.save_pruned_model or `sinkprune prune ... --output DIR`"
    config_path = path / "config.json"
    if not config_path.is_file():
        raise ValueError(f"folder={str(folder)!r} is not a pruned checkpoint: it has no config.json ({how})")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"folder={str(folder)!r}: config.json is not valid JSON ({err})") from err
    if not isinstance(config, dict) or not isinstance(config.get(CONFIG_KEY), dict):
        raise ValueError(
            f"folder={str(folder)!r} is not a pruned checkpoint: config.json has no '{CONFIG_KEY}' ({how})"
        )
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise ValueError(
            f"folder={str(folder)!r} contains pickle weight files {pickles}; pruned checkpoints are safetensors-only, "
            "remove them before pushing"
        )
    index_path = path / "model.safetensors.index.json"
    if index_path.is_file():
        weight_map = json.loads(index_path.read_text(encoding="utf-8")).get("weight_map", {})
        missing = sorted({f for f in weight_map.values() if not (path / f).is_file()})
        if not weight_map or missing:
            raise ValueError(
                f"folder={str(folder)!r}: shards listed in model.safetensors.index.json are missing: {missing}"
            )
    elif not any(path.glob("*.safetensors")):
        raise ValueError(f"folder={str(folder)!r} is not a pruned checkpoint: it has no *.safetensors weights ({how})")
    return path


def resolve_timeout(timeout: float | tuple[float, float] | None = None) -> tuple[float, float]:
    """The (connect, read) timeouts of a push, in seconds: the argument (one number for both, or a pair), else the
    `SINKPRUNE_HUB_TIMEOUT` environment variable (`"30"` or `"10,120"`), else
    (`DEFAULT_CONNECT_TIMEOUT_S`, `DEFAULT_READ_TIMEOUT_S`). The read timeout also bounds each write of an upload.

    Raises:
        `ValueError`: naming the argument or the variable, the value and what is allowed.
    """
    allowed = "a number of seconds > 0, or a pair (connect, read) of them"
    if timeout is None:
        raw = os.environ.get(TIMEOUT_ENV, "").strip()
        if not raw:
            return DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_READ_TIMEOUT_S
        try:
            values = [float(v) for v in raw.split(",")]
        except ValueError:
            values = []
        if len(values) not in (1, 2) or not all(math.isfinite(v) and v > 0 for v in values):
            raise ValueError(f"{TIMEOUT_ENV}={raw!r} is not a timeout: use {allowed}, e.g. '30' or '10,120'")
        return (values[0], values[-1])

    def seconds(value) -> float | None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
        return float(value) if ok else None

    pair = tuple(timeout) if isinstance(timeout, (tuple, list)) else (timeout, timeout)
    values = [seconds(v) for v in pair]
    if len(values) != 2 or None in values:
        raise ValueError(f"timeout={timeout!r} is not a timeout: use {allowed}, e.g. 30 or (10, 120)")
    return values[0], values[1]


@contextmanager
def _client_timeouts(connect: float, read: float) -> Iterator[None]:
    """huggingface_hub sends every request through one shared client, which it builds without timeouts (a server
    that accepts the connection and never answers would hold a push for ever): give that client ours for the push,
    and put its own back afterwards."""
    import httpx2

    client = get_session()
    previous = client.timeout
    client.timeout = httpx2.Timeout(read, connect=connect, pool=connect)
    try:
        yield
    finally:
        client.timeout = previous


def _redact(text: str, tokens: set[str]) -> str:
    """`text` with every occurrence of the given token values replaced by `***` (nothing else changed)."""
    for token in tokens:
        text = text.replace(token, "***")
    return text


def _scrub(server_text: str, tokens: set[str]) -> str:
    """Text that came from the server or the client library (quoted in our messages): the token values and anything
    else token-like removed. Never applied to our own sentences, which mention `--token` and `token=` legitimately."""
    return redact_secrets(_redact(server_text, tokens))


def resolve_endpoint(endpoint: str | None) -> str:
    """The Hub endpoint: the argument, else `HF_ENDPOINT` read now (so setting it after import works), else
    huggingface_hub's default (which honours `HUGGINGFACE_CO_STAGING`)."""
    chosen = endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    return chosen.rstrip("/")


def retry_command(
    folder, repo_id: str, *, private: bool = False, revision: str | None = None, create_pr: bool = False,
    commit_message: str | None = None, endpoint: str | None = None,
) -> str:
    """The `sinkprune push` command that redoes a push (never with the token: it comes from HF_TOKEN or the login).
    `endpoint` is included only when it was given explicitly (HF_ENDPOINT stays set in the user's shell)."""
    parts = ["sinkprune", "push", str(folder), repo_id]
    if private:
        parts.append("--private")
    if revision:
        parts += ["--revision", revision]
    if create_pr:
        parts.append("--create-pr")
    if commit_message:
        parts += ["--commit-message", commit_message]
    if endpoint:
        parts += ["--endpoint", endpoint]
    return " ".join(shlex.quote(p) for p in parts)


def _status_of(err: BaseException) -> int | None:
    """The HTTP status anywhere in the exception chain (LFS upload errors wrap the HTTP error)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        response = getattr(err, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            return status
        err = err.__cause__ or err.__context__
    return None


def _timed_out(err: BaseException) -> bool:
    import httpx2

    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, (httpx2.TimeoutException, TimeoutError)):
            return True
        err = err.__cause__ or err.__context__
    return False


def _is_transient(err: BaseException) -> bool:
    """Worth retrying: 408/429/5xx answers, and network failures (connection refused/reset, timeouts)."""
    import httpx2

    status = _status_of(err)
    if status is not None:
        return status in TRANSIENT_STATUS_CODES
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, (httpx2.TransportError, ConnectionError, TimeoutError)):
            return True
        err = err.__cause__ or err.__context__
    return False


def _require_token(token: str | None) -> str:
    """The token to use: the argument, else HF_TOKEN, else the token saved by `hf auth login` (huggingface_hub's
    usual sources), checked before any network call."""
    token = token or get_token()
    if not token:
        raise MissingTokenError(
            "No Hugging Face token found: pass token= (CLI: --token), set the HF_TOKEN environment variable, or run "
            "`hf auth login`. Pushing needs a token with write access."
        )
    return token


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _reason(err: BaseException, status: int | None, repo_id: str, endpoint: str, attempts: int, *,
            tokens: set[str], timeout: tuple[float, float]) -> str:
    """Why the push failed, in our words; only the parts quoted from the server or the client are scrubbed."""
    if status == 401:
        return ("the Hub rejected the token (401 Unauthorized); check the token you gave (the token argument, or the "
                "--token option of the CLI), the HF_TOKEN environment variable, or the login saved by `hf auth login`")
    if status == 403:
        return (f"the token is not allowed to write to {repo_id} (403 Forbidden); use a token with write access to "
                f"the '{repo_id.split('/')[0]}' namespace")
    if status == 404:
        return f"the Hub answered 404 Not Found for {repo_id} (wrong namespace, revision, or endpoint {endpoint}?)"
    if status is None and _timed_out(err):
        return (f"the Hub at {endpoint} did not answer in time (connect timeout {timeout[0]:g} s, read timeout "
                f"{timeout[1]:g} s) after {attempts} attempt(s); if the connection is only slow, raise the timeouts "
                f"with timeout= or {TIMEOUT_ENV}")
    if _is_transient(err):
        what = f"HTTP {status}" if status is not None else f"{type(err).__name__}: {_scrub(str(err), tokens)}"
        return f"the Hub at {endpoint} kept failing ({what}) after {attempts} attempt(s)"
    return f"{type(err).__name__}: {_scrub(str(err), tokens)}"


def _commit_operations(folder: Path, repo_id: str) -> list[CommitOperationAdd]:
    """One addition per file of the folder (hidden files and caches skipped); the card's repo placeholder is filled
    in with `repo_id` in the uploaded copy only (the local folder is never modified)."""
    ops = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if rel.as_posix() == "README.md":
            text = path.read_text(encoding="utf-8").replace(REPO_ID_PLACEHOLDER, repo_id)
            ops.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=text.encode("utf-8")))
        else:
            ops.append(CommitOperationAdd(path_in_repo=rel.as_posix(), path_or_fileobj=str(path)))
    return ops


def _push_once(api: HfApi, folder: Path, repo_id: str, *, private, revision, create_pr, commit_message) -> str:
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    if revision and not create_pr:
        api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
    additions = _commit_operations(folder, repo_id)
    local = {op.path_in_repo for op in additions}
    remote = api.list_repo_files(repo_id, repo_type="model", revision=revision)
    deletions = [
        CommitOperationDelete(path_in_repo=p)
        for p in filter_repo_objects(remote, allow_patterns=list(STALE_PATTERNS))
        if p not in local
    ]
    info = api.create_commit(
        repo_id,
        operations=[*deletions, *additions],
        commit_message=commit_message,
        repo_type="model",
        revision=revision,
        create_pr=create_pr,
    )
    if info.pr_url:
        logger.info("opened pull request %s", info.pr_url)
    return info.commit_url


def _check_push_options(*, max_retries, timeout, commit_message, token, **_) -> tuple[tuple[float, float], str]:
    """The checks of `push_to_hub`'s options that need neither the folder nor the network (the other options need
    none); returns the `(connect, read)` timeouts and the token."""
    if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
        raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
    timeouts = resolve_timeout(timeout)
    if commit_message is not None and not isinstance(commit_message, str):
        raise ValueError(f"commit_message must be a string, got {type(commit_message).__name__}")
    return timeouts, _require_token(token)


def push_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
    endpoint: str | None = None,
    max_retries: int = 3,
    timeout: float | tuple[float, float] | None = None,
) -> str:
    r"""Upload a saved pruned checkpoint to the Hub in one commit.

    Validates the repo id and the folder (a `config.json` with `sink_pruning_config`, safetensors weights) and finds
    the token before any network call; then creates the repo if needed (`exist_ok`), creates `revision` as a branch
    if needed, and commits every file of the folder with `HfApi.create_commit` (LFS/Xet uploads included) in a single
    commit. Weight shards or plots left in the repo by an earlier push that this folder no longer has are deleted in
    that same commit. Transient failures (408, 429, 5xx, network errors) are retried with exponential back-off; 401,
    403 and other client errors are not. Every request has a connect and a read timeout, so a server that accepts the
    connection and never answers counts as a transient failure too. The local folder is never modified. The token
    never reaches a log line, an error message or the commit: a commit message quoting it is stored with `***`.

    Args:
        folder (`str` or `os.PathLike`): the checkpoint folder (from `save_pruned_model`).
        repo_id (`str`): `namespace/name` on the Hub.
        private (`bool`, defaults to `False`): create the repo private (ignored when it already exists).
        token (`str`, *optional*): a write token; defaults to `HF_TOKEN`, then the token saved by `hf auth login`.
            Never logged, printed or written.
        revision (`str`, *optional*): branch to commit to (created from main if missing); defaults to main.
        create_pr (`bool`, defaults to `False`): open a pull request with the commit instead of committing directly.
        commit_message (`str`, *optional*): defaults to `DEFAULT_COMMIT_MESSAGE`.
        endpoint (`str`, *optional*): the Hub URL; defaults to `HF_ENDPOINT`, then https://huggingface.co.
        max_retries (`int`, defaults to 3): retries after a transient failure.
        timeout (`float` or `(float, float)`, *optional*): seconds to wait for a connection and for each answer (one
            number for both, or `(connect, read)`); defaults to `SINKPRUNE_HUB_TIMEOUT` (`"30"` or `"10,120"`), then
            (`DEFAULT_CONNECT_TIMEOUT_S`, `DEFAULT_READ_TIMEOUT_S`) = (10, 120).

    Returns:
        `str`: the URL of the commit.

    Raises:
        `ValueError`: invalid `repo_id` / `max_retries` / `timeout` / `commit_message`, or `folder` is not a pruned
            checkpoint.
        `FileNotFoundError`: `folder` does not exist.
        [`MissingTokenError`]: no token given or found.
        [`HubPushError`]: the Hub refused or kept failing; the message names the retry command.
    """
    validate_repo_id(repo_id)
    path = validate_checkpoint_folder(folder)
    timeouts, token = _check_push_options(max_retries=max_retries, timeout=timeout, commit_message=commit_message,
                                          token=token)
    tokens = {t for t in (token, get_token()) if t}
    if commit_message and _redact(commit_message, tokens) != commit_message:
        logger.warning("the commit message contains the Hugging Face token; it is committed with *** in its place")
        commit_message = _redact(commit_message, tokens)
    retry = retry_command(path, repo_id, private=private, revision=revision, create_pr=create_pr,
                          commit_message=commit_message, endpoint=endpoint)
    commit_message = commit_message or DEFAULT_COMMIT_MESSAGE
    endpoint = resolve_endpoint(endpoint)
    from ..version import __version__

    api = HfApi(endpoint=endpoint, token=token, library_name="optimum-sinkprune", library_version=__version__)
    delay = BASE_RETRY_DELAY_S
    for attempt in range(max_retries + 1):
        try:
            with _client_timeouts(*timeouts):
                url = _push_once(api, path, repo_id, private=private, revision=revision, create_pr=create_pr,
                                 commit_message=commit_message)
            logger.info("pushed %s to %s: %s", path, repo_id, url)
            return url
        except Exception as err:  # classified below; KeyboardInterrupt propagates (the folder is intact anyway)
            status = _status_of(err)
            if _is_transient(err) and attempt < max_retries:
                logger.warning("transient error pushing to %s (%s); retry %d/%d in %.0f s", repo_id,
                               f"HTTP {status}" if status else type(err).__name__, attempt + 1, max_retries, delay)
                _sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY_S)
                continue
            reason = _reason(err, status, repo_id, endpoint, attempt + 1, tokens=tokens, timeout=timeouts)
            message = _redact(  # the token's value only (e.g. inside an endpoint URL); our wording stays as written
                f"Pushing {path} to {repo_id} failed: {reason}. The local checkpoint is intact. To retry, run: {retry}",
                tokens,
            )
            # the underlying error stays attached for debugging, unless its text quotes the token (a server echo)
            leaks = any(t in "".join(traceback.format_exception(err)) for t in tokens)
            raise HubPushError(message, status_code=status, retry_command=retry) from (None if leaks else err)
    raise AssertionError("unreachable")  # pragma: no cover


def _split_push_options(kwargs: dict) -> dict:
    """Pop `push_to_hub`'s keyword-only options out of `kwargs`, filled with its defaults, so that its signature
    is the one list of push options."""
    params = inspect.signature(push_to_hub).parameters.values()
    return {p.name: kwargs.pop(p.name, p.default) for p in params if p.kind is p.KEYWORD_ONLY}


def push_pruned_model(
    model,
    repo_id: str,
    *,
    save_directory: str | os.PathLike | None = None,
    **kwargs,
) -> str:
    r"""Save a pruned model with [`save_pruned_model`] and push the folder with [`push_to_hub`] (what
    `SinkAwarePruner.push_to_hub` does).

    The repo id and the push options (retries, timeout, commit message, token) are checked before anything is
    saved. Without `save_directory` the checkpoint goes to a temporary folder that is deleted after a successful push
    and kept after a failed one, so that the retry command in the [`HubPushError`] works.

    Args:
        model (`nn.Module`): the pruned model.
        repo_id (`str`): `namespace/name` on the Hub.
        save_directory (`str` or `os.PathLike`, *optional*): where to save first (kept).
        kwargs: the keyword options of [`push_to_hub`] (`private`, `token`, `revision`, `create_pr`,
            `commit_message`, `endpoint`, `max_retries`, `timeout`, with its defaults); every other keyword goes to
            [`save_pruned_model`] (`pruning_config` is required).

    Returns:
        `str`: the URL of the commit.
    """
    from .save import save_pruned_model

    options = _split_push_options(kwargs)
    validate_repo_id(repo_id)
    _check_push_options(**options)
    scratch = None
    if save_directory is None:
        scratch = Path(tempfile.mkdtemp(prefix="sinkprune-push-"))
        save_directory = scratch / repo_id.split("/")[1]
    try:
        folder = save_pruned_model(model, save_directory, **kwargs)
    except BaseException:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    url = push_to_hub(folder, repo_id, **options)
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
    return url
