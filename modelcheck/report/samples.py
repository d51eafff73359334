"""Samples a report records for the HTML report's plots, bounded: thinned deterministically by rank.

A latency check records its timings and a regression check its bootstrap differences so that the
plots can show their distributions; a report must stay small whatever ``min_iterations`` or
``resamples`` were, so at most :data:`SAMPLE_LIMIT` values are kept per sample.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["SAMPLE_DIGITS", "SAMPLE_LIMIT", "thin"]

#: Most values recorded (and plotted) per sample.
SAMPLE_LIMIT = 256
#: Significant digits a recorded value keeps (the plots need no more; the report stays small).
SAMPLE_DIGITS = 6


def thin(values: Iterable[Any], limit: int = SAMPLE_LIMIT) -> list[float]:
    """The sorted finite ``values``; beyond ``limit`` of them, the order statistics at ``limit`` evenly
    spaced ranks (the smallest and the largest included), so the same values always give the same list
    and its empirical distribution matches the whole sample's to within ``1 / limit``."""
    import numpy as np

    array = np.sort(np.asarray(values if hasattr(values, "__array__") else list(values), dtype=np.float64))
    array = array[np.isfinite(array)]
    if array.size > limit:
        ranks = np.round(np.linspace(0, array.size - 1, limit)).astype(np.int64)
        array = array[ranks]
    return [float(f"{value:.{SAMPLE_DIGITS}g}") for value in array.tolist()]
