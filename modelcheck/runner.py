"""Run one gate: load its model (through the cache) and data once, predict once, judge every check.

The pieces are public for the fixtures of hand-written tests: :class:`ModelCache`, :func:`predict`
(chunked, with progress), :func:`concat_outputs`, :func:`model_inputs` and :func:`model_targets`.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.backends import LoadedModel, Outputs, get_backend
from modelcheck.errors import BackendError, DeviceUnavailableError, ModelcheckError
from modelcheck.results import CheckResult, GateResult
from modelcheck.tasks import TASKS

if TYPE_CHECKING:
    import pandas as pd

    from modelcheck.data import LoadedData
    from modelcheck.results import Status
    from modelcheck.spec import CheckSpec, GateSpec, ModelSpec


#: ModelSpec fields that do not change the loaded model (how it is named or run, not what is loaded).
_NOT_IN_CACHE_KEY = frozenset({"id", "batch_size"})

#: ``progress(done, total)``: called as prediction over a gate's rows advances (see :func:`predict`).
Progress = Callable[[int, int], None]


class ModelCache:
    """Loaded models keyed by everything that changes what is loaded, so each loads once per session.

    At most ``max_loaded`` models stay loaded (0: no limit); loading one more first closes the least
    recently used, which frees its memory (on CUDA too). A closed model refuses to predict, so code
    that holds a model across many others should load it again through the cache.
    """

    def __init__(self, max_loaded: int = 4) -> None:
        if max_loaded < 0:
            raise ValueError(f"max_loaded must be 0 (no limit) or more, got {max_loaded}")
        self.max_loaded = max_loaded
        self._models: OrderedDict[tuple[Any, ...], tuple[ModelSpec, LoadedModel]] = OrderedDict()
        #: How many times a model was actually loaded (not served from the cache).
        self.loads = 0
        #: How many models were closed to stay within ``max_loaded``.
        self.evictions = 0

    @staticmethod
    def key(model: ModelSpec) -> tuple[Any, ...]:
        """Every field of ``model`` except its id and batch size (both only used at predict time); ``auto`` resolved."""
        key = []
        for spec_field in fields(model):
            if spec_field.name in _NOT_IN_CACHE_KEY:
                continue
            value = getattr(model, spec_field.name)
            if spec_field.name == "device":
                value = _device_key(value)
            key.append((spec_field.name, _hashable(value)))
        return tuple(key)

    def get(self, model: ModelSpec) -> LoadedModel:
        """The loaded model for ``model``: from the cache, or loaded now (closing the least recently used)."""
        key = self.key(model)
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key][1]
        while self.max_loaded and len(self._models) >= self.max_loaded:
            _, (_, evicted) = self._models.popitem(last=False)
            self.evictions += 1
            evicted.close()
        loaded = get_backend(model.backend).load(model)
        self.loads += 1
        self._models[key] = (model, loaded)
        return loaded

    def spec_of(self, loaded: object) -> ModelSpec | None:
        """The spec a cached model was loaded from (None for a model this cache did not load)."""
        return next((spec for spec, model in self._models.values() if model is loaded), None)

    def __len__(self) -> int:
        return len(self._models)

    def close(self) -> None:
        """Close every loaded model."""
        models = [model for _, model in self._models.values()]
        self._models.clear()
        for model in models:
            model.close()


def _device_key(device: str) -> str:
    """``auto``/``cuda`` as the device they resolve to, so ``auto`` and ``cpu`` share a load on a CPU machine."""
    from modelcheck.hardware import resolve_device

    try:
        return resolve_device(device)
    except DeviceUnavailableError:
        return device  # loading raises it, with the message


def _hashable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_hashable(v) for v in value]
        return tuple(sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items)
    return value


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
) -> GateResult:
    """Evaluate every check of ``gate``. Errors become status ``error`` on the checks they affect.

    A device the gate asks for that this machine lacks (DeviceUnavailableError) makes every check
    ``skipped`` with the reason: the gate cannot be judged here, which is not a failure.
    ``progress(done, total)`` is called as prediction over the rows advances. With ``outputs_dir``
    the per-example outputs are saved there as ``<model id>.npz`` (what baselines are made of).
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
    try:
        judged = _evaluate(gate, models, result, progress, outputs_dir)
    except DeviceUnavailableError as exc:
        judged = [_outcome(check, "skipped", str(exc)) for check in gate.checks]
    except ModelcheckError as exc:
        result.error = str(exc)
        judged = [_outcome(check, "error", result.error) for check in gate.checks]
    except Exception as exc:  # a framework failure must not take the other gates down
        result.error = f"{type(exc).__name__}: {exc}"
        judged = [_outcome(check, "error", result.error) for check in gate.checks]

    for outcome in judged:
        spec = gate.check(outcome.name)
        outcome.stages = list(spec.stages)
        outcome.blocking = is_blocking(spec.stages, gate, stage)
    result.checks = judged
    return result


def _fingerprint(gate: GateSpec, result: GateResult) -> None:
    """The gate file's sha256 and its ``publish.files`` extras' hashes (what ``modelcheck publish`` checks)."""
    from modelcheck.hub.files import publish_records, sha256_file

    with contextlib.suppress(OSError):
        result.gate_sha256 = sha256_file(gate.path)
        result.publish_files = publish_records(gate)


def _evaluate(
    gate: GateSpec, models: ModelCache, result: GateResult, progress: Progress | None, outputs_dir: Path | None
) -> list[CheckResult]:
    from modelcheck.data import load_data
    from modelcheck.report import file_records

    # The model first: a device this machine lacks skips the gate before its data is read.
    model = models.get(gate.model)
    result.model["device"] = model.device
    files = model.artifact_files()
    root = Path(gate.model.source) if gate.model.is_local and Path(gate.model.source).is_dir() else None
    result.model["files"] = file_records(root or _common_root(files), files)

    spec = gate.data
    label = [spec.label] if spec.label else []
    columns = [*spec.input_columns, *label, *(c.slice_by for c in gate.checks if c.slice_by)]
    data = load_data(spec, columns=columns, task=gate.model.task)
    result.data["rows"] = len(data.frame)
    result.data["sha256"] = data.sha256

    targets = model_targets(gate.model.task, spec.label, data.frame, model.label_names)
    inputs = model_inputs(gate.model.task, spec.input_columns, data.frame, base=data.base)
    outputs = predict(model, inputs, batch_size=gate.model.batch_size, progress=progress)
    if outputs_dir is not None:
        from modelcheck.baselines import save_outputs

        saved = outputs_dir / f"{gate.model.id}.npz"
        digest = save_outputs(outputs, saved, data_sha256=data.sha256)
        result.outputs = {"path": f"{outputs_dir.name}/{saved.name}", "sha256": digest}

    artifacts = [record["sha256"] for record in result.model["files"]]
    outcomes = []
    for check in gate.checks:
        try:
            outcomes.append(_judge(check, gate, model, targets, outputs, data, models, inputs, artifacts))
        except DeviceUnavailableError as exc:  # e.g. a parity check against CUDA on a CPU machine
            outcomes.append(_outcome(check, "skipped", str(exc)))
        except ModelcheckError as exc:
            outcomes.append(_outcome(check, "error", str(exc)))
    return outcomes


def _judge(
    check: CheckSpec,
    gate: GateSpec,
    model: LoadedModel,
    targets: Any,
    outputs: Outputs,
    data: LoadedData,
    models: ModelCache,
    inputs: Sequence[Any],
    artifacts: list[str],
) -> CheckResult:
    """One check on the gate's (already computed) outputs."""
    if check.kind == "regression":
        from modelcheck.regression import judge_regression

        return judge_regression(
            check, targets, outputs, model.label_names, data.frame, model_id=gate.model.id, data_sha256=data.sha256
        )
    if check.kind == "parity":
        from modelcheck.parity_check import judge_parity

        return judge_parity(check, gate, model, outputs, inputs, models, artifacts=artifacts)
    if check.kind in ("latency", "memory"):
        from modelcheck.perf_check import judge_latency, judge_memory

        judge = judge_latency if check.kind == "latency" else judge_memory
        return judge(check, gate, model, inputs, models)
    from modelcheck.metrics import evaluate_metric_check

    return evaluate_metric_check(check, targets, outputs, model.label_names, data.frame)


# -- prediction -----------------------------------------------------------------------------------


def chunk_size(batch_size: int) -> int:
    """Rows per ``predict`` call when predicting in chunks: ``max(batch_size * 8, 256)``."""
    return max(batch_size * 8, 256)


def predict(model: LoadedModel, inputs: Sequence[Any], *, batch_size: int, progress: Progress | None = None) -> Outputs:
    """``model.predict`` over ``inputs`` in chunks of :func:`chunk_size` rows, outputs in input order.

    Chunking lets ``progress(done, total)`` report between chunks (it is called once with ``done=0``
    first, and last with ``done == total``); backends still batch (and sort by length) within a chunk.
    Chunks do not depend on ``progress``, so the outputs are the same with or without it.
    """
    total = len(inputs)
    size = chunk_size(batch_size)
    if progress is not None:
        progress(0, total)
    parts = []
    for start in range(0, max(total, 1), size):
        chunk = inputs[start : start + size]
        outputs = model.predict(chunk, batch_size=batch_size)
        if len(outputs) != len(chunk):
            raise BackendError(
                f"backend of {model!r} returned {len(outputs)} outputs for {len(chunk)} inputs "
                f"(rows {start} to {start + len(chunk) - 1}); a backend returns one output per input"
            )
        parts.append(outputs)
        if progress is not None:
            progress(start + len(chunk), total)
    return concat_outputs(parts)


def concat_outputs(parts: Sequence[Outputs]) -> Outputs:
    """The outputs of consecutive chunks of inputs as one :class:`Outputs`, in order."""
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return Outputs()
    import numpy as np

    joined: dict[str, Any] = {}
    for output_field in fields(Outputs):
        values = [getattr(part, output_field.name) for part in parts]
        if all(v is None for v in values):
            joined[output_field.name] = None
        elif any(v is None for v in values):
            raise BackendError(f"the backend set Outputs.{output_field.name} for some inputs but not for others")
        elif isinstance(values[0], list):
            joined[output_field.name] = [item for value in values for item in value]
        else:
            joined[output_field.name] = np.concatenate(values, axis=0)
    return Outputs(**joined)


# -- inputs and targets ---------------------------------------------------------------------------


def model_inputs(task: str, columns: Sequence[str], frame: pd.DataFrame, *, base: Path | None = None) -> Sequence[Any]:
    """One model input per row of ``frame``, in the shape ``task`` feeds (see LoadedModel.predict).

    ``columns`` are the input columns (several: tabular features or the two texts of a pair);
    ``base`` is the folder relative image paths resolve against.
    """
    from modelcheck.data import images, numeric_matrix

    columns = tuple(columns)
    if TASKS[task].tabular:
        return list(numeric_matrix(frame, columns))
    if task == "image-classification":
        return images(frame[columns[0]].tolist(), column=columns[0], base=base)
    if len(columns) == 2:
        return list(zip(frame[columns[0]].tolist(), frame[columns[1]].tolist(), strict=True))
    values: list[Any] = frame[columns[0]].tolist()
    return values


def model_targets(task: str, label: str | None, frame: pd.DataFrame, label_names: Sequence[str]) -> Any:
    """What the outputs are compared against, one per row (None without a ``label`` column).

    Class ids for classification tasks (labels given as names or ids), texts for text generation,
    numbers otherwise.
    """
    from modelcheck.metrics import label_ids, numbers

    if label is None:
        return None
    values = frame[label].tolist()
    if TASKS[task].classification:
        return label_ids(values, tuple(label_names), column=label)
    if task == "text-generation":
        return ["" if v is None else str(v) for v in values]
    return numbers(values, column=label)


def _outcome(check: CheckSpec, status: Status, message: str) -> CheckResult:
    return CheckResult(name=check.name, kind=check.kind, metric=check.metric, status=status, message=message)


def _common_root(files: list[Path]) -> Path:
    return Path(os.path.commonpath([str(f.parent) for f in files])) if files else Path(".")
