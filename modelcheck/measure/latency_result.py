"""What a latency measurement returns: :class:`LatencyResult` for one model, :class:`LatencyComparison` for two."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The percentiles every latency result reports.
PERCENTILES = (50.0, 90.0, 95.0, 99.0)


@dataclass(frozen=True)
class LatencyResult:
    """Timings of one model (milliseconds per call, in call order) and what they say."""

    timings_ms: np.ndarray
    percentile: float
    #: Bootstrap interval of the judged percentile, at ``confidence``.
    ci: tuple[float, float]
    confidence: float
    warmup_calls: int
    settled: bool
    timer: str
    #: Seconds the whole measurement took (warm-up, timing, bootstrap): the overhead is wall - timed.
    wall_s: float = 0.0
    #: Whether the timing stopped at max_time before meeting min_iterations, min_time and the 10 rounds.
    cut_short: bool = False
    #: How many times the interval was looked at (1 unless timing went on while it straddled the bound).
    looks: int = 1
    #: What was timed: device, threads, batch size, inputs (filled in by the caller).
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.timings_ms.size)

    def quantile_ms(self, percentile: float) -> float:
        """Any percentile of the timings, in milliseconds."""
        return float(np.percentile(self.timings_ms, percentile))

    @property
    def value_ms(self) -> float:
        """The judged percentile (``percentile``), in milliseconds."""
        return self.quantile_ms(self.percentile)

    @property
    def p50_ms(self) -> float:
        return self.quantile_ms(50)

    @property
    def p90_ms(self) -> float:
        return self.quantile_ms(90)

    @property
    def p95_ms(self) -> float:
        return self.quantile_ms(95)

    @property
    def p99_ms(self) -> float:
        return self.quantile_ms(99)

    @property
    def mean_ms(self) -> float:
        return float(self.timings_ms.mean())

    @property
    def stdev_ms(self) -> float:
        return float(self.timings_ms.std(ddof=1)) if self.n > 1 else 0.0

    @property
    def timed_s(self) -> float:
        """Seconds spent inside the timed calls."""
        return float(self.timings_ms.sum()) / 1000

    def describe(self) -> str:
        """``p95 latency 48.2 ms (n=200, 95% CI 46.9–49.8)``."""
        return f"{percentile_name(self.percentile)} latency {ms_text(self.value_ms)} ms ({self.sample()})"

    def sample(self) -> str:
        """``n=200, 95% CI 46.9–49.8``: the size of the sample and the interval of the judged percentile."""
        return f"n={self.n}, {percent_text(self.confidence)}% CI {ms_interval(*self.ci)}"

    def to_dict(self) -> dict[str, Any]:
        """The figures for the report (no raw timings)."""
        return {
            "n": self.n,
            "percentile": self.percentile,
            "value_ms": self.value_ms,
            "ci_ms": list(self.ci),
            "confidence": self.confidence,
            "percentiles_ms": {percentile_name(q): self.quantile_ms(q) for q in PERCENTILES},
            "mean_ms": self.mean_ms,
            "stdev_ms": self.stdev_ms,
            "min_ms": float(self.timings_ms.min()),
            "max_ms": float(self.timings_ms.max()),
            "warmup_calls": self.warmup_calls,
            "warmup_settled": self.settled,
            "timer": self.timer,
            "timed_s": self.timed_s,
            "wall_s": self.wall_s,
            "cut_short": self.cut_short,
            "looks": self.looks,
            **self.context,
        }


@dataclass(frozen=True)
class LatencyComparison:
    """Two models timed interleaved: the ratio of their percentiles (candidate / baseline) with its interval."""

    candidate: LatencyResult
    baseline: LatencyResult
    ratio: float
    ci: tuple[float, float]
    rounds: int
    calls_per_round: int
    #: The model against itself (A/A): the interval is the runner's noise floor.
    self_test: bool = False

    @property
    def noise_floor(self) -> float:
        """How far from 1 the ratio's interval reaches: the smallest slowdown this run could tell from noise."""
        return max(abs(self.ci[0] - 1), abs(self.ci[1] - 1))

    def describe(self) -> str:
        """``p95 latency ratio 1.310 (3.10 ms vs 2.37 ms, n=200 each, 95% CI 1.250–1.380, interleaved in 20
        rounds)``."""
        c, b = self.candidate, self.baseline
        return (
            f"{percentile_name(c.percentile)} latency ratio {self.ratio:.3f} "
            f"({ms_text(c.value_ms)} ms vs {ms_text(b.value_ms)} ms, "
            f"n={c.n} each, {percent_text(c.confidence)}% CI {self.ci[0]:.3f}–{self.ci[1]:.3f}, "
            f"interleaved in {self.rounds} rounds)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ratio": self.ratio,
            "ratio_ci": list(self.ci),
            "rounds": self.rounds,
            "calls_per_round": self.calls_per_round,
            "self_test": self.self_test,
            "noise_floor": self.noise_floor,
            "candidate": self.candidate.to_dict(),
            "baseline": self.baseline.to_dict(),
        }


def percentile_name(percentile: float) -> str:
    return f"p{percentile:g}"


def percent_text(confidence: float) -> str:
    return f"{confidence * 100:g}"


def ms_interval(low: float, high: float) -> str:
    """``46.9–49.8``, ``98–150``: both ends to the same decimal places (three significant figures of the larger),
    and more places where fewer would print two different ends alike (``1.000–1.005``, not ``1.00–1.00``)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{ms_text(low)}–{ms_text(high)}"
    largest = max(abs(low), abs(high))
    places = max(0, 2 - math.floor(math.log10(largest))) if largest > 0 else 2
    while places < 9 and low != high and f"{low:.{places}f}" == f"{high:.{places}f}":
        places += 1
    return f"{low:.{places}f}–{high:.{places}f}"


def ms_text(value: float) -> str:
    """Milliseconds to three significant figures (``48.2``, ``1.00``, ``0.0123``; whole above 100)."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.0f}" if value >= 100 else f"{value:#.3g}"
