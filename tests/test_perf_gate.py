"""Latency and memory checks in gate files, end to end through pytest, on models with planted costs.

The planted effects are large (a 4 ms busy-wait against a ~0.1 ms model, 200 MB against nothing), so
the verdicts hold on a loaded 2-core runner; the statistics themselves are tested in test_latency.py.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from typing import Any

import pytest

from modelcheck.cli import main
from modelcheck.report.document import read_report

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("frameworks_imported_once")]


GATE = """\
version: 1
model:
  id: planted
  source: "planted_models:{source}"
  backend: torch
  task: tabular-classification
data:
  source: ../data/table.csv
  input: [a, b, c, d]
  label: y
checks:
  - name: accuracy
    metric: accuracy
    min: 0.0
{checks}
"""

FAST = "min_time: 0.3, min_iterations: 20"


@pytest.fixture()
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("PYTHONPATH", raising=False)  # isolate: true passes on this process's import path
    rows = "\n".join(f"{i % 7},{i % 5},{i % 3},{i % 2},{i % 2}" for i in range(40))
    (pytester.path / "data").mkdir()
    (pytester.path / "data" / "table.csv").write_text("a,b,c,d,y\n" + rows + "\n")
    (pytester.path / "gates").mkdir()
    monkeypatch.chdir(pytester.path)
    return pytester


def gate(project: pytest.Pytester, checks: str, source: str = "fast") -> None:
    text = GATE.format(source=source, checks=textwrap.indent(textwrap.dedent(checks), "  "))
    (project.path / "gates" / "planted.yaml").write_text(text)


def checks_of(project: pytest.Pytester) -> dict[str, dict]:
    report = read_report(project.path / "out.json")
    return {check["name"]: check for check in report["gates"][0]["checks"]}


def test_latency_is_measured_with_pinned_threads_and_reported(project: pytest.Pytester) -> None:
    import torch

    gate(project, f"- {{name: p95, kind: latency, max_ms: 1000, {FAST}}}")
    threads_before = torch.get_num_threads()
    project.runpytest("--modelcheck", "--modelcheck-report", "out.json").assert_outcomes(passed=2)
    assert torch.get_num_threads() == threads_before, "thread settings are restored after timing"

    check = checks_of(project)["p95"]
    latency = check["details"]["latency"]
    assert check["status"] == "passed" and check["threshold"] == {"max_ms": 1000}
    assert latency["n"] >= 20 and latency["timed_s"] >= 0.3 and check["n"] == latency["n"]
    assert set(latency["percentiles_ms"]) == {"p50", "p90", "p95", "p99"}
    assert check["value"] == latency["percentiles_ms"]["p95"] == latency["value_ms"]
    assert check["ci"][0] <= check["value"] <= check["ci"][1]
    assert latency["threads"]["requested"] == 1 and latency["threads"]["torch"] == 1
    assert (latency["device"], latency["timer"], latency["batch_size"], latency["inputs"]) == (
        "cpu",
        "perf_counter",
        1,
        "data",
    )
    assert latency["warmup_calls"] >= 10 and latency["stdev_ms"] >= 0
    assert latency["wall_s"] >= latency["timed_s"]


def test_a_planted_slowdown_fails_max_ms_and_max_ratio(project: pytest.Pytester) -> None:
    gate(
        project,
        f"""\
        - {{name: p95_under_1ms, kind: latency, max_ms: 1, {FAST}}}
        - {{name: no_slower_than_main, kind: latency, baseline_model: "planted_models:fast", max_ratio: 1.10, {FAST}}}
        """,
        source="slow",
    )
    result = project.runpytest("--modelcheck", "--modelcheck-report", "out.json")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*p95 latency * ms > 1 ms (n=*, 98.75% CI *–*)*",  # 95% over the up to 4 looks
            "*p95 latency ratio * > max_ratio 1.1 against baseline_model planted_models:fast (* ms vs * ms, n=* each, "
            "98.75% CI *, interleaved in * rounds)*",
        ]
    )
    ratio = checks_of(project)["no_slower_than_main"]
    comparison = ratio["details"]["comparison"]
    assert ratio["value"] == comparison["ratio"] > 3 and ratio["ci"][0] > 1.10
    assert comparison["rounds"] >= 10 and not comparison["self_test"]
    assert comparison["baseline"]["percentiles_ms"]["p95"] < comparison["candidate"]["percentiles_ms"]["p95"]


def test_the_faster_model_passes_against_a_slower_baseline(project: pytest.Pytester) -> None:
    gate(project, f"- {{name: ratio, kind: latency, baseline_model: 'planted_models:slow', max_ratio: 1.1, {FAST}}}")
    project.runpytest("--modelcheck", "--modelcheck-report", "out.json").assert_outcomes(passed=2)
    assert checks_of(project)["ratio"]["ci"][1] < 1.0


def test_a_straddling_interval_is_inconclusive_unless_the_gate_says_otherwise(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the module pytest's run will use (an earlier in-process run may have left a stale one on the package)
    perf_check = importlib.import_module("modelcheck.checks.latency")
    latency = importlib.import_module("modelcheck.measure.timing")

    def straddling(*args: object, **kwargs: object) -> Any:
        measured = latency.compare_latency(*args, **kwargs)  # type: ignore[arg-type]
        return latency.LatencyComparison(
            measured.candidate, measured.baseline, 1.08, (1.02, 1.15), 10, 1, self_test=measured.self_test
        )

    monkeypatch.setattr(perf_check, "compare_latency", straddling)
    checks = "\n".join(
        f"- {{name: {name}, kind: latency, baseline_model: self, max_ratio: 1.1, {FAST}{extra}}}"
        for name, extra in (("default", ""), ("estimate", ", on_uncertain: estimate"), ("fail", ", on_uncertain: fail"))
    )
    gate(project, checks)
    result = project.runpytest("--modelcheck", "--modelcheck-report", "out.json", "-rs")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*p95 latency ratio 1.080 vs max_ratio 1.1 against itself (A/A) (*); noise floor ±15.0% (the interval "
            "straddles the bound; judged by on_uncertain: fail)",
            "*inconclusive: p95 latency ratio 1.080 vs max_ratio 1.1 against itself (A/A)*±15.0%*straddles*",
        ]
    )
    statuses = {name: check["status"] for name, check in checks_of(project).items()}
    assert statuses == {"accuracy": "passed", "default": "inconclusive", "estimate": "passed", "fail": "failed"}
    assert main(["gate", "--stage", "merge", "out.json"]) == 1  # a failure outranks the inconclusive check
    gate(project, checks.splitlines()[0])
    project.runpytest("--modelcheck", "--modelcheck-report", "out.json").assert_outcomes(passed=1, skipped=1)
    assert main(["gate", "--stage", "merge", "out.json"]) == 3, "inconclusive: the gate CLI exits 3"


def test_planted_allocation_is_measured_and_judged(project: pytest.Pytester) -> None:
    gate(
        project,
        """\
        - name: under_100mb
          kind: memory
          max_mb: 100
        - name: under_400mb
          kind: memory
          max_mb: 400
        - name: vs_peckish
          kind: memory
          baseline_model: "planted_models:peckish"
          max_ratio: 2
        """,
        source="hungry",
    )
    result = project.runpytest("--modelcheck", "--modelcheck-report", "out.json")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*peak memory 2?? MiB during one predict of * > 100 MiB (CPU peak RSS above the phase's start, *",
            "*peak memory ratio * > max_ratio 2 vs baseline_model planted_models:peckish*",
        ]
    )
    checks = checks_of(project)
    memory = checks["under_400mb"]["details"]["memory"]
    assert checks["under_400mb"]["status"] == "passed"
    assert 190 <= memory["peak_mb"] <= 215, "200 MB planted (plus the batch's own few MB)"
    assert memory["cpu"]["peak_rss"] >= memory["cpu"]["rss_before"] + memory["peak_mb"] - 0.01
    assert memory["device"] == "cpu" and memory["process"] == "this process"
    assert 3 <= checks["vs_peckish"]["details"]["ratio"] <= 4.5


def test_isolated_load_runs_in_a_fresh_process(project: pytest.Pytester) -> None:
    gate(project, "- name: load\n  kind: memory\n  phase: load\n  isolate: true\n  max_mb: 2000")
    project.runpytest("--modelcheck", "--modelcheck-report", "out.json").assert_outcomes(passed=2)
    memory = checks_of(project)["load"]["details"]["memory"]
    assert (memory["process"], memory["phase"], memory["device"]) == ("fresh process", "load", "cpu")
    assert memory["peak_mb"] >= 0 and memory["method"]


def test_bad_baseline_or_no_subprocess_is_an_error_of_that_check_only(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate(
        project,
        """\
        - name: ratio
          kind: latency
          baseline_model: "planted_models:no_such_model"
          max_ratio: 1.1
        - name: isolated
          kind: memory
          isolate: true
          max_mb: 500
        """,
    )
    monkeypatch.setattr(sys, "executable", str(project.path / "no-such-python"))
    result = project.runpytest("--modelcheck", "--modelcheck-report", "out.json")
    result.assert_outcomes(passed=1, failed=2)
    checks = checks_of(project)
    assert checks["accuracy"]["status"] == "passed"
    assert checks["ratio"]["status"] == "error"
    assert checks["ratio"]["message"].startswith("baseline_model planted_models:no_such_model cannot be loaded: ")
    assert "has no attribute 'no_such_model'" in checks["ratio"]["message"]
    assert checks["isolated"]["status"] == "error"
    assert (
        "isolate: true measures the model's inference phase in a fresh Python process, and none could start"
        in (checks["isolated"]["message"])
    )
    assert "set isolate: false" in checks["isolated"]["message"]
    assert main(["gate", "--stage", "merge", "out.json"]) == 3


def cuda_missing() -> str | None:
    import torch

    return None if torch.cuda.is_available() else "needs a CUDA GPU (torch.cuda.is_available() is False here)"


def test_on_cuda_latency_uses_cuda_events_and_memory_the_cuda_allocator(project: pytest.Pytester) -> None:
    reason = cuda_missing()
    if reason:
        pytest.skip(reason)
    gate(
        project, f"- {{name: p95, kind: latency, max_ms: 1000, {FAST}}}\n- {{name: memory, kind: memory, max_mb: 1000}}"
    )
    (project.path / "gates" / "planted.yaml").write_text(
        (project.path / "gates" / "planted.yaml").read_text().replace("task:", "device: cuda\n  task:")
    )
    project.runpytest("--modelcheck", "--modelcheck-report", "out.json").assert_outcomes(passed=3)
    checks = checks_of(project)
    assert checks["p95"]["details"]["latency"]["timer"] == "cuda-events"
    assert checks["p95"]["details"]["latency"]["device"].startswith("cuda")
    memory = checks["memory"]["details"]["memory"]
    assert memory["method"] == "torch.cuda.max_memory_allocated" and memory["cuda"]["peak_allocated"] >= 0


def test_a_ratio_needs_both_models_loaded_at_once(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nmodelcheck_max_loaded_models = 1\n")
    gate(project, f"- {{name: ratio, kind: latency, baseline_model: 'planted_models:slow', max_ratio: 1.1, {FAST}}}")
    project.runpytest("--modelcheck", "--modelcheck-report", "out.json").assert_outcomes(passed=1, failed=1)
    check = checks_of(project)["ratio"]
    assert check["status"] == "error"
    assert "modelcheck_max_loaded_models is 1; set it to 2 or more" in check["message"]
