"""Run one gate: load its model (through the cache) and data once, predict once, judge every check."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.backends import LoadedModel, get_backend
from modelcheck.errors import BackendError, ModelcheckError
from modelcheck.results import CheckResult, GateResult
from modelcheck.tasks import TASKS

if TYPE_CHECKING:
    import pandas as pd

    from modelcheck.data import LoadedData
    from modelcheck.spec import GateSpec, ModelSpec


class ModelCache:
    """Loaded models keyed by what makes them different, so each loads once per session."""

    def __init__(self) -> None:
        self._models: dict[tuple[Any, ...], LoadedModel] = {}
        #: How many times a model was actually loaded (not served from the cache).
        self.loads = 0

    @staticmethod
    def key(model: ModelSpec) -> tuple[Any, ...]:
        return (model.backend, model.source, model.task, model.device, model.trust_remote_code)

    def get(self, model: ModelSpec) -> LoadedModel:
        key = self.key(model)
        if key not in self._models:
            self._models[key] = get_backend(model.backend).load(model)
            self.loads += 1
        return self._models[key]

    def close(self) -> None:
        for model in self._models.values():
            model.close()
        self._models.clear()


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


def run_gate(gate: GateSpec, *, file: str, models: ModelCache, stage: str | None) -> GateResult:
    """Evaluate every check of ``gate``. Errors become status ``error`` on the checks they affect."""
    result = GateResult(
        file=file,
        model={
            "id": gate.model.id,
            "source": gate.model.source,
            "backend": gate.model.backend,
            "task": gate.model.task,
            "device_requested": gate.model.device,
            "device": None,
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
    try:
        judged = _evaluate(gate, models, result)
    except ModelcheckError as exc:
        result.error = str(exc)
        judged = [_errored(check.name, check.kind, check.metric, result.error) for check in gate.checks]
    except Exception as exc:  # a framework failure must not take the other gates down
        result.error = f"{type(exc).__name__}: {exc}"
        judged = [_errored(check.name, check.kind, check.metric, result.error) for check in gate.checks]

    for outcome in judged:
        spec = gate.check(outcome.name)
        outcome.stages = list(spec.stages)
        outcome.blocking = is_blocking(spec.stages, gate, stage)
    result.checks = judged
    return result


def _evaluate(gate: GateSpec, models: ModelCache, result: GateResult) -> list[CheckResult]:
    from modelcheck.data import load_data
    from modelcheck.metrics import evaluate_metric_check
    from modelcheck.report import file_records

    spec = gate.data
    label = [spec.label] if spec.label else []
    columns = [*spec.input_columns, *label, *(c.slice_by for c in gate.checks if c.slice_by)]
    data = load_data(spec, columns=columns, task=gate.model.task)
    result.data["rows"] = len(data.frame)
    result.data["sha256"] = data.sha256

    model = models.get(gate.model)
    result.model["device"] = model.device
    files = model.artifact_files()
    root = Path(gate.model.source) if gate.model.is_local and Path(gate.model.source).is_dir() else None
    result.model["files"] = file_records(root or _common_root(files), files)

    targets = _targets(gate, data.frame, model.label_names)
    outputs = model.predict(_inputs(gate, data), batch_size=gate.model.batch_size)
    if len(outputs) != len(data.frame):
        raise BackendError(f"backend {gate.model.backend!r} returned {len(outputs)} outputs for {len(data.frame)} rows")

    outcomes = []
    for check in gate.checks:
        try:
            outcomes.append(evaluate_metric_check(check, targets, outputs, model.label_names, data.frame))
        except ModelcheckError as exc:
            outcomes.append(_errored(check.name, check.kind, check.metric, str(exc)))
    return outcomes


def _inputs(gate: GateSpec, data: LoadedData) -> Sequence[Any]:
    """One model input per data row, in the shape the task feeds (see LoadedModel.predict)."""
    from modelcheck.data import images, numeric_matrix

    frame, columns = data.frame, gate.data.input_columns
    task = TASKS[gate.model.task]
    if task.tabular:
        return list(numeric_matrix(frame, columns))
    if gate.model.task == "image-classification":
        return images(frame[columns[0]].tolist(), column=columns[0], base=data.base)
    if len(columns) == 2:
        return list(zip(frame[columns[0]].tolist(), frame[columns[1]].tolist(), strict=True))
    values: list[Any] = frame[columns[0]].tolist()
    return values


def _targets(gate: GateSpec, frame: pd.DataFrame, label_names: tuple[str, ...]) -> Any:
    """What the outputs are compared against, one per row (None when no check needs a label)."""
    from modelcheck.metrics import label_ids, numbers

    column = gate.data.label
    if column is None:
        return None
    values = frame[column].tolist()
    task = TASKS[gate.model.task]
    if task.classification:
        return label_ids(values, label_names, column=column)
    if gate.model.task == "text-generation":
        return ["" if v is None else str(v) for v in values]
    return numbers(values, column=column)


def _errored(name: str, kind: str, metric: str | None, message: str) -> CheckResult:
    return CheckResult(name=name, kind=kind, metric=metric, status="error", message=message)


def _common_root(files: list[Path]) -> Path:
    return Path(os.path.commonpath([str(f.parent) for f in files])) if files else Path(".")
