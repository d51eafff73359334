"""From a language model's logits to what the tasks judge: word tags, answer spans, label sets. Pure numpy.

The backends that run these tasks (transformers, onnx) share these functions, so a model and its ONNX
export are read the same way and `kind: parity` compares the networks, not two decoders.

- token classification: a word's tag is the argmax at its FIRST subword (``word_ids`` of a fast
  tokenizer), as the Hugging Face examples train (``label_all_tokens=False``); a word without a subword
  gets ``missing``;
- extractive question answering: the context span ``i..j`` (``j - i < MAX_ANSWER_TOKENS``) with the
  highest ``start[i] + end[j]``; no answer when the first token's score (``[CLS]``: start and end at 0)
  beats it, as SQuAD v2 models signal (the pipeline's ``handle_impossible_answer=True``);
- multi-label classification: sigmoid scores, labels at or above :data:`THRESHOLD`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["MAX_ANSWER_TOKENS", "THRESHOLD", "best_spans", "sigmoid", "word_tags"]

#: The longest answer considered, in tokens (the span search's window).
MAX_ANSWER_TOKENS = 30
#: A label is predicted when its sigmoid score reaches this (a check's ``threshold`` can differ).
THRESHOLD = 0.5


def word_tags(
    word_ids: Sequence[int | None], predicted: np.ndarray, names: Sequence[str], words: int, missing: str
) -> list[str]:
    """One tag per word: ``names[predicted[position]]`` at the word's first subword, ``missing`` without one."""
    first: dict[int, int] = {}
    for position, word in enumerate(word_ids):
        if word is not None and word not in first:
            first[word] = position
    return [names[int(predicted[first[w]])] if w in first else missing for w in range(words)]


def best_spans(context: np.ndarray, start_logits: np.ndarray, end_logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row the best context span's first and last token, (-1, -1) where the no-answer score wins.

    ``context`` (rows, width) marks the context's tokens; the logits are (rows, width) floats.
    """
    start, end = np.asarray(start_logits, dtype=np.float32), np.asarray(end_logits, dtype=np.float32)
    rows, width = start.shape
    scores = start[:, :, None] + end[:, None, :]
    length = np.arange(width)[None, :] - np.arange(width)[:, None]  # j - i for a span from token i to token j
    allowed = ((length >= 0) & (length < MAX_ANSWER_TOKENS))[None] & context[:, :, None] & context[:, None, :]
    scores = np.where(allowed, scores, -np.inf)
    flat = scores.reshape(rows, -1).argmax(axis=1)
    best = scores.reshape(rows, -1)[np.arange(rows), flat]
    answered = np.isfinite(best) & ~(start[:, 0] + end[:, 0] > best)
    return np.where(answered, flat // width, -1), np.where(answered, flat % width, -1)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Per-label probabilities from logits (float32, computed without overflow)."""
    logits = np.asarray(logits, dtype=np.float32)
    small = np.exp(-np.abs(logits))
    return np.asarray(np.where(logits >= 0, 1 / (1 + small), small / (1 + small)), dtype=np.float32)
