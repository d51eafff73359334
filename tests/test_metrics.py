"""Metric checks on hand-made outputs whose right answers can be worked out on paper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelcheck.checks.metric import evaluate_metric_check
from modelcheck.errors import CheckError, DataError
from modelcheck.gatefile import CheckSpec
from modelcheck.models.backends import Outputs
from modelcheck.run.inputs import label_ids, numbers

LABELS = ("negative", "positive")


def check(metric: str, **options: object) -> CheckSpec:
    return CheckSpec(name=metric, metric=metric, **options)  # type: ignore[arg-type]


def frame(n: int, **columns: list[object]) -> pd.DataFrame:
    return pd.DataFrame(columns or {"row": list(range(n))})


def classified(scores: list[list[float]]) -> Outputs:
    array = np.asarray(scores, dtype=np.float32)
    return Outputs(labels=array.argmax(axis=1), scores=array)


def test_roc_auc_ranks_the_positive_scores() -> None:
    targets = np.array([0, 0, 1, 1])
    ranked = classified([[0.9, 0.1], [0.6, 0.4], [0.4, 0.6], [0.2, 0.8]])
    result = evaluate_metric_check(check("roc_auc", min=0.9), targets, ranked, LABELS, frame(4))
    assert result.value == 1.0 and result.status == "passed" and result.details["average"] == "binary"

    reversed_scores = classified([[0.1, 0.9], [0.4, 0.6], [0.6, 0.4], [0.8, 0.2]])
    result = evaluate_metric_check(check("roc_auc", min=0.9), targets, reversed_scores, LABELS, frame(4))
    assert result.value == 0.0 and result.status == "failed"
    assert result.message == "roc_auc (binary) 0.0 < min 0.9 (n=4)"


def test_roc_auc_with_the_other_class_as_positive() -> None:
    targets = np.array([0, 0, 1, 1])
    outputs = classified([[0.9, 0.1], [0.6, 0.4], [0.4, 0.6], [0.2, 0.8]])
    result = evaluate_metric_check(check("roc_auc", pos_label="negative", min=0.5), targets, outputs, LABELS, frame(4))
    assert result.value == 1.0 and result.details["pos_label"] == "negative"


def test_multiclass_roc_auc_is_one_vs_rest_macro() -> None:
    targets = np.array([0, 1, 2, 0, 1, 2])
    outputs = classified(np.eye(3)[[0, 1, 2, 0, 1, 2]].tolist())
    result = evaluate_metric_check(check("roc_auc", min=0.9), targets, outputs, ("a", "b", "c"), frame(6))
    assert result.value == 1.0 and result.details["average"] == "macro"


def test_roc_auc_needs_two_classes() -> None:
    with pytest.raises(CheckError, match="at least two classes"):
        evaluate_metric_check(
            check("roc_auc", min=0.5), np.array([1, 1]), classified([[0.2, 0.8], [0.3, 0.7]]), LABELS, frame(2)
        )


def test_regression_metrics_on_known_errors() -> None:
    targets = np.array([1.0, 2.0, 3.0, 4.0])
    outputs = Outputs(values=np.array([2.0, 2.0, 3.0, 2.0]))  # errors 1, 0, 0, 2
    mae = evaluate_metric_check(check("mae", max=0.5), targets, outputs, (), frame(4))
    assert mae.value == pytest.approx(0.75) and mae.status == "failed"
    assert mae.message == "mae 0.75 > max 0.5 (n=4)"
    rmse = evaluate_metric_check(check("rmse", max=2.0), targets, outputs, (), frame(4))
    assert rmse.value == pytest.approx(np.sqrt(5 / 4)) and rmse.status == "passed"
    r2 = evaluate_metric_check(check("r2", min=0.0), targets, outputs, (), frame(4))
    assert r2.value == pytest.approx(1 - 5 / 5)  # residual sum 5, total sum 5


def test_a_max_bound_judges_the_worst_slice_as_the_highest() -> None:
    targets = np.array([0.0, 0.0, 0.0, 0.0])
    outputs = Outputs(values=np.array([0.1, 0.1, 3.0, 0.2]))
    data = frame(4, region=["eu", "eu", "us", "us"])
    result = evaluate_metric_check(check("mae", max=1.0, slice_by="region"), targets, outputs, (), data)
    assert result.status == "failed" and result.value == pytest.approx(1.6)
    assert "1 of 2 slices fail max 1.0: us 1.6 (n=2)" in result.message


def test_generation_matches() -> None:
    expected = [["6 7"], ["paris"], ["blue"]]
    outputs = Outputs(texts=[" 6 7 ", "the capital is paris", "red"])
    task = "text-generation"
    exact = evaluate_metric_check(check("exact_match", min=0.3), expected, outputs, (), frame(3), task=task)
    assert exact.value == pytest.approx(1 / 3)
    contains = evaluate_metric_check(check("contains", min=0.6), expected, outputs, (), frame(3), task=task)
    assert contains.value == pytest.approx(2 / 3) and contains.status == "passed"


def test_spearman_of_pair_cosines_against_labels() -> None:
    base = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    pairs = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 0.2]])  # cosines fall row by row
    outputs = Outputs(embeddings=base, pair_embeddings=pairs)
    agree = evaluate_metric_check(check("spearman", min=0.9), np.array([4.0, 3.0, 2.0, 1.0]), outputs, (), frame(4))
    assert agree.value == pytest.approx(1.0)
    disagree = evaluate_metric_check(check("spearman", min=0.9), np.array([1.0, 2.0, 3.0, 4.0]), outputs, (), frame(4))
    assert disagree.value == pytest.approx(-1.0) and disagree.status == "failed"


def test_cosine_similarity_against_reference_rows(tmp_path: Path) -> None:
    reference = tmp_path / "reference.npy"
    np.save(reference, np.array([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]))
    outputs = Outputs(embeddings=np.array([[2.0, 0.0], [1.0, 0.0]]))
    spec = check("cosine_similarity", reference=str(reference), min=0.9)
    result = evaluate_metric_check(spec, None, outputs, (), frame(2))
    assert result.value == pytest.approx(0.5) and result.status == "failed"  # rows 1.0 and 0.0


def test_cosine_reference_with_too_few_rows(tmp_path: Path) -> None:
    reference = tmp_path / "reference.npy"
    np.save(reference, np.ones((1, 2)))
    spec = check("cosine_similarity", reference=str(reference), min=0.9)
    with pytest.raises(CheckError, match=r"has shape \(1, 2\); expected \(rows, dim\) with at least the 2 rows"):
        evaluate_metric_check(spec, None, Outputs(embeddings=np.ones((2, 2))), (), frame(2))


def test_a_metric_the_backend_cannot_feed_is_a_clear_error() -> None:
    with pytest.raises(CheckError, match="roc_auc needs the model's class scores"):
        evaluate_metric_check(
            check("roc_auc", min=0.5), np.array([0, 1]), Outputs(labels=np.array([0, 1])), LABELS, frame(2)
        )


def test_label_and_number_columns() -> None:
    assert label_ids(["Positive", 0, "negative"], LABELS, column="label").tolist() == [1, 0, 0]
    with pytest.raises(DataError, match=r"'neutral' \(first at data row 2 .*?\)\); the model's labels are 0=negative"):
        label_ids(["positive", "neutral"], LABELS, column="label")
    assert numbers(["1.5", 2, 3.0], column="y").tolist() == [1.5, 2.0, 3.0]
    with pytest.raises(DataError, match=r"column 'y' must hold numbers; data row 2 \(.*?\) holds 'high'"):
        numbers([1, "high"], column="y")
