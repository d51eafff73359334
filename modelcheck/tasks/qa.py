"""``question-answering`` (extractive): SQuAD exact match and F1 with the official v1.1 normalisation.

Data: ``data.input: [question, context]`` and a label column of gold answers per row: one answer text,
a list of texts, or SQuAD's ``{"text": [...], "answer_start": [...]}`` (in CSV a JSON value). Every
answer must occur in its context (at ``answer_start`` when given). An empty list (or "") marks a
question with no answer (SQuAD v2). Per row the score is the best over the gold answers of the
official script's ``exact_match_score`` / ``f1_score`` (lower case, punctuation, articles and
extra white space removed, as v1.1 and v2 both do). Where a gold answer or the prediction normalises to
nothing (``"the"``), F1 follows the v2 script and torchmetrics (1 if both do, else 0; v1.1 gives 0).
A no-answer row scores 1 when the model answers nothing, else 0, as the v2 script does.
``subset: HasAns`` / ``NoAns`` judges those rows only. Values lie in [0, 1] (the
official scripts print 100x). Row statistics: each row's score and 1.
"""

from __future__ import annotations

import contextlib
import json
import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modelcheck.errors import CheckError, DataError
from modelcheck.gatefile.tasks import QA_METRICS
from modelcheck.models.backends import data_row
from modelcheck.tasks.base import RowStatistics, ratio

if TYPE_CHECKING:
    import pandas as pd

    from modelcheck.gatefile import CheckSpec
    from modelcheck.models.backends import Outputs

TASKS = ("question-answering",)
#: Metric -> the model-index type name.
METRICS = {"exact_match": "squad", "f1": "squad"}
assert tuple(METRICS) == QA_METRICS

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1's ``normalize_answer``: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match_score(prediction: str, truth: str) -> float:
    """SQuAD v1.1's exact match of one prediction with one gold answer."""
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1_score(prediction: str, truth: str) -> float:
    """SQuAD's token F1 of one prediction with one gold answer (v2's rule where either normalises to nothing)."""
    predicted, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
    if not predicted or not gold:  # v1.1 says 0 here; v2 and torchmetrics: 1 when both are empty
        return float(predicted == gold)
    same = sum((Counter(predicted) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def targets(
    task: str,
    label: str | tuple[str, ...],
    frame: pd.DataFrame,
    label_names: Sequence[str],
    *,
    inputs: tuple[str, ...] = (),
    source: str = "the data",
) -> list[list[str]]:
    """The gold answer texts of each row ([] for no answer); DataError for an answer not in its context."""
    assert isinstance(label, str)
    contexts = frame[inputs[1]].tolist() if len(inputs) == 2 else None
    out = []
    for row, value in enumerate(frame[label].tolist()):
        texts, starts = _answers(value, row, label, source)
        if contexts is not None and isinstance(contexts[row], str):
            context = contexts[row]
            for text, start in zip(texts, starts, strict=True):
                found = context[start : start + len(text)] == text if start is not None else text in context
                if not found:
                    at = f" at answer_start {start}" if start is not None else ""
                    raise DataError(
                        f"{source}: {data_row(row)}: answer {text!r} in column {label!r} is not found in its context "
                        f"(column {inputs[1]!r}){at}; an extractive answer is a span of the context"
                    )
        out.append(texts)
    return out


def _answers(value: Any, row: int, column: str, source: str) -> tuple[list[str], list[int | None]]:
    """One cell as (texts, starts): a text, a list of texts, or {"text": [...], "answer_start": [...]}."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        with contextlib.suppress(ValueError):  # else an answer that starts with a bracket
            value = json.loads(value)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, dict):
        texts = value.get("text", [])
        starts = value.get("answer_start")
        texts = [texts] if isinstance(texts, str) else list(np.asarray(texts, dtype=object).tolist())
        if starts is None:
            starts = [None] * len(texts)
        else:
            starts = [starts] if isinstance(starts, (int, np.integer)) else list(np.asarray(starts).tolist())
        if len(starts) != len(texts) or not all(s is None or isinstance(s, int) for s in starts):
            raise DataError(
                f"{source}: column {column!r} {data_row(row)}"
                f": answer_start must hold one character offset per answer text"
            )
        value, offsets = texts, starts
    elif isinstance(value, (list, tuple)):
        value, offsets = list(value), [None] * len(value)
    elif isinstance(value, str):
        value, offsets = ([value] if value else []), ([None] if value else [])
    else:
        what = "no value" if value is None or (isinstance(value, float) and np.isnan(value)) else repr(value)
        raise DataError(
            f"{source}: column {column!r} {data_row(row)} holds {what}; give the answer text, a list of answers, or "
            '{"text": [...], "answer_start": [...]} ([] for a question without an answer)'
        )
    if not all(isinstance(text, str) and text for text in value):
        raise DataError(f"{source}: column {column!r} {data_row(row)}: every answer is a non-empty text, got {value!r}")
    return value, offsets


def row_statistics(
    check: CheckSpec, targets: list[list[str]], outputs: Outputs, label_names: Sequence[str]
) -> RowStatistics:
    """Per row: the best score over the gold answers, and 1 (0 and 0 for rows outside ``subset``)."""
    if outputs.texts is None:
        raise CheckError(
            f"check {check.name!r}: {check.metric} needs the model's answers, which the backend did not give"
        )
    score = exact_match_score if check.metric == "exact_match" else f1_score
    stats = np.zeros((len(targets), 2), dtype=np.float64)
    subset = check.options.get("subset")
    for row, (gold, answer) in enumerate(zip(targets, outputs.texts, strict=True)):
        if (subset == "HasAns" and not gold) or (subset == "NoAns" and gold):
            continue
        if gold:
            stats[row, 0] = max(score(answer, truth) for truth in gold)
        else:  # SQuAD v2: right only when the model gives no answer
            stats[row, 0] = float(not normalize_answer(answer))
        stats[row, 1] = 1.0
    details: dict[str, Any] = {"normalisation": "SQuAD v1.1", "has_answer": sum(bool(g) for g in targets),
                               "no_answer": sum(not g for g in targets)}  # fmt: skip
    if subset is not None:
        details["subset"] = subset
    return RowStatistics(stats, ratio, details)
