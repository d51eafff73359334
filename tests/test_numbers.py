"""Values and bounds are printed with enough digits to show how they compare."""

from __future__ import annotations

import numpy as np
import pytest

from modelcheck.checks.metric import evaluate_metric_check
from modelcheck.gatefile import CheckSpec
from modelcheck.models.backends import Outputs
from modelcheck.report.numbers import bound_text, value_text
from modelcheck.report.summary import format_measurement, format_threshold


@pytest.mark.parametrize(
    ("value", "bound", "expected"),
    [
        (0.998704, 0.999, "0.9987"),  # not "0.999 < 0.999"
        (0.99998, 0.99999, "0.99998"),  # not "1.0"
        (0.9999999, 0.99999, "0.9999999"),
        (0.9125, 0.9, "0.9125"),
        (1.0, 0.9, "1.0"),
        (0.5, 0.5, "0.5"),
        (1234.5678, 1000, "1234.6"),
    ],
)
def test_a_value_shows_how_it_compares_with_its_bound(value: float, bound: float, expected: str) -> None:
    text = value_text(value, [bound])
    assert text == expected
    assert (float(text) < bound) == (value < bound) and (float(text) == bound) == (value == bound)


def test_bounds_read_as_written() -> None:
    assert [bound_text(b) for b in (0.99999, 1.0e-3, 40, 0.9, 1.0)] == ["0.99999", "0.001", "40", "0.9", "1.0"]
    assert format_threshold({"min": 0.99999}) == ">= 0.99999"
    assert format_threshold({"min_cosine": 0.99999}) == "cosine >= 0.99999"


def test_report_cells_and_messages_tell_value_from_bound() -> None:
    check = {"value": 0.99998, "threshold": {"min": 0.99999}, "ci": None, "details": {}}
    assert format_measurement(check) == "0.99998"
    labels = np.array([0] * 9999 + [1])
    spec = CheckSpec(name="accuracy", metric="accuracy", min=0.99999)
    result = evaluate_metric_check(spec, np.zeros(10000, dtype=np.int64), Outputs(labels=labels), ("a", "b"), None)
    assert result.status == "failed"
    assert result.message == "accuracy 0.9999 < min 0.99999 (n=10000)"


def test_intervals_format_both_ends_alike() -> None:
    from modelcheck.report.numbers import interval_text

    assert interval_text(2.81, 3.302) == "2.810–3.302"
    assert interval_text(0.0, 0.0) == "0.000–0.000"
    assert interval_text(-0.0375, -0.023) == "-0.03750 to -0.02300"
    assert interval_text(0.99991, 0.99994) == "0.99991–0.99994"  # places until the ends differ
    assert interval_text(98.7, 102.3) == "98.7–102.3"
