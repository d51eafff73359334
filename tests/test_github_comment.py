"""The sticky PR comment through PyGithub against a GitHub-REST-compatible endpoint on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from github_server import LocalGitHub
from test_github import mixed, report
from test_report import check

from modelcheck.cli import main
from modelcheck.github.comment import FORBIDDEN, parse_marker
from modelcheck.report.document import write_report

REPO_NAME = "acme/app"
OLD, NEW = "1" * 40, "2" * 40


@pytest.fixture
def gh() -> Iterator[LocalGitHub]:
    with LocalGitHub(token="secret-token") as server:
        server.add_pull(REPO_NAME, 7, head_sha=NEW, branch="fix")
        yield server


@pytest.fixture
def run(gh: LocalGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``run(sha, run_id, report=..., mode=...)``: ``modelcheck github comment`` as a workflow step would call it."""
    monkeypatch.setenv("GITHUB_API_URL", gh.api_url)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO_NAME)
    monkeypatch.setenv("GITHUB_TOKEN", "secret-token")
    monkeypatch.setenv("GITHUB_WORKFLOW", "model-gate")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.test")
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)

    def call(sha: str, run_id: int, doc: dict[str, Any] | None = None, *extra: str) -> int:
        event = tmp_path / f"event-{run_id}.json"
        event.write_text(json.dumps({"pull_request": {"number": 7, "head": {"sha": sha, "ref": "fix"}}}))
        path = tmp_path / f"report-{run_id}.json"
        write_report(path, doc or mixed())
        monkeypatch.setenv("GITHUB_RUN_ID", str(run_id))
        monkeypatch.setenv("GITHUB_RUN_ATTEMPT", "1")
        return main(["github", "comment", str(path), "--stage", "merge", "--event", str(event), *extra])

    return call


def bodies(gh: LocalGitHub) -> list[str]:
    return [c.body for c in gh.comments(REPO_NAME, 7)]


def passing() -> dict[str, Any]:
    return report([check("accuracy", stages=["merge"], line=17)], {"merge": ["accuracy"]})


def test_first_run_creates_the_second_updates(gh: LocalGitHub, run: Any, capsys: pytest.CaptureFixture[str]) -> None:
    gh.add_comment(REPO_NAME, 7, "LGTM")
    assert run(NEW, 100) == 0
    assert "comment created: https://github.test/acme/app/pull/7#issuecomment-" in capsys.readouterr().out
    assert len(bodies(gh)) == 2
    marker = parse_marker(bodies(gh)[1])
    assert marker is not None and (marker.key, marker.sha, marker.run) == ("model-gate/merge", NEW, 100)
    assert (
        "❌ modelcheck: failed" in bodies(gh)[1] and "(https://github.test/acme/app/actions/runs/100)" in bodies(gh)[1]
    )

    assert run(NEW, 101, passing()) == 0
    assert "comment updated" in capsys.readouterr().out
    assert bodies(gh)[0] == "LGTM" and len(bodies(gh)) == 2
    assert "✅ modelcheck: passed" in bodies(gh)[1] and parse_marker(bodies(gh)[1]).run == 101  # type: ignore[union-attr]
    assert ("PATCH", f"/repos/{REPO_NAME}/issues/comments/{gh.comments(REPO_NAME, 7)[1].id}") in gh.requests


def test_an_older_run_never_overwrites_a_newer_one(
    gh: LocalGitHub, run: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(NEW, 200, passing()) == 0
    assert run(OLD, 150) == 0  # a run on the previous head finishing late
    out = capsys.readouterr().out
    assert f"this run tested {OLD[:12]} but the pull request's head is {NEW[:12]}" in out
    assert run(NEW, 199) == 0  # an earlier run of the same head finishing late
    assert "a newer run (200 attempt 1) already posted results" in capsys.readouterr().out
    assert len(bodies(gh)) == 1 and "✅ modelcheck: passed" in bodies(gh)[0]


def test_more_than_100_comments_are_paged_through(gh: LocalGitHub, run: Any) -> None:
    assert run(NEW, 300) == 0
    for i in range(230):
        gh.add_comment(REPO_NAME, 7, f"comment {i}")
    assert run(NEW, 301, passing()) == 0
    assert len(bodies(gh)) == 231
    assert "✅ modelcheck: passed" in bodies(gh)[0]
    pages = [p for m, p in gh.requests if m == "GET" and p.endswith("/issues/7/comments")]
    assert len(pages) >= 1 + 3  # the first run's look, then three pages of 100


def test_duplicates_from_a_race_are_folded_into_the_oldest(gh: LocalGitHub, run: Any) -> None:
    assert run(NEW, 400) == 0
    gh.add_comment(REPO_NAME, 7, bodies(gh)[0], user="github-actions[bot]")  # a racing run created a second one
    assert run(NEW, 401, passing()) == 0
    assert len(bodies(gh)) == 1 and "✅ modelcheck: passed" in bodies(gh)[0]


def test_modes(gh: LocalGitHub, run: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(NEW, 500, passing(), "--mode", "on-failure") == 0
    assert bodies(gh) == [] and "the stage passed and there is no comment" in capsys.readouterr().out
    assert run(NEW, 501, None, "--mode", "on-failure") == 0
    assert len(bodies(gh)) == 1
    assert run(NEW, 502, None, "--mode", "on-change") == 0
    assert "comment unchanged" in capsys.readouterr().out
    assert run(NEW, 503, passing(), "--mode", "on-failure") == 0  # updates the failure it posted before
    assert "✅ modelcheck: passed" in bodies(gh)[0]
    requests = len(gh.requests)
    assert run(NEW, 504, None, "--mode", "off") == 0
    assert len(gh.requests) == requests and "comment: off" in capsys.readouterr().out


def test_a_read_only_token_skips_the_comment_without_failing(
    gh: LocalGitHub, run: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    gh.read_only = True
    assert run(NEW, 600) == 0
    assert FORBIDDEN in capsys.readouterr().out
    assert bodies(gh) == []


def test_api_failures_exit_4(gh: LocalGitHub, run: Any, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    assert run(NEW, 700) == 4
    assert "the GitHub API at http://127.0.0.1" in capsys.readouterr().err
    monkeypatch.setenv("GITHUB_TOKEN", "secret-token")
    assert run(NEW, 701, None, "--pr", "8") == 4
    assert "answered 404 for pull request #8 of acme/app" in capsys.readouterr().err


def test_a_fork_pr_under_workflow_run_is_found_by_its_head(
    gh: LocalGitHub, run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gh.add_pull(REPO_NAME, 9, head_sha=OLD, owner="forker", branch="patch-1")
    event = tmp_path / "workflow_run.json"
    event.write_text(json.dumps({"workflow_run": {"pull_requests": [], "head_sha": OLD, "head_branch": "patch-1",
                                                  "head_repository": {"owner": {"login": "forker"}}}}))  # fmt: skip
    path = tmp_path / "r.json"
    write_report(path, mixed())
    monkeypatch.setenv("GITHUB_RUN_ID", "800")
    assert main(["github", "comment", str(path), "--stage", "merge", "--event", str(event)]) == 0
    assert len(gh.comments(REPO_NAME, 9)) == 1 and gh.comments(REPO_NAME, 7) == []
