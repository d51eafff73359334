"""``kind: memory``: the peak memory of the load or inference phase (and a baseline_model's, the same way).

``isolate: true`` measures in a fresh Python process (``python -m modelcheck.run.isolate``): a first
load or first call, not the steady state of this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelcheck.checks.bounds import baseline_model, model_name, overall_status, with_bound
from modelcheck.errors import CheckError
from modelcheck.measure.memory import MemoryResult, measure_phase
from modelcheck.measure.timing import Verdict
from modelcheck.models.backends import get_backend, import_frameworks
from modelcheck.models.hardware import available_devices, pinned_threads, resolve_device
from modelcheck.report.results import CheckResult, Status

if TYPE_CHECKING:
    from modelcheck.checks import GateRun
    from modelcheck.gatefile import CheckSpec, GateSpec, ModelSpec
    from modelcheck.models.backends import LoadedModel
    from modelcheck.models.cache import ModelCache

#: Seconds an isolated memory measurement may take (loading a large model included).
ISOLATE_TIMEOUT = 900


def judge(check: CheckSpec, run: GateRun) -> CheckResult:
    """The check kind's entry in :data:`modelcheck.checks.KINDS`."""
    return judge_memory(check, run.gate, run.model, run.timed_inputs, run.models, load_memory=run.load_memory)


def judge_memory(
    check: CheckSpec,
    gate: GateSpec,
    model: LoadedModel,
    inputs: Sequence[Any],
    models: ModelCache,
    *,
    load_memory: dict[str, Any] | None = None,
) -> CheckResult:
    """Measure the phase for the gate's model (and its baseline_model) and judge max_mb / max_ratio.

    ``load_memory``: the figures of the gate's own load of the model in this process, reported beside an
    inference figure as the model's load footprint (what it holds once loaded, and the peak while loading).
    """
    measured = _memory(check, gate, model, inputs, models, baseline=False)
    base = None
    if check.baseline_model is not None and check.max_ratio is not None:
        base = _memory(check, gate, None, inputs, models, baseline=True)
    status, message, ratio = memory_verdict(
        check, measured, base, against=f"baseline_model {model_name(check.baseline_model)}"
    )
    judged_ratio = check.max_mb is None and ratio is not None
    details: dict[str, Any] = {"unit": "x" if judged_ratio else "MiB", "memory": measured.to_dict()}
    if base is not None:
        details.update(baseline=base.to_dict(), ratio=ratio)
    if check.phase == "inference" and not check.isolate:
        details["load_footprint"] = footprint = load_footprint(load_memory)
        message += f"; {footprint['text']}"
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


def load_footprint(figures: dict[str, Any] | None) -> dict[str, Any]:
    """The model's load footprint (resident memory its load in this process kept), with a text saying so."""
    if not figures:
        return {
            "retained_mb": None,
            "text": "load footprint not measured (the model was loaded before this gate, by another one)",
        }
    retained = figures["retained_mb"]
    return {
        "retained_mb": retained,
        "rss_before": figures["rss_before"],
        "rss_after": figures["rss_after"],
        "text": f"load footprint {_mb(retained)} MiB (resident memory the gate's load of the model kept in this "
        "process: its weights, and framework modules first imported by it)",
    }


def _mb(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}"


def memory_verdict(
    check: CheckSpec, measured: MemoryResult, base: MemoryResult | None, *, against: str
) -> tuple[Status, str, float | None]:
    """Judge ``max_mb`` and ``max_ratio`` (against ``base``): status, message, and the ratio where there is one."""
    verdicts: list[tuple[Verdict, str]] = []
    if check.max_mb is not None:
        ok = measured.peak_mb <= check.max_mb
        text = with_bound(measured.describe(), "<=" if ok else ">", f"{check.max_mb:g} MiB")
        verdicts.append(("passed" if ok else "failed", text))
    ratio = None
    if base is not None and check.max_ratio is not None:
        text = f"vs {against} ({measured.peak_mb:.1f} MiB vs {base.peak_mb:.1f} MiB"
        if base.peak_mb < 1.0:
            verdicts.append(("inconclusive", f"peak memory ratio cannot be judged: the baseline's figure is "
                             f"{base.peak_mb:.2f} MiB, too small to divide by {text}); use max_mb"))  # fmt: skip
        else:
            ratio = measured.peak_mb / base.peak_mb
            ok = ratio <= check.max_ratio
            sign = "<=" if ok else ">"
            verdicts.append(("passed" if ok else "failed", f"peak memory ratio {ratio:.3f} {sign} max_ratio "
                             f"{check.max_ratio:g} {text}, {measured.figure}, {measured.phase} phase)"))  # fmt: skip
    return overall_status([s for s, _ in verdicts]), "; ".join(text for _, text in verdicts), ratio


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
        model = baseline_model(check, gate, models)
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

    spec = check.baseline_model if baseline else gate.model
    assert spec is not None
    gpus = sum(device.startswith("cuda") for device in available_devices()) if spec.device_map else 0
    if gpus > 1:
        raise CheckError(
            f"memory checks measure one device; model {spec.id!r} is spread by device_map {spec.device_map!r} "
            f"over {gpus} GPUs: check its memory on one device (remove device_map) or leave it out"
        )
    batch_size = check.batch_size or spec.batch_size
    threads = check.threads or spec.threads
    if check.phase == "load":
        return measure_memory("load", spec=spec, threads=threads, process=process)
    model = model or get_backend(spec.backend).load(spec)
    if inputs is None:
        raise CheckError("the inference phase needs the gate's inputs")
    rows = inputs
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

    from modelcheck.models.backends import get_backend

    if phase == "load":
        assert spec is not None
        import_frameworks(spec.backend)
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
    return MemoryResult(device=model.device, phase=phase, process=process, rows=len(batch), **figures)


def _isolated(gate: GateSpec, check: CheckSpec, *, baseline: bool) -> MemoryResult:
    """Run ``python -m modelcheck.run.isolate`` for this check and read its result."""
    command = [sys.executable, "-m", "modelcheck.run.isolate", str(gate.path), check.name]
    command += ["--baseline"] * baseline
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
