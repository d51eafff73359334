"""Latency measurement: warm-up, the stopping rule, percentiles and their intervals, interleaved comparison.

The statistics and the control flow are tested with a scripted timer (no clock: every call "takes" the
milliseconds a function of its position says), so they are exact and cannot flake. The few tests on the
real clock plant effects far larger than a loaded 2-core runner's noise (a 5 ms busy-wait against a
0.25 ms one, judged on the median), and assert nothing about how fast anything runs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import pytest

from modelcheck.measure import timing as latency
from modelcheck.measure.latency_result import ms_text
from modelcheck.measure.timing import (
    LatencyPlan,
    LatencyResult,
    compare_latency,
    host_timer,
    judge_bound,
    measure_latency,
    timer_for,
)

#: A plan that asks for nothing but the minimum number of rounds (tests set what they look at).
QUICK = LatencyPlan(min_iterations=1, min_time=0.0, warmup_max=10)


class Scripted:
    """Models that record their calls, and a timer that says how long each call "took" without a clock.

    ``duration(name, index, order)``: the milliseconds of the call of model ``name`` with input ``index``,
    the ``order``-th call of the whole run (0-based, warm-up included): a function of the machine's
    state over time (``order``) and of the inputs (``index``).
    """

    def __init__(self, duration: Callable[[str, int, int], float]) -> None:
        self.duration = duration
        self.log: list[tuple[str, int]] = []
        self.returned: list[float] = []

    def model(self, name: str) -> Callable[[int], object]:
        def call(index: int) -> None:
            self.log.append((name, index))

        return call

    def timer(self, call: Callable[[], object]) -> float:
        call()
        name, index = self.log[-1]
        ms = float(self.duration(name, index, len(self.log) - 1))
        self.returned.append(ms)
        return ms


def noise(n: int = 20_000, sigma: float = 0.2, seed: int = 1) -> np.ndarray:
    """Multiplicative machine noise around 1 (lognormal), one value per call of a run."""
    return np.random.default_rng(seed).lognormal(0.0, sigma, n)


def busy(ms: float) -> Callable[[int], None]:
    """A call that keeps the CPU busy for ``ms`` milliseconds of wall time (never less)."""

    def call(index: int) -> None:
        end = time.perf_counter_ns() + int(ms * 1e6)
        while time.perf_counter_ns() < end:
            pass

    return call


# -- warm-up ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "slow",
    [
        pytest.param([50.0], id="one-compile-call"),
        pytest.param([50.0 / (k + 1) for k in range(20)], id="decaying-over-20-calls"),
        pytest.param([50.0] * 3 + [20.0] * 4 + [5.0] * 4, id="steps"),
        pytest.param([50.0] * 10, id="slow-for-two-whole-windows"),
    ],
)
def test_warm_up_covers_the_slow_calls_and_settles(slow: list[float]) -> None:
    fake = Scripted(lambda name, index, order: slow[order] if order < len(slow) else 1.0)
    result = measure_latency(fake.model("m"), plan=dataclasses.replace(QUICK, warmup_max=100), timer=fake.timer)
    assert result.settled
    assert result.warmup_calls >= len(slow)
    # Settling is seen three windows after the timings settle (three medians in agreement), not later.
    assert result.warmup_calls <= len(slow) + 3 * latency._WINDOW
    # None of the slow calls is among the timed ones, and every call was timed once.
    assert fake.returned[: len(slow)] == slow
    assert result.timings_ms.max() == 1.0 and result.n == len(fake.returned) - result.warmup_calls
    assert result.to_dict()["warmup_calls"] == result.warmup_calls and result.to_dict()["warmup_settled"]


def test_never_settling_timings_stop_at_warmup_max() -> None:
    fake = Scripted(lambda name, index, order: 1.2 ** (order // latency._WINDOW))  # each window 20% slower
    plan = dataclasses.replace(QUICK, warmup_max=40)
    result = measure_latency(fake.model("m"), plan=plan, timer=fake.timer)
    assert not result.settled
    assert result.warmup_calls == plan.warmup_max
    assert result.n == len(fake.returned) - plan.warmup_max


def test_warm_up_stops_at_warmup_time() -> None:
    fake = Scripted(lambda name, index, order: 1.2 ** (order // latency._WINDOW))
    result = measure_latency(fake.model("m"), plan=dataclasses.replace(QUICK, warmup_time=0.0), timer=fake.timer)
    assert not result.settled
    assert result.warmup_calls == latency._WINDOW  # one window, then the time is up


# -- the stopping rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ms", "min_iterations", "min_time"),
    [
        pytest.param(1.0, 50, 0.305, id="min_time-bound"),
        pytest.param(1.0, 250, 0.0, id="min_iterations-bound"),
        pytest.param(4.0, 1, 0.0, id="min-rounds-bound"),
        pytest.param(50.0, 12, 0.1, id="slow-call-one-per-round"),
    ],
)
def test_timing_stops_at_the_first_round_that_meets_every_minimum(
    ms: float, min_iterations: int, min_time: float
) -> None:
    plan = dataclasses.replace(QUICK, min_iterations=min_iterations, min_time=min_time)
    fake = Scripted(lambda name, index, order: ms)
    comparison = compare_latency(fake.model("a"), fake.model("b"), plan=plan, timer=fake.timer)
    per_round, rounds = comparison.calls_per_round, comparison.rounds
    assert 1 <= per_round <= 10 and abs(per_round * ms - 20) <= max(ms, 10)  # rounds of about 20 ms
    for result in (comparison.candidate, comparison.baseline):
        assert not result.cut_short
        assert result.n == rounds * per_round
        assert result.n >= min_iterations and result.timed_s >= min_time and rounds >= latency._MIN_ROUNDS

    def enough(r: int) -> bool:
        return r * per_round >= min_iterations and r * per_round * ms / 1000 >= min_time and r >= latency._MIN_ROUNDS

    assert enough(rounds) and not enough(rounds - 1)

    fake = Scripted(lambda name, index, order: ms)
    single = measure_latency(fake.model("a"), plan=plan, timer=fake.timer)
    assert single.n == comparison.candidate.n and not single.cut_short


def test_min_time_counts_for_the_faster_model_too() -> None:
    plan = dataclasses.replace(QUICK, min_time=0.198)
    fake = Scripted(lambda name, index, order: 1.0 if name == "fast" else 4.0)
    comparison = compare_latency(fake.model("fast"), fake.model("slow"), plan=plan, timer=fake.timer)
    assert comparison.candidate.timed_s >= plan.min_time
    assert comparison.baseline.timed_s > 3 * comparison.candidate.timed_s  # the slow one has far more
    assert (comparison.rounds - 1) * comparison.calls_per_round * 1.0 / 1000 < plan.min_time


def test_max_time_cuts_the_timing_short_and_says_so() -> None:
    plan = LatencyPlan(min_iterations=100_000, min_time=0.0, max_time=0.0, warmup_max=10)
    fake = Scripted(lambda name, index, order: 1.0)
    comparison = compare_latency(fake.model("a"), fake.model("b"), plan=plan, timer=fake.timer)
    assert comparison.rounds >= 2  # still enough rounds to resample
    for result in (comparison.candidate, comparison.baseline):
        assert result.cut_short and result.to_dict()["cut_short"]
        assert result.n < plan.min_iterations
        assert result.ci[0] <= result.value_ms <= result.ci[1]


def test_max_time_on_the_real_clock() -> None:
    plan = LatencyPlan(min_iterations=100_000, min_time=0.0, max_time=0.2, warmup_max=10)
    result = measure_latency(busy(2.0), plan=plan)
    assert result.cut_short
    assert 2 <= result.n < plan.min_iterations
    assert result.wall_s >= plan.max_time and result.timed_s <= result.wall_s


def test_enough_calls_are_not_cut_short() -> None:
    fake = Scripted(lambda name, index, order: 1.0)
    result = measure_latency(fake.model("m"), plan=QUICK, timer=fake.timer)
    assert not result.cut_short and not result.to_dict()["cut_short"]


# -- the figures -------------------------------------------------------------------------------------


def test_timed_calls_use_successive_inputs() -> None:
    fake = Scripted(lambda name, index, order: 1.0)
    result = measure_latency(fake.model("m"), plan=QUICK, timer=fake.timer)
    timed = [index for _, index in fake.log[result.warmup_calls :]]
    assert timed == list(range(timed[0], timed[0] + result.n))


def test_percentiles_and_moments_are_those_of_the_timed_calls() -> None:
    jitter = noise(sigma=0.3)
    fake = Scripted(lambda name, index, order: 5.0 * jitter[order])
    result = measure_latency(fake.model("m"), plan=dataclasses.replace(QUICK, min_iterations=200), timer=fake.timer)
    timed = fake.returned[result.warmup_calls :]
    assert len(timed) == result.n >= 200
    np.testing.assert_array_equal(result.timings_ms, timed)  # in call order
    cuts = statistics.quantiles(timed, n=100, method="inclusive")  # numpy's default (linear) percentiles
    for q, value in [(50, result.p50_ms), (90, result.p90_ms), (95, result.p95_ms), (99, result.p99_ms)]:
        assert value == pytest.approx(cuts[q - 1], rel=1e-12)
        assert value == pytest.approx(float(np.percentile(timed, q)), rel=1e-12)
    assert result.value_ms == result.p95_ms  # the plan's percentile is the judged one
    assert result.mean_ms == pytest.approx(statistics.fmean(timed), rel=1e-12)
    assert result.stdev_ms == pytest.approx(statistics.stdev(timed), rel=1e-12)
    assert result.timed_s == pytest.approx(math.fsum(timed) / 1000, rel=1e-12)


def test_judged_percentile_follows_the_plan() -> None:
    jitter = noise()
    fake = Scripted(lambda name, index, order: jitter[order])
    result = measure_latency(fake.model("m"), plan=dataclasses.replace(QUICK, percentile=50.0), timer=fake.timer)
    assert result.value_ms == result.p50_ms < result.p95_ms
    assert result.describe().startswith("p50 latency ")


def test_to_dict_holds_the_figures_not_the_timings() -> None:
    jitter = noise()
    fake = Scripted(lambda name, index, order: 2.0 * jitter[order])
    result = measure_latency(fake.model("m"), plan=QUICK, timer=fake.timer, name="scripted")
    result = dataclasses.replace(result, context={"device": "cpu", "batch_size": 4})
    figures = result.to_dict()
    assert figures["n"] == result.n and figures["percentile"] == 95.0
    assert figures["value_ms"] == result.value_ms and figures["ci_ms"] == list(result.ci)
    assert figures["percentiles_ms"] == {
        "p50": result.p50_ms,
        "p90": result.p90_ms,
        "p95": result.p95_ms,
        "p99": result.p99_ms,
    }
    assert figures["mean_ms"] == result.mean_ms and figures["stdev_ms"] == result.stdev_ms
    assert (figures["min_ms"], figures["max_ms"]) == (min(result.timings_ms), max(result.timings_ms))
    assert figures["timed_s"] == result.timed_s and figures["wall_s"] == result.wall_s > 0
    assert figures["timer"] == "scripted" and figures["confidence"] == 0.95
    assert (figures["device"], figures["batch_size"]) == ("cpu", 4)  # the caller's context rides along
    assert json.loads(json.dumps(figures)) == figures  # plain JSON, no numpy
    assert not any(isinstance(v, list) and len(v) == result.n for v in figures.values())


def test_describe_is_the_judged_percentile_with_its_sample() -> None:
    jitter = noise()
    fake = Scripted(lambda name, index, order: 48.0 * jitter[order])
    result = measure_latency(fake.model("m"), plan=dataclasses.replace(QUICK, min_iterations=200), timer=fake.timer)
    match = re.fullmatch(r"p95 latency (\S+) ms \(n=(\d+), 95% CI (\S+)–(\S+)\)", result.describe())
    assert match, result.describe()
    value, n, low, high = match.groups()
    assert int(n) == result.n
    for shown, exact in [(value, result.value_ms), (low, result.ci[0]), (high, result.ci[1])]:
        assert float(shown) == pytest.approx(exact, rel=5e-3)


@pytest.mark.parametrize(
    ("percentile", "value", "ci", "confidence", "text"),
    [
        (95.0, 48.2, (46.94, 49.81), 0.95, "p95 latency 48.2 ms (n=200, 95% CI 46.9–49.8)"),
        (50.0, 1.0, (0.99951, 1.0049), 0.9, "p50 latency 1.00 ms (n=200, 90% CI 1.000–1.005)"),
        (99.9, 0.01234, (0.0121, 0.0125), 0.99, "p99.9 latency 0.0123 ms (n=200, 99% CI 0.0121–0.0125)"),
        (95.0, 123.4, (98.76, 150.2), 0.95, "p95 latency 123 ms (n=200, 95% CI 99–150)"),
    ],
)
def test_describe_shows_three_significant_figures(
    percentile: float, value: float, ci: tuple[float, float], confidence: float, text: str
) -> None:
    result = LatencyResult(
        timings_ms=np.full(200, value),
        percentile=percentile,
        ci=ci,
        confidence=confidence,
        warmup_calls=10,
        settled=True,
        timer="perf_counter",
    )
    assert result.describe() == text


def test_timer_names() -> None:
    fake = Scripted(lambda name, index, order: 1.0)
    assert measure_latency(busy(0.05), plan=QUICK).timer == "perf_counter"
    assert measure_latency(fake.model("m"), plan=QUICK, timer=fake.timer, name="cuda-events").timer == "cuda-events"


# -- the bootstrap interval --------------------------------------------------------------------------


def measured(n: int, *, seed: int = 0, confidence: float = 0.95) -> LatencyResult:
    """p95 of ``n`` timed calls (rounds of 10) of a noisy 2 ms call, the noise fixed."""
    jitter = noise()
    fake = Scripted(lambda name, index, order: 2.0 * jitter[order])
    plan = dataclasses.replace(QUICK, min_iterations=n, seed=seed, confidence=confidence)
    return measure_latency(fake.model("m"), plan=plan, timer=fake.timer)


def test_interval_contains_the_estimate_and_narrows_with_more_calls() -> None:
    small, large = measured(100), measured(2000)
    for result in (small, large):
        assert result.ci[0] < result.value_ms < result.ci[1]
    width = [r.ci[1] - r.ci[0] for r in (small, large)]
    assert width[1] < 0.6 * width[0]  # ~1/sqrt(n): 20 times the calls, about a quarter of the width


def test_interval_is_reproducible_for_a_seed_and_close_for_another() -> None:
    first, again, other = measured(300, seed=0), measured(300, seed=0), measured(300, seed=1)
    np.testing.assert_array_equal(first.timings_ms, other.timings_ms)  # the same data
    assert first.ci == again.ci
    assert first.ci != other.ci
    width = first.ci[1] - first.ci[0]
    assert abs(first.ci[0] - other.ci[0]) < 0.25 * width and abs(first.ci[1] - other.ci[1]) < 0.25 * width


def test_higher_confidence_gives_a_wider_interval() -> None:
    low, mid, high = (measured(300, confidence=c) for c in (0.8, 0.9, 0.99))
    assert high.ci[0] < mid.ci[0] < low.ci[0] <= low.ci[1] < mid.ci[1] < high.ci[1]
    assert high.sample().endswith(f"99% CI {ms_text(high.ci[0])}–{ms_text(high.ci[1])}")


# -- interleaved comparison --------------------------------------------------------------------------


def test_rounds_alternate_abba_with_the_same_inputs_in_a_round() -> None:
    fake = Scripted(lambda name, index, order: 4.0 if name == "cand" else 3.0)
    comparison = compare_latency(fake.model("cand"), fake.model("base"), plan=QUICK, timer=fake.timer)
    warm = comparison.candidate.warmup_calls
    assert warm == comparison.baseline.warmup_calls
    # Warm-up: the two models in turn, the same input each turn.
    assert fake.log[: 2 * warm] == [(name, i) for i in range(warm) for name in ("cand", "base")]
    timed, per_round = fake.log[2 * warm :], comparison.calls_per_round
    assert len(timed) == 2 * per_round * comparison.rounds and comparison.rounds >= 10
    firsts = []
    for r in range(comparison.rounds):
        block = timed[2 * per_round * r : 2 * per_round * (r + 1)]
        first, second = block[:per_round], block[per_round:]
        assert len({name for name, _ in first}) == 1 and len({name for name, _ in second}) == 1
        assert first[0][0] != second[0][0]
        assert [i for _, i in first] == [i for _, i in second]  # the same inputs for both models
        firsts.append(first[0][0])
    assert firsts == ["cand" if r % 2 == 0 else "base" for r in range(comparison.rounds)]  # A B | B A | A B ...
    inputs = [i for _, i in timed[::per_round]]
    assert len(set(inputs)) == comparison.rounds  # each round its own inputs


def test_planted_slowdown_is_measured_with_an_interval_that_excludes_no_change() -> None:
    jitter = noise()
    fake = Scripted(lambda name, index, order: (2.0 if name == "slow" else 1.0) * jitter[order])
    comparison = compare_latency(
        fake.model("slow"), fake.model("fast"), plan=dataclasses.replace(QUICK, min_time=1.0), timer=fake.timer
    )
    assert comparison.ratio == pytest.approx(2.0, rel=0.05)
    assert comparison.ci[0] <= 2.0 <= comparison.ci[1]
    assert comparison.ci[0] > 1.1
    assert comparison.ratio == comparison.candidate.value_ms / comparison.baseline.value_ms
    assert judge_bound(comparison.ratio, comparison.ci, 1.1) == "failed"


def test_a_model_against_itself_shows_the_noise_floor() -> None:
    jitter = noise(sigma=0.05)
    fake = Scripted(lambda name, index, order: 3.0 * jitter[order])
    model = fake.model("m")
    plan = dataclasses.replace(QUICK, min_time=1.0)
    same = compare_latency(model, model, plan=plan, timer=fake.timer, self_test=True)
    assert same.self_test and same.to_dict()["self_test"]
    assert same.ci[0] <= 1.0 <= same.ci[1]
    assert 0 < same.noise_floor < 0.05
    assert same.to_dict()["noise_floor"] == same.noise_floor
    assert judge_bound(same.ratio, same.ci, 1.1) == "passed"
    # A slowdown twice the floor stands out of the same noise.
    slowdown = 1 + 2 * same.noise_floor
    fake = Scripted(lambda name, index, order: (slowdown if name == "slow" else 1.0) * 3.0 * jitter[order])
    slower = compare_latency(fake.model("slow"), fake.model("m"), plan=plan, timer=fake.timer)
    assert slower.ci[0] > 1.0


def test_drift_that_slows_both_models_cancels_when_interleaved_not_when_sequential() -> None:
    jitter, plan = noise(), dataclasses.replace(QUICK, min_time=0.3)

    def drifting(name: str, index: int, order: int) -> float:
        return float(jitter[order]) * (1 + 2 * order / 600)  # the runner gets ~3 times slower over the run

    fake = Scripted(drifting)
    interleaved = compare_latency(fake.model("a"), fake.model("b"), plan=plan, timer=fake.timer)
    assert interleaved.ci[0] <= 1.0 <= interleaved.ci[1]
    # The same two (equally fast) models timed one after the other: the later one looks slower.
    fake = Scripted(drifting)
    first = measure_latency(fake.model("a"), plan=plan, timer=fake.timer)
    second = measure_latency(fake.model("b"), plan=plan, timer=fake.timer)
    sequential = second.value_ms / first.value_ms
    assert sequential > 1.2 and sequential > interleaved.ci[1]


def test_comparison_describe_and_to_dict() -> None:
    jitter = noise()
    fake = Scripted(lambda name, index, order: (1.5 if name == "cand" else 1.0) * jitter[order])
    comparison = compare_latency(fake.model("cand"), fake.model("base"), plan=QUICK, timer=fake.timer)
    text = comparison.describe()
    match = re.fullmatch(
        r"p95 latency ratio (\S+) \((\S+) ms vs (\S+) ms, n=(\d+) each, 95% CI (\S+)–(\S+), .*?(\d+) rounds\)", text
    )
    assert match, text
    ratio, cand, base, n, low, high, rounds = match.groups()
    assert float(ratio) == pytest.approx(comparison.ratio, abs=5e-3)
    assert float(cand) == pytest.approx(comparison.candidate.value_ms, rel=5e-3)
    assert float(base) == pytest.approx(comparison.baseline.value_ms, rel=5e-3)
    assert (float(low), float(high)) == pytest.approx(comparison.ci, abs=5e-3)
    assert (int(n), int(rounds)) == (comparison.candidate.n, comparison.rounds)
    figures = comparison.to_dict()
    assert figures["ratio"] == comparison.ratio and figures["ratio_ci"] == list(comparison.ci)
    assert (figures["rounds"], figures["calls_per_round"]) == (comparison.rounds, comparison.calls_per_round)
    assert figures["candidate"] == comparison.candidate.to_dict()
    assert figures["baseline"] == comparison.baseline.to_dict()
    assert json.loads(json.dumps(figures)) == figures


def test_interleaved_real_calls_tell_5_ms_from_a_quarter_ms() -> None:
    # Judged on the median: a loaded runner preempts most 5 ms calls (never shortening them) but few
    # 0.25 ms ones. (1 ms against 3 ms, at p95 or even p50, does not hold up with 4 busy processes on 2 cores.)
    plan = LatencyPlan(percentile=50.0, min_iterations=40, min_time=0.0, warmup_max=10)
    comparison = compare_latency(busy(5.0), busy(0.25), plan=plan)
    assert comparison.ci[0] > 1.5, comparison.describe()
    assert judge_bound(comparison.ratio, comparison.ci, 1.5) == "failed"
    assert comparison.candidate.timer == "perf_counter"
    # The host clock times the whole call: never less than the busy-wait.
    assert comparison.candidate.timings_ms.min() >= 5.0 and comparison.baseline.timings_ms.min() >= 0.25


# -- judging against a bound -------------------------------------------------------------------------

ON_UNCERTAIN = ["inconclusive", "estimate", "pass", "fail"]


@pytest.mark.parametrize("on_uncertain", ON_UNCERTAIN)
def test_interval_under_the_bound_passes_and_over_it_fails(on_uncertain: str) -> None:
    assert judge_bound(40.0, (38.0, 45.0), 50.0, on_uncertain=on_uncertain) == "passed"
    assert judge_bound(40.0, (38.0, 50.0), 50.0, on_uncertain=on_uncertain) == "passed"  # at the bound
    assert judge_bound(60.0, (55.0, 62.0), 50.0, on_uncertain=on_uncertain) == "failed"


@pytest.mark.parametrize(
    ("on_uncertain", "value_under", "value_over"),
    [
        ("inconclusive", "inconclusive", "inconclusive"),
        ("estimate", "passed", "failed"),
        ("pass", "passed", "passed"),
        ("fail", "failed", "failed"),
    ],
)
def test_interval_straddling_the_bound(on_uncertain: str, value_under: str, value_over: str) -> None:
    assert judge_bound(48.0, (46.0, 52.0), 50.0, on_uncertain=on_uncertain) == value_under
    assert judge_bound(51.0, (46.0, 52.0), 50.0, on_uncertain=on_uncertain) == value_over
    assert judge_bound(50.0, (50.0, 52.0), 50.0, on_uncertain=on_uncertain) == value_under  # lower end at it


def test_straddling_is_inconclusive_by_default() -> None:
    assert judge_bound(48.0, (46.0, 52.0), 50.0) == "inconclusive"


# -- timers ------------------------------------------------------------------------------------------


def test_host_timer_times_the_call_in_milliseconds() -> None:
    elapsed = host_timer(lambda: busy(5.0)(0))
    assert 5.0 <= elapsed < 5_000  # never less than the busy-wait; milliseconds, not seconds or microseconds


def test_timer_for_cpu_is_the_host_clock() -> None:
    assert timer_for("cpu") == (host_timer, "perf_counter")


def test_timer_for_cuda_without_torch_is_the_host_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # A CUDA model not driven by torch (ONNX Runtime's run returns when the work is done).
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert timer_for("cuda:0") == (host_timer, "perf_counter")


@pytest.mark.usefixtures("frameworks_imported_once")
def test_timer_for_cuda_with_torch_uses_cuda_events() -> None:
    import torch  # noqa: F401  (timer_for looks for an imported torch)

    timer, name = timer_for("cuda:0")
    assert name == "cuda-events" and timer is not host_timer
    assert timer_for("cpu") == (host_timer, "perf_counter")


@pytest.mark.usefixtures("frameworks_imported_once")
def test_cuda_event_timer_measures_the_gpu_work() -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here: cuda_event_timer needs one to time GPU work")
    device = "cuda:0"
    a = torch.randn(2048, 2048, device=device)

    def work() -> None:
        for _ in range(20):
            a @ a  # ~0.34 TFLOP in all: milliseconds on any GPU, far above launch overhead

    def synchronised_host() -> float:
        torch.cuda.synchronize(device)
        start = time.perf_counter_ns()
        work()
        torch.cuda.synchronize(device)
        return (time.perf_counter_ns() - start) / 1e6

    timer, _ = timer_for(device)
    timer(work)  # cuBLAS warm-up
    events = [timer(work) for _ in range(7)]
    host = [synchronised_host() for _ in range(7)]
    assert min(events) > 0
    assert statistics.median(events) == pytest.approx(statistics.median(host), rel=0.25)


def test_a_check_that_knows_its_bound_keeps_timing_while_the_interval_straddles_it() -> None:
    jitter = noise(sigma=0.4, seed=3)  # a noisy machine, and a candidate 20% slower, against a bound of 5%
    fake = Scripted(lambda name, index, order: (1.2 if name == "cand" else 1.0) * jitter[order])
    plan = dataclasses.replace(QUICK, min_iterations=20, percentile=50.0)

    def decided(comparison: latency.LatencyComparison) -> bool:
        return judge_bound(comparison.ratio, comparison.ci, 1.05) != "inconclusive"

    once = compare_latency(fake.model("cand"), fake.model("base"), plan=plan, timer=fake.timer)
    assert (once.candidate.looks, once.candidate.confidence) == (1, 0.95)
    assert judge_bound(once.ratio, once.ci, 1.05) == "inconclusive", "the first look cannot tell"

    fake = Scripted(lambda name, index, order: (1.2 if name == "cand" else 1.0) * jitter[order])
    looked = compare_latency(fake.model("cand"), fake.model("base"), plan=plan, timer=fake.timer, decided=decided)
    assert looked.candidate.looks > 1 and looked.candidate.n > once.candidate.n
    assert looked.candidate.confidence == pytest.approx(1 - 0.05 / len(latency.LOOKS)), "Bonferroni over the looks"
    assert judge_bound(looked.ratio, looked.ci, 1.05) == "failed"
    assert looked.candidate.to_dict()["looks"] == looked.candidate.looks

    # decided at the first look: no more timing than without looks
    fake = Scripted(lambda name, index, order: (3.0 if name == "cand" else 1.0) * jitter[order])
    quick = compare_latency(fake.model("cand"), fake.model("base"), plan=plan, timer=fake.timer, decided=decided)
    assert quick.candidate.looks == 1 and quick.rounds == once.rounds == latency._MIN_ROUNDS
