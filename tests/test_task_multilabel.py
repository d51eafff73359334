"""multi-label-classification metrics equal scikit-learn's, on all rows, slices and bootstrap resamples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn import metrics

from modelcheck.errors import CheckError, DataError
from modelcheck.gatefile import CheckSpec
from modelcheck.models.backends import Outputs
from modelcheck.tasks import multilabel

LABELS = ("toxic", "obscene", "threat", "insult")


def sklearn_value(metric: str, average: str | None, truth: np.ndarray, guess: np.ndarray) -> float:
    if metric == "subset_accuracy":
        return float(metrics.accuracy_score(truth, guess))
    if metric == "hamming_loss":
        return float(metrics.hamming_loss(truth, guess))
    scorer = {"f1": metrics.f1_score, "precision": metrics.precision_score, "recall": metrics.recall_score}[metric]
    return float(scorer(truth, guess, average=average, zero_division=0))


CASES = [(m, a) for m in ("f1", "precision", "recall") for a in ("micro", "macro", "weighted", "samples")] + [
    ("subset_accuracy", None),
    ("hamming_loss", None),
]


@pytest.mark.parametrize(("metric", "average"), CASES)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_values_equal_scikit_learn(metric: str, average: str | None, data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 12))
    truth = data.draw(arrays(bool, (n, len(LABELS))))
    guess = data.draw(arrays(bool, (n, len(LABELS))))
    check = CheckSpec(name="c", metric=metric, average=average, min=0.0)
    stats = multilabel.row_statistics(check, truth, Outputs(multi_labels=guess), LABELS)
    assert stats.value() == pytest.approx(sklearn_value(metric, average, truth, guess), abs=1e-12)
    rows = np.asarray(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n)))
    assert stats.value(rows) == pytest.approx(sklearn_value(metric, average, truth[rows], guess[rows]), abs=1e-12)
    chunk = np.random.default_rng(0).integers(0, n, size=(3, n))
    expected = [sklearn_value(metric, average, truth[r], guess[r]) for r in chunk]
    np.testing.assert_allclose(stats.resampled(chunk), expected, atol=1e-12)


def test_threshold_per_label_applies_to_the_scores() -> None:
    scores = np.array([[0.9, 0.3, 0.6, 0.1], [0.2, 0.8, 0.4, 0.7]])
    truth = np.array([[1, 1, 0, 0], [0, 1, 1, 1]], dtype=bool)
    check = CheckSpec(name="c", metric="f1", average="micro", min=0.0, options={"threshold": {"obscene": 0.25}})
    stats = multilabel.row_statistics(check, truth, Outputs(scores=scores), LABELS)
    guess = scores >= np.array([0.5, 0.25, 0.5, 0.5])
    assert stats.value() == pytest.approx(metrics.f1_score(truth, guess, average="micro"))
    assert stats.details["threshold"] == {"obscene": 0.25}
    flat = CheckSpec(name="c", metric="f1", min=0.0, options={"threshold": 0.35})
    assert multilabel.row_statistics(flat, truth, Outputs(scores=scores), LABELS).value() == pytest.approx(
        metrics.f1_score(truth, scores >= 0.35, average="micro")
    )
    wrong = CheckSpec(name="c", metric="f1", min=0.0, options={"threshold": {"toxik": 0.3}})
    with pytest.raises(CheckError, match="threshold names 'toxik'"):
        multilabel.row_statistics(wrong, truth, Outputs(scores=scores), LABELS)


def test_label_lists_and_zero_one_columns_give_the_same_targets() -> None:
    lists = pd.DataFrame({"labels": [["toxic", "insult"], [], ["threat"], '["obscene", 0]']})
    from_lists = multilabel.targets("multi-label-classification", "labels", lists, LABELS, source="d.csv")
    sets = (["toxic", "insult"], [], ["threat"], ["obscene", "toxic"])
    columns = pd.DataFrame({name: [int(name in row) for row in sets] for name in reversed(LABELS)})
    from_columns = multilabel.targets("multi-label-classification", tuple(columns), columns, LABELS, source="d.csv")
    np.testing.assert_array_equal(from_lists, from_columns)
    assert from_lists.tolist()[1] == [False] * 4


def test_bad_labels_name_the_row_and_column() -> None:
    frame = pd.DataFrame({"labels": [["toxic"], ["toxic", "rude"]]})
    with pytest.raises(DataError, match=r"column 'labels' data row 2 \(.*?\)"
        r" names label 'rude'.*toxic, obscene, threat, insult"):
        multilabel.targets("multi-label-classification", "labels", frame, LABELS, source="d.csv")
    frame = pd.DataFrame({"labels": ["toxic"]})
    with pytest.raises(DataError, match=r"data row 1 \(.*?\) holds 'toxic', not a list"):
        multilabel.targets("multi-label-classification", "labels", frame, LABELS, source="d.csv")
    columns = pd.DataFrame({name: [0, 1] for name in LABELS})
    columns.loc[1, "threat"] = 2
    with pytest.raises(DataError, match=r"label column 'threat' data row 2 \(.*?\) holds 2"):
        multilabel.targets("multi-label-classification", LABELS, columns, LABELS, source="d.csv")
    with pytest.raises(DataError, match="no column for the model's label"):
        multilabel.targets("multi-label-classification", LABELS[:2], columns, LABELS, source="d.csv")
