"""Numbers in messages and tables that say what they are: enough digits to tell a value from its bound."""

from __future__ import annotations

import math
from collections.abc import Iterable

#: Significant digits a value gets at least.
MIN_DIGITS = 4


def bound_text(bound: float) -> str:
    """A bound as written in the gate file: the shortest text that reads back as the same number."""
    if isinstance(bound, bool) or not isinstance(bound, (int, float)):
        return str(bound)
    if isinstance(bound, int) or (math.isfinite(bound) and bound == int(bound) and abs(bound) < 1e15):
        return str(int(bound)) if isinstance(bound, int) else f"{bound:.1f}"
    return repr(float(bound))


def value_text(value: float, against: Iterable[float] = ()) -> str:
    """``value`` in at least :data:`MIN_DIGITS` significant digits, and more where fewer would hide how it
    compares with a bound in ``against`` (``0.998704`` against ``0.999`` is ``0.9987``, not ``0.999``;
    ``0.99998`` against ``0.99999`` is ``0.99998``, not ``1.0``)."""
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    bounds = [float(b) for b in against if isinstance(b, (int, float)) and math.isfinite(b)]
    for digits in range(MIN_DIGITS, 18):
        text = f"{value:.{digits}g}"
        shown = float(text)
        rounded_to_whole = shown.is_integer() and not value.is_integer()  # 0.9999999 is not "1"
        if not rounded_to_whole and all(_same_side(shown, value, bound) for bound in bounds):
            break
    if "e" not in text and "." not in text and float(text) == value:
        text += ".0"  # 1.0, not 1: a measured value, not a count
    return text


def _same_side(shown: float, value: float, bound: float) -> bool:
    """Whether the printed value compares with ``bound`` as the value itself does."""
    if value == bound:
        return shown == bound
    return (shown < bound) == (value < bound) and shown != bound


def interval_text(low: float, high: float, *, digits: int = MIN_DIGITS) -> str:
    """``low–high`` with both ends to the same decimal places (``2.810–3.302``, never ``2.81–3.302``).

    The places give the larger end ``digits`` significant digits, and more where fewer would print two
    different ends alike. An interval with a negative end reads ``-0.0375 to -0.0230``.
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{value_text(low)}–{value_text(high)}"
    largest = max(abs(low), abs(high))
    places = max(0, digits - 1 - math.floor(math.log10(largest))) if largest > 0 else digits - 1
    while places < 15 and low != high and f"{low:.{places}f}" == f"{high:.{places}f}":
        places += 1
    separator = " to " if min(low, high) < 0 else "–"
    return f"{low + 0.0:.{places}f}{separator}{high + 0.0:.{places}f}"
