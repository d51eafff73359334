"""text-classification: ``AutoModelForSequenceClassification`` + ``AutoTokenizer``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelcheck.models.backends import Outputs
from modelcheck_transformers._common import TransformersModel, check_texts, ensure_pad_token, max_length, sorted_batches


class SequenceScores(TransformersModel):
    """A sequence classifier's per-class scores per text; texts truncated to the model's limit, run longest first."""

    def __init__(self, network: Any, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(network, tokenizer, **kwargs)
        ensure_pad_token(tokenizer, self.source)
        tokenizer.padding_side = "right"
        self.max_length = max_length(tokenizer, network.config)

    def _scores(self, inputs: list[Any], batch_size: int, *, sigmoid: bool) -> Any:
        """Scores of shape (texts, labels): softmax over the classes, or (``sigmoid``) one per label."""
        import numpy as np

        check_texts(inputs, self.task)
        scores = np.zeros((len(inputs), len(self.label_names)), dtype=np.float32)
        batches = sorted_batches(
            self._preprocessor, inputs, max_length=self.max_length, batch_size=batch_size, device=self.device
        )
        for rows, batch in batches:
            logits = self._network(**batch).logits.float()
            scores[rows] = (logits.sigmoid() if sigmoid else logits.softmax(dim=-1)).cpu().numpy()
        return scores

    def export_onnx(self, path: Path) -> Path:
        """ONNX graph ``(input_ids, attention_mask[, token_type_ids]) -> logits`` (the onnx backend applies softmax,
        or sigmoid for multi-label), tokenizer and config beside it."""
        return self._export_text(path, "logits", lambda network, inputs: network(**inputs).logits, seq_out=False)


class TextClassificationModel(SequenceScores):
    """Class ids and probabilities per text."""

    task = "text-classification"

    def _predict(self, inputs: list[Any], batch_size: int) -> Outputs:
        import numpy as np

        scores = self._scores(inputs, batch_size, sigmoid=False)
        return Outputs(labels=scores.argmax(axis=1).astype(np.int64), scores=scores)
