"""What the ``GITHUB_*`` variables and the event payload say about the run (read once, no network)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelcheck.errors import ModelcheckError
from modelcheck.report.files import read_regular
from modelcheck.report.text import plain

#: The largest event payload read (GitHub's are well under this; a pull request body is at most 64 KiB).
MAX_EVENT_BYTES = 32 << 20
_HEX = re.compile(r"[0-9a-fA-F]{7,64}")


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
        """The event payload (``--event`` or ``GITHUB_EVENT_PATH``); {} when there is none.

        Read as untrusted: a regular file of at most :data:`MAX_EVENT_BYTES` (a FIFO is refused, never
        waited on), JSON nested at most a few hundred levels, an object at the top.
        """
        where = path or self.event_path
        if not where:
            return {}
        fix = "pass --event PATH (the event payload GitHub wrote) or --pr N"
        try:
            doc = json.loads(read_regular(where, limit=MAX_EVENT_BYTES).decode("utf-8"))
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UsageError(f"cannot read the event payload {where} ({plain(reason, 300)}); {fix}") from None
        except RecursionError:
            raise UsageError(f"the event payload {where} is nested too deeply to be a GitHub event; {fix}") from None
        if not isinstance(doc, dict):
            raise UsageError(f"the event payload {where} is a JSON {type(doc).__name__}, not an object; {fix}")
        return doc


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
    A field of the wrong type (``head`` a string, ``number`` a list, a SHA that is not hex) is a UsageError
    naming it.
    """
    if "pull_request" in event and event["pull_request"] is not None:
        pr = _object(event, "pull_request", "")
        head = _object(pr, "head", "pull_request.")
        return PullRequestRef(
            number=_number(pr, "pull_request."),
            head_sha=_sha(head, "sha", "pull_request.head.") or fallback_sha,
            head_owner=_text(_object(_object(head, "repo", "pull_request.head."), "owner", "pull_request.head.repo."),
                             "login", "pull_request.head.repo.owner."),
            head_branch=_text(head, "ref", "pull_request.head."),
        )  # fmt: skip
    if "workflow_run" in event and event["workflow_run"] is not None:
        run = _object(event, "workflow_run", "")
        prs = run.get("pull_requests")
        prs = [] if prs is None else prs
        if not isinstance(prs, list):
            raise _wrong("workflow_run.pull_requests", prs, "a list")
        first = _object({"0": prs[0]}, "0", "workflow_run.pull_requests.") if prs else {}
        return PullRequestRef(
            number=_number(first, "workflow_run.pull_requests[0].") if prs else None,
            head_sha=_sha(run, "head_sha", "workflow_run.") or fallback_sha,
            head_owner=_text(_object(_object(run, "head_repository", "workflow_run."), "owner",
                                     "workflow_run.head_repository."), "login", "workflow_run.head_repository.owner."),
            head_branch=_text(run, "head_branch", "workflow_run."),
        )  # fmt: skip
    issue = event.get("issue")
    number = _int(issue.get("number")) if isinstance(issue, Mapping) and issue.get("pull_request") else None
    return PullRequestRef(number=number, head_sha=fallback_sha, head_owner="", head_branch="")


def _wrong(field: str, value: Any, expected: str) -> UsageError:
    return UsageError(
        f"the event payload's {field} is {_kind(value)}, not {expected}: not an event GitHub wrote; "
        "pass --event PATH (the event payload GitHub wrote) or --pr N"
    )


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def _object(parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _wrong(where + key, value, "an object")
    return value


def _text(parent: Mapping[str, Any], key: str, where: str) -> str:
    value = parent.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 255 or plain(value) != value:
        raise _wrong(where + key, value, "a name (one line, at most 255 characters)")
    return value


def _sha(parent: Mapping[str, Any], key: str, where: str) -> str:
    value = parent.get(key)
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise _wrong(where + key, value, "a commit SHA (hex)")
    return value


def _number(parent: Mapping[str, Any], where: str) -> int | None:
    value = parent.get("number")
    if value is None:
        return None
    if _int(value) is None:
        raise _wrong(where + "number", value, "a pull request number")
    return int(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**53 else None
