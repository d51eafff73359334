"""The ``modelcheck`` command line: validate, gate, summary, and its exit statuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelcheck.cli import main
from modelcheck.report.document import build_report, write_report
from modelcheck.report.results import CheckResult, GateResult, Status

REPO = Path(__file__).resolve().parents[1]

ENV: dict[str, Any] = {
    "python": "3.11.7",
    "implementation": "CPython",
    "platform": "Linux",
    "machine": "x86_64",
    "cpu": None,
    "cpu_count": 1,
    "packages": {"modelcheck": "0.1.0", "pytest": "9.0.0"},
    "git": {"commit": None, "branch": None, "dirty": None},
}

MODEL = {
    "id": "m",
    "source": "/models/m",
    "backend": "transformers",
    "task": "text-classification",
    "device_requested": "cpu",
    "device": "cpu",
    "files": [],
}
DATA = {
    "source": "/d.csv",
    "split": "test",
    "input": "text",
    "label": "label",
    "limit": None,
    "rows": 10,
    "sha256": None,
}


def result(name: str, status: Status = "passed", **kw: Any) -> CheckResult:
    kw.setdefault("message", f"{name} is {status}")
    return CheckResult(
        name=name,
        kind="metric",
        status=status,
        metric="accuracy",
        value=kw.pop("value", 0.95),
        threshold={"min": 0.9},
        **kw,
    )


def gate(
    file: str, checks: list[CheckResult], stages: dict[str, list[str]] | None = None, error: str | None = None
) -> GateResult:
    return GateResult(file=file, model=dict(MODEL), data=dict(DATA), stages=stages or {}, checks=checks, error=error)


def write(tmp_path: Path, gates: list[GateResult], stage: str | None = None) -> str:
    path = tmp_path / "report.json"
    write_report(path, build_report(gates, stage=stage, env=ENV))
    return str(path)


STAGES = {"merge": ["accuracy"], "deploy": ["accuracy", "f1"]}


# -- gate -----------------------------------------------------------------------------------------


def test_gate_passes_when_the_stage_checks_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = write(tmp_path, [gate("gates/a.yaml", [result("accuracy"), result("f1", "failed")], STAGES)])
    assert main(["gate", "--stage", "merge", report]) == 0
    out = capsys.readouterr().out
    assert "PASSED   gates/a.yaml::accuracy" in out
    assert "gates/a.yaml::f1" not in out  # outside the stage: not judged, not listed
    assert (
        "stage merge: PASSED — 1 passed, 0 failed, 0 error, 0 inconclusive, 0 skipped; "
        "1 check outside the stage not judged" in out
    )


def test_gate_fails_when_a_stage_check_failed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checks = [result("accuracy"), result("f1", "failed", value=0.7, message="f1 0.700 < min 0.9 (n=10)")]
    report = write(tmp_path, [gate("gates/a.yaml", checks, STAGES)], stage="merge")
    # the run's own stage does not matter: the report is judged for the stage asked
    assert main(["gate", "--stage", "deploy", report]) == 1
    out = capsys.readouterr().out
    assert "FAILED   gates/a.yaml::f1" in out
    assert "  gates/a.yaml::f1: f1 0.700 < min 0.9 (n=10)" in out
    assert "stage deploy: FAILED — 1 passed, 1 failed, 0 error, 0 inconclusive, 0 skipped\n" in out


def test_gate_inconclusive_when_a_stage_check_errored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checks = [result("accuracy"), result("f1", "error", value=None, message="baseline missing")]
    report = write(tmp_path, [gate("gates/a.yaml", checks, STAGES)])
    assert main(["gate", "--stage", "deploy", report]) == 3
    out = capsys.readouterr().out
    assert "gates/a.yaml::f1: baseline missing" in out
    assert "stage deploy: INCONCLUSIVE" in out
    assert main(["gate", "--stage", "merge", report]) == 0


def test_gate_failure_wins_over_error(tmp_path: Path) -> None:
    checks = [result("accuracy", "failed"), result("f1", "error", value=None)]
    report = write(tmp_path, [gate("gates/a.yaml", checks, STAGES)])
    assert main(["gate", "--stage", "deploy", report]) == 1


def test_gate_with_a_skipped_stage_check_is_never_a_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    skipped = result("accuracy", "skipped", value=None, message="device 'cuda' is not available on this machine")
    report = write(tmp_path, [gate("gates/a.yaml", [skipped, result("f1")], STAGES)])
    assert main(["gate", "--stage", "merge", report]) == 3
    out = capsys.readouterr().out
    assert "SKIPPED  gates/a.yaml::accuracy" in out
    assert "  gates/a.yaml::accuracy: device 'cuda' is not available on this machine" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("stage merge: INCONCLUSIVE — 0 passed, 0 failed, 0 error, 0 inconclusive, 1 skipped")
    assert "1 check of the stage skipped, so not measured" in last and "gates/a.yaml::accuracy" in last
    assert main(["gate", "--stage", "merge", "--skipped", "fail", report]) == 1
    assert "stage merge: FAILED — 0 passed" in capsys.readouterr().out
    # deploy judges f1 too: one passed, one skipped is still not a pass
    assert main(["gate", "--stage", "deploy", report]) == 3
    assert main(["gate", "--stage", "merge", "--skipped", "pass", report]) == 2  # no such choice


def test_gate_skipped_outside_the_stage_does_not_matter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checks = [result("accuracy"), result("f1", "skipped", value=None)]
    report = write(tmp_path, [gate("gates/a.yaml", checks, STAGES)])
    assert main(["gate", "--stage", "merge", report]) == 0
    assert "stage merge: PASSED — 1 passed, 0 failed, 0 error, 0 inconclusive, 0 skipped; 1 check outside" in (
        capsys.readouterr().out
    )


def test_summary_and_comment_count_only_the_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deploy-only check that passed is not counted as a passed check of stage merge."""
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_REPOSITORY", "GITHUB_OUTPUT"):
        monkeypatch.delenv(name, raising=False)
    report = write(tmp_path, [gate("gates/a.yaml", [result("accuracy"), result("f1")], STAGES)])
    assert main(["github", "summary", report, "--stage", "merge"]) == 0
    summary = capsys.readouterr().out
    assert "❌ 0 failed · ✅ 1 passed (of 1 in the stage; 1 outside it) in 1 gate file" in summary
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7, "head": {"sha": "3" * 40, "ref": "fix"}}}))
    assert main(["github", "comment", report, "--stage", "merge", "--event", str(event)]) == 0
    comment = capsys.readouterr().out
    assert "❌ 0 failed · ✅ 1 passed (of 1 in the stage; 1 outside it)" in comment
    assert main(["github", "summary", report, "--stage", "deploy"]) == 0
    assert "❌ 0 failed · ✅ 2 passed (of 2 in the stage)" in capsys.readouterr().out


def test_summary_of_a_skipped_stage_says_inconclusive_or_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT"):
        monkeypatch.delenv(name, raising=False)
    skipped = result("accuracy", "skipped", value=None, message="device 'cuda' is not available on this machine")
    report = write(tmp_path, [gate("gates/a.yaml", [skipped, result("f1")], STAGES)])
    assert main(["github", "summary", report, "--stage", "merge"]) == 0
    summary = capsys.readouterr().out
    assert summary.startswith("## ❔ modelcheck: inconclusive — stage `merge`")
    assert "1 check of the stage skipped, so not measured: gates/a.yaml::accuracy (device 'cuda' is not" in summary
    assert main(["github", "summary", report, "--stage", "merge", "--skipped", "fail"]) == 0
    assert capsys.readouterr().out.startswith("## ❌ modelcheck: failed — stage `merge`")
    assert main(["github", "outputs", report, "--stage", "merge"]) == 0
    assert "status=inconclusive" in capsys.readouterr().out
    assert main(["summary", report]) == 0  # the report's own summary (README's >> $GITHUB_STEP_SUMMARY)
    assert capsys.readouterr().out.startswith("## 💥 modelcheck: inconclusive")


def test_gate_says_why_when_pytest_stopped_before_the_gates_ran(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    document = build_report([], stage="merge", env=ENV)
    document["stopped"] = {
        "reason": "1 error during collection",
        "exit_status": 2,
        "errors": [{"nodeid": "tests/test_app.py", "message": "ModuleNotFoundError: No module named 'flask'"}],
    }
    path = tmp_path / "report.json"
    write_report(path, document)
    assert main(["gate", "--stage", "merge", str(path)]) == 3
    out = capsys.readouterr().out
    assert "stage merge: INCONCLUSIVE — pytest stopped early (exit 2): 1 error during collection" in out
    assert "tests/test_app.py: ModuleNotFoundError: No module named 'flask'" in out
    # A report from an artifact is untrusted: a line break in a node id or reason never starts a log line.
    document["stopped"]["reason"] = "x\n::stop-commands::t"
    document["stopped"]["errors"].append({"nodeid": "tests/a\r\n::error::forged.py", "message": "m\n::warning::w"})
    write_report(path, document)
    assert main(["gate", "--stage", "merge", str(path)]) == 3
    lines = capsys.readouterr().out.splitlines()
    assert (
        not [line for line in lines if line.startswith("::")]
        and "tests/a ::error::forged.py: m ::warning::w" in lines[-1]
    )
    document["stopped"]["reason"] = "1 error during collection"
    document["stopped"]["errors"].pop()
    write_report(path, document)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert main(["github", "summary", str(path), "--stage", "merge"]) == 0
    summary = capsys.readouterr().out
    assert "**pytest stopped before the gates ran** (exit 2): 1 error during collection" in summary
    assert "> - `tests/test_app.py`: ModuleNotFoundError: No module named 'flask'" in summary
    assert main(["summary", str(path)]) == 0
    summary = capsys.readouterr().out
    assert summary.startswith("## 💥 modelcheck: inconclusive (stage `merge`)")
    assert "> 💥 pytest stopped early (exit 2): 1 error during collection — tests/test_app.py: ModuleNotFoundError" in (
        summary
    )


def test_gate_without_stages_is_judged_for_every_stage(tmp_path: Path) -> None:
    plain = gate("gates/plain.yaml", [result("accuracy"), result("f1", "failed")])
    report = write(tmp_path, [plain])
    assert main(["gate", "--stage", "merge", report]) == 1
    assert main(["gate", "--stage", "anything", report]) == 1


def test_gate_mixes_staged_and_unstaged_gates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    staged = gate("gates/staged.yaml", [result("accuracy"), result("f1", "failed")], {"deploy": ["f1"]})
    plain = gate("gates/plain.yaml", [result("accuracy")])
    report = write(tmp_path, [staged, plain])
    assert main(["gate", "--stage", "merge", report]) == 0  # staged.yaml has no merge stage: nothing judged there
    out = capsys.readouterr().out
    assert "gates/plain.yaml::accuracy" in out and "gates/staged.yaml" not in out
    assert main(["gate", "--stage", "deploy", report]) == 1


def test_gate_unknown_stage_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = write(tmp_path, [gate("gates/a.yaml", [result("accuracy")], STAGES)])
    assert main(["gate", "--stage", "relase", report]) == 2
    err = capsys.readouterr().err
    assert err.startswith("modelcheck: error: no gate in report")
    assert "stage 'relase'" in err and "stages in the report: deploy, merge" in err


def test_gate_errored_gate_is_inconclusive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ok = gate("gates/a.yaml", [result("accuracy")], STAGES)
    broken = GateResult(
        file="gates/bad.yaml", model={}, data={}, stages={}, checks=[], error="gates/bad.yaml:3: invalid YAML"
    )
    report = write(tmp_path, [ok, broken])
    assert main(["gate", "--stage", "merge", report]) == 3
    assert "gates/bad.yaml: gates/bad.yaml:3: invalid YAML" in capsys.readouterr().out


def test_gate_error_is_shown_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = "model /m not found; build it first"
    checks = [
        result("accuracy", "error", value=None, message=message),
        result("f1", "error", message=message),
    ]
    report = write(tmp_path, [gate("gates/a.yaml", checks, STAGES, error=message)])
    assert main(["gate", "--stage", "deploy", report]) == 3
    assert capsys.readouterr().out.count(message) == 1


def test_gate_empty_report_is_inconclusive(tmp_path: Path) -> None:
    assert main(["gate", "--stage", "merge", write(tmp_path, [])]) == 3


def test_gate_bad_reports_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gate", "--stage", "merge", str(tmp_path / "missing.json")]) == 2
    assert "missing.json not found" in capsys.readouterr().err
    path = tmp_path / "old.json"
    doc = build_report([], stage=None, env=ENV)
    doc["report_version"] = 7
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["gate", "--stage", "merge", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("modelcheck: error: report ") and "report_version 7" in err
    assert "Traceback" not in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gate", "report.json"]) == 2  # --stage is required
    assert "--stage" in capsys.readouterr().err
    assert main([]) == 2
    assert main(["frobnicate"]) == 2


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("modelcheck ")


# -- summary --------------------------------------------------------------------------------------


def test_summary_prints_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checks = [
        result("accuracy", stages=["merge", "deploy"]),
        result("f1", "failed", blocking=False, message="f1 low"),
    ]
    report = write(tmp_path, [gate("gates/a.yaml", checks, STAGES)], stage="merge")
    assert main(["summary", report]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## ✅ modelcheck: passed (stage `merge`)")
    assert "| accuracy | merge, deploy | 0.95 | >= 0.9 | ✅ passed |" in out
    assert "⚠️ warned" in out and "- ⚠️ **f1** (warned): f1 low" in out


def test_summary_appends_to_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = write(tmp_path, [gate("gates/a.yaml", [result("accuracy", "failed")])])
    step_summary = tmp_path / "summary.md"
    step_summary.write_text("# earlier step\n", encoding="utf-8")
    assert main(["summary", report, "--output", str(step_summary)]) == 0
    text = step_summary.read_text(encoding="utf-8")
    assert text.startswith("# earlier step\n## ❌ modelcheck: failed")
    assert "| accuracy | — | 0.95 | >= 0.9 | ❌ failed |" in text
    assert "appended to" in capsys.readouterr().out


def test_summary_bad_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.json"
    path.write_text("{", encoding="utf-8")
    assert main(["summary", str(path)]) == 2
    assert "is not valid JSON" in capsys.readouterr().err


# -- validate -------------------------------------------------------------------------------------

VALID = """\
version: 1
model:
  source: ../models/sentiment
  backend: transformers
data:
  source: ../data/test.csv
  input: text
  label: label
checks:
  - name: accuracy
    metric: accuracy
    min: 0.9
stages:
  merge: [accuracy]
"""


def test_validate_valid_files_and_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gates = tmp_path / "gates"
    (gates / "sub").mkdir(parents=True)
    (gates / "a.yaml").write_text(VALID, encoding="utf-8")
    (gates / "sub" / "b.yml").write_text(VALID, encoding="utf-8")
    (gates / "notes.txt").write_text("not a gate", encoding="utf-8")
    assert main(["validate", str(gates)]) == 0
    out = capsys.readouterr().out
    assert f"ok    {gates / 'a.yaml'}" in out and f"ok    {gates / 'sub' / 'b.yml'}" in out
    assert "notes.txt" not in out
    assert "2 gate files valid" in out


def test_validate_defaults_to_gates_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 2
    assert "no gate files found in gates (does not exist)" in capsys.readouterr().err
    (tmp_path / "gates").mkdir()
    assert main(["validate"]) == 2
    assert "no gate files found in gates;" in capsys.readouterr().err
    (tmp_path / "gates" / "g.yaml").write_text(VALID, encoding="utf-8")
    assert main(["validate"]) == 0
    assert "ok    gates/g.yaml".replace("/", os.sep) in capsys.readouterr().out


def test_validate_reports_yaml_syntax_error_with_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(VALID, encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(VALID.replace("  input: text", "  input: [text"), encoding="utf-8")
    assert main(["validate", str(good), str(bad)]) == 2
    out = capsys.readouterr().out
    assert f"ok    {good}" in out
    assert f"error {bad}:" in out and "invalid YAML" in out
    line = next(line for line in out.splitlines() if line.startswith(f"error {bad}"))
    assert line.startswith((f"error {bad}:8", f"error {bad}:9"))
    assert "1 of 2 gate files invalid" in out


def test_validate_unknown_key_suggests_the_right_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "typo.yaml"
    bad.write_text(VALID.replace("    min: 0.9", "    min: 0.9\n    metirc: f1"), encoding="utf-8")
    assert main(["validate", str(bad)]) == 2
    out = capsys.readouterr().out
    assert f"error {bad}:13 at $.checks[0].metirc: unknown key 'metirc'; did you mean 'metric'?" in out


def test_validate_unknown_backend_and_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "backend.yaml"
    bad.write_text(VALID.replace("backend: transformers", "backend: transformer"), encoding="utf-8")
    assert main(["validate", str(bad), str(tmp_path / "nowhere")]) == 2
    out = capsys.readouterr().out
    assert "unknown backend 'transformer'; did you mean 'transformers'?" in out
    assert f"error {tmp_path / 'nowhere'}: no such file or folder" in out


# -- the installed command, and staying light ---------------------------------------------------


def _console_script() -> Path:
    name = "modelcheck.exe" if os.name == "nt" else "modelcheck"
    return Path(sys.executable).parent / name


@pytest.mark.skipif(not _console_script().exists(), reason="modelcheck is not installed (pip install -e .)")
def test_console_script_gate(tmp_path: Path) -> None:
    report = write(tmp_path, [gate("gates/a.yaml", [result("accuracy", "failed")], STAGES)])
    done = subprocess.run(
        [str(_console_script()), "gate", "--stage", "merge", report],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "stage merge: FAILED" in done.stdout
    assert done.stderr == ""


def test_cli_report_and_summary_import_no_framework() -> None:
    code = (
        "import modelcheck.cli, modelcheck.report.document, modelcheck.report.summary, sys; "
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'onnxruntime') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# -- table, schema, logging -------------------------------------------------------------------------


def test_gate_table_columns_fit_their_content(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    latency = result("latency_p95", "inconclusive", value=41.25, ci=(38.5, 44.75), details={"unit": "ms"})
    checks = [result("accuracy"), latency, result("a_much_longer_check_name", value=0.5)]
    report = write(tmp_path, [gate("gates/a.yaml", checks)])
    assert main(["gate", "--stage", "merge", report]) == 3
    table = capsys.readouterr().out.split("\n\n")[0].splitlines()
    assert len(table) == 3
    assert "41.25 ms (CI 38.50–44.75)" in table[1]
    thresholds = {line.index(">= 0.9") for line in table}
    ends = {line.index(">= 0.9") - 2 for line in table}  # values are right-aligned against the threshold column
    assert len(thresholds) == 1 and len(ends) == 1, table
    assert table[1].startswith("INCONCLUSIVE gates/a.yaml::latency_p95")


def test_schema_prints_the_shipped_schema_or_its_path(capsys: pytest.CaptureFixture[str]) -> None:
    from modelcheck.gatefile import gate_schema

    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == gate_schema()
    assert main(["schema", "--path"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert json.loads(path.read_text("utf-8")) == gate_schema()


def test_logging_is_quiet_by_default_and_shown_with_v(tmp_path: Path) -> None:
    gates = tmp_path / "gates"
    gates.mkdir()
    (gates / "a.yaml").write_text((REPO / "gates" / "sentiment.yaml").read_text("utf-8"), encoding="utf-8")
    command = [sys.executable, "-m", "modelcheck"]
    quiet = subprocess.run([*command, "validate", str(gates)], capture_output=True, text=True, timeout=60)
    assert quiet.returncode == 0 and quiet.stderr == ""
    loud = subprocess.run([*command, "-v", "validate", str(gates)], capture_output=True, text=True, timeout=60)
    assert loud.returncode == 0 and "modelcheck: INFO modelcheck.gatefile: loaded" in loud.stderr, loud.stderr
    debug = subprocess.run([*command, "--log-level", "debug", "validate", str(gates)], capture_output=True, text=True,
                           timeout=60)  # fmt: skip
    assert "modelcheck: DEBUG" in debug.stderr
    bad = subprocess.run([*command, "--log-level", "loud", "validate"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "invalid choice: 'LOUD'" in bad.stderr


def test_pytest_log_options_show_the_modelcheck_logger(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from modelcheck.gatefile import load_gate

    caplog.set_level(logging.INFO)  # what pytest --log-level=INFO (or log_cli) does
    load_gate(REPO / "gates" / "sentiment.yaml", display_path="gates/sentiment.yaml")
    assert [r.name for r in caplog.records] == ["modelcheck.gatefile"]
    assert "loaded gates/sentiment.yaml: model sentiment (transformers, text-classification), 6 checks" in caplog.text


def test_report_merge_keeps_a_legs_early_stop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = build_report([gate("gates/a.yaml", [result("accuracy")], STAGES)], stage="merge", env=ENV, shard=(1, 2))
    second = build_report([], stage="merge", env=ENV, shard=(2, 2))
    second["stopped"] = {
        "reason": "1 error during collection",
        "exit_status": 2,
        "errors": [{"nodeid": "gates/b.yaml", "message": "gates/b.yaml:3: invalid YAML"}],
    }
    write_report(tmp_path / "1.json", first)
    write_report(tmp_path / "2.json", second)
    merged = tmp_path / "all.json"
    assert main(["report", "merge", str(tmp_path / "1.json"), str(tmp_path / "2.json"), "-o", str(merged)]) == 0
    assert main(["gate", "--stage", "merge", str(merged)]) == 3  # leg 1 passed; leg 2 never ran its gates
    assert "pytest stopped early (exit 2): 1 error during collection — gates/b.yaml: gates/b.yaml:3" in (
        capsys.readouterr().out
    )
