"""Latency and memory for hand-written tests: the ``modelcheck_latency`` and ``modelcheck_memory`` fixtures.

They measure exactly as ``kind: latency`` / ``kind: memory`` gate checks do (same warm-up, thread
pinning, interleaving, bootstrap, peak-memory reset) and return result objects whose ``assert_max``
fails the test with the measurement as the message::

    def test_fast_enough(modelcheck_load, modelcheck_latency):
        model = modelcheck_load("models/sentiment")
        latency = modelcheck_latency(model, ["a short text", "a longer one, with more words"])
        latency.assert_max(max_ms=40)            # "p95 latency 48.2 ms > 40 ms (n=200, 95% CI 46.9–49.8)"

An interval that straddles the bound skips the test as ``inconclusive: ...`` (as a gate item does),
unless ``on_uncertain`` says otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from modelcheck.pytest_plugin.fixtures import FRAME_ATTR, ModelLoader, _columns
from modelcheck.pytest_plugin.state import model_cache
from modelcheck.report.display import Row, Tabular

if TYPE_CHECKING:
    from collections.abc import Sequence

    from modelcheck.gatefile import CheckSpec
    from modelcheck.measure.memory import MemoryResult
    from modelcheck.measure.timing import LatencyComparison, LatencyResult
    from modelcheck.models.backends import LoadedModel
    from modelcheck.report.results import Status

__all__ = ["Latency", "LatencyMeter", "Memory", "MemoryMeter", "modelcheck_latency", "modelcheck_memory"]


@pytest.fixture()
def modelcheck_latency(pytestconfig: pytest.Config) -> LatencyMeter:
    """``modelcheck_latency(model, inputs, baseline=None, batch_size=1, percentile=95, ...)``: time the model
    (against ``baseline``, interleaved; ``"self"`` for A/A) and return a :class:`Latency`."""
    return LatencyMeter(pytestconfig)


@pytest.fixture()
def modelcheck_memory(pytestconfig: pytest.Config) -> MemoryMeter:
    """``modelcheck_memory(model, inputs)`` (inference) or ``modelcheck_memory.load(source, ...)`` (load):
    the peak memory of the phase, as a :class:`Memory`."""
    return MemoryMeter(pytestconfig)


class LatencyMeter:
    """Times a loaded model on ``inputs``: a list of model inputs, or a frame from ``modelcheck_dataset``.

    Keyword arguments are the gate-file keys of ``kind: latency``: ``batch_size`` (1), ``percentile`` (95),
    ``threads`` (the model's, else 1), ``fixed`` (always the first batch), ``min_iterations`` (50),
    ``min_time`` (1.0 s), ``max_time`` (60 s), ``confidence`` (0.95), ``seed`` (0). ``baseline``: another
    loaded model timed interleaved with this one, or ``"self"`` (A/A: the noise floor).
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def __call__(
        self,
        model: LoadedModel,
        inputs: Any,
        *,
        baseline: LoadedModel | str | None = None,
        batch_size: int = 1,
        percentile: float = 95.0,
        threads: int | None = None,
        fixed: bool = False,
        min_iterations: int = 50,
        min_time: float = 1.0,
        max_time: float = 60.0,
        confidence: float = 0.95,
        seed: int = 0,
    ) -> Latency:
        __tracebackhide__ = True
        from modelcheck.checks.latency import time_model
        from modelcheck.errors import ModelcheckError
        from modelcheck.gatefile import CheckSpec

        if not 0 < percentile <= 100:
            raise ValueError(f"percentile must lie in (0, 100], got {percentile}")
        if baseline is not None and isinstance(baseline, str) and baseline != "self":
            raise ValueError(f"baseline must be a loaded model or 'self', got {baseline!r}")
        check = CheckSpec(
            name="latency",
            kind="latency",
            batch_size=batch_size,
            percentile=percentile,
            inputs="fixed" if fixed else "data",
            min_iterations=min_iterations,
            min_time=min_time,
            max_time=max_time,
            confidence=confidence,
            seed=seed,
            baseline_self=baseline == "self",
        )
        other = model if baseline == "self" else baseline
        spec = model_cache(self.config).spec_of(model)
        try:
            rows = _rows(inputs, model, self.config)
            result, comparison = time_model(
                check,
                model,
                rows,
                baseline=other if not isinstance(other, str) else None,
                threads=threads or (spec.threads if spec else None),
            )
        except ModelcheckError as exc:
            pytest.fail(str(exc), pytrace=False)
        return Latency(result=result, comparison=comparison, check=check)


@dataclass(frozen=True)
class Latency(Tabular):
    """The timings of a model (``result``), and its comparison with a baseline where one was timed; a table in
    Jupyter."""

    result: LatencyResult
    comparison: LatencyComparison | None
    check: CheckSpec

    @property
    def n(self) -> int:
        return self.result.n

    @property
    def p50_ms(self) -> float:
        return self.result.p50_ms

    @property
    def p90_ms(self) -> float:
        return self.result.p90_ms

    @property
    def p95_ms(self) -> float:
        return self.result.p95_ms

    @property
    def p99_ms(self) -> float:
        return self.result.p99_ms

    @property
    def mean_ms(self) -> float:
        return self.result.mean_ms

    @property
    def stdev_ms(self) -> float:
        return self.result.stdev_ms

    @property
    def ci(self) -> tuple[float, float]:
        """The confidence interval of the measured percentile, in milliseconds."""
        return self.result.ci

    @property
    def ratio(self) -> float | None:
        """This model's percentile over the baseline's (None without a baseline)."""
        return None if self.comparison is None else self.comparison.ratio

    @property
    def ratio_ci(self) -> tuple[float, float] | None:
        return None if self.comparison is None else self.comparison.ci

    def _table_rows(self) -> list[Row]:
        result = self.result
        rows: list[Row] = [(f"p{p} ms", result.quantile_ms(p)) for p in (50, 90, 95, 99)]
        rows += [(f"p{result.percentile:g} {result.confidence:.4g} CI ms", self.ci), ("mean ms", self.mean_ms)]
        rows += [("stdev ms", self.stdev_ms), ("n", self.n)]
        if self.comparison is not None:
            rows += [("ratio to baseline", self.ratio), ("ratio CI", self.ratio_ci)]
        return rows

    def assert_max(
        self, max_ms: float | None = None, *, max_ratio: float | None = None, on_uncertain: str = "inconclusive"
    ) -> None:
        """Fail the test with the measurement unless the percentile is at most ``max_ms`` and/or the ratio to
        the baseline at most ``max_ratio``; an interval straddling a bound skips it as inconclusive."""
        __tracebackhide__ = True
        from modelcheck.checks.latency import latency_verdict

        if max_ms is None and max_ratio is None:
            raise TypeError("assert_max() needs max_ms= and/or max_ratio=")
        if max_ratio is not None and self.comparison is None:
            raise TypeError("max_ratio needs a baseline: modelcheck_latency(model, inputs, baseline=other_model)")
        check = replace(self.check, max_ms=max_ms, max_ratio=max_ratio, on_uncertain=on_uncertain)
        _conclude(*latency_verdict(check, self.result, self.comparison))


class MemoryMeter:
    """Measures the peak memory of running a loaded model once on a batch, or of loading a model.

    ``modelcheck_memory(model, inputs, batch_size=None, threads=None)``: one ``predict`` over the first
    ``batch_size`` inputs (default: the model's batch size); ``modelcheck_memory.load(source, backend=...,
    task=..., **model_options)``: a fresh load (then closed), with the arguments of ``modelcheck_load``.
    Measured in this process: the figure is steady-state for a model that has run before.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def __call__(
        self, model: LoadedModel, inputs: Any, *, batch_size: int | None = None, threads: int | None = None
    ) -> Memory:
        __tracebackhide__ = True
        from modelcheck.checks.memory import measure_memory
        from modelcheck.errors import ModelcheckError

        spec = model_cache(self.config).spec_of(model)
        size = batch_size or (spec.batch_size if spec else 32)
        try:
            rows = _rows(inputs, model, self.config)
            measured = measure_memory("inference", model=model, rows=rows, batch_size=size, threads=threads, spec=spec)
        except ModelcheckError as exc:
            pytest.fail(str(exc), pytrace=False)
        return Memory(measured)

    def load(self, source: str | os.PathLike[str], **model_args: Any) -> Memory:
        """The peak memory of loading ``source`` afresh (arguments as for ``modelcheck_load``)."""
        __tracebackhide__ = True
        from modelcheck.checks.memory import measure_memory
        from modelcheck.errors import DeviceUnavailableError, ModelcheckError

        spec = ModelLoader(self.config).spec(source, **model_args)
        try:
            return Memory(measure_memory("load", spec=spec, threads=spec.threads))
        except DeviceUnavailableError as exc:
            pytest.skip(str(exc))
        except ModelcheckError as exc:
            pytest.fail(str(exc), pytrace=False)


@dataclass(frozen=True)
class Memory(Tabular):
    """The peak memory of one phase; ``result`` has every figure (CPU and CUDA) and says which is judged; a table
    in Jupyter."""

    result: MemoryResult

    @property
    def peak_mb(self) -> float:
        return self.result.peak_mb

    def _table_rows(self) -> list[Row]:
        result = self.result
        rows: list[Row] = [("peak MB", result.peak_mb), ("figure", result.figure), ("phase", result.phase)]
        rows += [("process", result.process), ("device", result.device)]
        return rows + [(f"CPU {name} MB", value) for name, value in result.cpu.items()]

    def assert_max(
        self, max_mb: float | None = None, *, baseline: Memory | None = None, max_ratio: float | None = None
    ) -> None:
        """Fail the test with the measurement unless the peak is at most ``max_mb`` and/or at most
        ``max_ratio`` times ``baseline``'s peak."""
        __tracebackhide__ = True
        from modelcheck.checks.memory import memory_verdict
        from modelcheck.gatefile import CheckSpec

        if max_mb is None and max_ratio is None:
            raise TypeError("assert_max() needs max_mb= and/or max_ratio= (with baseline=)")
        if (max_ratio is None) != (baseline is None):
            raise TypeError("max_ratio and baseline= go together: the ratio is to the baseline's peak")
        check = CheckSpec(name="memory", kind="memory", max_mb=max_mb, max_ratio=max_ratio)
        status, message, _ = memory_verdict(
            check, self.result, baseline.result if baseline else None, against="the baseline"
        )
        _conclude(status, message)


def _rows(inputs: Any, model: LoadedModel, config: pytest.Config) -> Sequence[Any]:
    """Model inputs from a list of inputs, or from a frame of ``modelcheck_dataset`` (its input columns)."""
    import pandas as pd

    from modelcheck.run.inputs import model_inputs

    if not isinstance(inputs, pd.DataFrame):
        return list(inputs)
    meta = inputs.attrs.get(FRAME_ATTR, {})
    columns = _columns(meta.get("input"))
    if not columns:
        raise TypeError("a frame of inputs must come from modelcheck_dataset (or pass a list of model inputs)")
    spec = model_cache(config).spec_of(model)
    base = meta.get("base")
    task = spec.task if spec is not None else "text-classification"
    return model_inputs(task, columns, inputs, base=None if base is None else Path(base))


def _conclude(status: Status, message: str) -> None:
    __tracebackhide__ = True
    if status == "inconclusive":
        pytest.skip(f"inconclusive: {message}")
    if status != "passed":
        pytest.fail(message, pytrace=False)
