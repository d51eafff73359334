"""Latency measurement that holds up on a noisy CI runner.

- :func:`measure_latency` times one model: warm-up until the timings settle (capped), then at least
  ``min_iterations`` calls and ``min_time`` seconds; percentiles with a bootstrap confidence interval.
- :func:`compare_latency` times two models **interleaved** (alternating rounds, ABBA order, the same
  inputs in the same round), so machine noise hits both alike; their percentile ratio gets a
  confidence interval from resampling whole rounds. The same model against itself is the A/A test:
  the interval says how much the runner's noise alone moves the ratio.

Timing uses ``time.perf_counter_ns`` on the host, or CUDA events with a synchronise on CUDA devices
(:func:`timer_for`); never a bare host clock around asynchronous GPU work. Thread pools are pinned by
the caller (:func:`modelcheck.models.hardware.pinned_threads`). Only numpy is needed here.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Literal, TypeVar

import numpy as np

from modelcheck.measure.latency_result import LatencyComparison, LatencyResult

#: Warm-up ends when the medians of three consecutive windows of calls each moved by at most this share.
SETTLED = 0.10
_WINDOW = 5
_SETTLED_WINDOWS = 3
#: Timed rounds at least, so that resampling rounds gives an interval worth the name.
_MIN_ROUNDS = 10
#: A check that knows its bound keeps timing while the interval straddles it: it looks again at these
#: multiples of ``min_iterations`` and ``min_time`` (within ``max_time``), each look at a Bonferroni-adjusted
#: confidence.
LOOKS = (1, 2, 4, 8)
#: Bootstrap resamples are drawn in blocks of this many (bounds the memory of one block).
_BLOCK = 200

#: ``timer(call)``: run ``call()`` once and return how long it took, in milliseconds.
Timer = Callable[[Callable[[], object]], float]
Verdict = Literal["passed", "failed", "inconclusive"]


@dataclass(frozen=True)
class LatencyPlan:
    """How long and how carefully to time. Every field is a gate-file key of ``kind: latency``."""

    percentile: float = 95.0
    min_iterations: int = 50
    #: Seconds of timed calls, at least (per model).
    min_time: float = 1.0
    #: Stop timing after this many seconds even if min_iterations is not reached (the result says so).
    max_time: float = 60.0
    #: Warm-up calls at most (per model), and seconds at most.
    warmup_max: int = 100
    warmup_time: float = 10.0
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0


# -- timers ---------------------------------------------------------------------------------------


def host_timer(call: Callable[[], object]) -> float:
    """Milliseconds ``call()`` took by ``time.perf_counter_ns`` (for work that is done when it returns)."""
    start = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - start) / 1e6


def cuda_event_timer(device: str) -> Timer:
    """A timer for ``device`` (``cuda:N``): CUDA events around the call, synchronised before and after."""
    import torch

    def timed(call: Callable[[], object]) -> float:
        with torch.cuda.device(device):
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            call()
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))

    return timed


def timer_for(device: str) -> tuple[Timer, str]:
    """The timer for a model on ``device`` and its name: CUDA events where torch drives a CUDA device."""
    if device.startswith("cuda") and "torch" in sys.modules:
        return cuda_event_timer(device), "cuda-events"
    return host_timer, "perf_counter"


# -- measuring ------------------------------------------------------------------------------------


def measure_latency(
    call: Callable[[int], object],
    *,
    plan: LatencyPlan = LatencyPlan(),
    timer: Timer = host_timer,
    name: str = "",
    decided: Callable[[LatencyResult], bool] | None = None,
) -> LatencyResult:
    """Time ``call(i)`` (``i``: the call's index, to pick its inputs) as the plan says.

    With ``decided`` (does this result settle the check?), timing goes on while it says no: see :data:`LOOKS`.
    """
    started = time.perf_counter()
    label = _timer_name(timer, name)
    warmup, settled = _warm_up([call], timer, plan)
    rounds = _Rounds([call], timer, _calls_per_round(warmup.per_call_ms[0]))

    def result(look_plan: LatencyPlan, cut_short: bool, looks: int) -> LatencyResult:
        (blocks,) = rounds.arrays()
        return LatencyResult(
            timings_ms=blocks.ravel(),
            percentile=plan.percentile,
            ci=_bootstrap([blocks], lambda s: np.percentile(s[0], plan.percentile, axis=1), look_plan),
            confidence=look_plan.confidence,
            warmup_calls=warmup.calls,
            settled=settled,
            timer=label,
            wall_s=time.perf_counter() - started,
            cut_short=cut_short,
            looks=looks,
        )

    return _looks(rounds, plan, started, result, decided)


def compare_latency(
    candidate: Callable[[int], object],
    baseline: Callable[[int], object],
    *,
    plan: LatencyPlan = LatencyPlan(),
    timer: Timer = host_timer,
    self_test: bool = False,
    name: str = "",
    decided: Callable[[LatencyComparison], bool] | None = None,
) -> LatencyComparison:
    """Time ``candidate`` and ``baseline`` interleaved and compare their percentiles (candidate / baseline).

    With ``decided`` (does this comparison settle the check?), timing goes on while it says no: see :data:`LOOKS`.
    """
    started = time.perf_counter()
    label = _timer_name(timer, name)
    warmup, settled = _warm_up([candidate, baseline], timer, plan)
    per_round = _calls_per_round(max(warmup.per_call_ms))
    rounds = _Rounds([candidate, baseline], timer, per_round)
    q = plan.percentile

    def ratio(samples: Sequence[np.ndarray]) -> np.ndarray:
        return np.asarray(np.percentile(samples[0], q, axis=1) / np.percentile(samples[1], q, axis=1))

    def comparison(look_plan: LatencyPlan, cut_short: bool, looks: int) -> LatencyComparison:
        cand, base = rounds.arrays()
        wall = time.perf_counter() - started
        results = [
            LatencyResult(
                timings_ms=blocks.ravel(),
                percentile=q,
                ci=_bootstrap([blocks], lambda s: np.percentile(s[0], q, axis=1), look_plan),
                confidence=look_plan.confidence,
                warmup_calls=warmup.calls,
                settled=settled,
                timer=label,
                wall_s=wall,
                cut_short=cut_short,
                looks=looks,
            )
            for blocks in (cand, base)
        ]
        return LatencyComparison(
            candidate=results[0],
            baseline=results[1],
            ratio=float(np.percentile(cand, q) / np.percentile(base, q)),
            ci=_bootstrap([cand, base], ratio, look_plan),
            rounds=int(cand.shape[0]),
            calls_per_round=per_round,
            self_test=self_test,
        )

    return _looks(rounds, plan, started, comparison, decided)


def judge_bound(value: float, ci: tuple[float, float], bound: float, *, on_uncertain: str = "inconclusive") -> Verdict:
    """A value with an upper bound: passed when the whole interval is at or under it, failed when the
    whole interval is over it; an interval that straddles the bound is ``inconclusive``, unless
    ``on_uncertain`` says ``estimate`` (judge the point estimate), ``pass`` or ``fail``."""
    if ci[1] <= bound:
        return "passed"
    if ci[0] > bound:
        return "failed"
    if on_uncertain == "estimate":
        return "passed" if value <= bound else "failed"
    if on_uncertain in ("pass", "fail"):
        return "passed" if on_uncertain == "pass" else "failed"
    return "inconclusive"


def _timer_name(timer: Timer, given: str) -> str:
    return given or ("perf_counter" if timer is host_timer else getattr(timer, "__name__", "custom"))


# -- the pieces -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _WarmUp:
    calls: int
    #: Median milliseconds per call of each model over the last window.
    per_call_ms: list[float]


def _warm_up(calls: Sequence[Callable[[int], object]], timer: Timer, plan: LatencyPlan) -> tuple[_WarmUp, bool]:
    """Call each model in turn until the median of a window of calls settles (SETTLED), within the caps."""
    started = time.perf_counter()
    history: list[list[float]] = []
    done = 0
    while True:
        windows: list[list[float]] = [[] for _ in calls]
        for i in range(_WINDOW):
            for model, call in enumerate(calls):
                windows[model].append(timer(partial(call, done + i)))
        done += _WINDOW
        history.append([statistics.median(w) for w in windows])
        if len(history) >= _SETTLED_WINDOWS and all(
            _close(a, b) for a, b in zip(history[-3:-1], history[-2:], strict=True)
        ):
            return _WarmUp(done, history[-1]), True
        if done + _WINDOW > plan.warmup_max or time.perf_counter() - started >= plan.warmup_time:
            return _WarmUp(done, history[-1]), False


def _close(before: list[float], after: list[float]) -> bool:
    """Every model's window median moved by at most SETTLED of its previous value."""
    return all(abs(a - b) <= SETTLED * b for a, b in zip(after, before, strict=True))


def _calls_per_round(call_ms: float) -> int:
    """Calls of each model per round: rounds of about 20 ms, 1 to 10 calls."""
    return max(1, min(10, round(20 / max(call_ms, 1e-3))))


class _Rounds:
    """Timings of one or more models in rounds: ``per_round`` calls of each, alternating ABBA, the same
    call indices (inputs) for every model in a round. Extended look by look (see :func:`_looks`)."""

    def __init__(self, calls: Sequence[Callable[[int], object]], timer: Timer, per_round: int) -> None:
        self.calls, self.timer, self.per_round = calls, timer, per_round
        self.rounds: list[list[list[float]]] = [[] for _ in calls]
        self.timed = [0.0 for _ in calls]
        self.started = time.perf_counter()

    def extend(self, plan: LatencyPlan, factor: int = 1) -> bool:
        """Time rounds until every model has ``factor`` times ``min_iterations`` calls and ``min_time`` seconds
        of timed calls, and there are enough rounds to resample; or until ``max_time`` since the first round
        (returns True: cut short)."""
        calls, seconds = plan.min_iterations * factor, plan.min_time * factor
        while True:
            count = len(self.rounds[0])
            if count * self.per_round >= calls and min(self.timed) >= seconds and count >= _MIN_ROUNDS:
                return False
            if time.perf_counter() - self.started >= plan.max_time and count >= 2:
                return True
            order = range(len(self.calls)) if count % 2 == 0 else reversed(range(len(self.calls)))
            for model in order:
                call = self.calls[model]
                times = [self.timer(partial(call, count * self.per_round + j)) for j in range(self.per_round)]
                self.rounds[model].append(times)
                self.timed[model] += sum(times) / 1000

    def arrays(self) -> list[np.ndarray]:
        """One (rounds, per_round) array of milliseconds per model."""
        return [np.asarray(r, dtype=np.float64) for r in self.rounds]


R = TypeVar("R")


def _looks(
    rounds: _Rounds,
    plan: LatencyPlan,
    started: float,
    summarise: Callable[[LatencyPlan, bool, int], R],
    decided: Callable[[R], bool] | None,
) -> R:
    """Time to ``min_iterations`` and ``min_time``; with ``decided``, go on to each multiple of both in LOOKS
    while the result is undecided.

    Each look's interval is at the confidence the plan asks for, divided over the looks (Bonferroni), so the
    chance of a wrong verdict over all the looks stays within the plan's confidence.
    """
    factors = LOOKS if decided is not None else (1,)
    look_plan = replace(plan, confidence=1 - (1 - plan.confidence) / len(factors))
    for look, factor in enumerate(factors, start=1):
        cut_short = rounds.extend(plan, factor)
        summary = summarise(look_plan, cut_short, look)
        if decided is None or cut_short or look == len(factors) or decided(summary):
            return summary
    raise AssertionError("unreachable")


def round_interval(blocks: np.ndarray, percentile: float, plan: LatencyPlan) -> tuple[float, float]:
    """Bootstrap interval of a percentile of one model's (rounds, per_round) timings, resampling whole rounds."""
    return _bootstrap([blocks], lambda s: np.asarray(np.percentile(s[0], percentile, axis=1)), plan)


def _bootstrap(
    blocks: Sequence[np.ndarray], statistic: Callable[[Sequence[np.ndarray]], np.ndarray], plan: LatencyPlan
) -> tuple[float, float]:
    """Percentile interval of ``statistic`` over resamples of whole rounds (rows), the same rows for every array.

    ``statistic`` gets one (resamples, rows * per_round) array per model and returns one value per resample.
    """
    rng = np.random.default_rng(plan.seed)
    rows = blocks[0].shape[0]
    values = []
    for start in range(0, plan.resamples, _BLOCK):
        size = min(_BLOCK, plan.resamples - start)
        picks = rng.integers(0, rows, size=(size, rows))
        values.append(statistic([b[picks].reshape(size, -1) for b in blocks]))
    drawn = np.concatenate(values)
    alpha = (1 - plan.confidence) / 2
    low, high = np.quantile(drawn, [alpha, 1 - alpha])
    return float(low), float(high)
