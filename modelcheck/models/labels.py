"""Class labels as class ids: one rule for a data file's label column and a model's predicted labels.

A value is read, in this order, as:

1. one of the classifier's own class values (``classes``: e.g. the ``classlabels_ints`` /
   ``classlabels_strings`` a converted scikit-learn model carries), which are in score-column order;
2. an integer that names a class (``label_names`` ``("3", "7", "9")`` for classes 3, 7 and 9);
3. an integer class id, whenever it falls in ``0 .. len(label_names) - 1``;
4. a class name of ``label_names`` (exactly, else ignoring case).

Anything else is unknown. Each distinct value is looked up once (``pandas.factorize``), so a million
rows cost no Python loop per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["NO_LABEL", "UNKNOWN", "class_ids", "first_rows", "plain"]

#: The id of a row without a label (None, NaN, an empty string).
NO_LABEL = -1
#: The id of a value that is none of the model's classes.
UNKNOWN = -2


def class_ids(
    values: Sequence[Any] | np.ndarray | pd.Series,
    label_names: Sequence[str],
    *,
    classes: Sequence[int | str] | None = None,
) -> np.ndarray:
    """``values`` as int64 class ids into ``label_names``; :data:`NO_LABEL` / :data:`UNKNOWN` where none fits."""
    import pandas as pd

    names = tuple(label_names)
    if isinstance(values, pd.Series):
        series = values
    elif isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        series = pd.Series(values)  # a model's integer labels: the fast path below, no object copy
    else:
        series = pd.Series(np.asarray(values, dtype=object), dtype=object)
    if series.dtype.kind in "iu" and len(series) and _ids_are_positions(names, classes):
        ids = series.to_numpy()
        if ids.min() >= 0 and ids.max() < len(names):  # class ids already: nothing to look up
            return ids.astype(np.int64, copy=False)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    tables = _Tables(names, classes)
    lookup = np.empty(len(uniques) + 1, dtype=np.int64)  # the last slot: code -1, no label
    lookup[-1] = NO_LABEL
    for code, value in enumerate(uniques):
        lookup[code] = tables.class_id(value)
    return lookup[codes]


def first_rows(
    values: Sequence[Any] | np.ndarray | pd.Series, ids: np.ndarray, *, limit: int = 5
) -> list[tuple[Any, int]]:
    """The first ``limit`` distinct unknown values (as :func:`plain` values), each with the row it first occurs at."""
    import pandas as pd

    bad = np.flatnonzero(ids == UNKNOWN)
    column = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
    picked = pd.Series(column[bad], index=bad, dtype=object)
    distinct = picked[~picked.duplicated()].head(limit)
    return [(plain(value), int(row)) for row, value in distinct.items()]


def plain(value: Any) -> Any:
    """A value as a user wrote it: numpy scalars as Python ones (``1``, not ``np.int64(1)``), bytes decoded."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _ids_are_positions(names: tuple[str, ...], classes: Sequence[int | str] | None) -> bool:
    """Whether every integer reading of a class agrees with its position (so integer ids need no lookup)."""
    if classes is not None and tuple(classes) != tuple(range(len(classes))):
        return False
    return all(int(name) == i for i, name in enumerate(names) if _integer_text(name))


def _integer_text(text: str) -> bool:
    return text.strip().lstrip("+-").isdigit()


class _Tables:
    """The lookups one distinct value goes through (see the module docstring for the order)."""

    def __init__(self, names: tuple[str, ...], classes: Sequence[int | str] | None) -> None:
        self.count = len(names)
        self.index = {name: i for i, name in enumerate(names)}
        self.lowered: dict[str, int] = {}
        for i, name in enumerate(names):
            self.lowered.setdefault(name.lower(), i)
        self.by_integer = {int(name): i for i, name in enumerate(names) if _integer_text(name)}
        self.classes = {value: i for i, value in enumerate(classes or ())}

    def class_id(self, value: Any) -> int:
        value = plain(value)
        if value is None or (isinstance(value, str) and not value.strip()):
            return NO_LABEL
        if isinstance(value, float):
            if np.isnan(value):
                return NO_LABEL
            if value.is_integer():
                value = int(value)  # an id column with a gap is read as floats (1.0)
        if isinstance(value, bool):
            return UNKNOWN
        if value in self.classes:
            return self.classes[value]
        if isinstance(value, int):
            if value in self.by_integer:
                return self.by_integer[value]
            return value if 0 <= value < self.count else UNKNOWN
        if isinstance(value, str):
            found = self.index.get(value, self.lowered.get(value.lower()))
            return UNKNOWN if found is None else found
        return UNKNOWN
