"""A GitHub-REST-compatible endpoint on 127.0.0.1 for tests: the pull-request comment calls PyGithub makes.

``LocalGitHub`` serves, from a background thread, what ``modelcheck github comment`` needs:

- ``GET /repos/{owner}/{repo}/pulls/{n}`` and ``GET /repos/{owner}/{repo}/pulls?state=open&head=owner:branch``
- ``GET /repos/{owner}/{repo}/issues/{n}/comments?per_page=&page=`` paged with a ``Link`` header, as GitHub does
- ``POST`` the same path (create), ``GET/PATCH/DELETE /repos/{owner}/{repo}/issues/comments/{id}``
- ``GET /user``: the token's account, or (``integration = True``, the default, as GitHub Actions' GITHUB_TOKEN)
  GitHub's 403 "Resource not accessible by integration"

With ``token=...`` every request needs ``Authorization: token|Bearer <token>`` (else 401 "Bad credentials").
``read_only = True`` answers writes with GitHub's 403 "Resource not accessible by integration" (a fork's token).
Point the client at it with ``GITHUB_API_URL=server.api_url``.

    with LocalGitHub(token="t") as gh:
        gh.add_pull("acme/app", 7, head_sha="a" * 40)
        ...
        assert [c.body for c in gh.comments("acme/app", 7)]
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Comment", "LocalGitHub", "Pull"]


@dataclass
class Comment:
    id: int
    issue: int
    body: str
    user: str
    created_at: str
    updated_at: str


@dataclass
class Pull:
    number: int
    head_sha: str
    head_owner: str
    head_branch: str


@dataclass
class Repo:
    pulls: dict[int, Pull] = field(default_factory=dict)
    comments: dict[int, Comment] = field(default_factory=dict)


class LocalGitHub:
    """The server; ``requests`` records ``(method, path)`` of every request."""

    def __init__(self, *, token: str | None = None, user: str = "github-actions[bot]") -> None:
        self.token = token
        self.user = user
        #: An app installation token (GITHUB_TOKEN): GET /user answers 403, as GitHub does.
        self.integration = True
        self.read_only = False
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self._next_id = 1000
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LocalGitHub:
        self._server = _Server(("127.0.0.1", 0), _Handler, github=self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalGitHub:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        assert self._server is not None, "start() the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- set-up and inspection ------------------------------------------------------------------

    def add_pull(self, repo: str, number: int, *, head_sha: str, owner: str = "", branch: str = "feature") -> Pull:
        pull = Pull(number, head_sha, owner or repo.split("/")[0], branch)
        self.repos.setdefault(repo, Repo()).pulls[number] = pull
        return pull

    def add_comment(self, repo: str, number: int, body: str, *, user: str = "someone") -> Comment:
        with self._lock:
            return self._create(self.repos.setdefault(repo, Repo()), number, body, user)

    def comments(self, repo: str, number: int) -> list[Comment]:
        return sorted((c for c in self.repos[repo].comments.values() if c.issue == number), key=lambda c: c.id)

    # -- serving ---------------------------------------------------------------------------------

    def _create(self, repo: Repo, number: int, body: str, user: str) -> Comment:
        self._next_id += 1
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        comment = Comment(self._next_id, number, body, user, now, now)
        repo.comments[comment.id] = comment
        return comment

    def _comment_json(self, name: str, c: Comment) -> dict[str, Any]:
        return {
            "id": c.id,
            "node_id": f"IC_{c.id}",
            "url": f"{self.api_url}/repos/{name}/issues/comments/{c.id}",
            "html_url": f"https://github.test/{name}/pull/{c.issue}#issuecomment-{c.id}",
            "issue_url": f"{self.api_url}/repos/{name}/issues/{c.issue}",
            "body": c.body,
            "user": {"login": c.user, "id": 1, "type": "Bot"},
            "created_at": c.created_at,
            "updated_at": c.updated_at,
        }

    def _pull_json(self, name: str, p: Pull) -> dict[str, Any]:
        return {
            "number": p.number,
            "url": f"{self.api_url}/repos/{name}/pulls/{p.number}",
            "state": "open",
            "head": {"sha": p.head_sha, "ref": p.head_branch, "repo": {"owner": {"login": p.head_owner}}},
        }

    def handle(self, method: str, target: str, headers: Any, body: bytes) -> tuple[int, Any, dict[str, str]]:
        url = urlsplit(target)
        self.requests.append((method, url.path))
        if self.token is not None:
            given = headers.get("Authorization", "")
            if given not in (f"token {self.token}", f"Bearer {self.token}"):
                return 401, {"message": "Bad credentials"}, {}
        parts = url.path.strip("/").split("/")
        if parts == ["user"] and method == "GET":
            if self.integration:
                return 403, {"message": "Resource not accessible by integration"}, {}
            return 200, {"login": self.user, "id": 1, "type": "User"}, {}
        if len(parts) < 4 or parts[0] != "repos":
            return 404, {"message": "Not Found"}, {}
        name = f"{parts[1]}/{parts[2]}"
        repo = self.repos.get(name)
        if repo is None:
            return 404, {"message": "Not Found"}, {}
        rest = parts[3:]
        query = parse_qs(url.query)
        with self._lock:
            if method != "GET" and self.read_only:
                return 403, {"message": "Resource not accessible by integration"}, {}
            if rest[0] == "pulls" and len(rest) == 1 and method == "GET":
                head = query.get("head", [""])[0]
                found = [p for p in repo.pulls.values() if not head or f"{p.head_owner}:{p.head_branch}" == head]
                return 200, [self._pull_json(name, p) for p in found], {}
            if rest[0] == "pulls" and len(rest) == 2 and method == "GET":
                pull = repo.pulls.get(int(rest[1]))
                return (200, self._pull_json(name, pull), {}) if pull else (404, {"message": "Not Found"}, {})
            if rest[:1] == ["issues"] and len(rest) == 3 and rest[2] == "comments":
                number = int(rest[1])
                if method == "POST":
                    text = json.loads(body or b"{}").get("body", "")
                    return 201, self._comment_json(name, self._create(repo, number, text, self.user)), {}
                if method == "GET":
                    return self._page(name, number, repo, url.path, query)
            if rest[:2] == ["issues", "comments"] and len(rest) == 3:
                comment = repo.comments.get(int(rest[2]))
                if comment is None:
                    return 404, {"message": "Not Found"}, {}
                if method == "GET":
                    return 200, self._comment_json(name, comment), {}
                if method == "PATCH":
                    comment.body = json.loads(body or b"{}").get("body", comment.body)
                    comment.updated_at = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                    return 200, self._comment_json(name, comment), {}
                if method == "DELETE":
                    del repo.comments[comment.id]
                    return 204, None, {}
        return 404, {"message": "Not Found"}, {}

    def _page(self, name: str, number: int, repo: Repo, path: str, query: dict[str, list[str]]) -> Any:
        per_page = min(int(query.get("per_page", ["30"])[0]), 100)
        page = int(query.get("page", ["1"])[0])
        items = self.comments(name, number)
        chunk = items[(page - 1) * per_page : page * per_page]
        last = max(1, -(-len(items) // per_page))
        links = []
        if page < last:
            links.append(f'<{self.api_url}{path}?per_page={per_page}&page={page + 1}>; rel="next"')
            links.append(f'<{self.api_url}{path}?per_page={per_page}&page={last}>; rel="last"')
        headers = {"Link": ", ".join(links)} if links else {}
        return 200, [self._comment_json(name, c) for c in chunk], headers


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], *, github: LocalGitHub):
        super().__init__(address, handler)
        self.github = github


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload, headers = self.server.github.handle(self.command, self.path, self.headers, body)
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass
