"""question-answering: SQuAD v1.1 exact match / F1 equal torchmetrics' SQuAD (the official normalisation); v2 rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelcheck.errors import DataError
from modelcheck.gatefile import CheckSpec
from modelcheck.models.backends import Outputs
from modelcheck.tasks import qa

WORDS = ("the", "a", "An", "Paris", "paris,", "city", "of", "light", "Light!", "1889", "tower", "  ", "-", "Eiffel's")


def torchmetrics_squad(answers: list[str], gold: list[list[str]]) -> dict[str, float]:
    from torchmetrics.functional.text import squad

    preds = [{"prediction_text": a, "id": str(i)} for i, a in enumerate(answers)]
    target = [{"answers": {"text": g, "answer_start": [0] * len(g)}, "id": str(i)} for i, g in enumerate(gold)]
    return {k: float(v) / 100 for k, v in squad(preds, target).items()}


texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(texts, st.lists(texts, min_size=1, max_size=3)), min_size=1, max_size=8))
def test_v1_values_equal_torchmetrics_squad(rows: list[tuple[str, list[str]]]) -> None:
    answers, gold = [a for a, _ in rows], [g for _, g in rows]
    expected = torchmetrics_squad(answers, gold)
    for metric in ("exact_match", "f1"):
        stats = qa.row_statistics(CheckSpec(name="c", metric=metric, min=0.0), gold, Outputs(texts=answers), ())
        assert stats.value() == pytest.approx(expected[metric], abs=1e-5)
        rows_ = np.arange(len(rows))[::2]
        subset = torchmetrics_squad([answers[i] for i in rows_], [gold[i] for i in rows_])
        assert stats.value(rows_) == pytest.approx(subset[metric], abs=1e-5)


def test_official_normalisation() -> None:
    assert qa.normalize_answer("The  Eiffel-Tower, in PARIS!") == "eiffeltower in paris"
    assert qa.f1_score("the Eiffel tower", "Eiffel tower in Paris") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert qa.exact_match_score("An apple.", "apple") == 1.0


def test_v2_no_answer_rows_and_subsets() -> None:
    gold = [["Paris"], [], ["1889"], []]
    answers = ["Paris", "", "1890", "Rome"]
    for subset, expected in ((None, 2 / 4), ("HasAns", 1 / 2), ("NoAns", 1 / 2)):
        options = {} if subset is None else {"subset": subset}
        check = CheckSpec(name="c", metric="exact_match", min=0.0, options=options)
        stats = qa.row_statistics(check, gold, Outputs(texts=answers), ())
        assert stats.value() == pytest.approx(expected)
    assert stats.details["has_answer"] == 2 and stats.details["no_answer"] == 2


def test_answer_formats() -> None:
    frame = pd.DataFrame(
        {
            "question": ["q"] * 5,
            "context": ["Paris is in France"] * 5,
            "answers": [
                "Paris",
                ["Paris", "France"],
                {"text": ["France"], "answer_start": [12]},
                '{"text": [], "answer_start": []}',
                '["Paris is"]',
            ],
        }
    )
    gold = qa.targets("question-answering", "answers", frame, (), inputs=("question", "context"), source="d.json")
    assert gold == [["Paris"], ["Paris", "France"], ["France"], [], ["Paris is"]]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            "Berlin",
            r"d.json: data row 1 \(.*?\)"
                r": answer 'Berlin' in column 'answers' is not found in its context \(column 'context'\)",
        ),
        ({"text": ["France"], "answer_start": [3]}, "is not found in its context .* at answer_start 3"),
        (None, r"column 'answers' data row 1 \(.*?\) holds no value"),
        ({"text": ["Paris"], "answer_start": [0, 5]}, "one character offset per answer text"),
    ],
)
def test_bad_answers_name_the_row_and_column(answer: object, message: str) -> None:
    frame = pd.DataFrame({"question": ["q"], "context": ["Paris is in France"], "answers": [answer]})
    with pytest.raises(DataError, match=message):
        qa.targets("question-answering", "answers", frame, (), inputs=("question", "context"), source="d.json")
