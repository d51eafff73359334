"""One monitoring issue per key, kept up to date by scheduled runs (``modelcheck github issue``).

The issue's body starts with a hidden marker::

    <!-- modelcheck-monitor key="monitor/deploy" run=<run id> attempt=<run attempt> -->

Only open issues written by the token's own account (as for the sticky comment: GET /user's login, else
``author``, else ``github-actions[bot]``) that carry the same key are ours; pull requests are never taken. Then:

- the stage did not pass (failed, inconclusive, error) and no issue of ours is open: one is created;
- it did not pass and one is open: its body is replaced by this run's results and a short comment says the
  run still fails (so subscribers are told), unless a newer run already wrote it;
- it passed and one is open: a comment says it recovered and the issue is closed (``completed``);
- it passed and none is open: nothing is written.

Duplicates left by two runs racing are closed (``not_planned``) with a comment pointing at the oldest,
which is kept. A token that cannot write (403) is an error here: a monitoring run has no other place that
keeps the incident (use ``permissions: issues: write``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from modelcheck.errors import GitHubError
from modelcheck.github.comment import COMMENT_LIMIT, _identity, _reason, marker_key
from modelcheck.github.judge import StageResult
from modelcheck.github.summary import EMOJI, HEADLINE, cell, code, stage_counts, status_emoji, table_row, why_lines
from modelcheck.report.text import plain, redact

_MARKER = re.compile(
    r'<!-- modelcheck-monitor key="(?P<key>[^"\n]{0,500})" run=(?P<run>\d{0,19}) attempt=(?P<attempt>\d{0,9}) -->'
)


@dataclass(frozen=True)
class IssueMarker:
    key: str
    run: int
    attempt: int

    def render(self) -> str:
        return f'<!-- modelcheck-monitor key="{marker_key(self.key)}" run={self.run} attempt={self.attempt} -->'

    def newer_than(self, other: IssueMarker) -> bool:
        return (self.run, self.attempt) > (other.run, other.attempt)


def parse_issue_marker(body: str) -> IssueMarker | None:
    match = _MARKER.search(body or "")
    if match is None:
        return None
    return IssueMarker(match["key"], int(match["run"] or 0), int(match["attempt"] or 0))


def issue_title(key: str, stage: str) -> str:
    return plain(f"modelcheck monitoring: stage {stage} of {key} is not passing", 200)


def issue_body(
    result: StageResult,
    report: Any,
    marker: IssueMarker,
    *,
    run_url: str | None,
    limit: int = COMMENT_LIMIT,
) -> str:
    """The issue: marker, status line, what was judged (the models' sources: endpoints' URLs), what did not pass."""
    sources = []
    for gate in report.get("gates", []) if isinstance(report, dict) else []:
        model = gate.get("model") if isinstance(gate.get("model"), dict) else {}
        sources.append(f"- {code(gate.get('file'))}: {code(model.get('source'))} ({cell(model.get('backend'))})")
    when = report.get("created_at") if isinstance(report, dict) else None
    head = [
        marker.render(),
        f"### {status_emoji(result.status)} modelcheck: {HEADLINE[result.status]} — stage {code(result.stage)}",
        "",
        f"{stage_counts(result)}" + (f" · judged at {cell(when)}" if when else ""),
        "",
        *sources,
        "",
    ]
    head += [f"> {EMOJI['error']} {code(g['file'])} could not run: {cell(g.get('error'))}" for g in result.gate_errors]
    head += ([""] if result.gate_errors else []) + why_lines(result)
    shown = [r for r in result.checks if r.word not in ("passed", "skipped")]
    rows = [table_row(r) for r in shown]
    table = ["| | check | value | threshold | stages | line |", "|---|---|---|---|---|---|"] if rows else []
    tail = why_messages(shown)
    tail += ["", f"The run: {run_url}"] if run_url else []
    tail += ["", "This issue is updated by each monitoring run and closed by the first run that passes."]
    budget = limit - len("\n".join(head + table + tail)) - 300
    kept: list[str] = []
    for row in rows:
        budget -= len(row) + 1
        if budget < 0:
            break
        kept.append(row)
    note = (
        ["", f"✂️ {len(rows) - len(kept)} more rows left out; the job summary lists them."]
        if len(kept) < len(rows)
        else []
    )
    body = "\n".join(head + table + kept + note + tail).rstrip("\n") + "\n"
    return body if len(body) <= limit else body[: limit - 80] + "\n\n✂️ cut to GitHub's limit.\n"


def why_messages(rows: list[Any], most: int = 10) -> list[str]:
    """The checks' messages, each told once with the checks that gave it (an endpoint that is down errors them all
    with one message)."""
    by_message: dict[str, list[str]] = {}
    for row in rows:
        message = row.check.get("message")
        if message:
            by_message.setdefault(cell(message, 1000), []).append(cell(row.check.get("name"), 80))
    lines = [f"- {', '.join(names)}: {message}" for message, names in list(by_message.items())[:most]]
    if len(by_message) > most:
        lines.append(f"- … and {len(by_message) - most} more (the job summary has every message)")
    return ["", "**Why:**", "", *lines] if lines else []


@dataclass(frozen=True)
class IssueOutcome:
    """created | updated | closed | unchanged (passed, none open) | skipped (a newer run wrote it); the issue's URL."""

    action: str
    message: str
    url: str | None = None
    number: int | None = None


def upsert_issue(
    *,
    api_url: str,
    token: str,
    repository: str,
    key: str,
    stage: str,
    title: str,
    body: str,
    marker: IssueMarker,
    passed: bool,
    status: str,
    run_url: str | None,
    labels: tuple[str, ...] = (),
    author: str | None = None,
) -> IssueOutcome:
    """Create, update or close the monitoring issue of ``key`` in ``repository`` (see the module doc)."""
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
    run = f" ([run]({run_url}))" if run_url else ""
    try:
        repo = client.get_repo(repository)
        me = _identity(client, author).lower()
        listed = repo.get_issues(state="open", labels=list(labels)) if labels else repo.get_issues(state="open")
        ours = sorted(
            (
                i
                for i in listed
                if i.pull_request is None
                and i.user is not None
                and str(i.user.login).lower() == me
                and (m := parse_issue_marker(i.body or "")) is not None
                and m.key == marker.key
            ),
            key=lambda i: i.number,
        )
        if not ours:
            if passed:
                return IssueOutcome("unchanged", f"issue: stage {stage} passed and no monitoring issue is open")
            created = repo.create_issue(title=title, body=body, labels=list(labels))
            return IssueOutcome("created", f"issue created: {created.html_url}", created.html_url, created.number)
        keep, duplicates = ours[0], ours[1:]
        for duplicate in duplicates:
            duplicate.create_comment(f"Duplicate of #{keep.number} (two monitoring runs raced); closing this one.")
            duplicate.edit(state="closed", state_reason="not_planned")
        current = repo.get_issue(keep.number)  # re-read just before deciding: another run may have written
        theirs = parse_issue_marker(current.body or "")
        if theirs is not None and theirs.newer_than(marker):
            return IssueOutcome(
                "skipped",
                f"issue not updated: a newer run ({theirs.run} attempt {theirs.attempt}) already wrote it: "
                f"{current.html_url}",
                current.html_url,
                current.number,
            )
        if passed:
            current.create_comment(f"{EMOJI['passed']} Recovered: stage {code(stage)} passed{run}. Closing.")
            current.edit(body=body, state="closed", state_reason="completed")
            return IssueOutcome(
                "closed", f"issue closed (recovered): {current.html_url}", current.html_url, current.number
            )
        current.edit(body=body)
        current.create_comment(
            f"{status_emoji(status)} Still not passing: stage {code(stage)} is {HEADLINE[status]}{run}."
        )
        return IssueOutcome("updated", f"issue updated: {current.html_url}", current.html_url, current.number)
    except GithubException as exc:
        if exc.status == 403:
            raise GitHubError(
                f"the token cannot write issues of {repository} (403: {_reason(exc.data)}); give the job "
                "permissions: issues: write"
            ) from None
        if exc.status == 404:
            raise GitHubError(
                f"{api_url} answered 404 for the issues of {repository}: check the repository and that the token "
                "can read it"
            ) from None
        raise GitHubError(
            redact(f"the GitHub API at {api_url} answered {exc.status}: {_reason(exc.data)}", token)
        ) from None
    except (OSError, ValueError) as exc:
        raise GitHubError(
            redact(f"cannot reach the GitHub API at {api_url} ({type(exc).__name__}: {exc})", token)
        ) from None
    finally:
        client.close()
