"""Metric checks: a gate's outputs scored by per-class counts (accuracy, precision, recall, F1; see
:mod:`modelcheck.checks.counts`), scikit-learn / scipy (roc_auc, regression, spearman) or a local evaluate module.

A check is judged on the whole data, or per value of ``slice_by`` with its worst judged slice as
the value. Targets and outputs come from the runner, one row per data row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modelcheck.errors import CheckError
from modelcheck.report.numbers import bound_text, value_text
from modelcheck.report.results import CheckResult

if TYPE_CHECKING:
    import pandas as pd

    from modelcheck.checks import GateRun
    from modelcheck.gatefile import CheckSpec
    from modelcheck.models.backends import Outputs
    from modelcheck.report.results import Status
    from modelcheck.tasks.base import RowStatistics

_MISSING_SLICE = "<missing>"


def judge(check: CheckSpec, run: GateRun) -> CheckResult:
    """The check kind's entry in :data:`modelcheck.checks.KINDS`."""
    return evaluate_metric_check(
        check, run.targets, run.outputs, run.model.label_names, run.frame, task=run.gate.model.task
    )


def evaluate_metric_check(
    check: CheckSpec,
    targets: Any,
    outputs: Outputs,
    label_names: Sequence[str],
    frame: pd.DataFrame,
    *,
    task: str | None = None,
) -> CheckResult:
    """Judge one metric check on the whole data, or per value of ``slice_by``.

    ``targets`` is what the outputs are compared against, one per row: class ids, numbers, texts,
    or None for metrics that need no label (cosine_similarity reads ``check.reference``). A family
    task's metric (:mod:`modelcheck.tasks`) comes from its per-row statistics, slices included.
    """
    scorer = Scorer(check, label_names, n_rows=len(outputs), task=task)
    n_total = len(outputs)

    if check.slice_by is None:
        value = scorer.score(targets, outputs, None)
        label = scorer.label
        verdict, message = _judge(label, value, check, n_total)
        return CheckResult(
            name=check.name, kind=check.kind, metric=check.metric, status=verdict, message=message,
            value=value, threshold=check.threshold, n=n_total, details=scorer.details,
        )  # fmt: skip

    groups = frame[check.slice_by].astype(object).where(frame[check.slice_by].notna(), _MISSING_SLICE)
    slices: list[dict[str, Any]] = []
    statistics = None if scorer.family is None else scorer.statistics(targets, outputs)
    label = scorer.label
    for key, rows in groups.groupby(groups, sort=True).indices.items():
        n = len(rows)
        if statistics is not None:
            value = statistics.value(rows)
        else:
            value = scorer.score(take_rows(targets, rows), outputs.take(rows), rows)
        large_enough = n >= check.min_samples
        verdict = _judge(label, value, check, n)[0] if large_enough else "skipped"
        slices.append({"slice": str(key), "n": n, "value": value, "judged": large_enough, "status": verdict})
    details = {**scorer.details, "slice_by": check.slice_by, "slices": slices}

    judged = [s for s in slices if s["judged"]]
    small = [s for s in slices if not s["judged"]]
    too_small = (
        f"; {len(small)} slice(s) under min_samples {check.min_samples} reported, not judged: "
        + ", ".join(f"{s['slice']} (n={s['n']})" for s in small)
        if small
        else ""
    )
    if not judged:
        return CheckResult(
            name=check.name, kind=check.kind, metric=check.metric, status="skipped",
            message=f"no slice of {check.slice_by!r} has min_samples {check.min_samples} rows{too_small}",
            threshold=check.threshold, n=n_total, details=details,
        )  # fmt: skip
    by_value = sorted(judged, key=lambda s: float(s["value"]))
    worst = by_value[0] if check.min is not None else by_value[-1]
    failing = [s for s in judged if s["status"] == "failed"]
    bound = _bound_text(check)
    status: Status
    if failing:
        listed = ", ".join(f"{s['slice']} {_fmt(s['value'], check)} (n={s['n']})" for s in failing)
        message = f"{label} by {check.slice_by}: {len(failing)} of {len(judged)} slices fail {bound}: {listed}"
        status = "failed"
    else:
        message = (
            f"{label} by {check.slice_by}: all {len(judged)} slices meet {bound}; "
            f"worst {worst['slice']} {_fmt(worst['value'], check)} (n={worst['n']})"
        )
        status = "passed"
    return CheckResult(
        name=check.name, kind=check.kind, metric=check.metric, status=status, message=message + too_small,
        value=worst["value"], threshold=check.threshold, n=n_total, details=details,
    )  # fmt: skip


class Scorer:
    """Computes one check's metric on all rows or a subset; set up (and validated) once per check.

    With ``task`` a family task (:func:`modelcheck.tasks.serves`), the metric comes from the family's
    per-row statistics (:meth:`statistics`), computed once per outputs object.
    """

    def __init__(self, check: CheckSpec, label_names: Sequence[str], *, n_rows: int, task: str | None = None) -> None:
        from modelcheck.tasks import serves

        self.check = check
        if check.metric is None:
            raise CheckError(f"check {check.name!r} has no metric")
        self.metric: str = check.metric
        self.details: dict[str, Any] = {}
        self.average: str | None = None
        self.pos_label: int | None = None
        self.reference: np.ndarray | None = None
        self.module: Any = None
        self.label_names = tuple(label_names)
        self.family = None if task is None or check.evaluate is not None else serves(task, check.metric)
        self._statistics: list[tuple[Outputs, RowStatistics]] = []
        if self.family is not None:
            self.label = self.metric
            return
        if self.metric in ("precision", "recall", "f1", "roc_auc"):
            self.average, self.pos_label = _averaging(check, label_names)
            self.details["average"] = self.average
            if self.pos_label is not None:
                self.details["pos_label"] = label_names[self.pos_label]
        if self.metric == "cosine_similarity":
            self.reference = _load_reference(check, n_rows)
        if check.evaluate is not None:
            from modelcheck.checks.evaluate_module import load_module

            self.module = load_module(check)
            self.details["evaluate"] = str(check.evaluate["path"])
        self.label = self.metric if self.average is None else f"{self.metric} ({self.average})"

    def statistics(self, targets: Any, outputs: Outputs) -> RowStatistics:
        """A family metric's per-row statistics for ``outputs`` (computed once per outputs object)."""
        assert self.family is not None
        for seen, statistics in self._statistics:
            if seen is outputs:
                return statistics
        statistics = self.family.row_statistics(self.check, targets, outputs, self.label_names)
        self._statistics.append((outputs, statistics))
        self.details.update(statistics.details)
        average = self.details.get("average")
        self.label = self.metric if average is None else f"{self.metric} ({average})"
        return statistics

    def score(self, targets: Any, outputs: Outputs, rows: np.ndarray | None) -> float:
        if self.family is not None:
            return self.statistics(targets, outputs).value()
        if self.module is not None:
            from modelcheck.checks.evaluate_module import compute

            return compute(self.module, self.check, targets, outputs)
        metric = self.metric
        if metric in ("accuracy", "precision", "recall", "f1", "roc_auc"):
            return self._classification(targets, outputs)
        if metric in ("mae", "rmse", "r2"):
            return _regression(metric, targets, _need(outputs.values, metric, "values"))
        if metric == "cosine_similarity":
            assert self.reference is not None
            reference = self.reference if rows is None else self.reference[rows]
            return float(np.mean(_row_cosine(_need(outputs.embeddings, metric, "embeddings"), reference)))
        if metric == "spearman":
            return _spearman(targets, outputs)
        raise CheckError(f"check {self.check.name!r}: no implementation for metric {metric!r}")

    def _classification(self, targets: np.ndarray, outputs: Outputs) -> float:
        from modelcheck.checks.counts import counted_metric

        predicted = _need(outputs.labels, self.metric, "labels")
        if self.metric == "roc_auc":
            return self._roc_auc(targets, _need(outputs.scores, "roc_auc", "class scores"))
        return counted_metric(self.metric, self.average, self.pos_label, targets, predicted)

    def _roc_auc(self, targets: np.ndarray, scores: np.ndarray) -> float:
        from sklearn import metrics

        present = np.unique(targets)
        if len(present) < 2:
            raise CheckError(
                f"check {self.check.name!r}: roc_auc needs examples of at least two classes; "
                f"the rows evaluated hold only class id {present.tolist()}"
            )
        if self.average == "binary":
            return float(metrics.roc_auc_score(targets == self.pos_label, scores[:, self.pos_label]))
        if self.average not in ("macro", "weighted"):
            raise CheckError(f"check {self.check.name!r}: roc_auc averages macro or weighted, not {self.average!r}")
        labels = list(range(scores.shape[1]))
        return float(metrics.roc_auc_score(targets, scores, multi_class="ovr", average=self.average, labels=labels))


def _averaging(check: CheckSpec, label_names: Sequence[str]) -> tuple[str, int | None]:
    """The sklearn ``average`` and positive class id a check uses."""
    n_labels = len(label_names)
    average = check.average or ("binary" if n_labels == 2 else "macro")
    if average != "binary":
        return average, None
    if n_labels != 2:
        raise CheckError(
            f"check {check.name!r}: average 'binary' needs a model with two labels, this one has {n_labels} "
            f"({', '.join(label_names)}); use average: macro, micro or weighted"
        )
    if check.pos_label is None:
        return average, 1
    if isinstance(check.pos_label, int) and 0 <= check.pos_label < n_labels:
        return average, check.pos_label
    if isinstance(check.pos_label, str) and check.pos_label in label_names:
        return average, list(label_names).index(check.pos_label)
    raise CheckError(
        f"check {check.name!r}: pos_label {check.pos_label!r} is not one of the model's labels "
        f"({', '.join(f'{i}={n}' for i, n in enumerate(label_names))})"
    )


def _regression(metric: str, targets: np.ndarray, values: np.ndarray) -> float:
    from sklearn import metrics

    if metric == "mae":
        return float(metrics.mean_absolute_error(targets, values))
    if metric == "rmse":
        return float(metrics.root_mean_squared_error(targets, values))
    if len(targets) < 2:
        raise CheckError("r2 needs at least two rows")
    return float(metrics.r2_score(targets, values))


def _row_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.asarray(np.sum(a * b, axis=1) / np.where(norms == 0, 1.0, norms))


def _spearman(targets: np.ndarray, outputs: Outputs) -> float:
    from scipy import stats

    first = _need(outputs.embeddings, "spearman", "embeddings")
    second = _need(outputs.pair_embeddings, "spearman", "embeddings of the second text (data.input: [a, b])")
    similarity = _row_cosine(first, second)
    if len(targets) < 3 or np.all(targets == targets[0]):
        raise CheckError("spearman needs at least three rows with differing similarity labels")
    return float(stats.spearmanr(similarity, targets).statistic)


def _load_reference(check: CheckSpec, n_rows: int) -> np.ndarray:
    from pathlib import Path

    path = Path(str(check.reference))
    if not path.is_file():
        raise CheckError(f"check {check.name!r}: reference embeddings not found: {path} (reference)")
    try:
        reference = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CheckError(f"check {check.name!r}: cannot read {path} as a .npy array: {exc}") from None
    if reference.ndim != 2 or reference.shape[0] < n_rows:
        raise CheckError(
            f"check {check.name!r}: reference {path} has shape {reference.shape}; "
            f"expected (rows, dim) with at least the {n_rows} rows evaluated"
        )
    return np.asarray(reference[:n_rows])


def _need(value: Any, metric: str, what: str) -> Any:
    if value is None:
        raise CheckError(f"metric {metric} needs the model's {what}, which this backend did not produce")
    return value


def take_rows(targets: Any, rows: np.ndarray) -> Any:
    if targets is None:
        return None
    if isinstance(targets, np.ndarray):
        return targets[rows]
    return [targets[i] for i in rows]


def _judge(label: str, value: float, check: CheckSpec, n: int) -> tuple[Status, str]:
    shown = _fmt(value, check)
    if check.min is not None and value < check.min:
        return "failed", f"{label} {shown} < min {bound_text(check.min)} (n={n})"
    if check.max is not None and value > check.max:
        return "failed", f"{label} {shown} > max {bound_text(check.max)} (n={n})"
    return "passed", f"{label} {shown} meets {_bound_text(check)} (n={n})"


def _bound_text(check: CheckSpec) -> str:
    parts = []
    if check.min is not None:
        parts.append(f"min {bound_text(check.min)}")
    if check.max is not None:
        parts.append(f"max {bound_text(check.max)}")
    return " and ".join(parts)


def _fmt(value: float, check: CheckSpec) -> str:
    """The value with enough digits to show how it compares with the check's bounds."""
    return value_text(value, [b for b in (check.min, check.max) if b is not None])
