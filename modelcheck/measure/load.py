"""Latency under load: a closed loop of ``concurrency`` requests in flight against a served model.

:func:`measure_load` runs ``concurrency`` workers, each sending its next request as soon as its last
one is answered (closed loop: the figures are those of that many clients in flight, not of an
arrival rate), through the :class:`~modelcheck.models.requests.LoadTarget` a served model gives:

- warm-up in windows of ``concurrency`` requests until a window's median latency is within 10% of
  the previous one (at most ``plan.warmup_max`` requests or ``plan.warmup_time`` seconds), not timed;
- then requests until ``min_iterations`` were answered or failed and ``min_time`` seconds passed
  (wall time of the load, not summed latencies), or ``max_time`` (cut short); with ``decided``, on
  to 2, 4 and 8 times both while the interval straddles the bound, each look at a Bonferroni-adjusted
  confidence (the same sequential plan as :func:`modelcheck.measure.timing.measure_latency`).

Percentiles are of the answered requests' end-to-end latency; their interval resamples whole rounds
of consecutive completions (:func:`modelcheck.measure.timing.round_interval`), so a burst of slow
answers moves together. Failed requests are left out of the percentiles and counted by kind.
Throughput is answered requests over the timed wall time; in flight is the timed requests' summed
latency over it. Streamed generation adds time to first token (TTFT) and time per output token
after the first (TPOT), per request, as LLM serving benchmarks report them.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from modelcheck.measure.latency_result import PERCENTILES, LatencyResult, percentile_name
from modelcheck.measure.timing import LOOKS, SETTLED, LatencyPlan, round_interval
from modelcheck.models.requests import Failed, LoadTarget, RequestTally, Send

__all__ = ["LoadResult", "Sample", "measure_load"]


@dataclass(frozen=True)
class Sample:
    """One request of a load test: when it started (seconds since the test began), how long it took, how it went."""

    index: int
    started_s: float
    latency_ms: float
    #: The failure's kind (``timeout``, ``http_5xx``, ...); None: answered.
    failed: str | None = None
    message: str | None = None
    first_token_ms: float | None = None
    output_tokens: int | None = None


@dataclass(frozen=True)
class LoadResult:
    """What a load test measured; ``latency`` is None when no request was answered."""

    concurrency: int
    request: str
    samples: list[Sample]
    warmup: list[Sample]
    #: Seconds from the first timed request's start to the last one's end (gaps between looks included).
    timed_wall_s: float
    latency: LatencyResult | None
    cut_short: bool = False
    looks: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def answered(self) -> list[Sample]:
        return [s for s in self.samples if s.failed is None]

    def tally(self) -> RequestTally:
        """Every request the test sent (warm-up included) and the ones that failed, by kind."""
        tally = RequestTally()
        for sample in (*self.warmup, *self.samples):
            tally.sent += 1
            if sample.failed is not None:
                tally.add(sample.failed, sample.message or sample.failed)
        return tally

    @property
    def requests_per_s(self) -> float:
        return len(self.answered) / self.timed_wall_s if self.timed_wall_s > 0 else 0.0

    @property
    def in_flight(self) -> float:
        """Achieved concurrency: the timed requests' summed latency over the timed wall time."""
        busy = sum(s.latency_ms for s in self.samples) / 1000
        return busy / self.timed_wall_s if self.timed_wall_s > 0 else 0.0

    def generation(self) -> dict[str, Any]:
        """TTFT percentiles, TPOT (median and p95), output tokens per request and per second; {} without them."""
        answered = self.answered
        first = [s.first_token_ms for s in answered if s.first_token_ms is not None]
        tokens = [s.output_tokens for s in answered if s.output_tokens is not None]
        figures: dict[str, Any] = {}
        if first:
            figures["ttft_ms"] = {percentile_name(q): float(np.percentile(first, q)) for q in PERCENTILES}
        per_token = [
            (s.latency_ms - s.first_token_ms) / (s.output_tokens - 1)
            for s in answered
            if s.first_token_ms is not None and s.output_tokens is not None and s.output_tokens > 1
        ]
        if per_token:
            figures["tpot_ms"] = {f"p{q}": float(np.percentile(per_token, q)) for q in (50, 95)}
        if tokens:
            figures["output_tokens_per_request"] = float(np.mean(tokens))
            figures["output_tokens_per_s"] = sum(tokens) / self.timed_wall_s if self.timed_wall_s > 0 else 0.0
        return figures

    def figures(self) -> dict[str, Any]:
        """The load figures for the report's ``details.latency`` (beside the percentiles)."""
        failed = Counter(s.failed for s in self.samples if s.failed is not None)
        return {
            "concurrency": self.concurrency,
            "request": self.request,
            "requests": len(self.samples),
            "answered": len(self.answered),
            "failed_by_kind": dict(sorted(failed.items())),
            "warmup_requests": len(self.warmup),
            "timed_wall_s": self.timed_wall_s,
            "requests_per_s": self.requests_per_s,
            "in_flight": self.in_flight,
            **self.generation(),
            **self.extra,
        }

    def describe(self) -> str:
        """``at concurrency 4: 83.1 requests/s, 3.9 in flight; TTFT p50 12.0 ms, TPOT p50 3.10 ms``."""
        text = f"at concurrency {self.concurrency}: {self.requests_per_s:.3g} requests/s"
        text += f", {self.in_flight:.2g} in flight"
        generation = self.generation()
        if "ttft_ms" in generation:
            text += f"; TTFT p50 {generation['ttft_ms']['p50']:.3g} ms"
        if "tpot_ms" in generation:
            text += f", TPOT p50 {generation['tpot_ms']['p50']:.3g} ms"
        if "output_tokens_per_s" in generation:
            text += f", {generation['output_tokens_per_s']:.3g} output tokens/s"
        return text


def measure_load(
    target: LoadTarget,
    *,
    concurrency: int,
    plan: LatencyPlan | None = None,
    decided: Callable[[LoadResult], bool] | None = None,
    run: Callable[[Any], Any] = asyncio.run,
) -> LoadResult:
    """Load ``target`` with ``concurrency`` requests in flight as the plan says (see the module docstring).

    ``run`` runs the coroutine (``asyncio.run``, or a runner that works where a loop already runs).
    """
    result: LoadResult = run(_measure(target, concurrency, plan or LatencyPlan(), decided))
    return result


async def _measure(
    target: LoadTarget, concurrency: int, plan: LatencyPlan, decided: Callable[[LoadResult], bool] | None
) -> LoadResult:
    indices = itertools.count()
    async with target.session(concurrency) as send:
        began = time.perf_counter()
        warmup, settled = await _warm_up(send, concurrency, indices, plan, began)
        samples: list[Sample] = []
        timed_from = time.perf_counter()
        factors = LOOKS if decided is not None else (1,)
        look_plan = replace(plan, confidence=1 - (1 - plan.confidence) / len(factors))
        for look, factor in enumerate(factors, start=1):
            calls, seconds = plan.min_iterations * factor, plan.min_time * factor

            def enough(calls: int = calls, seconds: float = seconds) -> bool:
                elapsed = time.perf_counter() - timed_from
                return (len(samples) >= calls and elapsed >= seconds) or elapsed >= plan.max_time

            await _phase(send, concurrency, indices, enough, samples, began)
            elapsed = time.perf_counter() - timed_from
            cut_short = elapsed >= plan.max_time and (len(samples) < calls or elapsed < seconds)
            result = _summarise(target, concurrency, samples, (warmup, settled), timed_from - began, look_plan,
                                cut_short, look)  # fmt: skip
            if decided is None or cut_short or look == len(factors) or decided(result):
                return result
    raise AssertionError("unreachable")


async def _warm_up(
    send: Send, concurrency: int, indices: Iterator[int], plan: LatencyPlan, began: float
) -> tuple[list[Sample], bool]:
    """Windows of ``concurrency`` requests until a window's median latency settles (True), within the plan's caps."""
    samples: list[Sample] = []
    medians: list[float] = []
    while True:
        window: list[Sample] = []

        def full(window: list[Sample] = window) -> bool:
            return len(window) >= concurrency

        await _phase(send, concurrency, indices, full, window, began)
        samples.extend(window)
        answered = [s.latency_ms for s in window if s.failed is None]
        medians.append(statistics.median(answered) if answered else float("nan"))
        if len(medians) >= 2 and abs(medians[-1] - medians[-2]) <= SETTLED * medians[-2]:
            return samples, True
        if len(samples) + concurrency > plan.warmup_max or time.perf_counter() - began >= plan.warmup_time:
            return samples, False


async def _phase(
    send: Send,
    concurrency: int,
    indices: Iterator[int],
    enough: Callable[[], bool],
    out: list[Sample],
    began: float,
) -> None:
    """``concurrency`` workers, each sending its next request when its last is done, until ``enough()``."""

    async def worker() -> None:
        while not enough():
            index = next(indices)
            start = time.perf_counter()
            outcome = await send(index)
            end = time.perf_counter()
            if isinstance(outcome, Failed):
                sample = Sample(index, start - began, (end - start) * 1000, outcome.kind, outcome.message)
            else:
                first = None if outcome.first_token_at is None else (outcome.first_token_at - start) * 1000
                sample = Sample(index, start - began, (end - start) * 1000, None, None, first, outcome.output_tokens)
            out.append(sample)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def _summarise(
    target: LoadTarget,
    concurrency: int,
    samples: list[Sample],
    warmed: tuple[list[Sample], bool],
    timed_from_s: float,
    plan: LatencyPlan,
    cut_short: bool,
    looks: int,
) -> LoadResult:
    warmup, settled = warmed
    ends = [s.started_s + s.latency_ms / 1000 for s in samples]
    wall = max(ends) - timed_from_s if ends else 0.0
    done = sorted((s for s in samples if s.failed is None), key=lambda s: s.started_s + s.latency_ms / 1000)
    latency = None
    if done:
        timings = np.asarray([s.latency_ms for s in done], dtype=np.float64)
        per_round = max(1, min(concurrency, timings.size // 10))
        rounds = timings.size // per_round
        blocks = timings[: rounds * per_round].reshape(rounds, per_round)
        latency = LatencyResult(
            timings_ms=timings,
            percentile=plan.percentile,
            ci=round_interval(blocks, plan.percentile, plan),
            confidence=plan.confidence,
            warmup_calls=len(warmup),
            settled=settled,
            timer="perf_counter",
            wall_s=wall,
            cut_short=cut_short,
            looks=looks,
        )
    return LoadResult(
        concurrency=concurrency,
        request=target.request,
        samples=list(samples),
        warmup=list(warmup),
        timed_wall_s=wall,
        latency=latency,
        cut_short=cut_short,
        looks=looks,
    )
