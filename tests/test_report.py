"""The results report: building, schema, atomic writing, reading; and the summary helpers."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelcheck.errors import ReportError
from modelcheck.report import document as report_module
from modelcheck.report import environment as environment_module
from modelcheck.report.document import (
    build_report,
    environment,
    file_records,
    read_report,
    report_schema,
    sha256_file,
    validate_report,
    write_report,
)
from modelcheck.report.results import CheckResult, GateResult, Status
from modelcheck.report.summary import format_threshold, format_value, markdown, status_word, terminal_rows

ENV: dict[str, Any] = {
    "python": "3.11.7",
    "implementation": "CPython",
    "platform": "Linux-6.1-x86_64",
    "machine": "x86_64",
    "cpu": "Test CPU",
    "cpu_count": 2,
    "gpus": [],
    "packages": {"modelcheck": "0.1.0", "pytest": "9.0.0", "torch": None},
    "git": {"commit": "a" * 40, "branch": "main", "dirty": False},
}


def check(name: str, status: Status = "passed", **kw: Any) -> CheckResult:
    defaults: dict[str, Any] = {
        "kind": "metric",
        "metric": "accuracy",
        "message": f"{name} {status}",
        "value": 0.9125,
        "threshold": {"min": 0.9},
        "n": 400,
    }
    defaults.update(kw)
    return CheckResult(name=name, status=status, **defaults)


def gate(checks: list[CheckResult], stages: dict[str, list[str]] | None = None, **kw: Any) -> GateResult:
    model = {
        "id": "sentiment",
        "source": "/models/sentiment",
        "backend": "transformers",
        "task": "text-classification",
        "device_requested": "auto",
        "device": "cpu",
        "files": [{"path": "model.safetensors", "sha256": "c" * 64, "size": 1234}],
    }
    data = {
        "source": "/data/test.csv",
        "split": "test",
        "input": "text",
        "label": "label",
        "limit": None,
        "rows": 400,
        "sha256": "d" * 64,
    }
    return GateResult(
        file=kw.pop("file", "gates/sentiment.yaml"),
        model=kw.pop("model", model),
        data=kw.pop("data", data),
        stages=stages or {},
        checks=checks,
        **kw,
    )


def sample_report(stage: str | None = "merge") -> dict[str, Any]:
    checks = [
        check("accuracy", stages=["merge", "deploy"], ci=[0.88, 0.94]),
        check(
            "macro_f1",
            "failed",
            value=0.8,
            threshold={"min": 0.88},
            stages=["deploy"],
            blocking=False,
            message="f1 0.800 < min 0.88 (n=400)",
        ),
        check("recall", "error", value=None, n=None, stages=["merge", "deploy"], message="no positive labels"),
        check("precision", "skipped", value=None, message="not run"),
    ]
    stages = {"merge": ["accuracy", "recall"], "deploy": ["accuracy", "macro_f1", "recall"]}
    return build_report([gate(checks, stages)], stage=stage, env=ENV)


# -- building -------------------------------------------------------------------------------------


def test_built_report_matches_the_schema_and_counts() -> None:
    doc = sample_report()
    validate_report(doc, source="test")
    assert doc["report_version"] == 1
    assert doc["stage"] == "merge"
    totals = {"passed": 1, "failed": 0, "error": 1, "skipped": 1, "inconclusive": 0, "not_run": 0, "warned": 1}
    assert doc["totals"] == totals
    assert doc["gates"][0]["checks"][0]["ci"] == [0.88, 0.94]
    dt.datetime.fromisoformat(doc["created_at"])


def test_report_without_stage_and_with_real_environment() -> None:
    doc = build_report([gate([check("accuracy")])], stage=None)
    validate_report(doc, source="test")
    env = doc["environment"]
    assert doc["stage"] is None
    assert "hostname" not in env and "host" not in env
    assert env["packages"]["pytest"] == pytest.__version__
    assert env["packages"]["modelcheck"]
    assert set(env["git"]) == {"commit", "branch", "dirty"}


def test_created_at_is_utc_iso() -> None:
    when = dt.datetime(2026, 11, 22, 10, 0, 0)
    doc = build_report([], stage=None, env=ENV, created_at=when)
    assert doc["created_at"] == "2026-11-22T10:00:00+00:00"
    assert doc["gates"] == []
    validate_report(doc, source="test")


def test_numpy_values_and_nan_become_plain_json(tmp_path: Path) -> None:
    result = check(
        "acc",
        value=np.float64(0.5),
        n=np.int64(10),
        ci=(np.float32(0.25), np.float64(0.75)),
        details={"per_class": np.array([0.5, 0.25]), np.int64(3): np.int32(7), "undefined": float("nan")},
    )
    doc = build_report([gate([result])], stage=None, env=ENV)
    checked = doc["gates"][0]["checks"][0]
    assert type(checked["n"]) is int and type(checked["value"]) is float
    assert checked["details"] == {"per_class": [0.5, 0.25], "3": 7, "undefined": None}
    write_report(tmp_path / "r.json", doc)
    assert read_report(tmp_path / "r.json")["gates"][0]["checks"][0]["n"] == 10


def test_invalid_gate_file_entry_is_a_valid_report() -> None:
    broken = GateResult(file="gates/bad.yaml", model={}, data={}, stages={}, checks=[], error="invalid YAML")
    validate_report(build_report([broken], stage="merge", env=ENV), source="test")


# -- schema ---------------------------------------------------------------------------------------


def test_schema_is_valid_draft_2020_12() -> None:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(report_schema())


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["gates"][0]["checks"][0].update(status="pass"),
            ["$.gates[0].checks[0].status", "'pass'", "'passed'"],
        ),
        (
            lambda d: d["gates"][0]["model"]["files"][0].update(sha256="xyz"),
            ["$.gates[0].model.files[0].sha256", "'xyz'", "64 lowercase hex"],
        ),
        (lambda d: d["totals"].pop("warned"), ["$.totals", "missing required key 'warned'"]),
        (lambda d: d.update(extra=1), ["unknown key 'extra'"]),
        (
            lambda d: d["gates"][0]["checks"][0].update(blocking="yes"),
            ["$.gates[0].checks[0].blocking", "boolean"],
        ),
        (lambda d: d["gates"][0].update(model={}), ["$.gates[0].model", "missing required key"]),
        (lambda d: d["environment"]["git"].update(commit="abc"), ["$.environment.git.commit", "'abc'"]),
        (lambda d: d["gates"][0]["data"].update(sha256="ABC"), ["$.gates[0].data.sha256", "not a sha256"]),
        (lambda d: d.update(stage="my stage"), ["$.stage", "'my stage'"]),
        (lambda d: d["gates"][0]["checks"][0].update(ci=[0.1]), ["$.gates[0].checks[0].ci"]),
    ],
)
def test_schema_rejects_a_broken_report_naming_the_path(mutate: Any, expected: list[str]) -> None:
    doc = sample_report()
    mutate(doc)
    with pytest.raises(ReportError) as info:
        validate_report(doc, source="report out.json")
    message = str(info.value)
    assert message.startswith("report out.json")
    for part in expected:
        assert part in message


def test_schema_leaves_details_and_packages_open() -> None:
    doc = sample_report()
    doc["gates"][0]["checks"][0]["details"] = {
        "slices": [{"slice": "en", "value": 0.9, "n": 3}],
        "x": {"y": 1},
    }
    doc["environment"]["packages"]["my-backend"] = "1.0"
    validate_report(doc, source="test")


# -- writing --------------------------------------------------------------------------------------


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "report.json")


def test_write_then_read_round_trips_and_creates_folders(tmp_path: Path) -> None:
    doc = sample_report()
    target = tmp_path / "deep" / "er" / "report.json"
    write_report(target, doc)
    assert read_report(target) == doc
    assert target.read_text(encoding="utf-8").endswith("}\n")
    assert _leftovers(target.parent) == []


def test_write_failure_at_rename_keeps_the_old_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.json"
    write_report(target, sample_report(stage="merge"))
    before = target.read_bytes()

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_module.os, "replace", broken_replace)
    with pytest.raises(ReportError, match=r"cannot write report .*report\.json .*No space left"):
        write_report(target, sample_report(stage="deploy"))
    assert target.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_crash_mid_write_keeps_the_old_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.json"
    write_report(target, sample_report(stage="merge"))
    before = target.read_bytes()

    def crash(fd: int) -> None:  # the temp file holds the new text, but the process "dies" now
        raise KeyboardInterrupt

    monkeypatch.setattr(report_module.os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        write_report(target, sample_report(stage="deploy"))
    assert target.read_bytes() == before
    assert json.loads(before)["stage"] == "merge"
    assert _leftovers(tmp_path) == []


def test_invalid_document_is_not_written(tmp_path: Path) -> None:
    doc = sample_report()
    doc["totals"]["passed"] = -1
    with pytest.raises(ReportError, match=r"\$\.totals\.passed"):
        write_report(tmp_path / "report.json", doc)
    assert list(tmp_path.iterdir()) == []


def test_nan_that_bypassed_build_report_is_refused(tmp_path: Path) -> None:
    doc = sample_report()
    doc["gates"][0]["checks"][0]["value"] = float("nan")
    with pytest.raises(ReportError, match="cannot be written as JSON"):
        write_report(tmp_path / "report.json", doc)
    assert list(tmp_path.iterdir()) == []


# -- reading --------------------------------------------------------------------------------------


def test_read_missing_report(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"report .*nope\.json not found; write one with pytest --modelcheck"):
        read_report(tmp_path / "nope.json")


def test_read_folder_instead_of_report(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="is a folder"):
        read_report(tmp_path)


def test_read_truncated_json(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(sample_report(), indent=2)[:200], encoding="utf-8")
    with pytest.raises(ReportError, match=r"report\.json is not valid JSON \(line \d+, column \d+"):
        read_report(path)


def test_read_wrong_version_names_both_versions(tmp_path: Path) -> None:
    doc = sample_report()
    doc["report_version"] = 2
    path = tmp_path / "report.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ReportError) as info:
        read_report(path)
    assert "report_version 2" in str(info.value)
    assert "reads report_version 1" in str(info.value)
    assert str(path) in str(info.value)


def test_read_schema_mismatch_names_the_file(tmp_path: Path) -> None:
    doc = sample_report()
    del doc["gates"][0]["checks"][1]["status"]
    path = tmp_path / "report.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ReportError, match=r"report .*report\.json at \$\.gates\[0\]\.checks\[1\]: missing"):
        read_report(path)


def test_read_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ReportError, match="top level is a list"):
        read_report(path)


# -- hashing --------------------------------------------------------------------------------------


def test_sha256_file_streams_large_files(tmp_path: Path) -> None:
    payload = os.urandom(3 * (1 << 20) + 17)
    path = tmp_path / "blob.bin"
    path.write_bytes(payload)
    assert sha256_file(path) == hashlib.sha256(payload).hexdigest()


def test_file_records_are_relative_posix_and_sorted(tmp_path: Path) -> None:
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "b.bin").write_bytes(b"bb")
    (root / "a.json").write_bytes(b"{}")
    outside = tmp_path / "other.onnx"
    outside.write_bytes(b"onnx")
    records = file_records(root, [root / "sub" / "b.bin", root / "a.json", outside])
    assert [r["path"] for r in records] == ["a.json", "other.onnx", "sub/b.bin"]
    assert records[0] == {"path": "a.json", "sha256": hashlib.sha256(b"{}").hexdigest(), "size": 2}


# -- environment ----------------------------------------------------------------------------------


def test_environment_outside_git(tmp_path: Path) -> None:
    env = environment(cwd=tmp_path)
    assert env["git"] == {"commit": None, "branch": None, "dirty": None}
    assert isinstance(env["cpu_count"], int)
    assert env["packages"]["numpy"] == np.__version__


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_environment_reads_git_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(key, raising=False)

    def git(*args: str) -> None:
        subprocess.run(
            [
                "git",
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "-c",
                "commit.gpgsign=false",
                *args,
            ],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )

    git("init", "-q", "-b", "feature")
    (tmp_path / "f.txt").write_text("1", encoding="utf-8")
    git("add", "f.txt")
    git("commit", "-q", "-m", "init")
    env = environment(cwd=tmp_path)["git"]
    assert len(env["commit"]) == 40 and env["branch"] == "feature" and env["dirty"] is False
    (tmp_path / "f.txt").write_text("2", encoding="utf-8")
    assert environment(cwd=tmp_path)["git"]["dirty"] is True


NVIDIA_SMI_QUERY = "0, NVIDIA H100 80GB HBM3, 81559, 550.54.15\n1, NVIDIA H100 80GB HBM3, 81559, 550.54.15\n"
NVIDIA_SMI = "| NVIDIA-SMI 550.54.15    Driver Version: 550.54.15    CUDA Version: 12.4     |\n"


def test_environment_records_gpus_from_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_run(command: list[str], cwd: Any) -> str | None:
        calls.append(command)
        if command[0] != "nvidia-smi":
            return None
        return NVIDIA_SMI_QUERY if len(command) > 1 else NVIDIA_SMI

    monkeypatch.setattr(environment_module.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(environment_module, "_run", fake_run)
    env = environment()
    assert env["gpus"] == ["NVIDIA H100 80GB HBM3"] * 2
    assert env["gpu_devices"][1] == {"index": 1, "name": "NVIDIA H100 80GB HBM3", "memory_mb": 81559}
    assert env["gpu_driver"] == "550.54.15" and env["cuda_driver"] == "12.4"
    assert calls[0][1] == "--query-gpu=index,name,memory.total,driver_version"
    doc = build_report([], stage=None, env=env)
    validate_report(doc, source="test")


def test_environment_asks_torch_only_when_the_run_imported_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    monkeypatch.setattr(environment_module.shutil, "which", lambda name: None)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    env = environment()
    assert env["torch_threads"] is None and env["cuda_runtime"] is None and env["gpu_devices"] == []
    assert "torch" not in sys.modules, "environment() must not import torch"

    props = types.SimpleNamespace(name="Fake GPU", total_memory=16 << 30)
    cuda = types.SimpleNamespace(
        is_available=lambda: True, device_count=lambda: 1, get_device_properties=lambda index: props
    )
    fake = types.SimpleNamespace(get_num_threads=lambda: 3, version=types.SimpleNamespace(cuda="12.8"), cuda=cuda)
    monkeypatch.setitem(sys.modules, "torch", fake)
    env = environment()
    assert env["torch_threads"] == 3 and env["cuda_runtime"] == "12.8"
    assert env["gpus"] == ["Fake GPU"] and env["gpu_devices"] == [{"index": 0, "name": "Fake GPU", "memory_mb": 16384}]
    validate_report(build_report([], stage=None, env=env), source="test")


# -- summary helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.9125, "0.9125"),
        (0.912345, "0.9123"),
        (48.25, "48.25"),
        (1234.5, "1234"),
        (48231.7, "48232"),
        (1.0, "1.0"),
        (40.0, "40.0"),
        (1.5e-5, "1.5e-05"),
        (3, "3"),
        (None, "—"),
        (True, "true"),
        (float("nan"), "nan"),
    ],
)
def test_format_value(value: Any, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize(
    ("threshold", "text"),
    [
        ({"min": 0.9}, ">= 0.9"),
        ({"max": 0.2}, "<= 0.2"),
        ({"min": 0.1, "max": 0.9}, "0.1 .. 0.9"),
        ({"max_ms": 40}, "<= 40 ms"),
        ({"max_mb": 600}, "<= 600 MiB"),
        ({"max_drop": 0.01}, "drop <= 0.01"),
        ({"min_agreement": 0.999, "max_abs_diff": 0.001}, "agreement >= 0.999, abs diff <= 0.001"),
        ({}, "—"),
    ],
)
def test_format_threshold(threshold: dict[str, float], text: str) -> None:
    assert format_threshold(threshold) == text


def test_status_word_separates_warned_from_failed() -> None:
    assert status_word({"status": "failed", "blocking": True}) == "failed"
    assert status_word({"status": "failed", "blocking": False}) == "warned"
    assert status_word({"status": "passed", "blocking": False}) == "passed"


def test_terminal_rows() -> None:
    doc = sample_report()
    broken = GateResult(file="gates/bad.yaml", model={}, data={}, stages={}, checks=[], error="invalid YAML")
    doc["gates"].append(broken.to_dict())
    assert terminal_rows(doc) == [
        ("gates/sentiment.yaml::accuracy", "0.9125 (CI 0.8800–0.9400)", ">= 0.9", "passed"),
        ("gates/sentiment.yaml::macro_f1", "0.8", ">= 0.88", "warned"),
        ("gates/sentiment.yaml::recall", "—", ">= 0.9", "error"),
        ("gates/sentiment.yaml::precision", "—", ">= 0.9", "skipped"),
        ("gates/bad.yaml", "—", "—", "error"),
    ]


def test_markdown_tables_statuses_and_messages() -> None:
    doc = sample_report()
    doc["gates"][0]["checks"].append(check("odd|name", "failed", message="line one\nline | two", value=0.5).to_dict())
    doc["totals"]["failed"] = 1
    text = markdown(doc)
    lines = text.splitlines()
    assert lines[0] == "## ❌ modelcheck: failed (stage `merge`)"
    assert "✅ 1 passed · ❌ 1 failed · ⚠️ 1 warned · 💥 1 error · ❔ 0 inconclusive · ⏭️ 1 skipped" in text
    assert "| check | stages | value | threshold | status |" in lines
    assert "| accuracy | merge, deploy | 0.9125 (CI 0.8800–0.9400) | >= 0.9 | ✅ passed |" in lines
    assert "| macro_f1 | deploy | 0.8 | >= 0.88 | ⚠️ warned |" in lines
    assert "| recall | merge, deploy | — | >= 0.9 | 💥 error |" in lines
    assert "| precision | — | — | >= 0.9 | ⏭️ skipped |" in lines
    assert "| odd\\|name | — | 0.5 | >= 0.9 | ❌ failed |" in lines
    assert "- ⚠️ **macro_f1** (warned): f1 0.800 &lt; min 0.88 (n=400)" in lines
    assert "- 💥 **recall** (error): no positive labels" in lines
    assert "- ❌ **odd\\|name** (failed): line one line \\| two" in lines
    assert not any("**accuracy**" in line or "**precision**" in line for line in lines)
    # provenance, collapsed
    assert "<details><summary>Models, data and environment</summary>" in lines
    assert "  - `model.safetensors` sha256 `cccccccccccc`, 1.2 KiB" in lines
    assert any("sha256 `dddddddddddd`" in line for line in lines)
    assert "| git | `aaaaaaaaaaaa` on `main` |" in lines
    assert lines[-1] == "</details>"


def test_markdown_headline_passed_and_inconclusive() -> None:
    ok = build_report([gate([check("accuracy")])], stage=None, env=ENV)
    assert markdown(ok).startswith("## ✅ modelcheck: passed\n")
    errored = build_report([gate([check("accuracy", "error", value=None)])], stage="deploy", env=ENV)
    assert markdown(errored).startswith("## 💥 modelcheck: inconclusive (stage `deploy`)\n")
    unloadable = gate([check("accuracy", "error", value=None, message="model gone")], error="model gone")
    assert markdown(build_report([unloadable], stage=None, env=ENV)).count("model gone") == 1
    broken = GateResult(file="gates/bad.yaml", model={}, data={}, stages={}, checks=[], error="bad | yaml")
    text = markdown(build_report([broken], stage=None, env=ENV))
    assert "> 💥 **the gate could not run:** bad \\| yaml" in text
    assert "- not run (see the error above)" in text
