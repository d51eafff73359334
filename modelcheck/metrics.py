"""Quality-metric checks: scikit-learn metrics over the gate's predictions, whole or per slice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modelcheck.errors import CheckError, DataError
from modelcheck.results import CheckResult, Status

if TYPE_CHECKING:
    import pandas as pd

    from modelcheck.spec import CheckSpec

METRICS = ("accuracy", "precision", "recall", "f1")
_MISSING_SLICE = "<missing>"


def label_ids(values: Sequence[Any], label_names: Sequence[str], *, column: str) -> np.ndarray:
    """Map a label column (class names or class ids) to the model's class ids.

    Raises DataError naming the labels the model does not know and the ones it does.
    """
    index = {name: i for i, name in enumerate(label_names)}
    lowered = {name.lower(): i for i, name in enumerate(label_names)}
    out = np.empty(len(values), dtype=np.int64)
    unknown: dict[str, int] = {}
    for row, value in enumerate(values):
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            if 0 <= int(value) < len(label_names):
                out[row] = int(value)
                continue
        elif isinstance(value, str):
            found = index.get(value, lowered.get(value.lower()))
            if found is not None:
                out[row] = found
                continue
        unknown.setdefault(repr(value), row)
    if unknown:
        shown = ", ".join(f"{v} (first at row {r})" for v, r in list(unknown.items())[:5])
        known = ", ".join(f"{i}={name}" for i, name in enumerate(label_names))
        raise DataError(
            f"label column {column!r} holds values the model does not know: {shown}; "
            f"the model's labels are {known} (use these names or ids)"
        )
    return out


def evaluate_metric_check(
    check: CheckSpec,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    label_names: Sequence[str],
    frame: pd.DataFrame,
) -> CheckResult:
    """Judge one metric check on the whole data, or per value of ``slice_by``."""
    average, pos_label = _averaging(check, label_names)
    details: dict[str, Any] = {}
    if average is not None:
        details["average"] = average
    if pos_label is not None:
        details["pos_label"] = label_names[pos_label]
    label = check.metric if average is None else f"{check.metric} ({average})"

    if check.slice_by is None:
        value = _score(check.metric, y_true, y_pred, average, pos_label)
        status, message = _judge(label, value, check, len(y_true))
        return CheckResult(
            name=check.name, kind=check.kind, metric=check.metric, status=status, message=message,
            value=value, threshold=check.threshold, n=len(y_true), details=details,
        )  # fmt: skip

    groups = frame[check.slice_by].astype(object).where(frame[check.slice_by].notna(), _MISSING_SLICE)
    slices: list[dict[str, Any]] = []
    for key, rows in groups.groupby(groups, sort=True).indices.items():
        n = len(rows)
        value = _score(check.metric, y_true[rows], y_pred[rows], average, pos_label)
        large_enough = n >= check.min_samples
        verdict = _judge(label, value, check, n)[0] if large_enough else "skipped"
        slices.append({"slice": str(key), "n": n, "value": value, "judged": large_enough, "status": verdict})
    details["slice_by"] = check.slice_by
    details["slices"] = slices

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
            threshold=check.threshold, n=len(y_true), details=details,
        )  # fmt: skip
    by_value = sorted(judged, key=lambda s: float(s["value"]))
    worst = by_value[0] if check.min is not None else by_value[-1]
    failing = [s for s in judged if s["status"] == "failed"]
    bound = _bound_text(check)
    if failing:
        listed = ", ".join(f"{s['slice']} {_fmt(s['value'])} (n={s['n']})" for s in failing)
        message = f"{label} by {check.slice_by}: {len(failing)} of {len(judged)} slices fail {bound}: {listed}"
        status = "failed"
    else:
        status = "passed"
        message = (
            f"{label} by {check.slice_by}: all {len(judged)} slices meet {bound}; "
            f"worst {worst['slice']} {_fmt(worst['value'])} (n={worst['n']})"
        )
    return CheckResult(
        name=check.name, kind=check.kind, metric=check.metric, status=status, message=message + too_small,
        value=worst["value"], threshold=check.threshold, n=len(y_true), details=details,
    )  # fmt: skip


def _averaging(check: CheckSpec, label_names: Sequence[str]) -> tuple[str | None, int | None]:
    """The sklearn ``average`` and positive class id a check uses (None for accuracy)."""
    if check.metric == "accuracy":
        return None, None
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


def _score(metric: str, y_true: np.ndarray, y_pred: np.ndarray, average: str | None, pos: int | None) -> float:
    from sklearn import metrics

    if metric == "accuracy":
        return float(metrics.accuracy_score(y_true, y_pred))
    scorer = {"precision": metrics.precision_score, "recall": metrics.recall_score, "f1": metrics.f1_score}[metric]
    kwargs: dict[str, Any] = {"average": average, "zero_division": 0}
    if average == "binary":
        kwargs["pos_label"] = pos
        kwargs["labels"] = [0, 1]
    return float(scorer(y_true, y_pred, **kwargs))


def _judge(label: str, value: float, check: CheckSpec, n: int) -> tuple[Status, str]:
    if check.min is not None and value < check.min:
        return "failed", f"{label} {_fmt(value)} < min {check.min} (n={n})"
    if check.max is not None and value > check.max:
        return "failed", f"{label} {_fmt(value)} > max {check.max} (n={n})"
    return "passed", f"{label} {_fmt(value)} meets {_bound_text(check)} (n={n})"


def _bound_text(check: CheckSpec) -> str:
    parts = []
    if check.min is not None:
        parts.append(f"min {check.min}")
    if check.max is not None:
        parts.append(f"max {check.max}")
    return " and ".join(parts)


def _fmt(value: float) -> str:
    return f"{value:.4g}" if value not in (0.0, 1.0) else f"{value:.1f}"
