"""The gate's data in the shape the model takes (inputs) and the outputs are judged against (targets)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from modelcheck.errors import DataError
from modelcheck.gatefile.tasks import TASKS

if TYPE_CHECKING:
    import pandas as pd


def model_inputs(
    task: str, columns: Sequence[str], frame: pd.DataFrame, *, base: Path | None = None, source: str = "the data"
) -> Sequence[Any]:
    """One model input per row of ``frame``, in the shape ``task`` feeds (see LoadedModel.predict).

    ``columns`` are the input columns (several: tabular features or the two texts of a pair);
    ``base`` is the folder relative image paths resolve against.
    """
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
    if task == "image-classification":
        return images(frame[columns[0]].tolist(), column=columns[0], base=base)
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
) -> Any:
    """What the outputs are compared against, one per row (None without a ``label`` column).

    Class ids for classification tasks (labels given as names or ids), references for text generation,
    numbers otherwise; a family task's family reads its own (:mod:`modelcheck.tasks`), given the input
    columns and the data's name for its messages.
    """
    from modelcheck.tasks import family

    if label is None:
        return None
    served = family(task)
    if served is not None:
        return served.targets(task, label, frame, label_names, inputs=tuple(inputs), source=source)
    assert isinstance(label, str)
    if TASKS[task].classification:
        return label_ids(frame[label], tuple(label_names), column=label)
    return numbers(frame[label], column=label)


def label_ids(values: Sequence[Any] | pd.Series, label_names: Sequence[str], *, column: str) -> np.ndarray:
    """Map a label column (class names or class ids) to the model's class ids.

    Each distinct value is looked up once (``pandas.factorize``), so a million rows cost no Python loop.
    Raises DataError naming a row without a label, or the labels the model does not know and the ones it does.
    """
    import pandas as pd

    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    if series.dtype.kind in "iu" and len(series):  # class ids already: nothing to look up
        ids = series.to_numpy()
        if ids.min() >= 0 and ids.max() < len(label_names):
            return ids.astype(np.int64, copy=False)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    index = {name: i for i, name in enumerate(label_names)}
    lowered = {name.lower(): i for i, name in enumerate(label_names)}
    lookup = np.empty(len(uniques) + 1, dtype=np.int64)  # the last slot: code -1, no label
    lookup[-1] = _NO_LABEL
    for code, value in enumerate(uniques):
        lookup[code] = _class_id(value, index, lowered, len(label_names))
    out = lookup[codes]
    if (out == _NO_LABEL).any():
        row = int(np.argmax(out == _NO_LABEL))
        raise DataError(
            f"label column {column!r}: row {row} has no label (rows count from 0, after any header); "
            "fill it in or drop the row"
        )
    if (out == _UNKNOWN).any():
        unknown = {repr(uniques[code]): int(np.argmax(codes == code)) for code in np.unique(codes[out == _UNKNOWN])}
        ordered = sorted(unknown.items(), key=lambda item: item[1])
        shown = ", ".join(f"{v} (first at row {r})" for v, r in ordered[:5])
        known = ", ".join(f"{i}={name}" for i, name in enumerate(label_names))
        raise DataError(
            f"label column {column!r} holds values the model does not know: {shown}; "
            f"the model's labels are {known} (use these names or ids)"
        )
    return out


_NO_LABEL = -1
_UNKNOWN = -2


def _class_id(value: Any, index: dict[str, int], lowered: dict[str, int], classes: int) -> int:
    """One distinct label value as a class id, or _NO_LABEL / _UNKNOWN."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return _NO_LABEL
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return _NO_LABEL
        if float(value).is_integer():
            value = int(value)  # an id column with a gap is read as floats (1.0)
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value) if 0 <= int(value) < classes else _UNKNOWN
    if isinstance(value, str):
        found = index.get(value, lowered.get(value.lower()))
        return _UNKNOWN if found is None else found
    return _UNKNOWN


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
            raise DataError(f"column {column!r} must hold numbers; row {row} holds {series.iloc[row]!r}")
        out = coerced.to_numpy(dtype=np.float64)
    if np.isnan(out).any():
        raise DataError(f"column {column!r} has no value at row {int(np.argmax(np.isnan(out)))}; fill or drop the row")
    return out
