"""What the user selects is what runs and what is judged: stages, -k/-m/--deselect, and markers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modelcheck.cli import main as cli_main

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("frameworks_imported_once")]

EXAMPLE_DATA = Path(__file__).resolve().parents[1] / "examples" / "sentiment" / "test.csv"

GATE = """\
version: 1
model: {{id: {model_id}, source: {source}, device: cpu}}
data: {{source: ../data/test.csv, input: text, label: label, limit: 60}}
checks:
  - {{name: accuracy, metric: accuracy, min: 0.9}}
  - {{name: latency_p50, kind: latency, percentile: 50, max_ms: 5000, min_iterations: 10, min_time: 0.1}}
stages:
  merge: [accuracy, latency_p50]
  deploy: all
"""


@pytest.fixture()
def project(pytester: pytest.Pytester, sentiment_model: Path, untrained_model: Path) -> pytest.Pytester:
    shutil.copytree(sentiment_model, pytester.path / "models" / "good")
    shutil.copytree(untrained_model, pytester.path / "models" / "untrained")
    (pytester.path / "data").mkdir()
    shutil.copy(EXAMPLE_DATA, pytester.path / "data" / "test.csv")
    pytester.makeini("[pytest]\naddopts = --strict-markers\n")
    return pytester


def add_gate(pytester: pytest.Pytester, name: str, source: str = "../models/good") -> Path:
    path = pytester.path / "gates" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(GATE.format(model_id=name, source=source), encoding="utf-8")
    return path


def checks_of(report: Path) -> dict[str, dict[str, str]]:
    doc = json.loads(report.read_text())
    return {f"{g['file']}::{c['name']}": c for g in doc["gates"] for c in g["checks"]}


def test_a_stage_no_gate_defines_is_a_usage_error(project: pytest.Pytester) -> None:
    add_gate(project, "sentiment", source="../models/untrained")
    result = project.runpytest("--modelcheck", "--modelcheck-stage", "mrege")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--modelcheck-stage 'mrege': no gate file*did you mean 'merge'?*deploy, merge*"])


def test_deselected_checks_are_not_measured_and_the_report_says_so(project: pytest.Pytester) -> None:
    add_gate(project, "sentiment")
    report = project.path / "out.json"
    result = project.runpytest("--modelcheck", f"--modelcheck-report={report}", "-k", "not latency")
    result.assert_outcomes(passed=1, deselected=1)
    checks = checks_of(report)
    assert checks["gates/sentiment.yaml::accuracy"]["status"] == "passed"
    latency = checks["gates/sentiment.yaml::latency_p50"]
    assert latency["status"] == "not run" and "not selected" in latency["message"]
    assert latency["details"] == {} and latency["value"] is None  # nothing was timed
    assert json.loads(report.read_text())["totals"]["not_run"] == 1

    assert cli_main(["gate", "--stage", "merge", str(report)]) == 3  # incomplete, never passed
    assert cli_main(["gate", "--stage", "deploy", str(report)]) == 3


def test_the_gate_command_names_the_checks_the_report_lacks(
    project: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    add_gate(project, "sentiment")
    report = project.path / "out.json"
    project.runpytest("--modelcheck", f"--modelcheck-report={report}", "--deselect", "gates/sentiment.yaml::accuracy")
    capsys.readouterr()
    assert cli_main(["gate", "--stage", "merge", str(report)]) == 3
    out = capsys.readouterr().out
    assert "lacks 1 check of the stage" in out and "gates/sentiment.yaml::accuracy" in out

    doc = json.loads(report.read_text())  # a check missing from the report altogether is named too
    doc["gates"][0]["checks"] = [c for c in doc["gates"][0]["checks"] if c["name"] != "accuracy"]
    report.write_text(json.dumps(doc))
    assert cli_main(["gate", "--stage", "merge", str(report)]) == 3
    assert "gates/sentiment.yaml::accuracy" in capsys.readouterr().out


def test_a_fully_deselected_gate_is_in_the_report_with_every_check_not_run(project: pytest.Pytester) -> None:
    add_gate(project, "sentiment")
    add_gate(project, "other", source="../models/untrained")
    report = project.path / "out.json"
    result = project.runpytest("--modelcheck", f"--modelcheck-report={report}", "-m", "sentiment and not latency")
    result.assert_outcomes(passed=1, deselected=3)
    checks = checks_of(report)
    assert checks["gates/other.yaml::accuracy"]["status"] == "not run"  # the untrained model never loaded
    assert checks["gates/other.yaml::latency_p50"]["status"] == "not run"
    assert checks["gates/sentiment.yaml::accuracy"]["status"] == "passed"


def test_markers_select_checks_by_kind_model_and_stage(project: pytest.Pytester) -> None:
    add_gate(project, "sentiment")
    result = project.runpytest("--modelcheck", "-m", "latency", "-v")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["*gates/sentiment.yaml::latency_p50 PASSED*"])
    result = project.runpytest("--modelcheck", "-m", "merge and metric", "-v")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["*gates/sentiment.yaml::accuracy PASSED*"])


def test_junit_xml_carries_each_checks_measurement_and_its_own_time(project: pytest.Pytester) -> None:
    import xml.etree.ElementTree as ET

    add_gate(project, "sentiment")
    xml = project.path / "junit.xml"
    project.runpytest("--modelcheck", f"--junitxml={xml}").assert_outcomes(passed=2)
    cases = {case.get("name"): case for case in ET.parse(xml).getroot().iter("testcase")}
    accuracy, latency = cases["accuracy"], cases["latency_p50"]
    props = {p.get("name"): p.get("value") for p in accuracy.iter("property")}
    assert props["status"] == "passed" and props["kind"] == "metric" and props["n"] == "60"
    assert float(props["value"]) >= 0.9 and json.loads(props["threshold"]) == {"min": 0.9}
    # Loading and predicting ran inside the first check; it is shared out, not charged to it alone.
    # The latency check times its own calls (>= min_time 0.1 s) on top of its share.
    assert float(latency.get("time")) > float(accuracy.get("time")) + 0.05
