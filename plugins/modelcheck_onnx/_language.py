"""token-classification, question-answering and multi-label-classification graphs exported from transformers.

The graph takes the tokenizer's inputs (``input_ids``, ``attention_mask``[, ``token_type_ids``]) and gives
``logits`` ((batch, tokens, labels) for tags, (batch, labels) for label sets) or ``start_logits`` and
``end_logits`` (extractive QA), as the transformers backend exports them (``against: {export: true}``).
The outputs are decoded exactly as the transformers backend decodes its own
(:mod:`modelcheck.models.decoding`), so parity compares the networks. A fast tokenizer (``tokenizer.json``)
is needed: its word ids align tags to words, its offsets cut answers from the context.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelcheck.errors import BackendError
from modelcheck.models.backends import InputRowError, Outputs
from modelcheck.models.decoding import THRESHOLD, best_spans, sigmoid, word_tags
from modelcheck_onnx._common import _bad_text

if TYPE_CHECKING:
    import numpy as np

    from modelcheck_onnx._model import OnnxModel

#: The outputs each task reads, by name.
OUTPUTS = {"question-answering": ("start_logits", "end_logits")}


def raw_tokenizer(tokenizer: Any, path: str) -> Any:
    """The ``tokenizers.Tokenizer`` behind ``tokenizer`` (ours or a transformers fast one); BackendError without."""
    raw = getattr(tokenizer, "_tokenizer", None) or getattr(tokenizer, "backend_tokenizer", None)
    if raw is None or not hasattr(raw, "encode_batch"):
        raise BackendError(
            f"{path}: token-classification and question-answering need a fast tokenizer (tokenizer.json) to map "
            "tokens to words and characters; save the model's fast tokenizer beside the graph"
        )
    return raw


def predict(model: OnnxModel, rows: list[Any], batch_size: int) -> Outputs:
    """The task's outputs for ``rows``: tags per word, answers and their spans, or label scores and sets."""
    import numpy as np

    task = model.task
    if not rows:
        if task == "multi-label-classification":
            empty = np.zeros((0, len(model.label_names)), dtype=np.float32)
            return Outputs(scores=empty, multi_labels=empty >= THRESHOLD)
        return (
            Outputs(tags=[]) if task == "token-classification" else Outputs(texts=[], spans=np.zeros((0, 2), np.int64))
        )
    if task == "multi-label-classification":
        for row, text in enumerate(rows):
            if not isinstance(text, str):
                raise _bad_text(row, text, task)
        scores = sigmoid(model._run_texts(rows, batch_size, model._classification_rows))
        if scores.shape[1] != len(model.label_names):
            raise BackendError(model._width_mismatch(scores.shape[1]))
        return Outputs(scores=scores, multi_labels=scores >= THRESHOLD)
    if task == "token-classification":
        for row, words in enumerate(rows):
            if not isinstance(words, (list, tuple)) or not all(isinstance(w, str) for w in words):
                raise _bad_text(row, words, task, "lists of words (strings)")
        encodings = _encode(model, [list(words) for words in rows], pretokenized=True)
        logits = _run_batches(model, encodings, batch_size, ("logits",))[0]
        missing = "O" if "O" in model.label_names else model.label_names[0]
        tags = []
        for i, (encoding, words) in enumerate(zip(encodings, rows, strict=True)):
            predicted = logits[i][: len(encoding.ids)].argmax(axis=-1)
            tags.append(word_tags(encoding.word_ids, predicted, model.label_names, len(words), missing))
        return Outputs(tags=tags)
    for row, pair in enumerate(rows):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
            raise _bad_text(row, pair, task, "(question, context) pairs of strings")
    encodings = _encode(model, [tuple(pair) for pair in rows], pretokenized=False)
    starts, ends = _run_batches(model, encodings, batch_size, OUTPUTS[task])
    texts, spans = [""] * len(rows), np.full((len(rows), 2), -1, dtype=np.int64)
    width = starts.shape[1] if len(rows) else 0
    context = np.zeros((len(rows), width), dtype=bool)
    for i, encoding in enumerate(encodings):
        context[i, : len(encoding.ids)] = [s == 1 for s in encoding.sequence_ids]
    first_tokens, last_tokens = best_spans(context, starts, ends)
    for i, (first, last) in enumerate(zip(first_tokens, last_tokens, strict=True)):
        if first >= 0:
            begin, end = encodings[i].offsets[first][0], encodings[i].offsets[last][1]
            texts[i], spans[i] = rows[i][1][begin:end], (begin, end)
    return Outputs(texts=texts, spans=spans)


def _encode(model: OnnxModel, inputs: Sequence[Any], *, pretokenized: bool) -> list[Any]:
    """``tokenizers`` encodings of the inputs, untruncated: a row longer than the model's window is a DataError."""
    raw = raw_tokenizer(model._tokenizer, model.path.name)
    raw.no_padding()
    raw.no_truncation()
    encodings = raw.encode_batch(list(inputs), is_pretokenized=pretokenized) if inputs else []
    for row, encoding in enumerate(encodings):
        if len(encoding.ids) > model._max_length:
            raise InputRowError(
                row, "the input at ",
                f" is {len(encoding.ids)} tokens; the model takes at most {model._max_length} (modelcheck does not "
                "split long inputs): shorten it",
            )  # fmt: skip
    return encodings


def _run_batches(model: OnnxModel, encodings: list[Any], batch_size: int, names: Sequence[str]) -> list[np.ndarray]:
    """Run the graph longest first in padded batches; each named output as (rows, longest, ...) in input order."""
    import numpy as np

    order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
    longest = max((len(e.ids) for e in encodings), default=0)
    results: list[np.ndarray] = []
    step = model._batch(batch_size)
    for start in range(0, len(order), step):
        chosen = order[start : start + step]
        features = [{"input_ids": encodings[i].ids, "attention_mask": encodings[i].attention_mask,
                     "token_type_ids": encodings[i].type_ids} for i in chosen]  # fmt: skip
        static = model._static_dim(1)
        batch = model._tokenizer.pad(features, padding="max_length" if static else True, max_length=static)
        outputs = model._run_named({name: batch[name] for name in model._feeds}, len(chosen), names)
        if not results:
            results = [np.zeros((len(encodings), max(longest, o.shape[1]), *o.shape[2:]), np.float32) for o in outputs]
        for result, output in zip(results, outputs, strict=True):
            result[chosen, : output.shape[1]] = output
    return results or [np.zeros((0, 0), np.float32) for _ in names]


def label_names(model: OnnxModel, labels: Sequence[str] | None, config: dict[str, Any]) -> tuple[str, ...]:
    """The labels of a tagger or multi-label graph: ``model.labels``, else ``id2label`` of its config.json."""
    if labels:
        return tuple(labels)
    id2label = config.get("id2label")
    if isinstance(id2label, dict) and id2label:
        mapping = {int(k): str(v) for k, v in id2label.items()}
        return tuple(mapping[k] for k in sorted(mapping))
    raise BackendError(
        f"{model.path.name}: a {model.task} graph needs its label names: put config.json (with id2label) beside the "
        "tokenizer, or set model.labels"
    )
