"""What the ``GITHUB_*`` variables and the event payload say about the run (read once, no network)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelcheck.errors import ModelcheckError


class UsageError(ModelcheckError, ValueError):
    """A ``modelcheck github`` command was given what it cannot work with (exit 2)."""


@dataclass(frozen=True)
class Context:
    """The parts of the Actions environment the commands use; empty strings where a variable is unset."""

    actions: bool
    api_url: str
    server_url: str
    repository: str
    workflow: str
    job: str
    run_id: str
    run_attempt: str
    sha: str
    event_name: str
    event_path: str
    step_summary: str
    output: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Context:
        env = os.environ if environ is None else environ
        return cls(
            actions=env.get("GITHUB_ACTIONS") == "true",
            api_url=env.get("GITHUB_API_URL") or "https://api.github.com",
            server_url=env.get("GITHUB_SERVER_URL") or "https://github.com",
            repository=env.get("GITHUB_REPOSITORY", ""),
            workflow=env.get("GITHUB_WORKFLOW", ""),
            job=env.get("GITHUB_JOB", ""),
            run_id=env.get("GITHUB_RUN_ID", ""),
            run_attempt=env.get("GITHUB_RUN_ATTEMPT", ""),
            sha=env.get("GITHUB_SHA", ""),
            event_name=env.get("GITHUB_EVENT_NAME", ""),
            event_path=env.get("GITHUB_EVENT_PATH", ""),
            step_summary=env.get("GITHUB_STEP_SUMMARY", ""),
            output=env.get("GITHUB_OUTPUT", ""),
        )

    @property
    def run_url(self) -> str | None:
        if not (self.repository and self.run_id):
            return None
        return f"{self.server_url.rstrip('/')}/{self.repository}/actions/runs/{self.run_id}"

    def event(self, path: str | None = None) -> dict[str, Any]:
        """The event payload (``--event`` or ``GITHUB_EVENT_PATH``); {} when there is none."""
        where = path or self.event_path
        if not where:
            return {}
        try:
            doc = json.loads(Path(where).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(f"cannot read the event payload {where} ({exc}); pass --event PATH or --pr N") from None
        return doc if isinstance(doc, dict) else {}


@dataclass(frozen=True)
class PullRequestRef:
    """A pull request named by the event: its number (None if the event does not say) and head."""

    number: int | None
    head_sha: str
    head_owner: str
    head_branch: str


def pull_request(event: Mapping[str, Any], fallback_sha: str = "") -> PullRequestRef:
    """The pull request of a ``pull_request``/``pull_request_target``/``workflow_run`` event.

    ``workflow_run``: the first of ``workflow_run.pull_requests`` (empty for fork PRs: then only the head
    owner/branch/SHA are known and the PR is looked up by them). Never read from an uploaded artifact.
    """
    pr = event.get("pull_request")
    if isinstance(pr, Mapping):
        head = pr.get("head") or {}
        return PullRequestRef(
            number=_int(pr.get("number")),
            head_sha=str(head.get("sha") or fallback_sha),
            head_owner=str(((head.get("repo") or {}).get("owner") or {}).get("login") or ""),
            head_branch=str(head.get("ref") or ""),
        )
    run = event.get("workflow_run")
    if isinstance(run, Mapping):
        prs = [p for p in run.get("pull_requests") or [] if isinstance(p, Mapping)]
        return PullRequestRef(
            number=_int(prs[0].get("number")) if prs else None,
            head_sha=str(run.get("head_sha") or fallback_sha),
            head_owner=str(((run.get("head_repository") or {}).get("owner") or {}).get("login") or ""),
            head_branch=str(run.get("head_branch") or ""),
        )
    issue = event.get("issue")
    number = _int(issue.get("number")) if isinstance(issue, Mapping) and issue.get("pull_request") else None
    return PullRequestRef(number=number, head_sha=fallback_sha, head_owner="", head_branch="")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
