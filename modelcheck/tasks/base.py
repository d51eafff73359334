"""Per-row sufficient statistics: one representation for a metric's value, its slices and its bootstrap.

A corpus metric (BLEU, entity F1, WER, ...) is not a mean of per-row scores, but it is a function of
sums of per-row quantities: n-gram matches and lengths, true/false positives and negatives, edit
operations and reference lengths. :class:`RowStatistics` holds those quantities, one row of ``stats``
per data row, and the function from their column sums to the metric. The value on any subset of rows
is ``finalise(stats[rows].sum(axis=0))``; on a (resamples, n) matrix of bootstrap row indices it is
``finalise(counts @ stats)``, ``counts`` being how often each resample draws each row — numpy
throughout, with no call to the metric library per resample. A mean of per-row scores (ROUGE,
SQuAD EM/F1) is the special case ``[score, 1]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Finaliser", "RowStatistics", "list_column", "mean_of_rows", "ratio", "row_counts"]

#: Column sums of shape (..., k) -> metric values of shape (...).
Finaliser = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class RowStatistics:
    """A metric as per-row sufficient statistics (``stats``, shape (n, k)) and the ``finalise`` of their sums."""

    stats: np.ndarray
    finalise: Finaliser
    #: What the report records about how the metric was computed (a library's signature, a mode).
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.stats.ndim != 2:
            raise ValueError(f"stats must have shape (rows, k), got {self.stats.shape}")

    def __len__(self) -> int:
        return int(self.stats.shape[0])

    def value(self, rows: np.ndarray | None = None) -> float:
        """The metric on all rows, or on ``rows`` (indices) only."""
        chosen = self.stats if rows is None else self.stats[np.asarray(rows, dtype=np.int64)]
        return float(np.asarray(self.finalise(chosen.sum(axis=0))))

    def resampled(self, chunk: np.ndarray) -> np.ndarray:
        """The metric on each resample of a (resamples, n) array of row indices: shape (resamples,)."""
        return self.weighted(row_counts(chunk, len(self)))

    def left_out(self) -> np.ndarray:
        """The metric with each row left out in turn, shape (n,): the jackknife of a BCa bootstrap interval."""
        return np.asarray(self.finalise(self.stats.sum(axis=0) - self.stats), dtype=np.float64)

    def weighted(self, counts: np.ndarray) -> np.ndarray:
        """The metric on each resample given as how often it draws each row ((resamples, n), :func:`row_counts`).

        ``counts @ stats`` is every resample's column sums at once: memory stays (resamples, n) whatever
        the number of statistics, and two models resampled alike share one ``counts``.
        """
        return np.asarray(self.finalise(counts @ self.stats), dtype=np.float64)


def row_counts(chunk: np.ndarray, rows: int) -> np.ndarray:
    """How often each resample (a row of ``chunk``, row indices) draws each of ``rows`` rows: (resamples, rows)."""
    chunk = np.asarray(chunk, dtype=np.int64)
    resamples = len(chunk)
    cells = (chunk + (np.arange(resamples, dtype=np.int64) * rows)[:, None]).ravel()  # one bincount for all
    return np.bincount(cells, minlength=resamples * rows).reshape(resamples, rows).astype(np.float64)


def ratio(sums: np.ndarray) -> np.ndarray:
    """The finaliser of ``[part, whole]`` statistics: ``part / whole``, 0 where ``whole`` is 0."""
    total, count = sums[..., 0], sums[..., 1]
    return np.asarray(np.divide(total, count, out=np.zeros_like(total), where=count > 0))


def mean_of_rows(scores: np.ndarray, details: Mapping[str, Any] | None = None) -> RowStatistics:
    """A metric that is the mean of one score per row (ROUGE F-measure, SQuAD exact match and F1)."""
    column = np.asarray(scores, dtype=np.float64).reshape(-1, 1)
    return RowStatistics(np.hstack([column, np.ones_like(column)]), ratio, dict(details or {}))


def list_column(
    values: Sequence[Any], *, column: str, source: str, allow_missing: bool = False
) -> list[list[Any] | None]:
    """A column of lists as Python lists, one per row.

    JSON, JSONL and parquet hold lists natively (parquet's arrive as numpy arrays); a CSV cell holds a
    JSON-encoded list (``["B-PER", "O"]``). A row without a value is None with ``allow_missing``, else a
    DataError; a cell that is not a list is a DataError naming its row, the column and the fix.
    """
    import json

    from modelcheck.errors import DataError
    from modelcheck.models.backends import data_row

    out: list[list[Any] | None] = []
    for row, value in enumerate(values):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise DataError(
                    f"{source}: column {column!r} {data_row(row)} holds {_short(value)}, not a list; in CSV write a "
                    'JSON list (e.g. ["B-PER", "O"]), or use a JSON/JSONL/parquet file'
                ) from None
        if value is None or (isinstance(value, float) and np.isnan(value)):
            if allow_missing:
                out.append(None)
                continue
            raise DataError(f"{source}: column {column!r} {data_row(row)} is empty; give a list, or drop the row")
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if not isinstance(value, (list, tuple)):
            raise DataError(f"{source}: column {column!r} {data_row(row)} holds {_short(value)}, not a list")
        out.append(list(value))
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
