"""text-generation (LLMs): prompts or chat messages in, generated continuations judged.

- ``exact_match``: the output equals a reference after the check's ``normalize`` steps (ends always
  stripped; see :func:`modelcheck.tasks.text2text.normalise`); ``contains``: a normalised reference
  occurs in the normalised output; ``regex``: the check's ``pattern`` is found in the output
  (``re.search``; anchor it with ``^...$`` for the whole text). Each a mean of per-row 0/1.
- ``rouge1`` ... ``rougeLsum``, ``bleu``, ``chrf``, ``chrf++``, ``ter``: as for text2text (same code).
- ``perplexity``: ``exp(-sum log p / tokens)`` over the reference continuations' tokens, from the model's
  own log-likelihoods (``Outputs.token_logprobs``: per row the sum of the reference tokens' log-probs
  given the prompt, and their count); pooled over rows, so slices and resamples sum both first.

A prompt is a string, or a chat: a list of ``{"role": ..., "content": ...}`` messages (in CSV, a JSON
list), to which the backend applies the model's chat template with a generation prompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modelcheck.errors import CheckError, DataError
from modelcheck.models.backends import data_row
from modelcheck.tasks import text2text
from modelcheck.tasks.base import RowStatistics, mean_of_rows

if TYPE_CHECKING:
    import pandas as pd

    from modelcheck.gatefile import CheckSpec
    from modelcheck.models.backends import Outputs

__all__ = ["METRICS", "TASKS", "inputs", "prompts", "row_statistics", "scoring_inputs", "targets"]

TASKS = ("text-generation",)
METRICS: dict[str, str] = {
    **text2text.METRICS,
    "contains": "contains",
    "regex": "regex",
    "perplexity": "perplexity",
}
_CHAT_START = re.compile(r"\s*\[\s*\{")


targets = text2text.targets


def inputs(task: str, columns: Sequence[str], frame: pd.DataFrame, *, source: str = "the data") -> list[Any]:
    """Each row's prompt (see :func:`prompts`), from the one input column."""
    return prompts(frame[columns[0]].tolist(), column=columns[0], source=source)


def prompts(values: Sequence[Any], *, column: str, source: str = "the data") -> list[str | list[dict[str, str]]]:
    """Each row's prompt: a string, or a chat (a list of role/content messages, or its JSON text).

    DataError names the row and column of a missing prompt or a malformed chat.
    """
    out: list[str | list[dict[str, str]]] = []
    for row, value in enumerate(values):
        if isinstance(value, str):
            chat = _json_chat(value)
            out.append(value if chat is None else _messages(chat, row, column, source))
        elif isinstance(value, (list, tuple, np.ndarray)):
            out.append(_messages(list(value), row, column, source))
        else:
            raise DataError(
                f"{source}: input column {column!r} {data_row(row)} holds {text2text._shown(value)}; a prompt "
                'is a string or a chat: a list of {"role": ..., "content": ...} messages (in CSV, that list as JSON)'
            )
    return out


def _json_chat(value: str) -> list[Any] | None:
    """``value`` read as a chat where it is a JSON list of objects (other text stays a prompt, '[' or not)."""
    if not _CHAT_START.match(value):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, list) and parsed and all(isinstance(m, dict) for m in parsed) else None


def _messages(chat: list[Any], row: int, column: str, source: str) -> list[dict[str, str]]:
    messages = []
    for i, message in enumerate(chat):
        if hasattr(message, "items"):
            message = dict(message.items())
        role = message.get("role") if isinstance(message, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(role, str) or not isinstance(content, str):
            raise DataError(
                f"{source}: input column {column!r} {data_row(row)}"
                f", message {i} is {text2text._shown(message)}; every chat "
                'message needs a string "role" (system, user, assistant) and a string "content"'
            )
        messages.append({"role": role, "content": content})
    if not messages:
        raise DataError(
            f"{source}: input column {column!r} {data_row(row)} is an empty chat; give at least one message"
        )
    return messages


def scoring_inputs(inputs: Sequence[Any], refs: Sequence[Sequence[str]] | None, *, column: str) -> list[Any]:
    """``(prompt, first reference)`` per row: what the backend scores for ``perplexity``."""
    if refs is None:
        raise DataError(f"perplexity scores the reference continuations: set data.label (input column {column!r})")
    return [(prompt, row[0]) for prompt, row in zip(inputs, refs, strict=True)]


def row_statistics(check: CheckSpec, targets: Any, outputs: Outputs, label_names: Sequence[str]) -> RowStatistics:
    """``check``'s metric over the generated continuations (and references, or the model's log-likelihoods)."""
    return text2text.with_decoding(_statistics(check, targets, outputs), outputs)


def _statistics(check: CheckSpec, targets: Any, outputs: Outputs) -> RowStatistics:
    metric = str(check.metric)
    if metric == "perplexity":
        return _perplexity(check, outputs)
    texts = outputs.texts
    if texts is None:
        raise CheckError(f"metric {metric} needs the model's generated texts, which this backend did not produce")
    if metric == "regex":
        return _regex(check, texts)
    if targets is None:
        raise CheckError(f"check {check.name!r}: metric {metric} needs references: set data.label")
    if metric == "contains":
        norm = text2text.normaliser(check)
        hits = [any(norm(ref) in norm(text) for ref in row) for text, row in zip(texts, targets, strict=True)]
        return mean_of_rows(np.asarray(hits, dtype=np.float64), {"normalize": list(text2text.normalise_steps(check))})
    return text2text.text_statistics(check, texts, targets)


def _regex(check: CheckSpec, texts: Sequence[str]) -> RowStatistics:
    pattern = text2text.option(check, "pattern", None)
    if not isinstance(pattern, str):
        raise CheckError(f"check {check.name!r}: metric regex needs a pattern (a regular expression) in the check")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise CheckError(f"check {check.name!r}: pattern {pattern!r} is not a regular expression: {exc}") from None
    hits = np.fromiter((compiled.search(text) is not None for text in texts), dtype=np.float64, count=len(texts))
    return mean_of_rows(hits, {"pattern": pattern, "match": "re.search"})


def _perplexity(check: CheckSpec, outputs: Outputs) -> RowStatistics:
    scored = getattr(outputs, "token_logprobs", None)
    if scored is None:
        raise CheckError(
            f"check {check.name!r}: perplexity needs the model's log-likelihoods of the references "
            "(token_logprobs), which this backend did not produce"
        )
    scored = np.asarray(scored, dtype=np.float64).reshape(-1, 2)
    stats = np.column_stack([-scored[:, 0], scored[:, 1]])
    return RowStatistics(stats, _exp_mean_nll, {"score": "exp(total negative log-likelihood / reference tokens)"})


def _exp_mean_nll(sums: np.ndarray) -> np.ndarray:
    nll, tokens = sums[..., 0], sums[..., 1]
    mean = np.divide(nll, tokens, out=np.full_like(nll, np.inf), where=tokens > 0)
    return np.asarray(np.exp(mean))
