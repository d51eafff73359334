"""token-classification: ``AutoModelForTokenClassification``; one tag per word, read at the word's first subword.

Inputs are word lists (the data's words, never re-split by modelcheck). The fast tokenizer maps every
subword to its word (``word_ids``); a word's tag is the model's argmax at its FIRST subword, as the
Hugging Face token-classification examples train (``label_all_tokens=False``) and the pipeline's
``aggregation_strategy="first"`` reads. A word the tokenizer drops (no subword) gets tag ``O`` (the
model's first label if it has no ``O``). A sentence longer than the model's window is a DataError
naming its row: modelcheck does not split sentences.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelcheck.errors import DataError
from modelcheck.models.backends import InputRowError, Outputs
from modelcheck.models.decoding import word_tags
from modelcheck_transformers._common import (
    CHUNK,
    PretokenisedModel,
    bad_input,
    length_sorted_batches,
)


class TokenClassificationModel(PretokenisedModel):
    """Tag names per word, aligned by the first subword of each word."""

    task = "token-classification"
    needs = "it maps subwords to words"

    def _predict(self, inputs: list[Any], batch_size: int) -> Outputs:
        for row, words in enumerate(inputs):
            if not isinstance(words, (list, tuple)) or not all(isinstance(w, str) for w in words):
                raise DataError(bad_input(row, words, self.task, "lists of words (strings)"))
        names = self.label_names
        missing = "O" if "O" in names else names[0]
        tags: list[list[str]] = [[] for _ in inputs]
        tokenizer = self._preprocessor
        for offset in range(0, len(inputs), CHUNK):
            part = [list(words) for words in inputs[offset : offset + CHUNK]]
            rows = [i for i, words in enumerate(part) if words]
            if not rows:
                continue
            encoded = tokenizer([part[i] for i in rows], is_split_into_words=True, truncation=False)
            for k, row in enumerate(rows):
                if len(encoded["input_ids"][k]) > self.max_length:
                    raise InputRowError(
                        offset + row, "the input at ",
                        f" has {len(part[row])} words, {len(encoded['input_ids'][k])} tokens; the model takes at "
                        f"most {self.max_length} (modelcheck does not split sentences): shorten or split that sentence",
                    )  # fmt: skip
            for chosen, batch in length_sorted_batches(
                encoded, range(len(rows)), pad_id=tokenizer.pad_token_id or 0, batch_size=batch_size,
                device=self.device, accepted=self._accepted,
            ):  # fmt: skip
                predicted = self._network(**batch).logits.argmax(dim=-1).cpu().numpy()
                for b, k in enumerate(chosen):
                    words = len(part[rows[k]])
                    tags[offset + rows[k]] = word_tags(encoded.word_ids(k), predicted[b], names, words, missing)
        return Outputs(tags=tags)

    def export_onnx(self, path: Path) -> Path:
        """ONNX graph ``(input_ids, attention_mask[, token_type_ids]) -> logits`` (batch, tokens, labels)."""
        return self._export_text(path, ("logits",), lambda network, inputs: network(**inputs).logits, seq_out=True)
