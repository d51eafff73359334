"""A Hub-compatible HTTP endpoint on 127.0.0.1 for tests: what huggingface_hub (2.4) needs to read and publish.

``LocalHub`` serves, from a background thread, the part of the Hugging Face Hub's HTTP API that
``hf_hub_download``, ``HfApi.model_info`` / ``list_repo_refs`` and ``create_repo`` / ``upload_folder`` /
``create_commit`` / ``create_tag`` use, with the headers and ``X-Error-Code`` values that make the real client
raise its own errors (``RepositoryNotFoundError``, ``RevisionNotFoundError``, ``RemoteEntryNotFoundError``).
Point a client at it with ``HF_ENDPOINT=hub.endpoint`` (read when huggingface_hub is imported, so: a
subprocess) or ``HfApi(endpoint=hub.endpoint)``.

Files are kept in memory. As on the Hub, preupload answers ``uploadMode: "lfs"`` for the files the repo's
``.gitattributes`` sends to LFS (``*.npz``, ``*.safetensors``; ``LocalHub(lfs=False)`` makes every file
``regular``) and ``"regular"`` for the others, which travel base64 inside the commit. LFS files go through
the Git LFS batch API with Xet disabled (``HF_HUB_DISABLE_XET=1``, or without ``hf_xet``):
``POST /{repo}.git/info/lfs/objects/batch`` answers an upload and a verify action for each object the server
lacks, ``PUT /lfs/{oid}`` stores the bytes (refused unless their sha256 is the oid), ``POST /lfs/verify``
confirms it, and the commit's ``lfsFile`` lines name stored objects (:attr:`LocalHub.lfs_objects`).
Ids are git-like: a file's ETag is git's blob sha1, a commit's id the sha1 of its parent, message and tree.
Every repo starts, as on the Hub, with an initial commit holding ``.gitattributes`` on ``main``.

With ``token=...``, writes and reads of private repos need ``Authorization: Bearer <token>``: without it they
get 401 (``X-Error-Code: RepoNotFound`` for reads, as the Hub does not tell a private repo from a missing one),
a wrong token gets 401 ``Invalid credentials in Authorization header`` everywhere. Without ``token`` anyone
may do anything.

Fault injection for the publish tests: ``hub.fail(method, path_part, status, times=, headers=)`` answers the next
``times`` matching requests with ``status`` (e.g. 429 with ``Retry-After``, 503); ``hub.lose_answer(...)`` serves a
matching request and then closes the connection without answering (the commit landed, the client never heard);
``hub.before(method, path_part, hook)`` runs ``hook(hub)`` before serving a matching request (e.g. someone else
commits between plan and commit). :meth:`LocalHub.writes` lists the requests that change something.

    with LocalHub() as hub:
        hub.add_files("acme/model", {"modelcheck/m.json": "{}"}, tag="v1.0.0")
        ...  # HF_ENDPOINT=hub.endpoint
        assert ("GET", "/acme/model/resolve/v1.0.0/modelcheck/m.json") in [(r.method, r.path) for r in hub.requests]
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

__all__ = ["Commit", "Fault", "HubRequest", "LocalHub", "Repo", "git_blob_id"]

_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_GITATTRIBUTES = b"*.npz filter=lfs diff=lfs merge=lfs -text\n*.safetensors filter=lfs diff=lfs merge=lfs -text\n"


def git_blob_id(data: bytes) -> str:
    """git's id of a blob (``git hash-object``): the Hub's ETag of a file stored in git."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Commit:
    oid: str
    parent: str | None
    message: str
    files: Mapping[str, bytes]
    date: str


@dataclass
class Repo:
    repo_id: str
    repo_type: str = "model"
    private: bool = False
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        """A branch, a tag (either may be spelled ``refs/heads/...``/``refs/tags/...``) or a commit id."""
        oid = (
            self.branches.get(revision)
            or self.tags.get(revision)
            or self.branches.get(revision.removeprefix("refs/heads/"))
            or self.tags.get(revision.removeprefix("refs/tags/"))
            or revision
        )
        return self.commits.get(oid)

    def commit(self, branch: str, message: str, put: Mapping[str, bytes], delete: tuple[str, ...] = ()) -> Commit:
        """Commit on ``branch`` (created if missing): add or replace ``put``, remove ``delete`` (files or folders)."""
        parent = self.branches.get(branch)
        files = dict(self.commits[parent].files) if parent else {}
        for gone in delete:
            for path in [p for p in files if p == gone or p.startswith(gone.rstrip("/") + "/")]:
                del files[path]
        files.update(put)
        tree = sorted((path, git_blob_id(data)) for path, data in files.items())
        oid = hashlib.sha1(json.dumps([parent, message, tree]).encode()).hexdigest()
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.commits.setdefault(oid, Commit(oid=oid, parent=parent, message=message, files=files, date=now))
        self.branches[branch] = oid
        return self.commits[oid]


@dataclass(frozen=True)
class HubRequest:
    """One request as the server saw it: ``path`` as sent (percent-encoding kept, no query)."""

    method: str
    path: str
    query: str
    status: int
    authorization: str | None


@dataclass
class _Response:
    status: int
    body: bytes | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering


@dataclass
class Fault:
    """Answer (or drop) the next ``times`` requests whose method is ``method`` and whose path contains ``part``."""

    method: str
    part: str
    times: int
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    serve_then_drop: bool = False
    hook: Any = None

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and method == self.method and self.part in path


#: Requests that change something on the Hub (validate-yaml and paths-info are POSTs that only read).
WRITE_PARTS = ("/preupload/", "/commit/", "/tag/", "/api/repos/create", "/branch/", "/info/lfs/", "/lfs/")
#: Files the Hub keeps in LFS (the initial ``.gitattributes``); paths-info reports their sha256.
LFS_SUFFIXES = (".npz", ".safetensors")


def _error(status: int, message: str, code: str | None = None, **headers: str) -> _Response:
    extra = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {}), **headers}
    return _Response(status, {"error": message}, {k.replace("_", "-"): v for k, v in extra.items()})


class LocalHub:
    """An in-memory Hub on ``127.0.0.1:<free port>``; a context manager that starts and stops it."""

    def __init__(self, *, token: str | None = None, user: str = "modelcheck-tests", lfs: bool = True) -> None:
        self.token = token
        self.user = user
        self.lfs = lfs
        self.lfs_objects: dict[str, bytes] = {}
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[HubRequest] = []
        self.faults: list[Fault] = []
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._address: tuple[str, int] | None = None

    # -- lifecycle --------------------------------------------------------------------------------------------

    def start(self) -> LocalHub:
        if self._server is None:
            self._server = _Server(("127.0.0.1", 0), _Handler, hub=self)
            host, port = self._server.server_address[:2]
            self._address = (str(host), int(port))
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="LocalHub", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent): later requests fail to connect, as when the Hub is unreachable."""
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` (kept after :meth:`stop`, so a test can show what a client would reach)."""
        if self._address is None:
            raise RuntimeError("LocalHub is not started: use it as a context manager or call start()")
        return f"http://{self._address[0]}:{self._address[1]}"

    # -- seeding from a test ----------------------------------------------------------------------------------

    def create_repo(self, repo_id: str, *, repo_type: str = "model", private: bool = False) -> Repo:
        """The repo, created if missing with the Hub's initial commit (``.gitattributes`` on ``main``)."""
        with self._lock:
            repo = self.repos.get((repo_type, repo_id))
            if repo is None:
                repo = self.repos[(repo_type, repo_id)] = Repo(repo_id, repo_type, private)
                repo.commit("main", "initial commit", {".gitattributes": _GITATTRIBUTES})
            return repo

    def add_files(
        self,
        repo_id: str,
        files: Mapping[str, str | bytes],
        *,
        revision: str = "main",
        tag: str | None = None,
        message: str = "Upload files",
        repo_type: str = "model",
        private: bool = False,
    ) -> str:
        """Commit ``files`` (path -> text or bytes) on branch ``revision``, tag the commit if asked; its id."""
        with self._lock:
            repo = self.create_repo(repo_id, repo_type=repo_type, private=private)
            put = {path: data.encode() if isinstance(data, str) else bytes(data) for path, data in files.items()}
            commit = repo.commit(revision, message, put)
            if tag is not None:
                self.create_tag(repo_id, tag, revision=commit.oid, repo_type=repo_type)
            return commit.oid

    def create_tag(self, repo_id: str, tag: str, *, revision: str = "main", repo_type: str = "model") -> None:
        with self._lock:
            repo = self.repos[(repo_type, repo_id)]
            commit = repo.resolve(revision)
            if commit is None:
                raise KeyError(f"{repo_id} has no revision {revision!r}")
            if tag in repo.tags:
                raise ValueError(f"{repo_id} already has a tag {tag!r}")
            repo.tags[tag] = commit.oid

    # -- fault injection ---------------------------------------------------------------------------------------

    def fail(
        self, method: str, part: str, status: int, *, times: int = 1, headers: Mapping[str, str] | None = None
    ) -> None:
        """Answer the next ``times`` ``method`` requests whose path contains ``part`` with ``status``."""
        self.faults.append(Fault(method, part, times, status, dict(headers or {})))

    def lose_answer(self, method: str, part: str, *, times: int = 1) -> None:
        """Serve the next matching request, then close the connection without sending the answer."""
        self.faults.append(Fault(method, part, times, serve_then_drop=True))

    def before(self, method: str, part: str, hook: Any, *, times: int = 1) -> None:
        """Run ``hook(hub)`` before serving the next matching request."""
        self.faults.append(Fault(method, part, times, hook=hook))

    def writes(self) -> list[HubRequest]:
        """The requests that could change something (whatever they were answered)."""
        return [r for r in self.requests if r.method in ("PUT", "DELETE") or any(p in r.path for p in WRITE_PARTS)]

    def url(self, repo: Repo) -> str:
        return f"{self.endpoint}/{_PREFIX[repo.repo_type]}{repo.repo_id}"

    # -- HTTP ---------------------------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> _Response:
        split = urlsplit(target)
        with self._lock:
            fault = next((f for f in self.faults if f.matches(method, split.path)), None)
            if fault is not None:
                fault.times -= 1
                if fault.hook is not None:
                    fault.hook(self)
                elif not fault.serve_then_drop:
                    response = _error(fault.status, f"injected {fault.status}", **fault.headers)
                    self.requests.append(
                        HubRequest(method, split.path, split.query, fault.status, headers.get("authorization"))
                    )
                    return response
            try:
                response = self._route(method, split.path, parse_qs(split.query), headers, body)
            except (KeyError, ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
                response = _error(400, f"bad request: {type(exc).__name__}: {exc}")
        if fault is not None and fault.serve_then_drop:
            response.drop = True
        self.requests.append(HubRequest(method, split.path, split.query, response.status, headers.get("authorization")))
        return response

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], headers: Mapping[str, str], body: bytes
    ) -> _Response:
        segments = [unquote(s) for s in path.split("/")[1:]]
        auth = self._auth(headers)
        if auth == "invalid":
            return _error(401, "Invalid credentials in Authorization header")
        if method == "POST" and path.endswith(".git/info/lfs/objects/batch"):
            return self._lfs_batch(auth, json.loads(body))
        if segments[:1] == ["lfs"]:
            return self._lfs_object(method, segments[1:], body)
        if segments[:1] == ["api"]:
            if method == "POST" and segments[1:] == ["repos", "create"]:
                return self._create_repo(auth, json.loads(body))
            if method == "POST" and segments[1:] == ["validate-yaml"]:
                return _validate_yaml(json.loads(body).get("content", ""))
            if len(segments) >= 4 and segments[1] in ("models", "datasets", "spaces"):
                repo_type, repo_id, rest = segments[1][:-1], "/".join(segments[2:4]), segments[4:]
                revision = "/".join(rest[1:]) or None  # a revision sent unquoted may hold slashes
                found = self._repo(repo_type, repo_id, auth)
                if isinstance(found, _Response):
                    return found
                if method == "GET" and (not rest or (rest[0] == "revision" and revision)):
                    return self._info(found, revision or "main")
                if method == "GET" and rest == ["refs"]:
                    return self._refs(found, with_prs="include_prs" in query)
                if method == "GET" and rest[:1] == ["commits"] and revision:
                    return self._commits(found, revision)
                if method == "POST" and rest[:1] == ["paths-info"] and revision:
                    return self._paths_info(found, revision, parse_qs(body.decode()))
                if method == "POST" and rest[:1] in (["preupload"], ["commit"], ["tag"]) and revision:
                    if auth != "ok":
                        return _error(401, "Invalid username or password.")
                    if rest[0] == "preupload":
                        return self._preupload(found, revision, json.loads(body))
                    if rest[0] == "commit":
                        return self._commit(found, revision, body, create_pr="create_pr" in query)
                    return self._tag(found, revision, json.loads(body))
        elif method in ("GET", "HEAD"):
            repo_type = {"datasets": "dataset", "spaces": "space"}.get(segments[0], "model")
            rest = segments if repo_type == "model" else segments[1:]
            if len(rest) >= 5 and rest[2] == "resolve":
                found = self._repo(repo_type, "/".join(rest[:2]), auth)
                return found if isinstance(found, _Response) else self._resolve(found, rest[3], "/".join(rest[4:]))
        return _error(404, f"LocalHub does not serve {method} {path}")

    def _auth(self, headers: Mapping[str, str]) -> str:
        """``ok`` (right token, or none needed), ``anonymous`` (no token sent) or ``invalid``."""
        if self.token is None:
            return "ok"
        sent = headers.get("authorization")
        if sent is None:
            return "anonymous"
        return "ok" if sent == f"Bearer {self.token}" else "invalid"

    def _repo(self, repo_type: str, repo_id: str, auth: str) -> Repo | _Response:
        repo = self.repos.get((repo_type, repo_id))
        if repo is not None and (auth == "ok" or not repo.private):
            return repo
        return _error(401 if auth != "ok" else 404, "Repository not found", "RepoNotFound")

    def _resolve(self, repo: Repo, revision: str, path: str) -> _Response:
        commit = repo.resolve(revision)
        if commit is None:
            return _error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        data = commit.files.get(path)
        if data is None:
            return _error(404, "Entry not found", "EntryNotFound", X_Repo_Commit=commit.oid)
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{git_blob_id(data)}"', "Content-Type": _content_type(path)}
        return _Response(200, data, headers)

    def _info(self, repo: Repo, revision: str) -> _Response:
        commit = repo.resolve(revision)
        if commit is None:
            return _error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        siblings = [{"rfilename": p, "size": len(d), "blobId": git_blob_id(d)} for p, d in sorted(commit.files.items())]
        first = repo.commits[next(iter(repo.commits))]
        return _Response(200, {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24], "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0], "sha": commit.oid, "private": repo.private, "disabled": False,
            "gated": False, "downloads": 0, "likes": 0, "tags": [], "siblings": siblings,
            "createdAt": first.date, "lastModified": commit.date,
        })  # fmt: skip

    def _refs(self, repo: Repo, *, with_prs: bool) -> _Response:
        def refs(kind: str, names: dict[str, str]) -> list[dict[str, str]]:
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": oid} for n, oid in sorted(names.items())]

        heads = {n: oid for n, oid in repo.branches.items() if not n.startswith("refs/pr/")}
        prs = [
            {"name": n.removeprefix("refs/pr/"), "ref": n, "targetCommit": oid}
            for n, oid in sorted(repo.branches.items())
            if n.startswith("refs/pr/")
        ]
        answer = {"branches": refs("heads", heads), "converts": [], "tags": refs("tags", repo.tags)}
        return _Response(200, {**answer, "pullRequests": prs} if with_prs else answer)

    def _commits(self, repo: Repo, revision: str) -> _Response:
        """The history of ``revision``, newest first (one page)."""
        commit = repo.resolve(revision)
        if commit is None:
            return _error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        history = []
        while commit is not None:
            title, _, message = commit.message.partition("\n\n")
            history.append({
                "id": commit.oid, "authors": [{"user": self.user}], "date": commit.date, "title": title,
                "message": message,
            })  # fmt: skip
            commit = repo.commits.get(commit.parent) if commit.parent else None
        return _Response(200, history)

    def _paths_info(self, repo: Repo, revision: str, form: dict[str, list[str]]) -> _Response:
        """Files the Hub stores as LFS (``*.npz``, ``*.safetensors``, per .gitattributes) carry ``lfs.oid`` = sha256."""
        commit = repo.resolve(revision)
        if commit is None:
            return _error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        answer = []
        for path in form.get("paths", []):
            data = commit.files.get(path)
            if data is None:
                continue
            info: dict[str, Any] = {"type": "file", "path": path, "size": len(data), "oid": git_blob_id(data)}
            if path.endswith(LFS_SUFFIXES):
                info["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            answer.append(info)
        return _Response(200, answer)

    def _lfs_batch(self, auth: str, payload: dict[str, Any]) -> _Response:
        """The Git LFS batch API: an upload + verify action for each object not stored yet, none for the others."""
        if auth != "ok":
            return _error(401, "Invalid username or password.")
        if payload.get("operation") != "upload" or "basic" not in payload.get("transfers", ["basic"]):
            return _error(400, "LocalHub's LFS batch API takes basic uploads only")
        objects = []
        for item in payload["objects"]:
            oid, size = str(item["oid"]), int(item["size"])
            answer: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if oid not in self.lfs_objects:
                answer["actions"] = {
                    "upload": {"href": f"{self.endpoint}/lfs/{oid}", "header": {}},
                    "verify": {"href": f"{self.endpoint}/lfs/verify", "header": {}},
                }
            objects.append(answer)
        return _Response(200, {"transfer": "basic", "objects": objects})

    def _lfs_object(self, method: str, rest: list[str], body: bytes) -> _Response:
        if method == "PUT" and len(rest) == 1:
            if hashlib.sha256(body).hexdigest() != rest[0]:
                return _error(400, f"the uploaded bytes do not hash to {rest[0]}")
            self.lfs_objects[rest[0]] = body
            return _Response(200, b"")
        if method == "POST" and rest == ["verify"]:
            item = json.loads(body)
            stored = self.lfs_objects.get(str(item.get("oid")))
            if stored is None or len(stored) != item.get("size"):
                return _error(404, f"LFS object {item.get('oid')} is not stored (or has another size)")
            return _Response(200, {})
        return _error(404, f"LocalHub does not serve {method} /lfs/{'/'.join(rest)}")

    def _create_repo(self, auth: str, payload: dict[str, Any]) -> _Response:
        if auth != "ok":
            return _error(401, "Invalid username or password.")
        repo_type = payload.get("type") or "model"
        if repo_type not in _PREFIX:
            return _error(400, f"Invalid repo type: {repo_type}")
        repo_id = f"{payload.get('organization') or self.user}/{payload['name']}"
        private = bool(payload.get("private")) or payload.get("visibility") == "private"
        if (repo_type, repo_id) in self.repos:
            url = self.url(self.repos[(repo_type, repo_id)])
            return _Response(409, {"error": f"You already created this {repo_type} repo", "url": url})
        repo = self.create_repo(repo_id, repo_type=repo_type, private=private)
        return _Response(200, {"url": self.url(repo), "name": repo_id, "id": repo_id})

    def _preupload(self, repo: Repo, revision: str, payload: dict[str, Any]) -> _Response:
        commit = repo.resolve(revision)
        if commit is None:
            return _error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        answers = []
        for item in payload["files"]:
            existing = commit.files.get(item["path"])
            oid = git_blob_id(existing) if existing is not None else None
            mode = "lfs" if self.lfs and item["path"].endswith(LFS_SUFFIXES) else "regular"
            answers.append({"path": item["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return _Response(200, {"files": answers, "commitOid": commit.oid})

    def _commit(self, repo: Repo, branch: str, body: bytes, *, create_pr: bool) -> _Response:
        if create_pr:  # a pull request is a branch refs/pr/N started at the target branch's head
            if branch not in repo.branches:
                return _error(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            number = 1 + sum(1 for name in repo.branches if name.startswith("refs/pr/"))
            pr_branch = f"refs/pr/{number}"
            repo.branches[pr_branch] = repo.branches[branch]
            answer = self._commit(repo, pr_branch, body, create_pr=False)
            if answer.status != 200:
                del repo.branches[pr_branch]
                return answer
            assert isinstance(answer.body, dict)
            answer.body["pullRequestUrl"] = f"{self.url(repo)}/discussions/{number}"
            return answer
        if branch not in repo.branches:
            return _error(404, f"Invalid rev id: {branch} (commits go to a branch)", "RevisionNotFound")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            return _error(400, "the commit payload must start with a header line")
        header = lines[0]["value"]
        parent = header.get("parentCommit")
        if parent is not None and parent != repo.branches[branch]:
            return _error(412, "A commit has happened since. Please refresh and try again.")
        put: dict[str, bytes] = {}
        delete: list[str] = []
        files = repo.commits[repo.branches[branch]].files
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                content, base64_encoded = value["content"], value.get("encoding") == "base64"
                put[value["path"]] = base64.b64decode(content) if base64_encoded else content.encode()
            elif key == "lfsFile":
                stored = self.lfs_objects.get(value.get("oid"))
                if value.get("algo") != "sha256" or stored is None or len(stored) != value.get("size"):
                    return _error(422, f"LFS object {value.get('oid')} of {value['path']} was never uploaded")
                put[value["path"]] = stored
            elif key in ("deletedFile", "deletedFolder"):
                prefix = value["path"].rstrip("/") + "/"
                if not any(p == value["path"] or (key == "deletedFolder" and p.startswith(prefix)) for p in files):
                    return _error(404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
                delete.append(value["path"])
            else:
                return _error(400, f"LocalHub does not take {key!r} lines")
        message = "\n\n".join(part for part in (header.get("summary"), header.get("description")) if part)
        commit = repo.commit(branch, message or "Upload files", put, tuple(delete))
        url = f"{self.url(repo)}/commit/{commit.oid}"
        return _Response(200, {"success": True, "commitOid": commit.oid, "commitUrl": url, "hookOutput": ""})

    def _tag(self, repo: Repo, revision: str, payload: dict[str, Any]) -> _Response:
        commit = repo.resolve(revision)
        if commit is None:
            return _error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        if payload["tag"] in repo.tags:
            return _error(409, f"Tag {payload['tag']} already exists")
        repo.tags[payload["tag"]] = commit.oid
        return _Response(200, {})


def _validate_yaml(content: str) -> _Response:
    """The Hub checks a README's YAML front matter; LocalHub checks that it parses to a mapping."""
    if content.startswith("---"):
        front = content[3:].split("\n---", 1)[0]
        try:
            metadata = yaml.safe_load(front)
        except yaml.YAMLError as exc:
            return _Response(400, {"errors": [{"message": f"Invalid YAML: {exc}"}], "warnings": []})
        if metadata is not None and not isinstance(metadata, dict):
            return _Response(400, {"errors": [{"message": "YAML metadata must be a mapping"}], "warnings": []})
    return _Response(200, {"errors": [], "warnings": []})


def _content_type(path: str) -> str:
    return {"json": "application/json", "md": "text/markdown", "yaml": "text/yaml"}.get(
        path.rsplit(".", 1)[-1], "application/octet-stream"
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], *, hub: LocalHub) -> None:
        self.hub = hub
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.0: one request per connection, so :meth:`LocalHub.stop` leaves no connection being served."""

    server: _Server
    server_version = "LocalHub/1.0"

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        response = self.server.hub.handle(method, self.path, headers, self._body())
        if response.drop:  # the request was served; its answer is lost
            self.close_connection = True
            self.connection.close()
            return
        body = response.body if isinstance(response.body, bytes) else json.dumps(response.body).encode()
        self.send_response(response.status)
        if not isinstance(response.body, bytes):
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers, then the empty line
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def log_message(self, format: str, *args: Any) -> None:  # the request log is LocalHub.requests
        pass
