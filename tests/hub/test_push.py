# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""push_to_hub and `sinkprune push` against the loopback Hub, with the real huggingface_hub client and transformers."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.errors import RepositoryNotFoundError
from transformers import AutoModel

from optimum_sinkprune.commands.cli import main as cli_main
from optimum_sinkprune.hub import HubPushError, MissingTokenError, push_to_hub, save_pruned_model
from optimum_sinkprune.hub.push import REPO_ID_PLACEHOLDER

from .conftest import OTHER_TOKEN, PRUNING_CONFIG, WRITE_TOKEN, WRONG_TOKEN, tiny_llada
from .test_save import tree_digest

IDS = torch.randint(0, 127, (2, 20), generator=torch.Generator().manual_seed(0))


def local_files(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}


def sleeps(hub) -> list[float]:
    return [r["sleep"] for r in hub.requests if "sleep" in r]


def test_round_trip(fake_hub, saved_checkpoint, model, tmp_path):
    before = tree_digest(saved_checkpoint)
    url = push_to_hub(saved_checkpoint, "alice/tiny-pruned", token=WRITE_TOKEN)

    commits = fake_hub.commits("alice/tiny-pruned")
    assert len(commits) == 2  # the repo's initial commit + ONE commit with the whole folder
    assert url == f"{fake_hub.url}/alice/tiny-pruned/commit/{commits[0].oid}"
    assert tree_digest(saved_checkpoint) == before  # the local folder is untouched

    # the server holds exactly the folder's bytes (README with the repo id filled in), weights through LFS
    remote = fake_hub.files("alice/tiny-pruned")
    local = local_files(saved_checkpoint)
    assert set(remote) == set(local) | {".gitattributes"}
    for name, content in local.items():
        expected = content.replace(REPO_ID_PLACEHOLDER.encode(), b"alice/tiny-pruned") if name == "README.md" else content
        assert remote[name].content == expected, name
        assert remote[name].lfs == name.endswith(".safetensors"), name
    assert b'"alice/tiny-pruned"' in remote["README.md"].content

    # transformers downloads it from the endpoint and gives identical logits
    reloaded = AutoModel.from_pretrained("alice/tiny-pruned", cache_dir=str(tmp_path / "cache")).eval()
    with torch.no_grad():
        assert torch.equal(reloaded(IDS).logits, model(IDS).logits)
    assert reloaded.config.sink_pruning_config["method"] == "sink_wanda"

    card = ModelCard.load("alice/tiny-pruned")
    assert "sink-aware-pruning" in card.data.tags and card.data.base_model == "GSAI-ML/LLaDA-8B-Base"
    # no request ever carried another token, and the server never saw the token in a URL
    assert {r["authorization"] for r in fake_hub.requests if r.get("authorization")} == {f"Bearer {WRITE_TOKEN}"}
    assert not any(WRITE_TOKEN in r.get("path", "") for r in fake_hub.requests)


def test_loads_through_hf_endpoint_without_the_plugin(fake_hub, saved_checkpoint, model, tmp_path, subprocess_env):
    """A fresh interpreter configured only by environment variables (HF_ENDPOINT read at import), in which
    optimum_sinkprune cannot be imported: the modeling code shipped in the repo is used (trust_remote_code)."""
    push_to_hub(saved_checkpoint, "alice/remote-code", token=WRITE_TOKEN)
    out = tmp_path / "logits.pt"
    torch.save(IDS, tmp_path / "ids.pt")
    script = f"""
import sys
sys.modules["optimum_sinkprune"] = None  # the plugin is not installed
import torch
from transformers import AutoModel
ids = torch.load({str(tmp_path / "ids.pt")!r})
model = AutoModel.from_pretrained("alice/remote-code", trust_remote_code=True).eval()
assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
with torch.no_grad():
    torch.save(model(ids).logits, {str(out)!r})
"""
    env = {**subprocess_env, "HF_ENDPOINT": fake_hub.url, "HF_TOKEN": WRITE_TOKEN,
           "HF_MODULES_CACHE": str(tmp_path / "modules")}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    with torch.no_grad():
        assert torch.equal(torch.load(out), model(IDS).logits)


def test_second_push_is_a_second_commit_and_removes_stale_shards(fake_hub, saved_checkpoint, tmp_path):
    push_to_hub(saved_checkpoint, "alice/tiny", token=WRITE_TOKEN)
    shards = sum(n.endswith(".safetensors") for n in local_files(saved_checkpoint))
    assert sum(n.endswith(".safetensors") for n in fake_hub.files("alice/tiny")) == shards > 1

    # re-pruned with another seed and saved unsharded: the old shards must not linger in the repo
    second = save_pruned_model(tiny_llada(seed=7), tmp_path / "v2", pruning_config=PRUNING_CONFIG)
    url = push_to_hub(second, "alice/tiny", token=WRITE_TOKEN, commit_message="v2")
    commits = fake_hub.commits("alice/tiny")
    assert len(commits) == 3 and commits[0].title == "v2" and commits[0].parent == commits[1].oid
    assert url.endswith(commits[0].oid)
    assert set(fake_hub.files("alice/tiny")) == set(local_files(second)) | {".gitattributes"}

    # pushing the same folder again changes nothing: no empty commit, the head's URL is returned
    again = push_to_hub(second, "alice/tiny", token=WRITE_TOKEN)
    assert len(fake_hub.commits("alice/tiny")) == 3 and again.endswith(commits[0].oid)


def test_transient_errors_are_retried_with_backoff(fake_hub, saved_checkpoint):
    fake_hub.fail_next("POST", r"/api/models/alice/tiny/commit/", 503, times=2)
    url = push_to_hub(saved_checkpoint, "alice/tiny", token=WRITE_TOKEN, max_retries=3)
    assert sleeps(fake_hub) == [2.0, 4.0]  # exponential back-off
    commits = fake_hub.commits("alice/tiny")
    assert len(commits) == 2 and url.endswith(commits[0].oid)  # still exactly one commit


def test_persistent_5xx_gives_up_with_retry_command(fake_hub, saved_checkpoint):
    fake_hub.fail_next("POST", r"/api/repos/create", 502, times=10)
    with pytest.raises(HubPushError) as info:
        push_to_hub(saved_checkpoint, "alice/tiny", token=WRITE_TOKEN, max_retries=2)
    assert info.value.status_code == 502
    assert len(sleeps(fake_hub)) == 2
    message = str(info.value)
    assert "502" in message and "3 attempt(s)" in message
    assert f"sinkprune push {saved_checkpoint} alice/tiny" in message
    assert "intact" in message


def test_network_failure_is_transient(hub_env, saved_checkpoint, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    slept = []
    monkeypatch.setattr("optimum_sinkprune.hub.push._sleep", slept.append)
    with pytest.raises(HubPushError, match="kept failing") as info:
        push_to_hub(saved_checkpoint, "alice/tiny", token=WRITE_TOKEN, endpoint=f"http://127.0.0.1:{port}",
                    max_retries=1)
    assert slept == [2.0] and info.value.status_code is None


@pytest.mark.parametrize("token, status, match", [(WRONG_TOKEN, 401, "rejected the token"),
                                                   (OTHER_TOKEN, 403, "not allowed to write to alice/tiny")])
def test_auth_errors_are_not_retried_and_hide_the_token(fake_hub, saved_checkpoint, token, status, match, caplog):
    caplog.set_level("DEBUG")
    before = tree_digest(saved_checkpoint)
    with pytest.raises(HubPushError, match=match) as info:
        push_to_hub(saved_checkpoint, "alice/tiny", token=token)
    assert info.value.status_code == status
    assert sleeps(fake_hub) == []
    assert "alice/tiny" not in fake_hub.repos
    full = "".join(traceback.format_exception(info.value))
    assert token not in full and token[3:] not in full
    assert caplog.records and token not in caplog.text  # nor in any log line, at DEBUG
    assert f"sinkprune push {saved_checkpoint} alice/tiny" in str(info.value)
    assert tree_digest(saved_checkpoint) == before


def test_hf_endpoint_is_read_at_call_time(fake_hub, saved_checkpoint, monkeypatch):
    """HF_ENDPOINT set after huggingface_hub was imported (constants still hold the default) is honoured."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "https://huggingface.co")
    url = push_to_hub(saved_checkpoint, "alice/env-endpoint", token=WRITE_TOKEN)
    assert url.startswith(fake_hub.url + "/alice/env-endpoint/commit/")


def test_missing_token_fails_before_any_request(fake_hub, saved_checkpoint):
    with pytest.raises(MissingTokenError, match="HF_TOKEN"):
        push_to_hub(saved_checkpoint, "alice/tiny")
    assert fake_hub.requests == []


def test_token_from_environment_and_from_login(fake_hub, saved_checkpoint, monkeypatch, hub_env):
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    push_to_hub(saved_checkpoint, "alice/from-env")
    monkeypatch.delenv("HF_TOKEN")
    from huggingface_hub import constants

    Path(constants.HF_TOKEN_PATH).parent.mkdir(parents=True, exist_ok=True)
    Path(constants.HF_TOKEN_PATH).write_text(WRITE_TOKEN)  # what `hf auth login` stores
    push_to_hub(saved_checkpoint, "alice/from-login")
    assert {"alice/from-env", "alice/from-login"} <= set(fake_hub.repos)


@pytest.mark.parametrize("repo_id", ["tiny", "alice/", "/tiny", "a/b/c", "alice/ti ny", "alice/tiny.git",
                                     "alice/ti--ny", "alice/" + "x" * 100, ""])
def test_invalid_repo_id(fake_hub, saved_checkpoint, repo_id):
    with pytest.raises(ValueError, match="not a valid Hub model id"):
        push_to_hub(saved_checkpoint, repo_id, token=WRITE_TOKEN)
    assert fake_hub.requests == []


def _break_no_config(folder):
    (folder / "config.json").unlink()


def _break_plain_config(folder):
    config = json.loads((folder / "config.json").read_text())
    del config["sink_pruning_config"]
    (folder / "config.json").write_text(json.dumps(config))


def _break_missing_shard(folder):
    next(folder.glob("model-0000*.safetensors")).unlink()


def _break_pickle(folder):
    (folder / "pytorch_model.bin").write_bytes(b"pickle")


def _break_no_weights(folder):
    for p in folder.glob("*.safetensors*"):
        p.unlink()


@pytest.mark.parametrize("breaker, match", [(_break_no_config, "no config.json"),
                                            (_break_plain_config, "no 'sink_pruning_config'"),
                                            (_break_missing_shard, "shards .* missing"),
                                            (_break_pickle, "pickle"),
                                            (_break_no_weights, "no \\*.safetensors")])
def test_not_a_pruned_checkpoint(fake_hub, saved_checkpoint, breaker, match):
    breaker(Path(saved_checkpoint))
    with pytest.raises(ValueError, match=match):
        push_to_hub(saved_checkpoint, "alice/tiny", token=WRITE_TOKEN)
    assert fake_hub.requests == []


def test_missing_folder(fake_hub, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        push_to_hub(tmp_path / "nope", "alice/tiny", token=WRITE_TOKEN)


def test_private_revision_and_pull_request(fake_hub, saved_checkpoint, tmp_path):
    push_to_hub(saved_checkpoint, "alice/priv", token=WRITE_TOKEN, private=True, revision="v1")
    repo = fake_hub.repos["alice/priv"]
    assert repo.private
    assert "config.json" in fake_hub.files("alice/priv", "v1") and "config.json" not in fake_hub.files("alice/priv")
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=fake_hub.url).model_info("alice/priv", token=False)  # anonymous: invisible
    assert HfApi(endpoint=fake_hub.url).model_info("alice/priv", token=WRITE_TOKEN).sha == repo.branches["main"]

    main_before = repo.branches["main"]
    url = push_to_hub(saved_checkpoint, "alice/priv", token=WRITE_TOKEN, create_pr=True)
    assert repo.branches["main"] == main_before  # a PR does not touch main
    assert url.endswith(repo.branches["refs/pr/1"])


def test_multipart_lfs_upload(fake_hub, saved_checkpoint, model, tmp_path):
    fake_hub.multipart_chunk_size = 30_000
    push_to_hub(saved_checkpoint, "alice/multi", token=WRITE_TOKEN)
    assert any("/part/" in r.get("path", "") for r in fake_hub.requests)
    reloaded = AutoModel.from_pretrained("alice/multi", cache_dir=str(tmp_path / "cache")).eval()
    with torch.no_grad():
        assert torch.equal(reloaded(IDS).logits, model(IDS).logits)


def test_cli(fake_hub, saved_checkpoint, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    assert cli_main(["push", saved_checkpoint, "alice/cli", "--commit-message", "from the CLI"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == f"{fake_hub.url}/alice/cli/commit/{fake_hub.commits('alice/cli')[0].oid}"
    assert fake_hub.commits("alice/cli")[0].title == "from the CLI"

    assert cli_main(["push", saved_checkpoint, "alice/cli2", "--token", WRONG_TOKEN]) == 1
    err = capsys.readouterr().err
    assert "rejected the token" in err and f"sinkprune push {saved_checkpoint} alice/cli2" in err
    assert WRONG_TOKEN not in err

    assert cli_main(["push", saved_checkpoint, "not-a-repo-id"]) == 2
    assert "not a valid Hub model id" in capsys.readouterr().err


@pytest.mark.skipif(os.environ.get("HUGGINGFACE_CO_STAGING") != "1", reason="set HUGGINGFACE_CO_STAGING=1 (and a "
                    "staging write token in HF_STAGING_TOKEN) to push to hub-ci.huggingface.co")
def test_staging_round_trip(saved_checkpoint, model, tmp_path):
    token = os.environ.get("HF_STAGING_TOKEN")
    if not token:
        pytest.skip("HF_STAGING_TOKEN is not set")
    api = HfApi(token=token)
    user = api.whoami()["name"]
    repo_id = f"{user}/sinkprune-test-{hashlib.sha1(str(tmp_path).encode()).hexdigest()[:8]}"
    try:
        url = push_to_hub(saved_checkpoint, repo_id, token=token)
        assert "/commit/" in url
        reloaded = AutoModel.from_pretrained(repo_id, token=token, cache_dir=str(tmp_path / "cache")).eval()
        with torch.no_grad():
            assert torch.equal(reloaded(IDS).logits, model(IDS).logits)
    finally:
        api.delete_repo(repo_id, missing_ok=True)


def test_push_pruned_model_saves_then_pushes(fake_hub, model, tmp_path, monkeypatch):
    from optimum_sinkprune.hub import push_pruned_model

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # scratch folders land where the test can see them
    url = push_pruned_model(model, "alice/direct", token=WRITE_TOKEN, pruning_config=PRUNING_CONFIG)
    assert url.endswith(fake_hub.commits("alice/direct")[0].oid)
    assert "config.json" in fake_hub.files("alice/direct")
    assert not list(tmp_path.glob("sinkprune-push-*"))  # scratch removed after success

    # a failed push keeps the saved folder, and the error's retry command points at it
    with pytest.raises(HubPushError) as info:
        push_pruned_model(model, "alice/direct2", token=WRONG_TOKEN, pruning_config=PRUNING_CONFIG)
    kept = list(tmp_path.glob("sinkprune-push-*/direct2"))
    assert len(kept) == 1 and f"sinkprune push {kept[0]} alice/direct2" in str(info.value)

    # bad repo id / no token: nothing is saved
    with pytest.raises(ValueError, match="not a valid Hub model id"):
        push_pruned_model(model, "bad", token=WRITE_TOKEN, pruning_config=PRUNING_CONFIG)
    with pytest.raises(MissingTokenError):
        push_pruned_model(model, "alice/x", pruning_config=PRUNING_CONFIG)
    assert len(list(tmp_path.glob("sinkprune-push-*"))) == 1
    # bad push options are refused before the save, not after it
    for bad in (dict(max_retries=-1), dict(commit_message=5)):
        target = tmp_path / f"never-{next(iter(bad))}"
        with pytest.raises(ValueError, match=next(iter(bad))):
            push_pruned_model(model, "alice/y", token=WRITE_TOKEN, save_directory=target, pruning_config=PRUNING_CONFIG,
                              **bad)
        assert not target.exists()


# ---- our messages are never rewritten by the redaction; the token never reaches the commit --------------------------
def test_unauthorized_message_is_ours_verbatim(fake_hub, saved_checkpoint):
    with pytest.raises(HubPushError) as info:
        push_to_hub(saved_checkpoint, "alice/tiny", token=WRONG_TOKEN)
    message = str(info.value)
    assert ("check the token you gave (the token argument, or the --token option of the CLI), the HF_TOKEN "
            "environment variable, or the login saved by `hf auth login`") in message
    assert "***" not in message and WRONG_TOKEN not in message


def test_server_text_quoted_in_an_error_is_scrubbed(fake_hub, saved_checkpoint):
    """A server (or proxy) that echoes the request's token: only that quoted text is redacted."""
    fake_hub.fail_next("POST", r"/api/repos/create", 400, body={"error": f"bad header: Bearer {WRITE_TOKEN}"})
    with pytest.raises(HubPushError) as info:
        push_to_hub(saved_checkpoint, "alice/tiny", token=WRITE_TOKEN)
    full = "".join(traceback.format_exception(info.value))  # with everything chained to it
    assert WRITE_TOKEN not in full and WRITE_TOKEN[3:] not in full and "***" in full
    assert f"Pushing {saved_checkpoint} to alice/tiny failed" in full


@pytest.mark.parametrize("where", ["argument", "environment"])
def test_commit_message_quoting_the_token_is_redacted(fake_hub, saved_checkpoint, monkeypatch, caplog, where):
    if where == "environment":
        monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    token = WRITE_TOKEN if where == "argument" else None
    push_to_hub(saved_checkpoint, "alice/msg", token=token, commit_message=f"pruned; pushed with {WRITE_TOKEN} ok")
    commit = fake_hub.commits("alice/msg")[0]
    assert commit.title == "pruned; pushed with *** ok"
    assert WRITE_TOKEN not in commit.description and WRITE_TOKEN not in caplog.text

    # a failed push: the retry command in the error quotes the redacted message
    with pytest.raises(HubPushError) as info:
        push_to_hub(saved_checkpoint, "alice/msg", token=WRONG_TOKEN, commit_message=f"v2 {WRONG_TOKEN}")
    assert WRONG_TOKEN not in str(info.value) and "--commit-message 'v2 ***'" in str(info.value)


# ---- a server that accepts the connection and never answers --------------------------------------------------------
class SilentServer:
    """Listens on 127.0.0.1, accepts every connection and never sends a byte."""

    def __init__(self):
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted, self._held, self._stop = 0, [], threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self._held.append(conn)

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self.sock.close()


def push_in_thread(limit_s: float = 60, **kwargs):
    """Run push_to_hub in a thread and give up on it after `limit_s` (a hang fails the test instead of blocking)."""
    import threading

    outcome = {}

    def run():
        try:
            outcome["url"] = push_to_hub(**kwargs)
        except BaseException as err:  # examined by the test
            outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=limit_s)
    assert not thread.is_alive(), "push_to_hub hung on a server that never answers"
    return outcome


@pytest.mark.parametrize("configure", ["argument", "environment"])
def test_server_that_never_answers_times_out_and_is_retried(hub_env, saved_checkpoint, monkeypatch, configure):
    from huggingface_hub.utils import get_session

    slept = []
    monkeypatch.setattr("optimum_sinkprune.hub.push._sleep", slept.append)
    if configure == "environment":
        monkeypatch.setenv("SINKPRUNE_HUB_TIMEOUT", "0.2,0.2")
    before, session_timeout = tree_digest(saved_checkpoint), get_session().timeout
    server = SilentServer()
    try:
        outcome = push_in_thread(folder=saved_checkpoint, repo_id="alice/tiny", token=WRITE_TOKEN,
                                 endpoint=server.url, max_retries=2,
                                 **({"timeout": 0.2} if configure == "argument" else {}))
    finally:
        server.close()
    err = outcome.get("error")
    assert isinstance(err, HubPushError), outcome
    assert "did not answer in time (connect timeout 0.2 s, read timeout 0.2 s) after 3 attempt(s)" in str(err)
    assert "SINKPRUNE_HUB_TIMEOUT" in str(err) and err.status_code is None
    assert slept == [2.0, 4.0] and server.accepted >= 3  # retried within the back-off, one connection per attempt
    assert tree_digest(saved_checkpoint) == before  # the local folder is intact
    assert get_session().timeout == session_timeout  # the shared client gets its own settings back


def test_default_timeouts_are_bounded(monkeypatch):
    from optimum_sinkprune.hub.push import DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_READ_TIMEOUT_S, resolve_timeout

    monkeypatch.delenv("SINKPRUNE_HUB_TIMEOUT", raising=False)
    assert resolve_timeout() == (DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_READ_TIMEOUT_S) == (10.0, 120.0)
    assert resolve_timeout(30) == (30.0, 30.0) and resolve_timeout((5, 60.5)) == (5.0, 60.5)
    monkeypatch.setenv("SINKPRUNE_HUB_TIMEOUT", " 7 ")
    assert resolve_timeout() == (7.0, 7.0) and resolve_timeout(3) == (3.0, 3.0)  # the argument wins


@pytest.mark.parametrize("timeout, env, match", [
    (0, None, r"timeout=0 is not a timeout: use a number of seconds > 0"),
    (-1.5, None, r"timeout=-1.5 is not a timeout"),
    (float("nan"), None, r"timeout=nan is not a timeout"),
    (True, None, r"timeout=True is not a timeout"),
    ("10", None, r"timeout='10' is not a timeout"),
    ((1, 2, 3), None, r"timeout=\(1, 2, 3\) is not a timeout"),
    ((1, None), None, r"timeout=\(1, None\) is not a timeout"),
    (None, "soon", r"SINKPRUNE_HUB_TIMEOUT='soon' is not a timeout: use a number of seconds > 0"),
    (None, "0", r"SINKPRUNE_HUB_TIMEOUT='0' is not a timeout"),
    (None, "1,2,3", r"SINKPRUNE_HUB_TIMEOUT='1,2,3' is not a timeout"),
    (None, "inf", r"SINKPRUNE_HUB_TIMEOUT='inf' is not a timeout"),
])
def test_bad_timeout_fails_before_any_request_or_file(fake_hub, saved_checkpoint, model, monkeypatch, tmp_path,
                                                      timeout, env, match):
    from optimum_sinkprune.hub import push_pruned_model

    if env is not None:
        monkeypatch.setenv("SINKPRUNE_HUB_TIMEOUT", env)
    with pytest.raises(ValueError, match=match):
        push_to_hub(saved_checkpoint, "alice/tiny", token=WRITE_TOKEN, timeout=timeout)
    with pytest.raises(ValueError, match=match):
        push_pruned_model(model, "alice/tiny", token=WRITE_TOKEN, timeout=timeout, pruning_config=PRUNING_CONFIG,
                          save_directory=tmp_path / "never")
    assert fake_hub.requests == [] and not (tmp_path / "never").exists()
