"""``modelcheck github issue``: one monitoring issue per key, through PyGithub against a GitHub-REST-compatible
endpoint on 127.0.0.1 (tests/github_server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from github_server import LocalGitHub
from test_github import mixed, report
from test_report import check

from modelcheck.cli import main
from modelcheck.github.issue import parse_issue_marker
from modelcheck.report.document import write_report

REPO_NAME = "acme/app"
TOKEN = "issue-token-5e1d"


@pytest.fixture
def gh() -> Iterator[LocalGitHub]:
    with LocalGitHub(token=TOKEN) as server:
        server.add_pull(REPO_NAME, 1, head_sha="1" * 40)  # listed with the issues, as GitHub does: never taken
        yield server


def passing() -> dict[str, Any]:
    return report([check("accuracy", stages=["merge"], line=17)], {"merge": ["accuracy"]})


@pytest.fixture
def run(gh: LocalGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``run(run_id, report)``: ``modelcheck github issue`` as a scheduled workflow's step calls it."""
    monkeypatch.setenv("GITHUB_API_URL", gh.api_url)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO_NAME)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN + "\n")  # a pasted secret's newline is stripped
    monkeypatch.setenv("GITHUB_WORKFLOW", "monitor")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.test")
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)

    def call(run_id: int, doc: dict[str, Any], *extra: str) -> int:
        path = tmp_path / f"report-{run_id}.json"
        write_report(path, doc)
        monkeypatch.setenv("GITHUB_RUN_ID", str(run_id))
        monkeypatch.setenv("GITHUB_RUN_ATTEMPT", "1")
        return main(["github", "issue", str(path), "--stage", "merge", *extra])

    return call


def test_created_once_updated_then_closed_on_recovery(
    gh: LocalGitHub, run: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(10, passing()) == 0  # healthy and no issue: nothing is written
    assert gh.issues(REPO_NAME) == []
    assert "no monitoring issue is open" in capsys.readouterr().out

    assert run(11, mixed()) == 0
    [issue] = gh.issues(REPO_NAME)
    assert issue.state == "open" and issue.title == "modelcheck monitoring: stage merge of monitor/merge is not passing"
    assert parse_issue_marker(issue.body) is not None and parse_issue_marker(issue.body).run == 11  # type: ignore[union-attr]
    assert (
        "❌ modelcheck: failed — stage `merge`" in issue.body
        and "| ❌ failed | gates/sentiment.yaml::f1 | 0.5 | >= 0.88 |" in issue.body
    )
    assert "https://github.test/acme/app/actions/runs/11" in issue.body
    assert f"issue created: https://github.test/{REPO_NAME}/issues/{issue.number}" in capsys.readouterr().out

    assert run(12, mixed()) == 0  # still failing: the same issue, updated and commented
    assert [i.number for i in gh.issues(REPO_NAME)] == [issue.number]
    assert parse_issue_marker(gh.issues(REPO_NAME)[0].body).run == 12  # type: ignore[union-attr]
    [comment] = gh.comments(REPO_NAME, issue.number)
    assert comment.body.startswith("❌ Still not passing: stage `merge` is failed")

    assert run(13, passing()) == 0  # recovered: said and closed
    [closed] = gh.issues(REPO_NAME)
    assert closed.state == "closed" and closed.state_reason == "completed"
    assert gh.comments(REPO_NAME, issue.number)[-1].body.startswith("✅ Recovered: stage `merge` passed")
    assert "✅ modelcheck: passed" in closed.body

    assert run(14, mixed()) == 0  # a new incident: a new issue (the closed one keeps the old one's history)
    assert [(i.number, i.state) for i in gh.issues(REPO_NAME)] == [(issue.number, "closed"), (issue.number + 1, "open")]
    assert TOKEN not in capsys.readouterr().out


def test_others_issues_other_keys_and_older_runs_are_left_alone(gh: LocalGitHub, run: Any) -> None:
    assert run(20, mixed()) == 0
    [ours] = gh.issues(REPO_NAME)
    # someone copies the marker into an issue of their own: not ours
    gh.add_issue(REPO_NAME, "copy", ours.body, user="mallory")
    assert run(21, mixed(), "--key", "other/merge") == 0  # another key: an issue of its own
    assert len(gh.issues(REPO_NAME)) == 3
    assert run(19, passing()) == 0  # an older run (a late re-run) does not close what run 20 wrote
    assert all(i.state == "open" for i in gh.issues(REPO_NAME))
    assert run(22, passing()) == 0
    states = {i.number: i.state for i in gh.issues(REPO_NAME)}
    assert states[ours.number] == "closed" and sorted(states.values()) == ["closed", "open", "open"]


def test_duplicates_from_a_race_are_closed_for_the_oldest(gh: LocalGitHub, run: Any) -> None:
    assert run(30, mixed()) == 0
    [first] = gh.issues(REPO_NAME)
    twin = gh.add_issue(REPO_NAME, first.title, first.body, user="github-actions[bot]")
    assert run(31, mixed()) == 0
    assert gh.issues(REPO_NAME)[1].number == twin.number and gh.issues(REPO_NAME)[1].state == "closed"
    assert gh.comments(REPO_NAME, twin.number)[0].body.startswith(f"Duplicate of #{first.number}")
    assert gh.issues(REPO_NAME)[0].state == "open"


def test_a_read_only_token_is_an_error_without_the_token(
    gh: LocalGitHub, run: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    gh.read_only = True
    assert run(40, mixed()) == 4
    err = capsys.readouterr().err
    assert "cannot write issues of acme/app (403" in err and "issues: write" in err and TOKEN not in err


def test_outside_actions_it_prints_the_issue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    for name in ("GITHUB_REPOSITORY", "GITHUB_TOKEN", "GITHUB_RUN_ID", "GITHUB_ACTIONS", "GITHUB_OUTPUT"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "r.json"
    write_report(path, mixed())
    assert main(["github", "issue", str(path), "--stage", "merge"]) == 0
    captured = capsys.readouterr()
    assert "not in GitHub Actions" in captured.err and "modelcheck-monitor" in captured.out


def test_the_step_summary_and_outputs_name_the_issue(
    gh: LocalGitHub, run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    assert run(50, mixed()) == 0
    [issue] = gh.issues(REPO_NAME)
    assert f"🔔 Monitoring issue created: https://github.test/acme/app/issues/{issue.number}" in summary.read_text()
    assert outputs.read_text() == f"issue={issue.number}\nissue-action=created\n"
    assert run(51, passing()) == 0
    assert "🔔 Monitoring issue closed (recovered)" in summary.read_text()
    assert outputs.read_text().endswith(f"issue={issue.number}\nissue-action=closed\n")


def test_five_thousand_failures_and_hostile_names_fit_one_issue() -> None:
    from modelcheck.github.issue import COMMENT_LIMIT, IssueMarker, issue_body
    from modelcheck.github.judge import judge

    checks = [
        check(
            f"check_{i:04d} <b>@team</b> -->", "failed", line=10 + i, message=f"check {i}: {i} < min 0.9 " + "x" * 120
        )
        for i in range(5000)
    ]
    doc = report(checks)
    body = issue_body(judge(doc, "merge"), doc, IssueMarker('k" -->', 5, 1), run_url="https://github.test/run/5")
    assert len(body) <= COMMENT_LIMIT and body.startswith('<!-- modelcheck-monitor key="k\' ->" run=5 attempt=1 -->')
    assert parse_issue_marker(body) is not None and body.count("<!--") == 1  # no name can open a comment
    assert "<b>" not in body and "@team" not in body  # no live HTML, no mention
    assert "more rows left out" in body and "… and 4990 more (the job summary has every message)" in body
