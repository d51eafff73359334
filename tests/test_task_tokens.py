"""token-classification metrics equal seqeval's (default and strict modes), on all rows, slices and resamples."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval import metrics as seqeval_metrics
from seqeval.scheme import IOB2, IOBES

from modelcheck.errors import CheckError, DataError
from modelcheck.gatefile import CheckSpec
from modelcheck.models.backends import Outputs
from modelcheck.tasks import tokens

IOB2_TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG")
IOBES_TAGS = ("O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "E-LOC", "S-LOC", "I-LOC")


def seqeval_value(metric: str, truth: list[list[str]], guess: list[list[str]], **options: object) -> float:
    if metric == "token_accuracy":  # seqeval divides by zero with no words at all; modelcheck says 0
        return float(seqeval_metrics.accuracy_score(truth, guess)) if any(truth) else 0.0
    entity = options.pop("entity", None)
    scorer = {"f1": seqeval_metrics.f1_score, "precision": seqeval_metrics.precision_score,
              "recall": seqeval_metrics.recall_score}[metric]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns on undefined ratios (and gives 0, as modelcheck does)
        if entity is not None:
            report = seqeval_metrics.classification_report(truth, guess, output_dict=True, zero_division=0, **options)
            key = {"f1": "f1-score"}.get(metric, metric)
            return float(report.get(entity, {key: 0.0})[key])
        value = scorer(truth, guess, zero_division=0, **options)
    return 0.0 if np.isnan(value) else float(value)


def sentences(tags: tuple[str, ...]) -> st.SearchStrategy[tuple[list[list[str]], list[list[str]]]]:
    def pair(lengths: list[int]) -> st.SearchStrategy[tuple[list[list[str]], list[list[str]]]]:
        rows = [st.lists(st.sampled_from(tags), min_size=k, max_size=k) for k in lengths]
        return st.tuples(st.tuples(*rows).map(list), st.tuples(*rows).map(list))

    return st.lists(st.integers(0, 7), min_size=1, max_size=8).flatmap(pair)


def check_equal(check: CheckSpec, truth: list[list[str]], guess: list[list[str]], **options: object) -> None:
    assert check.metric is not None
    stats = tokens.row_statistics(check, truth, Outputs(tags=guess), ())
    assert stats.value() == pytest.approx(seqeval_value(check.metric, truth, guess, **options), abs=1e-12)
    n = len(truth)
    for rows in (np.arange(n)[::2], *np.random.default_rng(n).integers(0, n, size=(3, n))):
        expected = seqeval_value(check.metric, [truth[i] for i in rows], [guess[i] for i in rows], **options)
        assert stats.value(rows) == pytest.approx(expected, abs=1e-12)
    chunk = np.random.default_rng(1).integers(0, n, size=(4, n))
    expected_chunk = [
        seqeval_value(check.metric, [truth[i] for i in r], [guess[i] for i in r], **options) for r in chunk
    ]
    np.testing.assert_allclose(stats.resampled(chunk), expected_chunk, atol=1e-12)


@pytest.mark.parametrize("metric", ["f1", "precision", "recall", "token_accuracy"])
@pytest.mark.parametrize("average", ["micro", "macro", "weighted"])
@settings(max_examples=30, deadline=None)
@given(pair=sentences(IOB2_TAGS))
def test_default_mode_equals_seqeval(metric: str, average: str, pair: tuple[list[list[str]], list[list[str]]]) -> None:
    truth, guess = pair
    check = CheckSpec(name="c", metric=metric, average=average, min=0.0)
    check_equal(check, truth, guess, **({} if metric == "token_accuracy" else {"average": average}))


@pytest.mark.parametrize(("scheme", "tags", "kind"), [("IOB2", IOB2_TAGS, IOB2), ("IOBES", IOBES_TAGS, IOBES)])
@pytest.mark.parametrize("average", ["micro", "macro"])
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_strict_mode_equals_seqeval(
    scheme: str, tags: tuple[str, ...], kind: type, average: str, data: st.DataObject
) -> None:
    truth, guess = data.draw(sentences(tags))
    check = CheckSpec(name="c", metric="f1", average=average, min=0.0, options={"mode": "strict", "scheme": scheme})
    check_equal(check, truth, guess, average=average, mode="strict", scheme=kind)


@settings(max_examples=30, deadline=None)
@given(pair=sentences(IOB2_TAGS))
def test_one_entity_type_equals_seqevals_report(pair: tuple[list[list[str]], list[list[str]]]) -> None:
    truth, guess = pair
    check = CheckSpec(name="c", metric="recall", min=0.0, options={"entity": "LOC"})
    check_equal(check, truth, guess, entity="LOC")


def test_a_known_case() -> None:
    truth = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    guess = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    check = CheckSpec(name="c", metric="f1", min=0.0)
    stats = tokens.row_statistics(check, truth, Outputs(tags=guess), ())
    assert stats.value() == pytest.approx(2 / 3)  # 2 of 3 entities found, 2 of 3 predicted right
    assert stats.details["entity_types"] == ["LOC", "ORG", "PER"]


def test_tags_must_match_their_words() -> None:
    frame = pd.DataFrame({"words": [["Ann", "lives"], ["in", "Rome"]], "tags": [["B-PER", "O"], ["O", "B-LOC", "O"]]})
    with pytest.raises(
        DataError, match=r"data row 2 \(.*?\)"
            r" has 3 tags in column 'tags' for 2 words in column 'words' \(the tag list is longer\)"
    ):
        tokens.targets("token-classification", "tags", frame, (), inputs=("words",), source="d.jsonl")


def test_csv_cells_hold_json_lists() -> None:
    frame = pd.DataFrame({"words": ['["Ann", "sings"]'], "tags": ['["B-PER", "O"]']})
    assert tokens.inputs("token-classification", ("words",), frame) == [["Ann", "sings"]]
    assert tokens.targets("token-classification", "tags", frame, (), inputs=("words",)) == [["B-PER", "O"]]
    with pytest.raises(DataError, match=r"column 'tags' data row 1 \(.*?\)"
        r" holds 'B-PER O', not a list; in CSV write a JSON list"):
        tokens.targets("token-classification", "tags", pd.DataFrame({"tags": ["B-PER O"]}), ())


def test_tags_outside_the_scheme_name_row_and_word() -> None:
    truth = [["O", "O"], ["B-PER", "U-LOC"]]
    lenient = CheckSpec(name="c", metric="f1", min=0.0)
    with pytest.raises(DataError, match=r"tag 'U-LOC' at data row 2 \(.*?\)"
        r", word 2 .*BILOU needs mode: strict, scheme: BILOU"):
        tokens.row_statistics(lenient, truth, Outputs(tags=truth), ())
    strict = CheckSpec(name="c", metric="f1", min=0.0, options={"mode": "strict", "scheme": "IOB2"})
    with pytest.raises(DataError, match=r"tag 'U-LOC' at data row 2 \(.*?\), word 2 .*not a tag of scheme IOB2"):
        tokens.row_statistics(strict, truth, Outputs(tags=truth), ())
    no_scheme = CheckSpec(name="c", metric="f1", min=0.0, options={"mode": "strict"})
    with pytest.raises(CheckError, match="mode strict needs scheme"):
        tokens.row_statistics(no_scheme, [["O"]], Outputs(tags=[["O"]]), ())
    bilou = CheckSpec(name="c", metric="f1", min=0.0, options={"mode": "strict", "scheme": "BILOU"})
    assert tokens.row_statistics(bilou, [["U-PER", "O"]], Outputs(tags=[["U-PER", "O"]]), ()).value() == 1.0
