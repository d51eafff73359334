"""The gate's data in the shape the model takes (inputs) and the outputs are judged against (targets)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelcheck.errors import DataError
from modelcheck.gatefile.tasks import TASKS

if TYPE_CHECKING:
    import pandas as pd


def model_inputs(task: str, columns: Sequence[str], frame: pd.DataFrame, *, base: Path | None = None) -> Sequence[Any]:
    """One model input per row of ``frame``, in the shape ``task`` feeds (see LoadedModel.predict).

    ``columns`` are the input columns (several: tabular features or the two texts of a pair);
    ``base`` is the folder relative image paths resolve against.
    """
    from modelcheck.run.data import images, numeric_matrix

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
    if label is None:
        return None
    values = frame[label].tolist()
    if TASKS[task].classification:
        return label_ids(values, tuple(label_names), column=label)
    if task == "text-generation":
        return ["" if v is None else str(v) for v in values]
    return numbers(values, column=label)


def label_ids(values: Sequence[Any], label_names: Sequence[str], *, column: str) -> np.ndarray:
    """Map a label column (class names or class ids) to the model's class ids.

    Raises DataError naming a row without a label, or the labels the model does not know and the ones it does.
    """
    index = {name: i for i, name in enumerate(label_names)}
    lowered = {name.lower(): i for i, name in enumerate(label_names)}
    out = np.empty(len(values), dtype=np.int64)
    unknown: dict[str, int] = {}
    for row, value in enumerate(values):
        blank = isinstance(value, str) and not value.strip()
        if value is None or blank or (isinstance(value, (float, np.floating)) and np.isnan(value)):
            raise DataError(
                f"label column {column!r}: row {row} has no label (rows count from 0, after any header); "
                "fill it in or drop the row"
            )
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)  # an id column with a gap is read as floats (1.0)
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


def numbers(values: Sequence[Any], *, column: str) -> np.ndarray:
    """A numeric target column as floats; DataError names the first row that is not a number."""
    out = np.empty(len(values), dtype=np.float64)
    for row, value in enumerate(values):
        try:
            out[row] = float(value)
        except (TypeError, ValueError):
            raise DataError(f"column {column!r} must hold numbers; row {row} holds {value!r}") from None
        if np.isnan(out[row]):
            raise DataError(f"column {column!r} has no value at row {row}; fill or drop the row")
    return out
