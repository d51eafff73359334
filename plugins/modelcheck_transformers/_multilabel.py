"""multi-label-classification: ``AutoModelForSequenceClassification``, ``problem_type: multi_label_classification``."""

from __future__ import annotations

from typing import Any

from modelcheck.errors import ModelLoadError
from modelcheck.models.backends import Outputs
from modelcheck.models.decoding import THRESHOLD
from modelcheck_transformers._text import SequenceScores


class MultiLabelModel(SequenceScores):
    """Per text a sigmoid score for every label and the labels at or above 0.5; texts run longest first."""

    task = "multi-label-classification"

    def __init__(self, network: Any, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(network, tokenizer, **kwargs)
        problem = getattr(network.config, "problem_type", None)
        if problem not in (None, "multi_label_classification"):
            raise ModelLoadError(
                f"model {self.source} has problem_type {problem!r}: its scores are not per-label sigmoid "
                "probabilities; use task text-classification, or a model trained with problem_type "
                "multi_label_classification"
            )

    def _predict(self, inputs: list[Any], batch_size: int) -> Outputs:
        scores = self._scores(inputs, batch_size, sigmoid=True)
        return Outputs(scores=scores, multi_labels=scores >= THRESHOLD)
