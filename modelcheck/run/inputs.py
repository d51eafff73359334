"""The gate's data in the shape the model takes (inputs) and the outputs are judged against (targets)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from modelcheck.errors import DataError
from modelcheck.gatefile.tasks import TASKS
from modelcheck.models.backends import data_row
from modelcheck.models.labels import NO_LABEL, UNKNOWN, class_ids, first_rows, plain

if TYPE_CHECKING:
    import pandas as pd


def model_inputs(
    task: str, columns: Sequence[str], frame: pd.DataFrame, *, base: Path | None = None, source: str = "the data"
) -> Sequence[Any]:
    """One model input per row of ``frame``, in the shape ``task`` feeds (see LoadedModel.predict).

    ``columns`` are the input columns (several: tabular features or the two texts of a pair);
    ``base`` is the folder relative image paths resolve against.
    """
    from modelcheck.run.audio import AUDIO_TASKS, audio_clips
    from modelcheck.run.data import images, numeric_matrix
    from modelcheck.tasks import family

    columns = tuple(columns)
    served = family(task)
    if served is not None and hasattr(served, "inputs"):
        inputs: Sequence[Any] = served.inputs(task, columns, frame, source=source)
        return inputs
    if TASKS[task].tabular:
        # One float32 matrix: a sequence of rows (len, slicing) that backends take whole, with no per-row work.
        return cast(Sequence[Any], numeric_matrix(frame, columns))
    if task in ("image-classification", "object-detection"):
        return images(frame[columns[0]].tolist(), column=columns[0], base=base)
    if task in AUDIO_TASKS:
        return audio_clips(frame[columns[0]].tolist(), column=columns[0], base=base)
    if len(columns) == 2:
        return list(zip(frame[columns[0]].tolist(), frame[columns[1]].tolist(), strict=True))
    values: list[Any] = frame[columns[0]].tolist()
    return values


def model_targets(
    task: str,
    label: str | tuple[str, ...] | None,
    frame: pd.DataFrame,
    label_names: Sequence[str],
    *,
    inputs: Sequence[str] = (),
    source: str = "the data",
    classes: Sequence[int | str] | None = None,
    box_format: str | None = None,
) -> Any:
    """What the outputs are compared against, one per row (None without a ``label`` column).

    Class ids for classification tasks (labels given as names or ids), references for text generation,
    numbers otherwise; a family task's family reads its own (:mod:`modelcheck.tasks`), given the input
    columns and the data's name for its messages.
    ``classes``: the model's own class values, where it has them (``LoadedModel.classes``);
    ``box_format``: ``data.box_format`` of an object-detection gate.
    """
    from modelcheck.tasks import family

    if label is None:
        return None
    served = family(task)
    if served is not None:
        extra = {} if box_format is None else {"box_format": box_format}
        return served.targets(task, label, frame, label_names, inputs=tuple(inputs), source=source, **extra)
    assert isinstance(label, str)
    if TASKS[task].classification:
        return label_ids(frame[label], tuple(label_names), column=label, classes=classes)
    return numbers(frame[label], column=label)


def label_ids(
    values: Sequence[Any] | pd.Series,
    label_names: Sequence[str],
    *,
    column: str,
    classes: Sequence[int | str] | None = None,
) -> np.ndarray:
    """Map a label column (class names, class ids or the model's own class values) to the model's class ids.

    The rule is :mod:`modelcheck.models.labels`'s (``classes``: the class values a converted classifier
    carries); each distinct value is looked up once, so a million rows cost no Python loop.
    Raises DataError naming a row without a label, or the labels the model does not know and the ones it does.
    """
    out = class_ids(values, label_names, classes=classes)
    if (out == NO_LABEL).any():
        raise DataError(
            f"label column {column!r}: {data_row(int(np.argmax(out == NO_LABEL)))} has no label; "
            "fill it in or drop the row"
        )
    if (out == UNKNOWN).any():
        shown = ", ".join(f"{value!r} (first at {data_row(row)})" for value, row in first_rows(values, out))
        known = ", ".join(f"{i}={name}" for i, name in enumerate(label_names))
        raise DataError(
            f"label column {column!r} holds values the model does not know: {shown}; "
            f"the model's labels are {known} (use these names or ids)"
        )
    return out


def numbers(values: Sequence[Any] | pd.Series, *, column: str) -> np.ndarray:
    """A numeric target column as floats (vectorised); DataError names the first row that is not a number."""
    import pandas as pd

    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        out = series.to_numpy(dtype=np.float64)
    else:
        coerced = pd.to_numeric(series, errors="coerce")
        bad = coerced.isna().to_numpy() & series.notna().to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"column {column!r} must hold numbers; {data_row(row)} holds {plain(series.iloc[row])!r}")
        out = coerced.to_numpy(dtype=np.float64)
    if np.isnan(out).any():
        raise DataError(
            f"column {column!r} has no value at {data_row(int(np.argmax(np.isnan(out))))}; fill or drop the row"
        )
    return out
