# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""A small Hub-compatible HTTP server for tests (stdlib only).

No self-hosted Hub accepts uploads, so the tests run the real `huggingface_hub` client (and transformers) against
this server on 127.0.0.1. It implements what huggingface_hub 2.4 calls for a model repo, read from its source:

- `POST /api/repos/create` (`HfApi.create_repo`), `POST /api/models/{repo}/branch/{branch}` (`create_branch`);
- `POST /api/validate-yaml` (run by `create_commit` before committing a README.md);
- `POST /api/models/{repo}/preupload/{rev}` (upload mode per file: "regular" or "lfs", and the remote oid);
- `POST /{repo}.git/info/lfs/objects/batch` (git-LFS batch API, basic and multipart transfers), the PUT targets it
  hands out, the multipart completion and the verify call;
- `POST /api/models/{repo}/commit/{rev}` (ndjson: header, base64 `file`, `lfsFile`, `deletedFile`; `create_pr=1`);
- `GET /api/models/{repo}[/revision/{rev}]` (model info with siblings), `GET /api/models/{repo}/tree/{rev}[/path]`;
- `HEAD`/`GET /{repo}/resolve/{rev}/{path}` with the headers `hf_hub_download` reads (ETag, X-Repo-Commit,
  Content-Length, X-Linked-Etag / X-Linked-Size for LFS files) and the `X-Error-Code` values it maps to exceptions;
- `GET /api/whoami-v2`.

Authentication follows the Hub: `Authorization: Bearer <token>`; an unknown token is a 401 with
"Invalid credentials in Authorization header" on every route; writes need a token whose user owns the namespace (403
otherwise); private repos are invisible (401, RepoNotFound) to others. Tests can inject failures with `fail_next` and
inspect every request in `requests`.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LFS_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.png", "*.jpg", "*.gz", "*.zip", "*.npy", "*.msgpack")
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
GITATTRIBUTES = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS).encode()
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"


def git_blob_oid(content: bytes) -> str:
    """The git object id of a blob (what the Hub reports as the oid / ETag of a regular file)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class StoredFile:
    content: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def oid(self) -> str:
        # the Hub's blob id of an LFS file is the oid of its pointer file; its ETag is the sha256 of the content
        if self.lfs:
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.content)}\n"
            return git_blob_oid(pointer.encode())
        return git_blob_oid(self.content)

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else git_blob_oid(self.content)


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    description: str
    author: str
    files: dict[str, StoredFile]


@dataclass
class Repo:
    repo_id: str
    owner: str
    private: bool
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    num_prs: int = 0

    def resolve(self, revision: str) -> Commit | None:
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        return self.commits.get(revision)

    def history(self, branch: str = "main") -> list[Commit]:
        """Commits of `branch`, newest first."""
        out, oid = [], self.branches.get(branch)
        while oid is not None:
            out.append(self.commits[oid])
            oid = self.commits[oid].parent
        return out


@dataclass
class Fault:
    method: str
    path_regex: str
    status: int
    times: int
    body: dict


class HubError(Exception):
    def __init__(self, status: int, message: str, error_code: str | None = None, headers: dict | None = None,
                 body: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.error_code, self.headers = status, message, error_code, headers or {}
        self.body = body or {}


class FakeHub:
    """In-memory Hub state plus the HTTP server serving it.

    Args:
        tokens (`dict[str, str]`): token -> user name.
        orgs (`dict[str, list[str]]`): user name -> organisations the user may write to.
        multipart_chunk_size (`int`, *optional*): LFS files larger than this are uploaded with the multipart transfer.
    """

    def __init__(self, tokens: dict[str, str], orgs: dict[str, list[str]] | None = None, multipart_chunk_size=None):
        self.tokens = dict(tokens)
        self.orgs = dict(orgs or {})
        self.multipart_chunk_size = multipart_chunk_size
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.multipart_parts: dict[str, dict[int, bytes]] = {}
        self.requests: list[dict] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        self._counter = itertools.count()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    # ---- lifecycle
    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-hub",
                                       daemon=True)
        self.thread.start()
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=5)
            self.server = None

    # ---- test helpers
    def fail_next(self, method: str, path_regex: str, status: int, times: int = 1, body: dict | None = None) -> None:
        """Answer the next `times` requests matching `method` and `path_regex` with `status` (before any other
        processing, like a proxy or load balancer in front of the Hub would)."""
        with self.lock:
            self.faults.append(Fault(method.upper(), path_regex, status, times, body or {"error": f"injected {status}"}))

    def commits(self, repo_id: str, branch: str = "main") -> list[Commit]:
        with self.lock:
            return self.repos[repo_id].history(branch)

    def files(self, repo_id: str, revision: str = "main") -> dict[str, StoredFile]:
        with self.lock:
            return dict(self.repos[repo_id].resolve(revision).files)

    # ---- state changes
    def _new_oid(self, *parts: str) -> str:
        return hashlib.sha1("\0".join((str(next(self._counter)),) + parts).encode()).hexdigest()

    def create_repo(self, repo_id: str, owner: str, private: bool) -> Repo:
        repo = Repo(repo_id=repo_id, owner=owner, private=private)
        files = {".gitattributes": StoredFile(GITATTRIBUTES, lfs=False)}
        oid = self._new_oid(repo_id, "initial commit")
        repo.commits[oid] = Commit(oid, None, "initial commit", "", owner, files)
        repo.branches["main"] = oid
        self.repos[repo_id] = repo
        return repo

    def is_lfs(self, path: str, size: int, sample: bytes) -> bool:
        name = path.rsplit("/", 1)[-1]
        return size >= LFS_SIZE_THRESHOLD or b"\0" in sample or any(fnmatch.fnmatch(name, p) for p in LFS_PATTERNS)


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep pytest output clean
        pass

    # ---- plumbing
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head_only: bool = False) -> None:
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if not head_only and body:
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, err: HubError, head_only: bool = False) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": err.message, **err.headers}
        if err.error_code:
            headers["X-Error-Code"] = err.error_code
        self._send(err.status, json.dumps({"error": err.message, **err.body}).encode(), headers, head_only=head_only)

    def _user(self) -> str | None:
        """The user of the request's token; None when anonymous; a 401 for an unknown token."""
        auth = self.headers.get("Authorization")
        if not auth:
            return None
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else auth
        user = self.hub.tokens.get(token)
        if user is None:
            raise HubError(401, INVALID_CREDENTIALS)
        return user

    def _require_write(self, repo_id: str) -> str:
        user = self._user()
        if user is None:
            raise HubError(401, "You must be authenticated to write to this repository")
        namespace = repo_id.split("/")[0]
        if namespace != user and namespace not in self.hub.orgs.get(user, []):
            raise HubError(403, f"You don't have the rights to write to {repo_id}")
        return user

    def _repo(self, repo_id: str, user: str | None) -> Repo:
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and user != repo.owner and repo_id.split("/")[0] not in self.hub.orgs.get(user or "", [])):
            raise HubError(401 if user is None else 404, "Repository not found", "RepoNotFound")
        return repo

    def _commit(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        raw_parts = split.path.split("/")[1:]
        parts = [unquote(p) for p in raw_parts]
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        body = b"" if method in ("GET", "HEAD") else self._read_body()
        hub = self.hub
        with hub.lock:
            hub.requests.append({"method": method, "path": split.path, "query": query,
                                 "authorization": self.headers.get("Authorization")})
            for fault in hub.faults:
                if fault.times > 0 and fault.method == method and re.search(fault.path_regex, split.path):
                    fault.times -= 1
                    self._send(fault.status, json.dumps(fault.body).encode(), {"Content-Type": "application/json"},
                               head_only=method == "HEAD")
                    return
        try:
            with hub.lock:
                self._route(method, parts, query, body)
        except HubError as err:
            self._error(err, head_only=method == "HEAD")
        except Exception as err:  # a bug in this server: visible, and not a status the client retries
            self._error(HubError(418, f"fake hub bug: {type(err).__name__}: {err}"), head_only=method == "HEAD")

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    # ---- routes
    def _route(self, method: str, parts: list[str], query: dict, body: bytes) -> None:
        user = self._user()
        if parts[:2] == ["api", "whoami-v2"] and method == "GET":
            if user is None:
                raise HubError(401, "Not authenticated")
            return self._json(200, {"type": "user", "name": user, "orgs": [{"name": o} for o in self.hub.orgs.get(user, [])],
                                    "auth": {"type": "access_token", "accessToken": {"role": "write"}}})
        if parts[:3] == ["api", "repos", "create"] and method == "POST":
            return self._create_repo(json.loads(body or b"{}"))
        if parts[:2] == ["api", "validate-yaml"] and method == "POST":
            return self._validate_yaml(json.loads(body or b"{}"))
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo_id, rest = "/".join(parts[2:4]), parts[4:]
            return self._model_api(method, repo_id, rest, query, body, user)
        if parts[0] == "__lfs__":
            return self._lfs_storage(method, parts[1:], body)
        if len(parts) >= 2 and parts[1].endswith(".git") and parts[2:6] == ["info", "lfs", "objects", "batch"]:
            repo_id = f"{parts[0]}/{parts[1][: -len('.git')]}"
            return self._lfs_batch(repo_id, json.loads(body))
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(method, "/".join(parts[:2]), parts[3], "/".join(parts[4:]), user)
        raise HubError(404, f"Not found: {method} {self.path}")

    def _create_repo(self, payload: dict) -> None:
        name, org = payload.get("name"), payload.get("organization")
        if payload.get("type", "model") != "model":
            raise HubError(400, "the fake hub only hosts model repos")
        user = self._user()
        if user is None:
            raise HubError(401, "You must be authenticated to create a repository")
        repo_id = f"{org or user}/{name}"
        self._require_write(repo_id)
        if repo_id in self.hub.repos:
            # like the Hub, the conflict answer carries the repo URL (create_repo(exist_ok=True) reads it)
            raise HubError(409, "You already created this model repo", body={"url": f"{self.hub.url}/{repo_id}"})
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        self.hub.create_repo(repo_id, owner=user, private=private)
        self._json(200, {"url": f"{self.hub.url}/{repo_id}", "name": repo_id, "id": self.hub._new_oid(repo_id)[:24]})

    def _validate_yaml(self, payload: dict) -> None:
        content = payload.get("content", "")
        if content.startswith("---") and "\n---" not in content[3:]:
            return self._json(400, {"errors": [{"message": "unterminated metadata block"}]})
        self._json(200, {"errors": [], "warnings": []})

    def _model_api(self, method, repo_id, rest, query, body, user) -> None:
        hub = self.hub
        if not rest and method == "GET":
            return self._model_info(self._repo(repo_id, user), "main")
        action = rest[0]
        if action == "revision" and method == "GET":
            return self._model_info(self._repo(repo_id, user), "/".join(rest[1:]))
        if action == "tree" and method == "GET":
            return self._tree(self._repo(repo_id, user), rest[1], "/".join(rest[2:]), query)
        if action == "branch" and method == "POST":
            self._require_write(repo_id)
            repo = self._repo(repo_id, user)
            branch = "/".join(rest[1:])
            if branch in repo.branches:
                raise HubError(409, f"Branch {branch} already exists")
            start = json.loads(body or b"{}").get("startingPoint") or "main"
            repo.branches[branch] = self._commit(repo, start).oid
            return self._json(200, {})
        if action == "preupload" and method == "POST":
            self._require_write(repo_id)
            repo = self._repo(repo_id, user)
            base = repo.resolve("main" if query.get("create_pr") else rest[1])
            if base is None:
                raise HubError(404, f"Invalid rev id: {rest[1]}", "RevisionNotFound")
            files = []
            for f in json.loads(body)["files"]:
                lfs = hub.is_lfs(f["path"], f["size"], base64.b64decode(f["sample"]))
                existing = base.files.get(f["path"])
                remote_oid = (existing.sha256 if existing.lfs else git_blob_oid(existing.content)) if existing else None
                files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                              "oid": remote_oid})
            return self._json(200, {"files": files, "commitOid": base.oid})
        if action == "commit" and method == "POST":
            return self._create_commit(repo_id, "/".join(rest[1:]), query, body, user)
        raise HubError(404, f"Not found: {method} {self.path}")

    def _siblings(self, commit: Commit) -> list[dict]:
        return [{"rfilename": p} for p in sorted(commit.files)]

    def _model_info(self, repo: Repo, revision: str) -> None:
        commit = self._commit(repo, revision)
        self._json(200, {"_id": repo.repo_id, "id": repo.repo_id, "modelId": repo.repo_id, "author": repo.owner,
                         "sha": commit.oid, "private": repo.private, "gated": False, "disabled": False,
                         "downloads": 0, "likes": 0, "tags": [], "library_name": "transformers",
                         "lastModified": "2026-01-01T00:00:00.000Z", "createdAt": "2026-01-01T00:00:00.000Z",
                         "siblings": self._siblings(commit)})

    def _tree(self, repo: Repo, revision: str, path: str, query: dict) -> None:
        commit = self._commit(repo, revision)
        recursive = query.get("recursive", "False").lower() in ("1", "true")
        prefix = f"{path.strip('/')}/" if path.strip("/") else ""
        entries, folders = [], set()
        for p, f in sorted(commit.files.items()):
            if not p.startswith(prefix):
                continue
            rel = p[len(prefix):]
            if not recursive and "/" in rel:
                folders.add(prefix + rel.split("/")[0])
                continue
            if recursive:
                for i in range(1, rel.count("/") + 1):
                    folders.add(prefix + "/".join(rel.split("/")[:i]))
            entry = {"type": "file", "oid": f.oid, "size": len(f.content), "path": p}
            if f.lfs:
                entry["lfs"] = {"oid": f.sha256, "size": len(f.content), "pointerSize": 134}
            entries.append(entry)
        if prefix and not entries and not folders:
            raise HubError(404, f"{path} does not exist", "EntryNotFound")
        dirs = [{"type": "directory", "oid": git_blob_oid(d.encode()), "path": d} for d in sorted(folders)]
        self._json(200, dirs + entries)

    def _create_commit(self, repo_id, revision, query, body, user) -> None:
        author = self._require_write(repo_id)
        repo = self._repo(repo_id, user)
        if self.headers.get("Content-Type") != "application/x-ndjson":
            raise HubError(400, "commit payload must be application/x-ndjson")
        create_pr = query.get("create_pr") == "1"
        parent = self._commit(repo, revision)
        if not create_pr and revision not in repo.branches:
            raise HubError(400, f"Cannot commit to {revision}: not a branch")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "first ndjson line must be the header")
        header = lines[0]["value"]
        if header.get("parentCommit") and not parent.oid.startswith(header["parentCommit"]):
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(parent.files)
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, "only base64 encoding is supported")
                files[value["path"]] = StoredFile(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                content = self.hub.lfs_objects.get(value["oid"])
                if content is None or ("size" in value and value["size"] != len(content)):
                    raise HubError(422, f"LFS object {value['oid']} for {value['path']} was not uploaded")
                files[value["path"]] = StoredFile(content, lfs=True)
            elif key == "deletedFile":
                if value["path"] not in files:
                    raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                del files[value["path"]]
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                for p in [p for p in files if p.startswith(prefix)]:
                    del files[p]
            else:
                raise HubError(400, f"unknown commit operation {key!r}")
        oid = self.hub._new_oid(repo_id, header.get("summary", ""), parent.oid)
        repo.commits[oid] = Commit(oid, parent.oid, header.get("summary", ""), header.get("description", ""), author, files)
        pr_url = None
        if create_pr:
            repo.num_prs += 1
            repo.branches[f"refs/pr/{repo.num_prs}"] = oid
            pr_url = f"{self.hub.url}/{repo_id}/discussions/{repo.num_prs}"
        else:
            repo.branches[revision] = oid
        self._json(200, {"success": True, "commitOid": oid, "commitUrl": f"{self.hub.url}/{repo_id}/commit/{oid}",
                         "pullRequestUrl": pr_url, "hookOutput": ""})

    def _lfs_batch(self, repo_id: str, payload: dict) -> None:
        self._require_write(repo_id)
        self._repo(repo_id, self._user())
        if payload.get("operation") != "upload":
            raise HubError(400, "only uploads are supported")
        objects = []
        for obj in payload["objects"]:
            oid, size = obj["oid"], obj["size"]
            entry = {"oid": oid, "size": size, "authenticated": True}
            if oid not in self.hub.lfs_objects:
                chunk = self.hub.multipart_chunk_size
                href = f"{self.hub.url}/__lfs__/{oid}/{size}"
                if chunk and size > chunk:
                    nparts = -(-size // chunk)
                    header = {"chunk_size": str(chunk)}
                    header.update({f"{i + 1:05d}": f"{href}/part/{i + 1}" for i in range(nparts)})
                    upload = {"href": f"{href}/complete", "header": header}
                else:
                    upload = {"href": href}
                entry["actions"] = {"upload": upload, "verify": {"href": f"{self.hub.url}/__lfs__/verify"}}
            objects.append(entry)
        self._json(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
                   {"Content-Type": "application/vnd.git-lfs+json"})

    def _store_lfs(self, oid: str, size: int, content: bytes) -> None:
        if len(content) != size or hashlib.sha256(content).hexdigest() != oid:
            raise HubError(400, f"content does not match oid {oid} / size {size}")
        self.hub.lfs_objects[oid] = content

    def _lfs_storage(self, method: str, parts: list[str], body: bytes) -> None:
        # the storage URLs handed out by the batch API are pre-signed: no Authorization, like S3
        if parts == ["verify"] and method == "POST":
            payload = json.loads(body)
            if payload["oid"] not in self.hub.lfs_objects:
                raise HubError(404, "object not found")
            return self._json(200, {})
        oid, size = parts[0], int(parts[1])
        if len(parts) == 2 and method == "PUT":
            self._store_lfs(oid, size, body)
            return self._send(200, b"", {"ETag": f'"{oid}"'})
        if len(parts) == 4 and parts[2] == "part" and method == "PUT":
            self.hub.multipart_parts.setdefault(oid, {})[int(parts[3])] = body
            return self._send(200, b"", {"ETag": f'"{hashlib.md5(body).hexdigest()}"'})
        if len(parts) == 3 and parts[2] == "complete" and method == "POST":
            payload = json.loads(body)
            stored = self.hub.multipart_parts.pop(oid, {})
            numbers = [p["partNumber"] for p in payload["parts"]]
            if sorted(numbers) != sorted(stored) or any(not p.get("etag") for p in payload["parts"]):
                raise HubError(400, "multipart completion does not list the uploaded parts")
            self._store_lfs(oid, size, b"".join(stored[n] for n in sorted(stored)))
            return self._json(200, {})
        raise HubError(404, f"Not found: {method} {self.path}")

    def _resolve(self, method: str, repo_id: str, revision: str, path: str, user: str | None) -> None:
        repo = self._repo(repo_id, user)
        commit = self._commit(repo, revision)
        stored = commit.files.get(path)
        headers = {"X-Repo-Commit": commit.oid}
        if stored is None:
            raise HubError(404, "Entry not found", "EntryNotFound", headers=headers)
        headers.update({"ETag": f'"{stored.etag}"', "Content-Type": "application/octet-stream",
                        "Accept-Ranges": "bytes"})
        if stored.lfs:
            headers.update({"X-Linked-Etag": f'"{stored.sha256}"', "X-Linked-Size": str(len(stored.content))})
        self._send(200, stored.content, headers, head_only=method == "HEAD")
