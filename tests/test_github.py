"""modelcheck.github: judging, the job summary, annotations, the commands' bad inputs, GitHub's size limits."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_report import ENV, check, gate

from modelcheck.cli import main
from modelcheck.gatefile import load_gate
from modelcheck.github.annotations import annotation_lines, escape_data, escape_property
from modelcheck.github.comment import COMMENT_LIMIT, Marker, comment_body, parse_marker
from modelcheck.github.context import pull_request
from modelcheck.github.judge import judge
from modelcheck.github.summary import SUMMARY_LIMIT, job_summary
from modelcheck.report.document import build_report, write_report

REPO = Path(__file__).resolve().parents[1]


def report(checks: list[Any], stages: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return build_report([gate(checks, stages, gate_sha256="e" * 64)], stage="merge", env=ENV)


def mixed() -> dict[str, Any]:
    checks = [
        check("accuracy", stages=["merge"], line=17),
        check("f1", "failed", value=0.5, threshold={"min": 0.88}, stages=["merge"], line=20, message="f1 0.5 < 0.88"),
        check("slices", "failed", value=0.6, stages=["deploy"], blocking=False, line=25, message="de 0.6, en 0.7"),
        check("regress", "inconclusive", value=None, stages=["merge"], line=30, message="no baseline yet"),
        check("recall", "error", value=None, stages=["merge"], line=33, message="no positive labels"),
    ]
    return report(checks, {"merge": ["accuracy", "f1", "regress", "recall"], "deploy": ["slices"]})


def test_judge_orders_the_checks_and_matches_modelcheck_gate(tmp_path: Path) -> None:
    result = judge(mixed(), "merge")
    assert result.status == "failed"
    assert [c.check["name"] for c in result.checks] == ["f1", "recall", "regress", "slices", "accuracy"]
    assert [c.word for c in result.checks] == ["failed", "error", "inconclusive", "warned", "passed"]
    path = tmp_path / "r.json"
    write_report(path, mixed())
    assert main(["gate", "--stage", "merge", str(path)]) == 1
    passing = report([check("accuracy", stages=["merge"]), check("x", "inconclusive", stages=["merge"])])
    assert judge(passing, "merge").status == "inconclusive"
    write_report(path, passing)
    assert main(["gate", "--stage", "merge", str(path)]) == 3


def test_the_report_records_each_checks_line_and_the_gate_files_sha256(
    sentiment_model: Path, tmp_path: Path, one_torch_thread: None
) -> None:
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    text = (REPO / "gates" / "sentiment.yaml").read_text(encoding="utf-8")
    path = tmp_path / "gates" / "sentiment.yaml"
    path.parent.mkdir()
    path.write_text(text.replace("${MODELCHECK_SENTIMENT_MODEL:-../examples/sentiment/model}", str(sentiment_model))
                    .replace("../examples", str(REPO / "examples")))  # fmt: skip
    spec = load_gate(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    for check_spec in spec.checks:
        assert check_spec.line is not None
        assert lines[check_spec.line - 1].strip() == f"- name: {check_spec.name}"
    fast = dataclasses.replace(spec, checks=tuple(c for c in spec.checks if c.kind == "metric"))
    models = ModelCache()
    try:
        result = run_gate(fast, file="gates/sentiment.yaml", models=models, stage="merge")
    finally:
        models.close()
    assert result.gate_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [c.line for c in result.checks] == [c.line for c in fast.checks]
    doc = build_report([result], stage="merge", env=ENV)
    write_report(tmp_path / "r.json", doc)  # the schema takes both
    assert doc["gates"][0]["gate_sha256"] == result.gate_sha256


# -- summary --------------------------------------------------------------------------------------


def test_summary_has_status_rows_chart_details_and_environment() -> None:
    text = job_summary(mixed(), "merge")
    assert text.startswith("## ❌ modelcheck: failed — stage `merge`")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "::" in line]
    assert [r.split("|")[2].strip() for r in rows] == [
        f"gates/sentiment.yaml::{n}" for n in ("f1", "recall", "regress", "slices", "accuracy")
    ]
    assert "| ❌ failed | gates/sentiment.yaml::f1 | 0.5 | >= 0.88 | merge | 20 |" in rows
    assert "```mermaid\nxychart-beta" in text and 'x-axis ["f1", "slices", "accuracy"]' in text
    assert "bar [0.5, 0.6, 0.9125]" in text and "line [0.88, 0.9, 0.9]" in text
    assert "<details><summary>❌ gates/sentiment.yaml::f1 — failed</summary>" in text
    assert "`" + "a" * 40 + "` on `main`" in text and "gate sha256 `eeeeeeeeeeee`" in text
    assert "left out" not in text


def test_latency_percentiles_chart_against_the_bound() -> None:
    latency = {"percentiles_ms": {"p50": 1.0, "p90": 2.0, "p95": 3.0, "p99": 9.5}}
    doc = report([check("p95", kind="latency", value=3.0, threshold={"max_ms": 40}, details={"latency": latency})])
    text = job_summary(doc, "merge")
    assert 'x-axis ["p50", "p90", "p95", "p99"]' in text
    assert "bar [1, 2, 3, 9.5]" in text and "line [40, 40, 40, 40]" in text and 'y-axis "ms" 0 --> 44' in text


def test_summary_degrades_details_first_then_rows_and_says_so() -> None:
    doc = mixed()
    full = job_summary(doc, "merge")
    assert "left out" not in full
    fewer_details = job_summary(doc, "merge", limit=len(full.encode()) + 2048 - 300)  # 2 KiB are kept for notes
    assert "✂️ Details of" in fewer_details and fewer_details.count("<details><summary>") < full.count(
        "<details><summary>"
    )
    tiny = job_summary(doc, "merge", limit=3000)
    assert len(tiny.encode()) <= 3000
    assert re.search(r"✂️ \d of 5 table rows left out \(", tiny)
    assert "gates/sentiment.yaml::f1" in tiny  # the failure is the last row to go


# -- annotations ----------------------------------------------------------------------------------


def test_escaping_follows_githubs_toolkit() -> None:
    assert escape_data("50% a\r\nb: c, d") == "50%25 a%0D%0Ab: c, d"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_annotations_point_at_the_gate_files_lines() -> None:
    lines = annotation_lines(judge(mixed(), "merge"))
    assert lines == [
        "::error file=gates/sentiment.yaml,line=20,title=gates/sentiment.yaml%3A%3Af1::f1 0.5 < 0.88",
        "::error file=gates/sentiment.yaml,line=33,title=gates/sentiment.yaml%3A%3Arecall::no positive labels",
        "::warning file=gates/sentiment.yaml,line=25,title=gates/sentiment.yaml%3A%3Aslices::de 0.6, en 0.7 "
        "(not in stage merge: a warning)",
        "::notice file=gates/sentiment.yaml,line=30,title=gates/sentiment.yaml%3A%3Aregress::no baseline yet "
        "(inconclusive in stage merge)",
    ]


# -- limits with 5,000 checks ---------------------------------------------------------------------


def test_five_thousand_checks_fit_githubs_limits() -> None:
    checks = [
        check(
            f"check_{i:04d}",
            "failed" if i % 3 == 0 else "passed",
            line=10 + i,
            message=f"check {i}: value 0.5 < min 0.9 " + "x" * 120,
            details={"slices": [{"slice": f"s{j}", "n": 10, "value": 0.5, "status": "failed"} for j in range(5)]},
        )
        for i in range(5000)
    ]
    doc = report(checks)
    text = job_summary(doc, "merge")
    assert len(text.encode("utf-8")) < SUMMARY_LIMIT
    assert "✂️" in text and "left out" in text
    result = judge(doc, "merge")
    body = comment_body(result, Marker("ci/merge", "b" * 40, 5, 1), run_url="https://github.test/run/5")
    assert len(body) <= COMMENT_LIMIT
    assert re.search(r"✂️ \d+ more rows left out", body) and body.startswith("<!-- modelcheck-gate")
    errors = [line for line in annotation_lines(result) if line.startswith("::error")]
    assert len(errors) == 10
    assert errors[-1].endswith(
        "::1658 more errors not annotated (GitHub shows 10 per step); the job summary lists all 1667"
    )
    assert "line=10," in errors[0]  # the first failure in the file comes first


# -- the comment's marker and the event -----------------------------------------------------------


def test_marker_round_trips_and_event_names_the_pull_request() -> None:
    marker = Marker("ci/merge/py3.11", "c" * 40, 123, 2)
    assert parse_marker("text\n" + marker.render() + "\nmore") == marker
    assert parse_marker("no marker") is None
    event = {"pull_request": {"number": 7, "head": {"sha": "d" * 40, "ref": "fix", "repo": {"owner": {"login": "u"}}}}}
    ref = pull_request(event, "merge-sha")
    assert (ref.number, ref.head_sha, ref.head_owner, ref.head_branch) == (7, "d" * 40, "u", "fix")
    fork = {"workflow_run": {"pull_requests": [], "head_sha": "e" * 40, "head_branch": "b", "head_repository": {
        "owner": {"login": "forker"}}}}  # fmt: skip
    ref = pull_request(fork)
    assert (ref.number, ref.head_sha, ref.head_owner) == (None, "e" * 40, "forker")
    assert pull_request({"ref": "refs/heads/main"}, "f" * 40).number is None


# -- the commands' bad inputs ---------------------------------------------------------------------


@pytest.fixture
def outside_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT", "GITHUB_REPOSITORY", "GITHUB_TOKEN",
                 "GITHUB_EVENT_PATH", "GITHUB_RUN_ID", "GITHUB_WORKFLOW"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def test_commands_outside_actions_print_to_stdout_and_say_so(
    tmp_path: Path, outside_actions: None, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.json"
    write_report(path, mixed())
    for action, said, printed in (
        ("summary", "GITHUB_STEP_SUMMARY is not set", "## ❌ modelcheck: failed"),
        ("annotate", "GITHUB_ACTIONS is not set", "::error file=gates/sentiment.yaml,line=20"),
        ("comment", "GITHUB_REPOSITORY is not set", "<!-- modelcheck-gate"),
        ("outputs", "GITHUB_OUTPUT is not set", "status=failed\nreport="),
    ):
        assert main(["github", action, str(path), "--stage", "merge"]) == 0
        out, err = capsys.readouterr()
        assert said in err and printed in out, action


def test_commands_write_the_actions_files(
    tmp_path: Path, outside_actions: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, doc = tmp_path / "r.json", mixed()
    write_report(path, doc)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "output"))
    assert main(["github", "summary", str(path), "--stage", "merge", "--save", str(tmp_path / "copy.md")]) == 0
    assert (tmp_path / "summary.md").read_text() == (tmp_path / "copy.md").read_text() == job_summary(doc, "merge")
    assert main(["github", "outputs", str(path), "--stage", "merge", "--summary-file", "copy.md"]) == 0
    assert (tmp_path / "output").read_text() == f"status=failed\nreport={path}\nfailed=1\nsummary=copy.md\n"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["summary", "{missing}"], {}, "not found; write one with pytest --modelcheck --modelcheck-report"),
        (["annotate", "{report}", "--stage", "nope"], {}, "no gate in report"),
        (["comment", "{report}", "--pr", "7"], {"GITHUB_REPOSITORY": "acme/app"}, "a comment needs a token: set"),
        (["comment", "{report}", "--event", "{missing}"], {}, "cannot read the event payload"),
    ],
)
def test_bad_inputs_exit_2_with_one_clear_message(
    argv: list[str], env: dict[str, str], message: str, tmp_path: Path, outside_actions: None,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    path = tmp_path / "r.json"
    write_report(path, mixed())
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = [a.format(report=path, missing=tmp_path / "missing.json") for a in argv]
    if "--stage" not in args:
        args += ["--stage", "merge"]
    assert main(["github", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.count("modelcheck: error:") == 1


def test_outputs_says_error_when_the_report_is_missing(tmp_path: Path, outside_actions: None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "output"))
    assert main(["github", "outputs", str(tmp_path / "none.json"), "--stage", "merge"]) == 2
    assert (tmp_path / "output").read_text().startswith("status=error\n")


def test_report_json_is_plain(tmp_path: Path) -> None:
    doc = mixed()
    assert json.loads(json.dumps(doc))["gates"][0]["checks"][1]["line"] == 20


def test_an_invalid_gate_file_is_annotated_at_the_line_its_error_names() -> None:
    broken = gate([], file="gates/broken.yaml", model={}, data={},
                  error="gates/broken.yaml:12 at $.checks[0].min: min must be a number")  # fmt: skip
    doc = build_report([broken], stage="merge", env=ENV)
    result = judge(doc, "merge")
    assert result.status == "inconclusive"
    assert annotation_lines(result) == [
        "::error file=gates/broken.yaml,line=12,title=gates/broken.yaml::the gate could not run: "
        "gates/broken.yaml:12 at $.checks[0].min: min must be a number"
    ]
