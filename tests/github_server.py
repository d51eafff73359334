"""A GitHub-REST-compatible endpoint on 127.0.0.1 for tests: the pull-request comment calls PyGithub makes.

``LocalGitHub`` serves, from a background thread, what ``modelcheck github comment`` needs:

- ``GET /repos/{owner}/{repo}/pulls/{n}`` and ``GET /repos/{owner}/{repo}/pulls?state=open&head=owner:branch``
- ``GET /repos/{owner}/{repo}/issues/{n}/comments?per_page=&page=`` paged with a ``Link`` header, as GitHub does
- ``POST`` the same path (create), ``GET/PATCH/DELETE /repos/{owner}/{repo}/issues/comments/{id}``
- issues: ``GET /repos/{owner}/{repo}/issues?state=&labels=&per_page=&page=`` (pull requests listed too, with a
  ``pull_request`` key, as GitHub does), ``POST`` it (create), ``GET/PATCH /repos/{owner}/{repo}/issues/{n}``
  (``title``, ``body``, ``state``, ``state_reason``, ``labels``); issues and pull requests share their numbers
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
from urllib.parse import parse_qs, quote, urlsplit

__all__ = ["Comment", "Issue", "LocalGitHub", "Pull"]


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
class Issue:
    number: int
    title: str
    body: str
    user: str
    labels: list[str]
    state: str = "open"
    state_reason: str | None = None


@dataclass
class Repo:
    pulls: dict[int, Pull] = field(default_factory=dict)
    comments: dict[int, Comment] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)

    def next_number(self) -> int:
        return max([0, *self.pulls, *self.issues]) + 1


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

    def add_repo(self, repo: str) -> None:
        self.repos.setdefault(repo, Repo())

    def add_issue(self, repo: str, title: str, body: str, *, user: str = "someone", state: str = "open") -> Issue:
        with self._lock:
            where = self.repos.setdefault(repo, Repo())
            issue = Issue(where.next_number(), title, body, user, [], state)
            where.issues[issue.number] = issue
            return issue

    def issues(self, repo: str) -> list[Issue]:
        return sorted(self.repos[repo].issues.values(), key=lambda i: i.number)

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

    def _issue_json(self, name: str, i: Issue) -> dict[str, Any]:
        return {
            "number": i.number,
            "id": 500000 + i.number,
            "url": f"{self.api_url}/repos/{name}/issues/{i.number}",
            "html_url": f"https://github.test/{name}/issues/{i.number}",
            "title": i.title,
            "body": i.body,
            "state": i.state,
            "state_reason": i.state_reason,
            "labels": [{"name": label} for label in i.labels],
            "user": {"login": i.user, "id": 1, "type": "Bot"},
        }

    def _pull_as_issue(self, name: str, p: Pull) -> dict[str, Any]:
        return {
            "number": p.number,
            "url": f"{self.api_url}/repos/{name}/issues/{p.number}",
            "html_url": f"https://github.test/{name}/pull/{p.number}",
            "title": f"pull request {p.number}",
            "body": "",
            "state": "open",
            "labels": [],
            "user": {"login": p.head_owner, "id": 2, "type": "User"},
            "pull_request": {"url": f"{self.api_url}/repos/{name}/pulls/{p.number}"},
        }

    def _issues(self, name: str, repo: Repo, method: str, rest: list[str], body: bytes, query: Any) -> Any:
        """The issue routes, or None when ``rest`` is not one of them."""
        if rest == ["issues"] and method == "POST":
            sent = json.loads(body or b"{}")
            issue = Issue(repo.next_number(), str(sent.get("title", "")), str(sent.get("body") or ""), self.user,
                          [str(label) for label in sent.get("labels") or []])  # fmt: skip
            repo.issues[issue.number] = issue
            return 201, self._issue_json(name, issue), {}
        if rest == ["issues"] and method == "GET":
            state = query.get("state", ["open"])[0]
            wanted = set(filter(None, query.get("labels", [""])[0].split(",")))
            found = [
                self._issue_json(name, i)
                for i in repo.issues.values()
                if state in ("all", i.state) and wanted <= set(i.labels)
            ]
            if state in ("all", "open") and not wanted:
                found += [self._pull_as_issue(name, p) for p in repo.pulls.values()]
            found.sort(key=lambda i: -int(i["number"]))  # newest first, as GitHub lists them
            return self._paged(found, f"/repos/{name}/issues", query)
        if len(rest) == 2 and rest[0] == "issues" and rest[1].isdigit():
            number = int(rest[1])
            issue = repo.issues.get(number)
            if issue is None:
                pull = repo.pulls.get(number)
                if pull is not None and method == "GET":
                    return 200, self._pull_as_issue(name, pull), {}
                return 404, {"message": "Not Found"}, {}
            if method == "GET":
                return 200, self._issue_json(name, issue), {}
            if method == "PATCH":
                sent = json.loads(body or b"{}")
                for key in ("title", "body", "state", "state_reason"):
                    if key in sent:
                        setattr(issue, key, sent[key])
                if "labels" in sent:
                    issue.labels = [str(label) for label in sent["labels"]]
                return 200, self._issue_json(name, issue), {}
        return None

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
            answer = self._issues(name, repo, method, rest, body, query)
            if answer is not None:
                return answer
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
        return self._paged([self._comment_json(name, c) for c in self.comments(name, number)], path, query)

    def _paged(self, items: list[Any], path: str, query: dict[str, list[str]]) -> Any:
        per_page = min(int(query.get("per_page", ["30"])[0]), 100)
        page = int(query.get("page", ["1"])[0])
        chunk = items[(page - 1) * per_page : page * per_page]
        last = max(1, -(-len(items) // per_page))
        links = []
        keep = "".join(f"&{k}={quote(v[0])}" for k, v in query.items() if k not in ("per_page", "page"))
        if page < last:
            links.append(f'<{self.api_url}{path}?per_page={per_page}&page={page + 1}{keep}>; rel="next"')
            links.append(f'<{self.api_url}{path}?per_page={per_page}&page={last}{keep}>; rel="last"')
        headers = {"Link": ", ".join(links)} if links else {}
        return 200, chunk, headers


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
