"""multi-label-classification: ``AutoModelForSequenceClassification``, ``problem_type: multi_label_classification``."""

from __future__ import annotations

from typing import Any

from modelcheck.errors import ModelLoadError
from modelcheck.models.backends import Outputs
from modelcheck_transformers._common import TransformersModel, check_texts, ensure_pad_token, max_length, sorted_batches

#: A label is predicted when its sigmoid score reaches this (a check's ``threshold`` can differ).
THRESHOLD = 0.5


class MultiLabelModel(TransformersModel):
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
        ensure_pad_token(tokenizer, self.source)
        tokenizer.padding_side = "right"
        self.max_length = max_length(tokenizer, network.config)

    def _predict(self, inputs: list[Any], batch_size: int) -> Outputs:
        import numpy as np

        check_texts(inputs, self.task)
        scores = np.zeros((len(inputs), len(self.label_names)), dtype=np.float32)
        batches = sorted_batches(
            self._preprocessor, inputs, max_length=self.max_length, batch_size=batch_size, device=self.device
        )
        for rows, batch in batches:
            scores[rows] = self._network(**batch).logits.float().sigmoid().cpu().numpy()
        return Outputs(scores=scores, multi_labels=scores >= THRESHOLD)
