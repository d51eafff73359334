"""One sticky pull-request comment per workflow, gate set and matrix leg, updated in place.

The comment starts with a hidden marker::

    <!-- modelcheck-gate key="ci/merge/py3.11" sha=<head sha> run=<run id> attempt=<run attempt> -->

``key`` names the comment (one per workflow, gate set and matrix leg); ``sha`` is the pull request head the
run tested. Rules, applied to the comment that carries the same key (the oldest one; later duplicates from
an earlier race are deleted):

- a run whose head is no longer the pull request's head never overwrites a comment about the current head,
  and an older run (lower run id / attempt) never overwrites a newer run's comment on the same head;
- ``comment: always`` creates or updates; ``on-change`` leaves an identical comment alone; ``on-failure``
  creates one only when the stage did not pass, but updates an existing one either way (so a fixed pull
  request does not keep showing a failure); ``off`` posts nothing.

A token that cannot write (403: a fork's read-only token under ``pull_request``) is not a failure: the
outcome says so and the job summary has the results. PyGithub is imported here, lazily, and talks to
``GITHUB_API_URL`` (GitHub Enterprise works).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelcheck.errors import GitHubError
from modelcheck.github.judge import StageResult
from modelcheck.github.summary import EMOJI, HEADLINE, cell, code, stage_counts, status_emoji, table_row, why_lines
from modelcheck.report.summary import NONE
from modelcheck.report.text import plain, redact

#: GitHub's limit for an issue or pull-request comment body, in characters.
COMMENT_LIMIT = 65536
MODES = ("always", "on-change", "on-failure", "off")
FORBIDDEN = "comment skipped: this token cannot write to the pull request (a fork?); the job summary has the results"
_MARKER = re.compile(
    r'<!-- modelcheck-gate key="(?P<key>[^"\n]{0,500})" sha=(?P<sha>[0-9A-Za-z]{0,64}) run=(?P<run>\d{0,19}) '
    r"attempt=(?P<attempt>\d{0,9}) -->"
)
#: Whose comments are ours when the token cannot say (GitHub Actions' GITHUB_TOKEN: GET /user answers 403).
ACTIONS_BOT = "github-actions[bot]"


@dataclass(frozen=True)
class Marker:
    key: str
    sha: str
    run: int
    attempt: int

    def render(self) -> str:
        key = marker_key(self.key)
        return f'<!-- modelcheck-gate key="{key}" sha={self.sha} run={self.run} attempt={self.attempt} -->'

    def newer_than(self, other: Marker) -> bool:
        return (self.run, self.attempt) > (other.run, other.attempt)


def marker_key(key: str) -> str:
    """A key as a hidden HTML comment can hold it: one line, no quotes, no ``--`` (which would end the comment)."""
    return re.sub("-{2,}", "-", plain(key, 200).replace('"', "'"))


def parse_marker(body: str) -> Marker | None:
    match = _MARKER.search(body or "")
    if match is None:
        return None
    return Marker(match["key"], match["sha"], int(match["run"] or 0), int(match["attempt"] or 0))


def comment_body(result: StageResult, marker: Marker, *, run_url: str | None, limit: int = COMMENT_LIMIT) -> str:
    """The comment: marker, status line, the checks that did not pass (all, or as many as fit), a link."""
    head = [
        marker.render(),
        f"### {status_emoji(result.status)} modelcheck: {HEADLINE[result.status]} — stage {code(result.stage)}",
        "",
        f"{stage_counts(result)} · tested {code(marker.sha[:12]) if marker.sha else NONE}",
        "",
    ]
    head += [f"> {EMOJI['error']} {code(g['file'])} could not run: {cell(g.get('error'))}" for g in result.gate_errors]
    head += ([""] if result.gate_errors else []) + why_lines(result)
    link = f"{_LINK} [the job summary]({run_url})." if run_url else ""
    rows = [table_row(r) for r in result.checks if r.word not in ("passed", "skipped")]
    table = ["| | check | value | threshold | stages | line |", "|---|---|---|---|---|---|"] if rows else []
    tail = ["", link] if link else []
    note_room = 300
    budget = limit - len("\n".join(head + table + tail)) - note_room
    kept: list[str] = []
    used = 0
    for row in rows:
        if used + len(row) + 1 > budget:
            break
        kept.append(row)
        used += len(row) + 1
    note = []
    if len(kept) < len(rows):
        note = [
            "",
            f"✂️ {len(rows) - len(kept)} more rows left out to stay under GitHub's {COMMENT_LIMIT:,}-character "
            "comment limit; the job summary lists them.",
        ]
    body = "\n".join(head + table + kept + note + tail).rstrip("\n") + "\n"
    if len(body) > limit:  # a huge gate error: cut it, keeping the marker
        body = body[: limit - 80] + "\n\n✂️ cut to GitHub's comment limit; the job summary has the rest.\n"
    return body


@dataclass(frozen=True)
class Outcome:
    """What the upsert did: created, updated, unchanged, skipped (mode, stale, forbidden); and the comment's URL."""

    action: str
    message: str
    url: str | None = None


_LINK = "Every check, charts and details:"


def _content(body: str) -> str:
    """What on-change compares: the body without the marker and the link to the run."""
    lines = _MARKER.sub("", body).splitlines()
    return "\n".join(line for line in lines if not line.startswith(_LINK)).strip()


def upsert_comment(
    *,
    api_url: str,
    token: str,
    repository: str,
    number: int,
    body: str,
    marker: Marker,
    mode: str,
    passed: bool,
    author: str | None = None,
) -> Outcome:
    """Create or update the sticky comment on pull request ``number`` of ``repository`` (see the module doc).

    Only comments written by the token's own account are taken as ours: its login (GET /user), else
    ``author`` (an app's ``<slug>[bot]``), else :data:`ACTIONS_BOT`. A copy of the marker in anyone else's
    comment is ignored: it is neither updated, deleted nor read for its run number.
    """
    if mode not in MODES:
        raise GitHubError(f"comment mode {mode!r} is not one of {', '.join(MODES)}")
    if mode == "off":
        return Outcome("skipped", "comment: off — no comment posted")
    from github import Auth, Github, GithubException
    from github.GithubRetry import GithubRetry

    client = Github(
        base_url=api_url.rstrip("/"),
        auth=Auth.Token(token),
        per_page=100,
        timeout=30,
        retry=GithubRetry(total=3, secondary_rate_wait=10, max_rate_limit_wait=60),
        seconds_between_requests=None,
        lazy=True,
    )
    try:
        repo = client.get_repo(repository)
        issue = repo.get_issue(number)
        head = repo.get_pull(number).head.sha
        me = _identity(client, author).lower()
        ours = sorted(
            (
                c
                for c in issue.get_comments()
                if c.user is not None
                and str(c.user.login).lower() == me
                and (m := parse_marker(c.body or "")) is not None
                and m.key == marker.key
            ),
            key=lambda c: c.id,
        )
        if not ours:
            if mode == "on-failure" and passed:
                return Outcome("skipped", "comment: on-failure — the stage passed and there is no comment to update")
            created = issue.create_comment(body)
            return Outcome("created", f"comment created: {created.html_url}", created.html_url)
        keep, duplicates = ours[0], ours[1:]
        for duplicate in duplicates:
            duplicate.delete()
        current = issue.get_comment(keep.id)  # re-read just before deciding: another run may have written
        theirs = parse_marker(current.body or "")
        if theirs is not None:
            stale = _stale(theirs, marker, head)
            if stale:
                return Outcome("skipped", f"comment not updated: {stale}", current.html_url)
        if mode == "on-change" and _content(current.body or "") == _content(body):
            return Outcome("unchanged", f"comment unchanged (comment: on-change): {current.html_url}", current.html_url)
        current.edit(body)
        return Outcome("updated", f"comment updated: {current.html_url}", current.html_url)
    except GithubException as exc:
        if exc.status == 403:
            return Outcome("forbidden", FORBIDDEN)
        if exc.status == 404:
            raise GitHubError(
                f"{api_url} answered 404 for pull request #{number} of {repository}: check the repository, the "
                "pull request number and that the token can read them"
            ) from None
        raise GitHubError(
            redact(f"the GitHub API at {api_url} answered {exc.status}: {_reason(exc.data)}", token)
        ) from None
    except (OSError, ValueError) as exc:  # connection refused, DNS, TLS, a broken answer
        raise GitHubError(
            redact(f"cannot reach the GitHub API at {api_url} ({type(exc).__name__}: {exc})", token)
        ) from None
    finally:
        client.close()


def _identity(client: Any, author: str | None) -> str:
    """The login whose comments are ours: ``author`` if given, else GET /user's, else (403) :data:`ACTIONS_BOT`."""
    if author:
        return author
    from github import GithubException

    try:
        return str(client.get_user().login)
    except GithubException as exc:
        if exc.status == 403:  # an app installation token (GITHUB_TOKEN): /user is not for integrations
            return ACTIONS_BOT
        raise


def _stale(theirs: Marker, ours: Marker, head: str) -> str | None:
    """Why our run must not overwrite ``theirs``, or None."""
    if theirs.sha == head and ours.sha != head:
        return f"this run tested {ours.sha[:12]} but the pull request's head is {head[:12]}, whose results are posted"
    if not (ours.sha == head and theirs.sha != head) and theirs.newer_than(ours):
        return f"a newer run ({theirs.run} attempt {theirs.attempt}) already posted results"
    return None


def _reason(data: Any) -> str:
    if isinstance(data, Mapping) and data.get("message"):
        return str(data["message"])
    return str(data)[:200]


def find_pull_request(*, api_url: str, token: str, repository: str, owner: str, branch: str, sha: str) -> int | None:
    """The open pull request whose head is ``owner:branch`` at ``sha`` (fork PRs under ``workflow_run``)."""
    from github import Auth, Github, GithubException

    client = Github(base_url=api_url.rstrip("/"), auth=Auth.Token(token), per_page=100, timeout=30, lazy=True)
    try:
        for pull in client.get_repo(repository).get_pulls(state="open", head=f"{owner}:{branch}"):
            if pull.head.sha == sha:
                return int(pull.number)
        return None
    except GithubException as exc:
        reason = _reason(exc.data)
        raise GitHubError(
            redact(f"cannot list the pull requests of {repository} ({exc.status}: {reason})", token)
        ) from None
    except (OSError, ValueError) as exc:
        raise GitHubError(
            redact(f"cannot reach the GitHub API at {api_url} ({type(exc).__name__}: {exc})", token)
        ) from None
    finally:
        client.close()
