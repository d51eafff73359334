"""``kind: latency`` and ``kind: memory`` in gate files: measure the gate's model on its own data, judge the bounds.

Thread pools are pinned while measuring (``threads``, default ``model.threads`` else 1) and restored
afterwards. A ``baseline_model`` is measured in the same run: interleaved with the model for latency,
one after the other (same phase, same process kind) for memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from modelcheck.errors import CheckError, DeviceUnavailableError, ModelcheckError
from modelcheck.hardware import pinned_threads
from modelcheck.latency import (
    LatencyComparison,
    LatencyPlan,
    LatencyResult,
    Verdict,
    compare_latency,
    judge_bound,
    measure_latency,
    timer_for,
)
from modelcheck.memory import MemoryResult, measure_phase
from modelcheck.results import CheckResult, Status

if TYPE_CHECKING:
    from modelcheck.backends import LoadedModel
    from modelcheck.runner import ModelCache
    from modelcheck.spec import CheckSpec, GateSpec, ModelSpec

#: Seconds an isolated memory measurement may take (loading a large model included).
ISOLATE_TIMEOUT = 900
_UNCERTAIN = "the interval straddles the bound, so this run cannot tell pass from fail: raise min_time or "
_UNCERTAIN += "min_iterations, pin the runner, or set on_uncertain: estimate"


# -- latency --------------------------------------------------------------------------------------


def judge_latency(
    check: CheckSpec, gate: GateSpec, model: LoadedModel, inputs: Sequence[Any], models: ModelCache
) -> CheckResult:
    """Time the gate's model (and its baseline_model, interleaved) on batches of the gate's data."""
    baseline = model if check.baseline_self else _baseline(check, gate, models)
    result, comparison = time_model(
        check, model, inputs, baseline=baseline, threads=check.threads or gate.model.threads
    )
    overall, message = latency_verdict(check, result, comparison)
    judged_ratio = comparison is not None and check.max_ms is None
    details: dict[str, Any] = {"unit": "x" if judged_ratio else "ms", "latency": result.to_dict()}
    if comparison is not None:
        details["comparison"] = comparison.to_dict()
    return CheckResult(
        name=check.name,
        kind=check.kind,
        status=overall,
        message=message,
        value=comparison.ratio if judged_ratio and comparison else result.value_ms,
        threshold=check.threshold,
        n=result.n,
        ci=list(comparison.ci if judged_ratio and comparison else result.ci),
        details=details,
    )


def time_model(
    check: CheckSpec,
    model: LoadedModel,
    inputs: Sequence[Any],
    *,
    baseline: LoadedModel | None = None,
    threads: int | None = None,
) -> tuple[LatencyResult, LatencyComparison | None]:
    """Time ``model`` (and ``baseline``, interleaved; the same object: A/A) as ``check`` says, threads pinned.

    The result's ``context`` says what was timed: device, batch size, inputs, thread settings.
    """
    batch_size = check.batch_size or 1
    batch = batches(inputs, batch_size, fixed=check.inputs == "fixed")
    plan = LatencyPlan(
        percentile=check.percentile,
        min_iterations=check.min_iterations,
        min_time=check.min_time,
        max_time=check.max_time,
        confidence=check.confidence,
        resamples=check.resamples,
        seed=check.seed,
    )
    timer, timer_name = timer_for(model.device)

    def run(loaded: LoadedModel) -> Callable[[int], object]:
        return lambda i: loaded.predict(batch(i), batch_size=batch_size)

    with contextlib.ExitStack() as stack:
        settings = stack.enter_context(pinned_threads(threads or 1, model))
        if baseline is not None and baseline is not model:
            stack.enter_context(pinned_threads(threads or 1, baseline))
        if baseline is None:
            decided = None if check.max_ms is None else partial(_decided, check)
            result = measure_latency(run(model), plan=plan, timer=timer, name=timer_name, decided=decided)
            comparison = None
        else:
            bounded = check.max_ms is not None or check.max_ratio is not None
            comparison = compare_latency(
                run(model),
                run(baseline),
                plan=plan,
                timer=timer,
                self_test=baseline is model,
                name=timer_name,
                decided=partial(_decided_both, check) if bounded else None,
            )
            result = comparison.candidate
    rows = "one fixed batch" if check.inputs == "fixed" else "successive batches of the data"
    result.context.update(
        device=model.device,
        batch_size=batch_size,
        inputs=check.inputs,
        threads=settings,
        measured=f"model.predict on {batch_size} row(s) per call ({rows}), pre-processing included",
    )
    return result, comparison


def _decided(check: CheckSpec, result: LatencyResult) -> bool:
    """Whether the interval of the percentile lies wholly on one side of max_ms."""
    return check.max_ms is None or judge_bound(result.value_ms, result.ci, check.max_ms) != "inconclusive"


def _decided_both(check: CheckSpec, comparison: LatencyComparison) -> bool:
    """Whether every bound of the check is decided by its interval (max_ms on the candidate, max_ratio)."""
    ratio = check.max_ratio is None or judge_bound(comparison.ratio, comparison.ci, check.max_ratio) != "inconclusive"
    return ratio and _decided(check, comparison.candidate)


def latency_verdict(
    check: CheckSpec, result: LatencyResult, comparison: LatencyComparison | None
) -> tuple[Status, str]:
    """Judge ``max_ms`` and ``max_ratio``: the status and a message that reads like the measurement."""
    verdicts: list[tuple[Verdict, str]] = []
    if check.max_ms is not None:
        verdicts.append(
            _judged(check, result.value_ms, result.ci, check.max_ms, result.describe(), f"{check.max_ms:g} ms")
        )
    if comparison is not None and check.max_ratio is not None:
        against = "itself (A/A)" if comparison.self_test else f"baseline_model {_name(check.baseline_model)}"
        bound = f"max_ratio {check.max_ratio:g} against {against}"
        floor = f"; noise floor ±{comparison.noise_floor:.1%}" if comparison.self_test else ""
        verdicts.append(
            _judged(check, comparison.ratio, comparison.ci, check.max_ratio, comparison.describe(), bound, floor)
        )
    overall = _overall([s for s, _ in verdicts])
    message = "; ".join(text for _, text in verdicts)
    if overall == "inconclusive":
        message += f" — {_UNCERTAIN}"
    return overall, message


def batches(inputs: Sequence[Any], batch_size: int, *, fixed: bool = False) -> Callable[[int], list[Any]]:
    """``batch(i)``: the inputs of call ``i``, cycling through ``inputs`` in order (``fixed``: always the first)."""
    if not inputs:
        raise CheckError("the gate's data has no rows to measure with")
    count = 1 if fixed else -(-len(inputs) // batch_size)
    made = [[inputs[(k * batch_size + j) % len(inputs)] for j in range(batch_size)] for k in range(count)]
    return lambda i: made[i % count]


# -- memory ---------------------------------------------------------------------------------------


def judge_memory(
    check: CheckSpec, gate: GateSpec, model: LoadedModel, inputs: Sequence[Any], models: ModelCache
) -> CheckResult:
    """Measure the phase for the gate's model (and its baseline_model) and judge max_mb / max_ratio."""
    measured = _memory(check, gate, model, inputs, models, baseline=False)
    base = None
    if check.baseline_model is not None and check.max_ratio is not None:
        base = _memory(check, gate, None, inputs, models, baseline=True)
    status, message, ratio = memory_verdict(
        check, measured, base, against=f"baseline_model {_name(check.baseline_model)}"
    )
    judged_ratio = check.max_mb is None and ratio is not None
    details: dict[str, Any] = {"unit": "x" if judged_ratio else "MB", "memory": measured.to_dict()}
    if base is not None:
        details.update(baseline=base.to_dict(), ratio=ratio)
    return CheckResult(
        name=check.name,
        kind=check.kind,
        status=status,
        message=message,
        value=ratio if judged_ratio else measured.peak_mb,
        threshold=check.threshold,
        n=1,
        details=details,
    )


def memory_verdict(
    check: CheckSpec, measured: MemoryResult, base: MemoryResult | None, *, against: str
) -> tuple[Status, str, float | None]:
    """Judge ``max_mb`` and ``max_ratio`` (against ``base``): status, message, and the ratio where there is one."""
    verdicts: list[tuple[Verdict, str]] = []
    if check.max_mb is not None:
        ok = measured.peak_mb <= check.max_mb
        text = _with_bound(measured.describe(), "<=" if ok else ">", f"{check.max_mb:g} MB")
        verdicts.append(("passed" if ok else "failed", text))
    ratio = None
    if base is not None and check.max_ratio is not None:
        text = f"vs {against} ({measured.peak_mb:.1f} MB vs {base.peak_mb:.1f} MB"
        if base.peak_mb < 1.0:
            verdicts.append(("inconclusive", f"peak memory ratio cannot be judged: the baseline's figure is "
                             f"{base.peak_mb:.2f} MB, too small to divide by {text}); use max_mb"))  # fmt: skip
        else:
            ratio = measured.peak_mb / base.peak_mb
            ok = ratio <= check.max_ratio
            sign = "<=" if ok else ">"
            verdicts.append(("passed" if ok else "failed", f"peak memory ratio {ratio:.3f} {sign} max_ratio "
                             f"{check.max_ratio:g} {text}, {measured.figure}, {measured.phase} phase)"))  # fmt: skip
    return _overall([s for s, _ in verdicts]), "; ".join(text for _, text in verdicts), ratio


def _memory(
    check: CheckSpec,
    gate: GateSpec,
    model: LoadedModel | None,
    inputs: Sequence[Any],
    models: ModelCache,
    *,
    baseline: bool,
) -> MemoryResult:
    if check.isolate:
        return _isolated(gate, check, baseline=baseline)
    if check.phase == "inference" and model is None:
        model = _baseline(check, gate, models)
    return measure_memory_check(gate, check, baseline=baseline, process="this process", model=model, inputs=inputs)


def measure_memory_check(
    gate: GateSpec,
    check: CheckSpec,
    *,
    baseline: bool,
    process: str,
    model: LoadedModel | None = None,
    inputs: Sequence[Any] | None = None,
) -> MemoryResult:
    """Measure a memory check's phase for the gate's model (or its baseline_model) in this process.

    ``model`` and ``inputs`` are loaded here when not given (as in the fresh process of ``isolate: true``).
    """
    from modelcheck.backends import get_backend

    spec = check.baseline_model if baseline else gate.model
    assert spec is not None
    batch_size = check.batch_size or spec.batch_size
    threads = check.threads or spec.threads
    if check.phase == "load":
        return measure_memory("load", spec=spec, threads=threads, process=process)
    model = model or get_backend(spec.backend).load(spec)
    rows = inputs if inputs is not None else _first_rows(gate, batch_size)
    return measure_memory(
        "inference", model=model, rows=rows, batch_size=batch_size, threads=threads, process=process, spec=spec
    )


def measure_memory(
    phase: str,
    *,
    spec: ModelSpec | None = None,
    model: LoadedModel | None = None,
    rows: Sequence[Any] = (),
    batch_size: int = 1,
    threads: int | None = None,
    process: str = "this process",
) -> MemoryResult:
    """The peak memory of one phase, threads pinned (``threads``, default 1).

    ``load``: a fresh load of ``spec`` (its framework imported first, so the import is not counted;
    closed afterwards). ``inference``: one ``model.predict`` over the first ``batch_size`` of ``rows``
    (``spec``, where known, says which backend runs it: ONNX Runtime's CUDA memory is read differently).
    """
    import importlib

    from modelcheck.backends import BACKEND_FRAMEWORKS, get_backend
    from modelcheck.hardware import resolve_device

    if phase == "load":
        assert spec is not None
        for framework in BACKEND_FRAMEWORKS.get(spec.backend, ()):
            importlib.import_module(framework)
        backend = get_backend(spec.backend)
        with pinned_threads(threads or 1):
            device = resolve_device(spec.device)
            loaded, figures = measure_phase(lambda: backend.load(spec), device=device, onnx=spec.backend == "onnx")
        loaded.close()
        return MemoryResult(device=loaded.device, phase=phase, process=process, **figures)
    assert model is not None
    batch = list(rows)[:batch_size]
    if not batch:
        raise CheckError("no rows to measure the inference phase with")
    onnx = spec is not None and spec.backend == "onnx"
    with pinned_threads(threads or 1, model):
        _, figures = measure_phase(lambda: model.predict(batch, batch_size=batch_size), device=model.device, onnx=onnx)
    return MemoryResult(device=model.device, phase=phase, process=process, **figures)


def _first_rows(gate: GateSpec, rows: int) -> Sequence[Any]:
    from dataclasses import replace

    from modelcheck.data import load_data
    from modelcheck.runner import model_inputs

    spec = replace(gate.data, limit=min(gate.data.limit or rows, rows))
    data = load_data(spec, columns=list(spec.input_columns), task=gate.model.task)
    return model_inputs(gate.model.task, spec.input_columns, data.frame, base=data.base)


def _isolated(gate: GateSpec, check: CheckSpec, *, baseline: bool) -> MemoryResult:
    """Run ``python -m modelcheck.memory`` for this check and read its result."""
    command = [sys.executable, "-m", "modelcheck.memory", str(gate.path), check.name, *(["--baseline"] * baseline)]
    what = f"the {'baseline_model' if baseline else 'model'}'s {check.phase} phase"
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=ISOLATE_TIMEOUT, check=False, env=_same_imports()
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise CheckError(
            f"isolate: true measures {what} in a fresh Python process, and none could start ({exc}); "
            "fix the Python installation, or set isolate: false to measure in this process"
        ) from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {done.returncode}"
        raise CheckError(f"isolate: the fresh process measuring {what} failed: {reason}")
    try:
        return MemoryResult(**json.loads(done.stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError, TypeError) as exc:
        raise CheckError(f"isolate: the fresh process measuring {what} printed no result ({exc})") from None


def _same_imports() -> dict[str, str]:
    """This environment, with PYTHONPATH set so the fresh process imports what this one can (pytest's
    ``pythonpath`` ini option and rootdir included: ``module:callable`` sources live there)."""
    env = dict(os.environ)
    paths = [p for p in sys.path if p] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


# -- shared ---------------------------------------------------------------------------------------


def _baseline(check: CheckSpec, gate: GateSpec, models: ModelCache) -> LoadedModel | None:
    """The baseline_model loaded through the cache (both models must stay loaded while measuring)."""
    if check.baseline_model is None:
        return None
    if models.max_loaded == 1:
        raise CheckError(
            f"check {check.name!r} measures two models side by side, and modelcheck_max_loaded_models is 1; "
            "set it to 2 or more (ini option) for checks with baseline_model"
        )
    try:
        baseline = models.get(check.baseline_model)
    except DeviceUnavailableError:
        raise
    except ModelcheckError as exc:
        raise CheckError(f"baseline_model {_name(check.baseline_model)} cannot be loaded: {exc}") from None
    models.get(gate.model)  # keep the gate's model the most recently used
    return baseline


def _name(spec: ModelSpec | None) -> str:
    return "?" if spec is None else spec.source


def _overall(statuses: list[Verdict]) -> Status:
    if "failed" in statuses:
        return "failed"
    if "inconclusive" in statuses:
        return "inconclusive"
    return "passed"


def _judged(
    check: CheckSpec,
    value: float,
    ci: tuple[float, float],
    bound: float,
    described: str,
    bound_text: str,
    note: str = "",
) -> tuple[Verdict, str]:
    """One bound judged on an interval (see judge_bound), and the measurement with the bound written into it."""
    status = judge_bound(value, ci, bound, on_uncertain=check.on_uncertain)
    return status, _with_bound(described, _sign(value, ci, bound, check), bound_text) + note + _forced(ci, bound, check)


def _sign(value: float, ci: tuple[float, float], bound: float, check: CheckSpec) -> str:
    """How the measurement compares with the bound: by its interval, by the estimate where the gate says so."""
    if not ci[0] <= bound < ci[1]:
        return "<=" if ci[1] <= bound else ">"
    if check.on_uncertain == "estimate":
        return "<=" if value <= bound else ">"
    return "vs"


def _forced(ci: tuple[float, float], bound: float, check: CheckSpec) -> str:
    """The note on a verdict that ``on_uncertain`` made, not the interval."""
    if ci[0] <= bound < ci[1] and check.on_uncertain != "inconclusive":
        return f" (the interval straddles the bound; judged by on_uncertain: {check.on_uncertain})"
    return ""


def _with_bound(described: str, sign: str, bound: str) -> str:
    """``p95 latency 48.2 ms (...)`` -> ``p95 latency 48.2 ms > 40 ms (...)``."""
    head, _, tail = described.partition(" (")
    return f"{head} {sign} {bound} ({tail}"
