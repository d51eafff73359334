"""The latency and memory fixtures in hand-written tests: figures, and failures that read like measurements."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("frameworks_imported_once")]

TESTS = Path(__file__).resolve().parent

CONFTEST = """
import numpy as np
import pytest

ROWS = [np.array([i % 7, i % 5, i % 3, i % 2], dtype=np.float32) for i in range(16)]
FAST = {"min_time": 0.3, "min_iterations": 20}


@pytest.fixture()
def load(modelcheck_load):
    return lambda name: modelcheck_load(f"planted_models:{name}", backend="torch", task="tabular-classification")
"""


@pytest.fixture()
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.syspathinsert(TESTS)
    return pytester


def test_latency_fixture_gives_figures_and_fails_like_a_measurement(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        from conftest import FAST, ROWS

        def test_figures(load, modelcheck_latency):
            latency = modelcheck_latency(load("slow"), ROWS, **FAST)
            assert latency.n >= 20 and latency.p50_ms <= latency.p95_ms <= latency.p99_ms
            assert latency.p95_ms > 3.5, "the planted 4 ms busy-wait is in every call"
            assert latency.ci[0] <= latency.p95_ms <= latency.ci[1]
            assert latency.ratio is None
            latency.assert_max(max_ms=1000)

        def test_too_slow(load, modelcheck_latency):
            modelcheck_latency(load("slow"), ROWS, **FAST).assert_max(max_ms=1)

        def test_slower_than_baseline(load, modelcheck_latency):
            latency = modelcheck_latency(load("slow"), ROWS, baseline=load("fast"), **FAST)
            assert latency.ratio > 3 and latency.ratio_ci[0] > 1.1
            latency.assert_max(max_ratio=1.1)

        def test_a_a(load, modelcheck_latency):
            latency = modelcheck_latency(load("fast"), ROWS, baseline="self", percentile=50, **FAST)
            assert latency.comparison.self_test and latency.comparison.noise_floor >= 0
        """
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_too_slow*",
            "p95 latency * ms > 1 ms (n=*, 95% CI *–*)",
            "*test_slower_than_baseline*",
            "p95 latency ratio * > max_ratio 1.1 against baseline_model ? (* ms vs * ms, n=* each, 95% CI *)",
        ]
    )
    result.stdout.no_fnmatch_line("*perf_fixtures.py*")  # the measurement, not a traceback into modelcheck


def test_memory_fixture_measures_inference_and_load(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        from conftest import ROWS

        def test_figures(load, modelcheck_memory):
            hungry = modelcheck_memory(load("hungry"), ROWS, batch_size=1)
            peckish = modelcheck_memory(load("peckish"), ROWS, batch_size=1)
            assert 190 <= hungry.peak_mb <= 215 and 45 <= peckish.peak_mb <= 65
            assert hungry.result.phase == "inference" and hungry.result.device == "cpu"
            hungry.assert_max(max_mb=400)
            hungry.assert_max(baseline=peckish, max_ratio=5)

        def test_too_much(load, modelcheck_memory):
            modelcheck_memory(load("hungry"), ROWS, batch_size=1).assert_max(max_mb=100)

        def test_load_phase(modelcheck_memory):
            loaded = modelcheck_memory.load("planted_models:fast", backend="torch", task="tabular-classification")
            assert loaded.result.phase == "load" and loaded.peak_mb >= 0
        """
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["peak memory 2?? MiB during one predict of * > 100 MiB (CPU peak RSS above the phase's start, inference*"]
    )
