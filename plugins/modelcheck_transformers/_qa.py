"""question-answering (extractive): ``AutoModelForQuestionAnswering``; the best span of the context per question.

Each input is a ``(question, context)`` pair, tokenised together (question first). The answer is the
context span ``i..j`` (context tokens only, ``j - i < decoding.MAX_ANSWER_TOKENS``) with the highest
``start_logits[i] + end_logits[j]``, cut from the context by the tokenizer's character offsets. The
model answers nothing ("") when the score of its first token (``[CLS]``: start and end at 0) beats
the best span, as SQuAD v2 models are trained to signal no answer (the pipeline's
``handle_impossible_answer=True``). A question and context longer than the model's window are a
DataError naming the row: modelcheck does not split long contexts (no doc stride).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelcheck.errors import DataError
from modelcheck.models.backends import InputRowError, Outputs
from modelcheck.models.decoding import best_spans
from modelcheck_transformers._common import (
    CHUNK,
    PretokenisedModel,
    bad_input,
    length_sorted_batches,
)


class QuestionAnsweringModel(PretokenisedModel):
    """The answer text and its character span in the context, per (question, context) pair."""

    task = "question-answering"
    needs = "its character offsets cut the answer"

    def _predict(self, inputs: list[Any], batch_size: int) -> Outputs:
        import numpy as np

        for row, pair in enumerate(inputs):
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
                raise DataError(bad_input(row, pair, self.task, "(question, context) pairs of strings"))
        texts = [""] * len(inputs)
        spans = np.full((len(inputs), 2), -1, dtype=np.int64)
        tokenizer = self._preprocessor
        for offset in range(0, len(inputs), CHUNK):
            part = inputs[offset : offset + CHUNK]
            encoded = tokenizer(
                [q for q, _ in part], [c for _, c in part], truncation=False, return_offsets_mapping=True
            )
            for k, ids in enumerate(encoded["input_ids"]):
                if len(ids) > self.max_length:
                    raise InputRowError(
                        offset + k, "the input at ",
                        f": question and context are {len(ids)} tokens; the model takes at most {self.max_length} "
                        "(modelcheck does not split long contexts): shorten that context",
                    )  # fmt: skip
            for chosen, batch in length_sorted_batches(
                encoded, range(len(part)), pad_id=tokenizer.pad_token_id or 0, batch_size=batch_size,
                device=self.device, accepted=self._accepted,
            ):  # fmt: skip
                output = self._network(**batch)
                starts, ends = self._best_spans(encoded, chosen, output.start_logits, output.end_logits)
                for k, start, end in zip(chosen, starts, ends, strict=True):
                    if start < 0:
                        continue
                    offsets = encoded["offset_mapping"][k]
                    first, last = offsets[start][0], offsets[end][1]
                    texts[offset + k] = part[k][1][first:last]
                    spans[offset + k] = (first, last)
        return Outputs(texts=texts, spans=spans)

    def export_onnx(self, path: Path) -> Path:
        """ONNX graph ``(input_ids, attention_mask[, token_type_ids]) -> start_logits, end_logits``."""
        return self._export_text(
            path, ("start_logits", "end_logits"), lambda network, inputs: tuple(network(**inputs)[:2]), seq_out=True
        )

    def _best_spans(
        self, encoded: Any, rows: list[int], start_logits: Any, end_logits: Any
    ) -> tuple[list[int], list[int]]:
        """Per row the best context span's token start and end, or (-1, -1) when the no-answer score wins."""
        import numpy as np

        width = start_logits.shape[1]
        context = np.zeros((len(rows), width), dtype=bool)
        for b, k in enumerate(rows):
            ids = encoded.sequence_ids(k)
            context[b, : len(ids)] = [s == 1 for s in ids]
        starts, ends = best_spans(context, start_logits.float().cpu().numpy(), end_logits.float().cpu().numpy())
        return [int(s) for s in starts], [int(e) for e in ends]
