"""``modelcheck report merge``: joins shard reports, and refuses every set that is not one run's shards."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from modelcheck.cli import main
from modelcheck.report.document import build_report, environment, read_report, write_report
from modelcheck.report.results import CheckResult, GateResult

ENV = environment()


def gate(file: str, status: str = "passed") -> GateResult:
    check = CheckResult(name="accuracy", kind="metric", status=status, message="m", value=0.9, stages=["merge"])  # type: ignore[arg-type]
    model = {"id": Path(file).stem, "source": "m", "backend": "torch", "task": "tabular-classification",
             "device_requested": "auto", "device": "cpu", "files": []}  # fmt: skip
    data = {"source": "d.csv", "split": None, "input": "x", "label": "y", "limit": None, "rows": 3, "sha256": None}
    return GateResult(file=file, model=model, data=data, stages={"merge": ["accuracy"]}, checks=[check])


def leg(
    folder: Path,
    name: str,
    files: list[str],
    *,
    shard: tuple[int, int] | None = None,
    stage: str | None = "merge",
    outputs: bool = True,
    version: str | None = None,
    machine: str | None = None,
) -> Path:
    """A report as a leg writes it, with per-example outputs in ``name.outputs/run-x/`` beside it."""
    report = folder / f"{name}.json"
    results = [gate(file) for file in files]
    if outputs:
        for result in results:
            npz = folder / f"{name}.outputs" / "run-x" / f"{result.model['id']}.npz"
            npz.parent.mkdir(parents=True, exist_ok=True)
            npz.write_bytes(f"outputs of {result.file}".encode())
            digest = hashlib.sha256(npz.read_bytes()).hexdigest()
            result.outputs = {"path": npz.relative_to(folder).as_posix(), "sha256": digest}
    env = {**ENV, "machine": machine or ENV["machine"]}
    document = build_report(results, stage=stage, env=env, shard=shard)
    if version is not None:
        document["modelcheck_version"] = version
    write_report(report, document)
    return report


def merge(*args: str | Path) -> int:
    return main(["report", "merge", *map(str, args)])


def test_merged_report_holds_every_gate_and_environment_and_finds_its_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = leg(tmp_path / "leg1", "report", ["gates/a.yaml", "gates/c.yaml"], shard=(1, 2), machine="runner-1")
    b = leg(tmp_path / "leg2", "report", ["gates/b.yaml"], shard=(2, 2), machine="runner-2")
    out = tmp_path / "merged" / "all.json"
    assert merge(b, a, "-o", out) == 0
    assert "merged 2 reports (shards 1/2, 2/2): 3 gate files, 3 checks" in capsys.readouterr().out

    merged = read_report(out)  # schema-valid
    assert [g["file"] for g in merged["gates"]] == ["gates/a.yaml", "gates/b.yaml", "gates/c.yaml"]
    assert "shard" not in merged
    assert [s["shard"] for s in merged["shards"]] == [{"index": 1, "count": 2}, {"index": 2, "count": 2}]
    assert [s["environment"]["machine"] for s in merged["shards"]] == ["runner-1", "runner-2"]
    assert [s["gates"] for s in merged["shards"]] == [["gates/a.yaml", "gates/c.yaml"], ["gates/b.yaml"]]
    assert merged["environment"]["machine"] == "runner-1"
    assert merged["totals"]["passed"] == 3 and merged["stage"] == "merge"
    for record in merged["gates"]:  # each outputs file next to the merged report, bytes unchanged
        path = out.parent / record["outputs"]["path"]
        assert path.is_relative_to(out.parent / "all.outputs")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == record["outputs"]["sha256"]
        assert path.read_bytes() == f"outputs of {record['file']}".encode()

    # A merged report merges again (its legs kept), and the gate command judges it.
    again = tmp_path / "again.json"
    assert merge(out, "-o", again) == 0
    assert read_report(again)["shards"] == merged["shards"]
    assert main(["gate", "--stage", "merge", str(again)]) == 0


def test_unsharded_reports_merge_and_without_outputs_drops_them(tmp_path: Path) -> None:
    a = leg(tmp_path, "a", ["gates/a.yaml"], outputs=True)
    b = leg(tmp_path, "b", ["gates/b.yaml"], outputs=False)
    (tmp_path / "a.outputs").rename(tmp_path / "gone")  # a leg that uploaded only its JSON
    assert merge(a, b, "-o", tmp_path / "all.json") == 2
    assert merge(a, b, "-o", tmp_path / "all.json", "--without-outputs") == 0
    merged = json.loads((tmp_path / "all.json").read_text())
    assert [s["shard"] for s in merged["shards"]] == [None, None]
    assert all(g["outputs"] is None for g in merged["gates"])


def refused(capsys: pytest.CaptureFixture[str], *args: str | Path) -> str:
    out = args[-1]
    assert merge(*args) == 2
    err = capsys.readouterr().err
    assert err.startswith("modelcheck: error: ") and "Traceback" not in err
    assert not Path(out).exists(), "nothing is written when the merge is refused"
    return err


def test_two_results_for_one_gate_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = leg(tmp_path, "a", ["gates/a.yaml"], shard=(1, 2))
    b = leg(tmp_path, "b", ["gates/a.yaml", "gates/b.yaml"], shard=(2, 2))
    err = refused(capsys, a, b, "-o", tmp_path / "all.json")
    assert f"two results for gate file gates/a.yaml: in {a} and in {b}" in err


def test_mixed_stages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = leg(tmp_path, "a", ["gates/a.yaml"], stage="merge")
    b = leg(tmp_path, "b", ["gates/b.yaml"], stage=None)
    err = refused(capsys, a, b, "-o", tmp_path / "all.json")
    assert f"mixed stages: {a} has 'merge', {b} has None" in err


def test_mixed_modelcheck_versions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = leg(tmp_path, "a", ["gates/a.yaml"])
    b = leg(tmp_path, "b", ["gates/b.yaml"], version="0.0.1")
    err = refused(capsys, a, b, "-o", tmp_path / "all.json")
    assert f"mixed modelcheck versions: {a} has" in err and f"{b} has '0.0.1'" in err


def test_another_report_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = leg(tmp_path, "a", ["gates/a.yaml"])
    b = leg(tmp_path, "b", ["gates/b.yaml"])
    document = json.loads(b.read_text())
    b.write_text(json.dumps({**document, "report_version": 2}))
    err = refused(capsys, a, b, "-o", tmp_path / "all.json")
    assert f"report {b} has report_version 2" in err


@pytest.mark.parametrize(
    ("shards", "expected"),
    [
        ([(1, 3), (3, 3)], "the reports hold 2 of 3 shards; missing: 2/3"),
        ([(1, 2), (1, 2)], "shard 1/2 is in both"),
        ([(1, 2), (2, 3)], "cannot merge shards of different counts"),
        ([(1, 2), None], "cannot merge sharded and unsharded reports"),
        ([(3, 2), (1, 2)], "records shard 3/2, which is not a shard of 2"),
    ],
)
def test_incomplete_or_inconsistent_shard_sets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shards: list[tuple[int, int] | None], expected: str
) -> None:
    reports = [leg(tmp_path, f"r{i}", [f"gates/g{i}.yaml"], shard=shard) for i, shard in enumerate(shards)]
    err = refused(capsys, *reports, "-o", tmp_path / "all.json")
    assert expected in err


def test_same_report_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = leg(tmp_path, "a", ["gates/a.yaml"], shard=(1, 1))
    err = refused(capsys, a, tmp_path / "." / "a.json", "-o", tmp_path / "all.json")
    assert "is given twice" in err


def test_changed_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = leg(tmp_path, "a", ["gates/a.yaml"])
    (tmp_path / "a.outputs" / "run-x" / "a.npz").write_bytes(b"tampered")
    err = refused(capsys, a, "-o", tmp_path / "all.json")
    assert "have sha256" in err and "changed since the run" in err


def test_outputs_path_outside_the_report_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = leg(tmp_path / "leg", "a", ["gates/a.yaml"])
    document: dict[str, Any] = json.loads(a.read_text())
    document["gates"][0]["outputs"]["path"] = "../elsewhere.npz"
    a.write_text(json.dumps(document))
    err = refused(capsys, a, "-o", tmp_path / "all.json")
    assert "stays inside its folder" in err


@pytest.mark.parametrize("problem", ["missing", "not a report", "output is a folder"])
def test_unusable_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str) -> None:
    a = leg(tmp_path, "a", ["gates/a.yaml"])
    out = tmp_path / "all.json"
    if problem == "missing":
        assert "report" in refused(capsys, a, tmp_path / "nope.json", "-o", out)
    elif problem == "not a report":
        (tmp_path / "bad.json").write_text("[1]")
        assert "a report is a JSON object" in refused(capsys, a, tmp_path / "bad.json", "-o", out)
    else:
        out.mkdir()
        assert merge(a, "-o", out) == 2
        assert "is a folder" in capsys.readouterr().err


def test_output_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "merge", "a.json"]) == 2
    assert "-o" in capsys.readouterr().err
