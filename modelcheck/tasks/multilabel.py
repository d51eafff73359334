"""``multi-label-classification``: each row has a set of labels; the model scores every label (sigmoid).

Targets: one column of label lists (names, or ids of the model's labels), or several 0/1 columns named
after the model's labels (``data.label: [toxic, obscene, ...]``). Predictions: a label is predicted when
its score reaches the threshold (``threshold:`` one number or label -> number; default 0.5, the
backend's ``multi_labels``). Metrics equal scikit-learn's with ``zero_division=0``:
``precision``/``recall``/``f1`` averaged ``micro`` (default), ``macro`` (over all the model's labels),
``weighted`` (by support) or ``samples`` (per row, then the mean); ``subset_accuracy``
(``accuracy_score``) and ``hamming_loss``. Row statistics: per label TP/FP/FN for micro/macro/weighted,
a per-row score for the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modelcheck.errors import CheckError, DataError
from modelcheck.gatefile.tasks import MULTILABEL_METRICS
from modelcheck.models.backends import data_row
from modelcheck.tasks.base import RowStatistics, list_column, mean_of_rows

if TYPE_CHECKING:
    import pandas as pd

    from modelcheck.gatefile import CheckSpec
    from modelcheck.models.backends import Outputs

TASKS = ("multi-label-classification",)
#: Metric -> the model-index type name.
METRICS = {
    "f1": "f1",
    "precision": "precision",
    "recall": "recall",
    "subset_accuracy": "accuracy",
    "hamming_loss": "hamming_loss",
}
assert tuple(METRICS) == MULTILABEL_METRICS
#: The threshold a label's score must reach to be predicted, unless the check sets one.
DEFAULT_THRESHOLD = 0.5


def targets(
    task: str,
    label: str | tuple[str, ...],
    frame: pd.DataFrame,
    label_names: Sequence[str],
    *,
    inputs: tuple[str, ...] = (),
    source: str = "the data",
) -> np.ndarray:
    """The true label sets as a bool matrix (rows, the model's labels)."""
    if not label_names:
        raise DataError(f"the model has no labels (config id2label) to match {source}'s label column against")
    if isinstance(label, str):
        return _from_lists(frame[label].tolist(), label_names, column=label, source=source)
    return _from_columns(frame, label, label_names, source=source)


def _from_lists(values: list[Any], label_names: Sequence[str], *, column: str, source: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(label_names)}
    lowered = {name.lower(): i for i, name in enumerate(label_names)}
    rows = list_column(values, column=column, source=source)
    out = np.zeros((len(rows), len(label_names)), dtype=bool)
    for row, labels in enumerate(rows):
        for value in labels or ():
            found = _label_id(value, index, lowered, len(label_names))
            if found is None:
                known = ", ".join(label_names)
                raise DataError(
                    f"{source}: column {column!r} {data_row(row)}"
                    f" names label {value!r}, which the model does not know; "
                    f"its labels are {known} (names or ids 0-{len(label_names) - 1})"
                )
            out[row, found] = True
    return out


def _label_id(value: Any, index: dict[str, int], lowered: dict[str, int], count: int) -> int | None:
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value) if 0 <= int(value) < count else None
    if isinstance(value, str):
        return index.get(value, lowered.get(value.lower()))
    return None


def _from_columns(
    frame: pd.DataFrame, columns: tuple[str, ...], label_names: Sequence[str], *, source: str
) -> np.ndarray:
    unknown = [c for c in columns if c not in label_names]
    if unknown:
        raise DataError(
            f"{source}: label column(s) {', '.join(map(repr, unknown))} name no label of the model; with a list of "
            f"0/1 columns each column is named after one of the model's labels: {', '.join(label_names)}"
        )
    missing = [name for name in label_names if name not in columns]
    if missing:
        raise DataError(
            f"{source}: data.label lists no column for the model's label(s) {', '.join(missing)}; give one 0/1 "
            "column per label of the model"
        )
    out = np.zeros((len(frame), len(label_names)), dtype=bool)
    for column in columns:
        values = frame[column]
        numeric = np.asarray(values.to_numpy(), dtype=object)
        ok = np.array([v is True or v is False or (isinstance(v, (int, float, np.number)) and v in (0, 1))
                       for v in numeric], dtype=bool)  # fmt: skip
        if not ok.all():
            row = int(np.argmax(~ok))
            raise DataError(
                f"{source}: label column {column!r} {data_row(row)}"
                f" holds {numeric[row]!r}; a label column holds 0 or 1 "
                "(true/false) per row"
            )
        out[:, list(label_names).index(column)] = numeric.astype(float) == 1
    return out


def predicted(check: CheckSpec, outputs: Outputs, label_names: Sequence[str]) -> tuple[np.ndarray, Any]:
    """The predicted label matrix (and the threshold used): the check's threshold on the scores, else the backend's."""
    threshold = check.options.get("threshold")
    if threshold is None:
        if outputs.multi_labels is not None:
            return np.asarray(outputs.multi_labels, dtype=bool), DEFAULT_THRESHOLD
        threshold = DEFAULT_THRESHOLD
    if outputs.scores is None:
        raise CheckError(
            f"check {check.name!r}: threshold needs the model's label scores, which the backend did not give"
        )
    scores = np.asarray(outputs.scores, dtype=np.float64)
    if isinstance(threshold, Mapping):
        unknown = [name for name in threshold if name not in label_names]
        if unknown:
            raise CheckError(
                f"check {check.name!r}: threshold names {', '.join(map(repr, unknown))}, not labels of the model "
                f"({', '.join(label_names)})"
            )
        cut = np.array([float(threshold.get(name, DEFAULT_THRESHOLD)) for name in label_names])
        return scores >= cut, dict(threshold)
    return scores >= float(threshold), float(threshold)


def row_statistics(
    check: CheckSpec, targets: np.ndarray, outputs: Outputs, label_names: Sequence[str]
) -> RowStatistics:
    """The check's metric as per-row statistics (see the module docstring)."""
    truth = np.asarray(targets, dtype=bool)
    guess, threshold = predicted(check, outputs, label_names)
    if guess.shape != truth.shape:
        raise CheckError(
            f"check {check.name!r}: the model scored {guess.shape[1]} labels per row, the targets have {truth.shape[1]}"
        )
    metric = check.metric
    details: dict[str, Any] = {"threshold": threshold}
    if metric == "subset_accuracy":
        return mean_of_rows((truth == guess).all(axis=1), details)
    if metric == "hamming_loss":
        return mean_of_rows((truth != guess).mean(axis=1) if truth.shape[1] else np.zeros(len(truth)), details)
    average = check.average or "micro"
    details["average"] = average
    tp = (truth & guess).astype(np.float64)
    fp = (~truth & guess).astype(np.float64)
    fn = (truth & ~guess).astype(np.float64)
    if average == "samples":
        scores = _prf(metric, tp.sum(axis=1), fp.sum(axis=1), fn.sum(axis=1))
        return mean_of_rows(scores, details)
    labels = truth.shape[1]

    def finalise(sums: np.ndarray) -> np.ndarray:
        tp_, fp_, fn_ = sums[..., :labels], sums[..., labels : 2 * labels], sums[..., 2 * labels :]
        if average == "micro":
            return _prf(metric, tp_.sum(axis=-1), fp_.sum(axis=-1), fn_.sum(axis=-1))
        per_label = _prf(metric, tp_, fp_, fn_)
        if average == "macro":
            return np.asarray(per_label.mean(axis=-1))
        support = tp_ + fn_
        total = support.sum(axis=-1)
        weighted = (per_label * support).sum(axis=-1)
        return np.divide(weighted, total, out=np.zeros_like(weighted), where=total > 0)

    return RowStatistics(np.hstack([tp, fp, fn]), finalise, details)


def _prf(metric: str | None, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Precision, recall or F1 from counts, 0 where undefined (scikit-learn's ``zero_division=0``)."""
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) > 0)
    if metric == "precision":
        return precision
    if metric == "recall":
        return recall
    denominator = precision + recall
    return np.divide(2 * precision * recall, denominator, out=np.zeros_like(tp), where=denominator > 0)
