"""``--modelcheck-shard I/N``: each gate file in exactly one shard; legs merged give the single run's verdict."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelcheck.cli import main
from modelcheck.pytest_plugin.shard import Shard, parse_shard, shard_members
from modelcheck.report.document import read_report

pytestmark = pytest.mark.usefixtures("frameworks_imported_once")

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
stages:
  merge: [accuracy]
"""

# Records, from every process, which gates ran (a gate of another shard must never load its model).
RECORD_RUNS = """
import os
import modelcheck.pytest_plugin.session as session

RUNS = os.path.join(os.path.dirname(__file__), "runs.txt")
_run_gate = session.run_gate

def recording_run_gate(gate, *, file, **kwargs):
    with open(RUNS, "a") as handle:
        handle.write(f"{file}\\n")
    return _run_gate(gate, file=file, **kwargs)

session.run_gate = recording_run_gate

def pytest_unconfigure(config):
    session.run_gate = _run_gate
"""


@pytest.mark.parametrize(("text", "shard"), [("1/1", Shard(1, 1)), ("2/3", Shard(2, 3)), (" 3 / 3 ", Shard(3, 3))])
def test_parse_shard(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard


@pytest.mark.parametrize("text", ["3/2", "0/2", "a/b", "1/0", "1", "-1/2", "1/2/3", ""])
def test_parse_shard_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"I/N|shard"):
        parse_shard(text)


@given(st.sets(st.text(min_size=1, max_size=8), max_size=30), st.integers(1, 8))
def test_every_gate_file_is_in_exactly_one_shard(files: set[str], count: int) -> None:
    shards = [shard_members(files, Shard(index, count)) for index in range(1, count + 1)]
    assert sum(len(members) for members in shards) == len(files)
    assert set().union(*shards) == files
    assert max(map(len, shards)) - min(map(len, shards)) <= 1, "round-robin: shards differ by one file at most"


@pytest.mark.parametrize("value", ["3/2", "0/2", "a/b"])
def test_bad_shard_is_a_usage_error_naming_the_flag(pytester: pytest.Pytester, value: str) -> None:
    result = pytester.runpytest("--modelcheck", "--modelcheck-shard", value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--modelcheck-shard: '{value}'*"])


def test_shard_needs_the_modelcheck_flag(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--modelcheck-shard", "1/2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--modelcheck-shard needs --modelcheck*"])


def test_shards_collect_disjoint_gate_files(pytester: pytest.Pytester) -> None:
    names = ["a", "b", "c", "d", "e"]
    for name in names:
        path = pytester.path / "gates" / f"{name}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(GATE.format(name=name, model=name))
    pytester.makepyfile(test_ordinary="def test_one():\n    pass\n")
    collected: list[set[str]] = []
    for index in (1, 2, 3):
        result = pytester.runpytest("--modelcheck", "--collect-only", "-q", "--modelcheck-shard", f"{index}/3")
        assert result.ret == pytest.ExitCode.OK
        ids = [line for line in result.outlines if "::" in line]
        assert "test_ordinary.py::test_one" in ids, "other tests run on every leg"
        collected.append({line.split("::")[0] for line in ids if line.startswith("gates/")})
    assert collected == [{"gates/a.yaml", "gates/d.yaml"}, {"gates/b.yaml", "gates/e.yaml"}, {"gates/c.yaml"}]


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """What must agree between the single run and the merged legs: the gates' results, without times, paths or the
    thread counts chosen for the machine's load at that moment."""
    gates = [
        {**{k: v for k, v in g.items() if k not in ("outputs", "model")},
         "model": {k: v for k, v in g["model"].items() if k != "threads"},
         "checks": [{k: v for k, v in c.items() if k != "duration_s"} for c in g["checks"]]}
        for g in report["gates"]
    ]  # fmt: skip
    return {"stage": report["stage"], "gates": gates, "totals": report["totals"]}


@pytest.mark.e2e
def test_two_legs_merged_judge_as_one_run(
    pytester: pytest.Pytester, sentiment_model: Path, untrained_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("xdist")
    shutil.copytree(sentiment_model, pytester.path / "models" / "good")
    shutil.copytree(untrained_model, pytester.path / "models" / "untrained")
    (pytester.path / "data").mkdir()
    shutil.copy(EXAMPLE_DATA, pytester.path / "data" / "test.csv")
    (pytester.path / "gates").mkdir()
    for name, model in (("good", "good"), ("weak", "untrained"), ("zgood", "good")):
        (pytester.path / "gates" / f"{name}.yaml").write_text(GATE.format(name=name, model=model))
    pytester.makeconftest(RECORD_RUNS)
    runs = pytester.path / "runs.txt"
    stage = ("--modelcheck-stage", "merge")

    single = pytester.runpytest("--modelcheck", *stage, "--modelcheck-report", "single.json", "-p", "no:xdist")
    single.assert_outcomes(passed=5, failed=1)
    runs.unlink()

    # Leg 1 (gates/good.yaml, gates/zgood.yaml) in-process; leg 2 (gates/weak.yaml) under pytest-xdist.
    leg1 = pytester.runpytest(
        "--modelcheck", *stage, "--modelcheck-shard", "1/2", "--modelcheck-report", "leg1/report.json", "-p", "no:xdist"
    )
    leg1.assert_outcomes(passed=4)
    leg1.stdout.fnmatch_lines(["shard 1/2: 2 of 3 gate files"])
    assert sorted(runs.read_text().split()) == ["gates/good.yaml", "gates/zgood.yaml"], "leg 1 loads no other model"
    runs.unlink()
    leg2 = pytester.runpytest_subprocess(
        "--modelcheck", *stage, "--modelcheck-shard", "2/2", "--modelcheck-report", "leg2/report.json", "-n", "2"
    )
    leg2.assert_outcomes(passed=1, failed=1)
    assert runs.read_text().split() == ["gates/weak.yaml"]
    assert read_report(pytester.path / "leg2" / "report.json")["shard"] == {"index": 2, "count": 2}

    merged, whole = pytester.path / "all.json", pytester.path / "single.json"
    assert main(["report", "merge", "leg2/report.json", "leg1/report.json", "-o", "all.json"]) == 0
    assert comparable(read_report(merged)) == comparable(read_report(whole))

    capsys.readouterr()
    assert main(["gate", "--stage", "merge", str(whole)]) == main(["gate", "--stage", "merge", str(merged)]) == 1
    verdicts = capsys.readouterr().out.split("\n\n")
    assert verdicts[-1].splitlines()[-1] == (
        "stage merge: FAILED — 2 passed, 1 failed, 0 error, 0 inconclusive, 0 skipped; "
        "3 checks outside the stage not judged"
    )
    assert main(["summary", str(merged)]) == 0
    summary = capsys.readouterr().out
    assert "gates/weak.yaml" in summary and "gates/zgood.yaml" in summary
    assert main(["baseline", "update", str(merged), "--dir", str(pytester.path / "baselines")]) == 0
    for name in ("good", "weak", "zgood"):
        baseline = json.loads((pytester.path / "baselines" / f"{name}.json").read_text())
        assert baseline["gate"] == f"gates/{name}.yaml" and (pytester.path / "baselines" / f"{name}.npz").is_file()
