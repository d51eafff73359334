"""``pytest --modelcheck -n 2`` (pytest-xdist) gives the report and summary of a single process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.usefixtures("frameworks_imported_once")

pytest.importorskip("xdist")

EXAMPLE_DATA = Path(__file__).resolve().parents[1] / "examples" / "sentiment" / "test.csv"

GATE = """\
version: 1
model:
  id: {name}
  source: ../models/{model}
data:
  source: ../data/test.csv
  input: text
  label: label
checks:
  - name: accuracy
    metric: accuracy
    min: 0.9
  - name: macro_f1
    metric: f1
    average: macro
    min: 0.88
  - name: accuracy_by_language
    metric: accuracy
    slice_by: language
    min: 0.85
    min_samples: 50
stages:
  merge: [accuracy]
"""

# Records, from every process, which gates ran: each must run exactly once.
RECORD_RUNS = """
import os
import modelcheck.pytest_plugin.session as session

RUNS = os.path.join(os.path.dirname(__file__), "runs.txt")
_run_gate = session.run_gate

def recording_run_gate(gate, *, file, **kwargs):
    with open(RUNS, "a") as handle:
        handle.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')} {file}\\n")
    return _run_gate(gate, file=file, **kwargs)

session.run_gate = recording_run_gate

def pytest_unconfigure(config):
    session.run_gate = _run_gate
"""


def timeless(check: dict[str, Any]) -> dict[str, Any]:
    assert check["duration_s"] is not None and check["duration_s"] >= 0
    return {k: v for k, v in check.items() if k != "duration_s"}


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """The report without what differs between any two runs: the times, where the outputs were saved, and the
    thread count (the cores other work left free when the gate ran: two xdist workers keep each other's busy)."""
    gates = [
        {**{k: v for k, v in gate.items() if k != "outputs"}, "checks": [timeless(c) for c in gate["checks"]],
         "model": {k: v for k, v in gate["model"].items() if k != "threads"}}
        for gate in report["gates"]
    ]  # fmt: skip
    assert all(gate["outputs"] for gate in report["gates"]), "every gate saved its per-example outputs"
    return {**{k: v for k, v in report.items() if k != "created_at"}, "gates": gates}


@pytest.mark.e2e
def test_xdist_report_matches_a_single_process(
    pytester: pytest.Pytester, sentiment_model: Path, untrained_model: Path
) -> None:
    shutil.copytree(sentiment_model, pytester.path / "models" / "good")
    shutil.copytree(untrained_model, pytester.path / "models" / "untrained")
    (pytester.path / "data").mkdir()
    shutil.copy(EXAMPLE_DATA, pytester.path / "data" / "test.csv")
    (pytester.path / "gates").mkdir()
    (pytester.path / "gates" / "good.yaml").write_text(GATE.format(name="good", model="good"))
    (pytester.path / "gates" / "weak.yaml").write_text(GATE.format(name="weak", model="untrained"))
    pytester.makepyfile(test_ordinary="def test_one():\n    pass\n\ndef test_two():\n    pass\n")
    pytester.makeconftest(RECORD_RUNS)
    runs = pytester.path / "runs.txt"

    # The single process runs in-process (the frameworks are imported already), xdist needs subprocesses.
    single = pytester.runpytest("--modelcheck", "--modelcheck-report", "single.json", "-p", "no:xdist")
    single.assert_outcomes(passed=7, failed=1)
    assert sorted(line.split()[1] for line in runs.read_text().splitlines()) == ["gates/good.yaml", "gates/weak.yaml"]
    runs.unlink()

    distributed = pytester.runpytest_subprocess("--modelcheck", "--modelcheck-report", "xdist.json", "-n", "2")
    distributed.assert_outcomes(passed=7, failed=1)
    ran = [line.split() for line in runs.read_text().splitlines()]
    assert sorted(file for _, file in ran) == ["gates/good.yaml", "gates/weak.yaml"], "each gate runs once"
    assert all(worker.startswith("gw") for worker, _ in ran), "the controller runs no gate"

    expected = json.loads((pytester.path / "single.json").read_text())
    got = json.loads((pytester.path / "xdist.json").read_text())
    assert comparable(got) == comparable(expected)
    totals = {"passed": 3, "failed": 1, "error": 0, "skipped": 0, "inconclusive": 0, "not_run": 0, "warned": 2}
    assert got["totals"] == totals

    table = [
        "*= modelcheck =*",
        "check*value*threshold*status",
        "gates/good.yaml::accuracy *1.0 *>= 0.9 *passed",
        "gates/good.yaml::macro_f1 *1.0 *>= 0.88 *passed",
        "gates/good.yaml::accuracy_by_language *1.0 *>= 0.85 *passed",
        "gates/weak.yaml::accuracy *0.5 *>= 0.9 *failed",
        "gates/weak.yaml::macro_f1 *0.3333 *>= 0.88 *warned",
        "gates/weak.yaml::accuracy_by_language *0.5 *>= 0.85 *warned",
        "WARNING gates/weak.yaml::macro_f1: f1 (macro) 0.3333 < min 0.88 (n=400) (not in the blocking stage)",
        "WARNING gates/weak.yaml::accuracy_by_language: accuracy by language: *",
        "report written to */*.json",
    ]
    single.stdout.fnmatch_lines(table)
    distributed.stdout.fnmatch_lines(table)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-n", "2"], True),
        (["-n", "auto"], True),
        (["-n", "2", "--dist", "load"], False),
        (["-n", "2", "--dist", "loadgroup"], False),
        (["-n", "0"], False),
        ([], False),
    ],
)
def test_gate_files_are_scheduled_whole_unless_the_user_picks_a_dist_mode(
    pytester: pytest.Pytester, args: list[str], expected: bool
) -> None:
    pytester.makeconftest(
        """
        from modelcheck.pytest_plugin.state import gate_scheduling_key

        def pytest_configure(config):
            print("GATE_SCHEDULING", config.stash.get(gate_scheduling_key, False))
        """
    )
    result = pytester.runpytest("--modelcheck", "--collect-only", *args)
    result.stdout.fnmatch_lines([f"GATE_SCHEDULING {expected}"])
