"""Fixtures and markers for hand-written model tests, registered by the plugin in every pytest run.

Fixtures:

- ``modelcheck_device`` (session): the best device here (CUDA, then MPS, then CPU), or ``--modelcheck-device``;
- ``modelcheck_load`` (session): ``modelcheck_load(source, backend=..., task=..., device=None, dtype=None,
  **model_options)`` returns the loaded model, the same object for the same arguments in every test
  (it shares the session's model cache with the gate items);
- ``modelcheck_dataset`` (session): ``modelcheck_dataset(source, input, label=None, split="test",
  limit=None)`` returns the rows as a pandas DataFrame;
- ``modelcheck_evaluate``: ``modelcheck_evaluate(model, frame, metrics=("accuracy",))`` predicts once and
  returns an :class:`Evaluation`, whose ``assert_metric("accuracy", min=0.9)`` fails like a gate check.

Markers: ``@pytest.mark.modelcheck_device("cuda")`` and ``@pytest.mark.modelcheck_backend("onnx")`` skip a
test where the device, or the backend and its framework, are missing.

Importing this module imports no framework: models and data load when a test asks for them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from modelcheck.pytest_plugin.fixture_args import check_device, check_metric_name, check_task, metric_check
from modelcheck.pytest_plugin.state import model_cache
from modelcheck.report.display import Row, Tabular

if TYPE_CHECKING:
    import pandas as pd

    from modelcheck.gatefile import CheckSpec, ModelSpec
    from modelcheck.models.backends import LoadedModel, Outputs
    from modelcheck.report.results import CheckResult

__all__ = [
    "DatasetLoader",
    "Evaluation",
    "Evaluator",
    "ModelLoader",
    "modelcheck_dataset",
    "modelcheck_device",
    "modelcheck_evaluate",
    "modelcheck_load",
]

#: What to ``pip install`` for the frameworks of the backends that ship with modelcheck.
_INSTALL = {"transformers": "'modelcheck[transformers]'", "torch": "'modelcheck[torch]'", "onnx": "'modelcheck[onnx]'"}
#: Where a frame from ``modelcheck_dataset`` keeps what ``modelcheck_evaluate`` needs (``DataFrame.attrs``).
FRAME_ATTR = "modelcheck"


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def modelcheck_device(pytestconfig: pytest.Config) -> str:
    """The device hand-written tests should use: ``--modelcheck-device`` if given, else the best one here.

    Resolved to a concrete name (``cpu``, ``cuda:0``, ``mps``); a ``--modelcheck-device`` this machine
    lacks skips the tests that use the fixture.
    """
    from modelcheck.errors import DeviceUnavailableError
    from modelcheck.models.hardware import resolve_device

    try:
        return resolve_device(_requested_device(pytestconfig))
    except DeviceUnavailableError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def modelcheck_load(pytestconfig: pytest.Config) -> ModelLoader:
    """``modelcheck_load(source, backend="transformers", task="text-classification", device=None, dtype=None,
    **model_options)``: the loaded model, loaded once per session for the same arguments."""
    return ModelLoader(pytestconfig)


@pytest.fixture(scope="session")
def modelcheck_dataset(pytestconfig: pytest.Config) -> DatasetLoader:
    """``modelcheck_dataset(source, input, label=None, split="test", limit=None)``: the rows as a DataFrame."""
    return DatasetLoader(pytestconfig)


@pytest.fixture()
def modelcheck_evaluate(pytestconfig: pytest.Config) -> Evaluator:
    """``modelcheck_evaluate(model, frame, metrics=("accuracy",), input=None, label=None)``: predict once and
    measure; ``.assert_metric("accuracy", min=0.9)`` on the result fails the test with the measurement."""
    return Evaluator(pytestconfig)


# -- the factories --------------------------------------------------------------------------------


class ModelLoader:
    """Loads models through the session's cache: one load per distinct model, however many tests ask.

    Relative paths resolve against pytest's rootdir; a Hub id (``org/name@revision``) stays as it is.
    ``device=None`` means ``--modelcheck-device`` if given, else ``auto``. ``model_options`` are the other
    gate-file ``model:`` keys (``batch_size``, ``trust_remote_code``, ``weights``, ``tokenizer``,
    ``providers``, ``threads``, ``labels``, ...). A device this machine lacks skips the test; a model
    that cannot load fails it with the reason.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def __call__(
        self,
        source: str | os.PathLike[str],
        backend: str = "transformers",
        task: str = "text-classification",
        device: str | None = None,
        dtype: str | None = None,
        **model_options: Any,
    ) -> LoadedModel:
        __tracebackhide__ = True
        from modelcheck.errors import DeviceUnavailableError, ModelcheckError

        spec = self.spec(source, backend, task, device, dtype, **model_options)
        try:
            return model_cache(self.config).get(spec)
        except DeviceUnavailableError as exc:
            pytest.skip(str(exc))
        except ModelcheckError as exc:
            pytest.fail(str(exc), pytrace=False)

    def spec(
        self,
        source: str | os.PathLike[str],
        backend: str = "transformers",
        task: str = "text-classification",
        device: str | None = None,
        dtype: str | None = None,
        **model_options: Any,
    ) -> ModelSpec:
        """The ModelSpec these arguments name (as a gate file's ``model:`` would)."""
        from modelcheck.gatefile import ModelSpec, resolve_source

        allowed = {f.name for f in fields(ModelSpec)} - {"source", "backend", "task", "device", "dtype"}
        unknown = sorted(set(model_options) - allowed)
        if unknown:
            raise TypeError(
                f"modelcheck_load() got unknown model option(s) {', '.join(unknown)}; "
                f"model options are: {', '.join(sorted(allowed))}"
            )
        check_task(task)
        requested = check_device(device if device is not None else _requested_device(self.config), "device")
        root = self.config.rootpath
        options: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in model_options.items()}
        for key in ("weights", "tokenizer"):
            if options.get(key) is not None:
                options[key] = resolve_source(os.fspath(options[key]), root, bare_hub_names=False)
        raw = os.fspath(source)
        options.setdefault("id", os.path.basename(raw.rstrip("/\\")) or raw)
        return ModelSpec(
            source=resolve_source(raw, root, bare_hub_names=False),
            backend=backend,
            task=task,
            device=requested,
            dtype=dtype,
            **options,
        )


class DatasetLoader:
    """Loads labelled data (csv, json/jsonl, parquet, an image folder or a Hub dataset) once per session.

    Returns a copy of the rows as a pandas DataFrame (first ``limit`` rows, in file order) that
    remembers its ``input``/``label`` columns, so ``modelcheck_evaluate(model, frame)`` needs no more.
    A missing file or column fails the test with the reason.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._frames: dict[tuple[Any, ...], pd.DataFrame] = {}

    def __call__(
        self,
        source: str | os.PathLike[str],
        input: str | Sequence[str],
        label: str | None = None,
        split: str = "test",
        limit: int | None = None,
        *,
        task: str = "text-classification",
    ) -> pd.DataFrame:
        __tracebackhide__ = True
        from modelcheck.errors import ModelcheckError
        from modelcheck.gatefile import DataSpec, resolve_source
        from modelcheck.run.data import load_data

        columns = _columns(input)
        if not columns:
            raise TypeError("modelcheck_dataset() needs input=<the column, or columns, fed to the model>")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValueError(f"modelcheck_dataset(limit={limit!r}): limit must be a whole number >= 1, or None")
        check_task(task)
        resolved = resolve_source(os.fspath(source), self.config.rootpath, bare_hub_names=True)
        spec = DataSpec(
            source=resolved, input=columns[0] if len(columns) == 1 else columns, label=label, split=split, limit=limit
        )
        key = (resolved, columns, label, split, limit, task)
        if key not in self._frames:
            try:
                data = load_data(spec, columns=[*columns, *([label] if label else [])], task=task)
            except ModelcheckError as exc:
                pytest.fail(str(exc), pytrace=False)
            frame = data.frame
            frame.attrs[FRAME_ATTR] = {
                "source": resolved,
                "input": list(columns),
                "label": label,
                "base": None if data.base is None else str(data.base),
                "sha256": data.sha256,
            }
            self._frames[key] = frame
        return self._frames[key].copy()


class Evaluator:
    """Runs a model over a frame once and measures metrics on its outputs.

    ``modelcheck_evaluate(model, frame, input=None, label=None, metrics=("accuracy",), task=None,
    batch_size=None)``: ``input``/``label`` default to the columns the frame was loaded with
    (``modelcheck_dataset``); ``task`` and ``batch_size`` to those the model was loaded with
    (``modelcheck_load``), else text-classification and 32. A metric is a name (``"f1"``) or a mapping of
    gate-file check keys (``{"metric": "f1", "average": "macro", "name": "macro_f1"}``).
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def __call__(
        self,
        model: LoadedModel,
        frame: pd.DataFrame,
        input: str | Sequence[str] | None = None,
        label: str | None = None,
        metrics: Sequence[str | Mapping[str, Any]] = ("accuracy",),
        task: str | None = None,
        batch_size: int | None = None,
    ) -> Evaluation:
        __tracebackhide__ = True
        from modelcheck.errors import DataError, ModelcheckError
        from modelcheck.models.predict import predict
        from modelcheck.run.inputs import model_inputs, model_targets

        meta = frame.attrs.get(FRAME_ATTR, {})
        columns = _columns(input if input is not None else meta.get("input"))
        if not columns:
            raise TypeError(
                "modelcheck_evaluate() needs input=<column> (only frames from modelcheck_dataset remember theirs)"
            )
        label = label if label is not None else meta.get("label")
        spec = model_cache(self.config).spec_of(model)
        task = task or (spec.task if spec is not None else "text-classification")
        check_task(task)
        checks = [metric_check(entry, task, self.config.rootpath) for entry in metrics]
        batch = batch_size or (spec.batch_size if spec is not None else 32)
        base = meta.get("base")
        try:
            missing = [c for c in (*columns, *([label] if label else [])) if c not in frame.columns]
            if missing:
                raise DataError(
                    f"column {', '.join(map(repr, missing))} not found in the frame; "
                    f"its columns are: {', '.join(map(str, frame.columns))}"
                )
            targets = model_targets(
                task, label, frame, model.label_names, inputs=columns, classes=getattr(model, "classes", None)
            )
            inputs = model_inputs(task, columns, frame, base=None if base is None else Path(base))
            outputs = predict(model, inputs, batch_size=batch, name=spec.id if spec is not None else None)
            evaluation = Evaluation(
                outputs=outputs, task=task, label_names=tuple(model.label_names), targets=targets, frame=frame
            )
            for check in checks:
                evaluation.metrics[check.name] = evaluation.measure(check).value
        except ModelcheckError as exc:
            pytest.fail(str(exc), pytrace=False)
        return evaluation


@dataclass
class Evaluation(Tabular):
    """A model's outputs over a frame, and the metrics measured on them (name -> value); a table in Jupyter."""

    outputs: Outputs
    task: str
    label_names: tuple[str, ...]
    targets: Any = field(repr=False)
    frame: pd.DataFrame = field(repr=False)
    metrics: dict[str, float | None] = field(default_factory=dict)
    #: The full result of every metric measured, by name (value, n, slices, message).
    results: dict[str, CheckResult] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        """Examples evaluated."""
        return len(self.outputs)

    def _table_rows(self) -> list[Row]:
        return [*self.metrics.items(), ("n", self.n)]

    def measure(self, check: CheckSpec) -> CheckResult:
        """Judge one check (as in a gate file) on these outputs; raises ModelcheckError when it cannot."""
        from modelcheck.checks.metric import evaluate_metric_check

        result = evaluate_metric_check(check, self.targets, self.outputs, self.label_names, self.frame, task=self.task)
        self.results[check.name] = result
        return result

    def assert_metric(
        self,
        metric: str,
        *,
        min: float | None = None,
        max: float | None = None,
        average: str | None = None,
        pos_label: str | int | None = None,
        slice_by: str | None = None,
        min_samples: int = 1,
    ) -> float:
        """Fail the test, with the measurement as the message, unless ``metric`` lies within the bounds.

        ``slice_by`` judges every value of that column with at least ``min_samples`` rows, as a gate
        check does. Returns the value (the worst judged slice with ``slice_by``).
        """
        __tracebackhide__ = True
        from modelcheck.errors import ModelcheckError
        from modelcheck.gatefile import CheckSpec

        if min is None and max is None:
            raise TypeError(f"assert_metric({metric!r}) needs min= and/or max=")
        check_metric_name(metric, self.task)
        check = CheckSpec(
            name=metric,
            metric=metric,
            average=average,
            pos_label=pos_label,
            min=min,
            max=max,
            slice_by=slice_by,
            min_samples=min_samples,
        )
        try:
            result = self.measure(check)
        except ModelcheckError as exc:
            pytest.fail(f"error: {exc}", pytrace=False)
        if result.status != "passed" or result.value is None:
            pytest.fail(result.message, pytrace=False)
        return float(result.value)


# -- helpers --------------------------------------------------------------------------------------


def _requested_device(config: pytest.Config) -> str:
    device: str | None = config.getoption("modelcheck_device", None)
    return device or "auto"


def _columns(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(str(v) for v in value)


def _call(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"({', '.join(shown)})"
