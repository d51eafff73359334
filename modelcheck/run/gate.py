"""Run one gate: load its model (through the cache) and data once, predict once, judge every check."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.checks import GateRun, judge
from modelcheck.checks.requests import judge_requests
from modelcheck.errors import CheckError, DeviceUnavailableError, ModelcheckError, ModelLoadError
from modelcheck.models.backends import import_frameworks
from modelcheck.models.cache import Measure, ModelCache
from modelcheck.models.predict import Progress
from modelcheck.report.results import CheckResult, GateResult
from modelcheck.run.engines import Engine, LocalEngine
from modelcheck.run.inputs import model_inputs, model_targets
from modelcheck.run.interleave import interleaved_partners, predict_interleaved
from modelcheck.tasks import check_targets

if TYPE_CHECKING:
    from modelcheck.gatefile import CheckSpec, GateSpec
    from modelcheck.models.backends import LoadedModel
    from modelcheck.report.results import Status

__all__ = ["NOT_SELECTED", "ModelCache", "Progress", "is_blocking", "run_gate"]

#: The message of a check the run left out.
NOT_SELECTED = "not selected in this run (pytest -k, -m, --deselect or --lf left it out): not measured"


def is_blocking(stages: tuple[str, ...], gate: GateSpec, selected_stage: str | None) -> bool:
    """Whether a failure of a check in ``stages`` fails the run.

    A gate without stages blocks on every check. With ``--modelcheck-stage S`` only checks of S
    block; without it, checks in any stage block and checks in no stage only warn.
    """
    if not gate.stages:
        return True
    if selected_stage is None:
        return bool(stages)
    return selected_stage in stages


def run_gate(
    gate: GateSpec,
    *,
    file: str,
    models: ModelCache,
    stage: str | None,
    progress: Progress | None = None,
    outputs_dir: Path | None = None,
    report_dir: Path | None = None,
    selected: Collection[str] | None = None,
    engine: Engine | None = None,
) -> GateResult:
    """Evaluate every check of ``gate``. Errors become status ``error`` on the checks they affect.

    With ``selected`` (check names: what pytest's -k, -m, --deselect or --lf left in) only those
    checks are measured; the others are reported ``not run``, and with none selected nothing loads.

    A device the gate asks for that this machine lacks (DeviceUnavailableError) makes every check
    ``skipped`` with the reason: the gate cannot be judged here, which is not a failure.
    ``progress(done, total)`` is called as prediction over the rows advances. With ``outputs_dir``
    the per-example outputs are saved there as ``<model id>-<8 hex of the gate file>.npz`` (what
    baselines are made of; two gates sharing a model id never share a file), and the report names
    them relative to ``report_dir`` (default: the parent of ``outputs_dir``).
    """
    result = GateResult(
        file=file,
        model={
            "id": gate.model.id,
            "source": gate.model.source,
            "backend": gate.model.backend,
            "task": gate.model.task,
            "device_requested": gate.model.device,
            "device": None,
            "threads": None,
            "files": [],
        },
        data={
            "source": gate.data.source,
            "split": gate.data.split,
            "input": gate.data.input,
            "label": gate.data.label,
            "limit": gate.data.limit,
            "rows": None,
            "sha256": None,
        },
        stages={name: list(members) for name, members in gate.stages.items()},
        checks=[],
    )
    _fingerprint(gate, result)
    chosen = tuple(check for check in gate.checks if selected is None or check.name in selected)
    started = time.perf_counter()
    try:
        saving = None if outputs_dir is None else (outputs_dir, report_dir or outputs_dir.parent)
        judged = _evaluate(replace(gate, checks=chosen), models, result, progress, saving, engine) if chosen else []
    except DeviceUnavailableError as exc:
        judged = [_outcome(check, "skipped", str(exc)) for check in chosen]
    except ModelcheckError as exc:
        result.error = str(exc)
        judged = [_outcome(check, "error", result.error) for check in chosen]
    except Exception as exc:  # a framework failure must not take the other gates down
        result.error = f"{type(exc).__name__}: {exc}"
        judged = [_outcome(check, "error", result.error) for check in chosen]
    if callable(result.model.get("endpoint")):  # a served model: what this gate sent it (see _evaluate)
        result.model["endpoint"] = result.model["endpoint"]()
    shared_s = time.perf_counter() - started - sum(outcome.duration_s or 0.0 for outcome in judged)
    for outcome in judged:
        outcome.duration_s = (outcome.duration_s or 0.0) + max(shared_s, 0.0) / len(judged)
    by_name = {outcome.name: outcome for outcome in judged}
    judged = [by_name.get(check.name) or _outcome(check, "not run", NOT_SELECTED) for check in gate.checks]

    for outcome in judged:
        spec = gate.check(outcome.name)
        outcome.stages = list(spec.stages)
        outcome.blocking = is_blocking(spec.stages, gate, stage)
        outcome.line = spec.line
    result.checks = judged
    return result


def _evaluate(
    gate: GateSpec,
    models: ModelCache,
    result: GateResult,
    progress: Progress | None,
    saving: tuple[Path, Path] | None,
    engine: Engine | None = None,
) -> list[CheckResult]:
    from modelcheck.report.document import file_records
    from modelcheck.run.data import load_data

    # The model first: a device this machine lacks skips the gate before its data is read.
    model = _load_model(gate, models)
    result.model["device"] = model.device
    endpoint_record = getattr(model, "endpoint_record", None)
    if callable(endpoint_record):  # a served model: no files; run_gate records its endpoint and requests
        result.model["endpoint"] = endpoint_record
    files = model.artifact_files()
    root = Path(gate.model.source) if gate.model.is_local and Path(gate.model.source).is_dir() else None
    result.model["files"] = file_records(root or _common_root(files), files)

    spec = gate.data
    label = list(spec.label_columns)
    data = load_data(spec, columns=[*spec.input_columns, *label], task=gate.model.task)
    unsliceable = _missing_slice_columns(gate, result.file, data.frame.columns)
    result.data["rows"] = len(data.frame)
    result.data["sha256"] = data.sha256

    classes = getattr(model, "classes", None)  # a converted classifier's own class values, where known
    targets = model_targets(
        gate.model.task, spec.label, data.frame, model.label_names,
        inputs=spec.input_columns, source=spec.source, classes=classes, box_format=spec.box_format,
    )  # fmt: skip
    inputs = model_inputs(gate.model.task, spec.input_columns, data.frame, base=data.base, source=spec.source)
    check_targets(gate.model.task, targets, inputs)  # e.g. every box inside its image
    fed = inputs
    if any(check.metric == "perplexity" for check in gate.checks):  # the model also scores the references
        from modelcheck.tasks.generation import scoring_inputs

        fed = scoring_inputs(inputs, targets, column=spec.input_columns[0])  # latency checks time `inputs` only
    engine = engine or LocalEngine()
    # A check with max_error_rate over a served model: failed requests are counted, not raised (local engine).
    tolerating = getattr(model, "tolerating_failures", None)
    wanted = any(check.max_error_rate is not None for check in gate.checks)
    counting = tolerating() if wanted and engine.name == "local" and callable(tolerating) else None
    shared: dict[Any, Any] = {}
    on_threads = lambda threads: result.model.__setitem__("threads", threads)  # noqa: E731
    # canary against production: served models compared over the data are predicted interleaved with it
    partners = interleaved_partners(gate, models) if engine.name == "local" and fed is inputs else []
    with counting or contextlib.nullcontext(None) as tally:
        if partners:
            outputs = predict_interleaved(gate, model, fed, partners, models, shared, progress=progress,
                                          on_threads=on_threads)  # fmt: skip
        else:
            outputs = engine.predict(gate.model, model, fed, batch_size=gate.model.batch_size, progress=progress,
                                     on_threads=on_threads)  # fmt: skip
    if engine.name != "local":
        result.model["engine"] = engine.record()
    if saving is not None:
        from modelcheck.report.baselines import save_outputs

        folder, report_dir = saving
        key = hashlib.sha256(result.file.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        saved = folder / f"{gate.model.id}-{key}.npz"
        try:
            digest = save_outputs(outputs, saved, data_sha256=data.sha256)
        except OSError as exc:
            raise CheckError(f"cannot save the per-example outputs to {saved} ({exc.strerror or exc})") from None
        result.outputs = {"path": saved.relative_to(report_dir).as_posix(), "sha256": digest}

    frame, answered, every_input = data.frame, None, None
    if outputs.failed is not None and outputs.failed.any():  # judged on the rows the server answered
        import numpy as np

        from modelcheck.checks.metric import take_rows

        answered = ~outputs.failed
        rows = np.flatnonzero(answered)
        frame = frame.iloc[rows].reset_index(drop=True)
        every_input = inputs
        inputs, targets, outputs = take_rows(inputs, rows), take_rows(targets, rows), outputs.take(rows)
    run = GateRun(
        gate=gate, model=model, models=models, frame=frame, data_sha256=data.sha256, inputs=inputs,
        targets=targets, outputs=outputs, artifacts=[record["sha256"] for record in result.model["files"]],
        load_memory=models.load_note(gate.model), requests=tally, answered=answered, every_input=every_input,
        shared=shared,
    )  # fmt: skip
    outcomes = []
    for check in gate.checks:
        if check.name in unsliceable:
            outcomes.append(_outcome(check, "error", unsliceable[check.name]))
            continue
        began = time.perf_counter()
        try:
            if run.requests is not None and check.kind in ("metric", "regression", "parity"):  # the tolerant pass
                outcomes.append(judge_requests(check, run, judge))
            else:
                outcomes.append(judge(check, run))
        except DeviceUnavailableError as exc:  # e.g. a parity check against CUDA on a CPU machine
            outcomes.append(_outcome(check, "skipped", str(exc)))
        except ModelcheckError as exc:
            outcomes.append(_outcome(check, "error", str(exc)))
        outcomes[-1].duration_s = time.perf_counter() - began
    return outcomes


def _missing_slice_columns(gate: GateSpec, file: str, columns: Iterable[object]) -> dict[str, str]:
    """The message for each check whose ``slice_by`` names no column of the data (checked before predicting)."""
    known = [str(c) for c in columns]
    where = ", ".join(known) or "none"
    return {
        check.name: (
            f"{file}" + (f", line {check.line}" if check.line else "") + f": check {check.name!r} has slice_by "
            f"{check.slice_by!r}, which is not a column of {gate.data.source}; its columns are: {where}. "
            "Set slice_by to one of them"
        )
        for check in gate.checks
        if check.slice_by and check.slice_by not in known
    }


def _measured_load(backend: str) -> Measure:
    """A load that also records the resident memory it kept (the load footprint memory checks report)."""

    def measure(load: Callable[[], LoadedModel]) -> tuple[LoadedModel, Any]:
        from modelcheck.measure.memory import rss_growth

        import_frameworks(backend)  # their import is not the model's footprint
        return rss_growth(load)

    return measure


def _load_model(gate: GateSpec, models: ModelCache) -> LoadedModel:
    """The gate's model from the cache; a Hub id that failed and reads like a path says both readings."""
    raw = gate.model.source
    try:
        return models.get(gate.model, measure=_measured_load(gate.model.backend))
    except DeviceUnavailableError:
        raise
    except ModelLoadError as exc:
        if gate.model.is_local or "/" not in raw or raw.startswith("hub://"):
            raise
        local = gate.path.parent / raw.partition("@")[0]
        raise ModelLoadError(
            f"model.source {raw!r} is no local path ({local} does not exist; relative paths resolve against the "
            f"gate file's folder), so it was read as a Hub id: {exc}"
        ) from None


def _outcome(check: CheckSpec, status: Status, message: str) -> CheckResult:
    return CheckResult(name=check.name, kind=check.kind, metric=check.metric, status=status, message=message)


def _fingerprint(gate: GateSpec, result: GateResult) -> None:
    """The gate file's sha256 and its ``publish.files`` extras' hashes (what ``modelcheck publish`` checks)."""
    from modelcheck.report.files import sha256_file
    from modelcheck.report.published import publish_records

    with contextlib.suppress(OSError):
        result.gate_sha256 = sha256_file(gate.path)
        result.publish_files = publish_records(gate)


def _common_root(files: list[Path]) -> Path:
    return Path(os.path.commonpath([str(f.parent) for f in files])) if files else Path(".")
