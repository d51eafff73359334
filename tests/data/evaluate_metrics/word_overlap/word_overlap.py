"""word_overlap: the mean, over examples, of the F1 of the words a prediction shares with its reference.

A tiny local ``evaluate`` metric for modelcheck's tests (loaded offline with ``evaluate.load(folder)``).
"""

from __future__ import annotations

from collections import Counter

import datasets
import evaluate

_DESCRIPTION = "Mean word-overlap F1 between predictions and references (bag of whitespace-separated words)."
_KWARGS_DESCRIPTION = """
Args:
    predictions: list of str.
    references: list of str, one per prediction.
Returns:
    word_overlap: mean F1 in [0, 1]; 1.0 when every prediction has exactly its reference's words.
"""


def overlap_f1(prediction: str, reference: str) -> float:
    """F1 of the shared words (with multiplicity); two empty texts agree fully."""
    predicted, expected = Counter(prediction.split()), Counter(reference.split())
    if not predicted and not expected:
        return 1.0
    shared = sum((predicted & expected).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / sum(predicted.values()), shared / sum(expected.values())
    return 2 * precision * recall / (precision + recall)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class WordOverlap(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, float]:
        scores = [overlap_f1(p, r) for p, r in zip(predictions, references, strict=True)]
        return {"word_overlap": sum(scores) / len(scores) if scores else 0.0}
