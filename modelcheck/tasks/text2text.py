"""text2text-generation, summarization, translation: generated texts judged against one or more references.

- ``rouge1``, ``rouge2``, ``rougeL``, ``rougeLsum``: rouge-score's F-measure per row, the mean over rows;
  with several references the best one per row (rouge-score's ``score_multi``). ``use_stemmer`` is the
  check option of the same name; ``rougeLsum`` reads each line of a text as a sentence (rouge-score's rule).
- ``bleu``, ``chrf``, ``chrf++``, ``ter``: sacrebleu's corpus scores (0-100). Each row keeps sacrebleu's
  own segment statistics (n-gram matches and totals, lengths, edits); their sums finalised by sacrebleu's
  ``_compute_score_from_stats`` are its corpus score, on all rows, a slice or a bootstrap resample.
  The check's ``sacrebleu`` option (a mapping) passes settings to the metric (``tokenize``, ``lowercase``,
  ``smooth_method``, ``char_order``, ``case_sensitive``, ...); the signature goes into the details.
- ``exact_match``: 1 where the output equals a reference after :func:`normalise`, else 0; the mean.

References: a list per row (list column, or a JSON-encoded list of strings in CSV), or one string.
The libraries are imported inside functions.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from modelcheck.errors import CheckError, DataError
from modelcheck.models.backends import data_row
from modelcheck.tasks.base import Finaliser, RowStatistics, mean_of_rows
from modelcheck.tasks.sacrebleu_sums import vectorised_finaliser

if TYPE_CHECKING:
    import pandas as pd

    from modelcheck.gatefile import CheckSpec
    from modelcheck.models.backends import Outputs

__all__ = [
    "METRICS", "NORMALISATIONS", "ROUGE", "SACREBLEU", "TASKS", "normalise", "normalise_steps", "option", "references",
    "row_statistics", "targets", "text_statistics", "with_decoding",
]  # fmt: skip

TASKS = ("text2text-generation", "summarization", "translation")
ROUGE = ("rouge1", "rouge2", "rougeL", "rougeLsum")
#: metric -> (sacrebleu class, its default settings).
SACREBLEU: dict[str, tuple[str, dict[str, Any]]] = {
    "bleu": ("BLEU", {}),
    "chrf": ("CHRF", {}),
    "chrf++": ("CHRF", {"word_order": 2}),
    "ter": ("TER", {}),
}
METRICS: dict[str, str] = {
    **{name: name for name in ROUGE},
    "bleu": "sacrebleu",
    "chrf": "chrf",
    "chrf++": "chrf",
    "ter": "ter",
    "exact_match": "exact_match",
}
#: The steps ``normalize`` may list, applied after stripping the ends.
NORMALISATIONS = ("whitespace", "lowercase", "punctuation")
_SPACES = re.compile(r"\s+")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def option(check: CheckSpec, name: str, default: Any) -> Any:
    """A task option of ``check`` (``check.options``), or ``default``."""
    return check.options.get(name, default)


# -- targets --------------------------------------------------------------------------------------


def targets(
    task: str,
    label: str | tuple[str, ...] | None,
    frame: pd.DataFrame,
    label_names: Sequence[str],
    *,
    inputs: Sequence[str] = (),
    source: str = "the data",
) -> list[list[str]] | None:
    """The references of each row (a list of non-empty strings), or None without a label column."""
    if label is None:
        return None
    column = label if isinstance(label, str) else label[0]
    return references(frame[column].tolist(), column=column, source=source)


def references(values: Iterable[Any], *, column: str, source: str = "the data") -> list[list[str]]:
    """One list of references per row; DataError naming the row and column of a missing or empty one.

    A value is a list of strings, a JSON-encoded list of strings (CSV cannot hold lists), one string, or a
    number (a CSV column of numbers), taken as its text.
    """
    out: list[list[str]] = []
    for row, value in enumerate(values):
        refs = _as_list(value)
        if refs is None:
            raise DataError(
                f"{source}: label column {column!r} {data_row(row)}"
                f" holds {_shown(value)}; a reference is a string, or a "
                'list of strings for several references (in CSV a JSON list: ["first", "second"])'
            )
        if not refs or any(not ref.strip() for ref in refs):
            raise DataError(
                f"{source}: label column {column!r} {data_row(row)}"
                f" has an empty reference ({_shown(value)}); every row "
                "needs a non-empty reference text: fill it in or drop the row"
            )
        out.append(refs)
    return out


def _as_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            try:
                parsed = json.loads(value)
            except ValueError:
                return [value]
            if isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
                return parsed
        return [value]
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        return items if all(isinstance(v, str) for v in items) else None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and value == value:
        return [str(value)]  # a column of numbers read from CSV ("42"): the text of each
    return None


def _shown(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no value"
    return f"{value!r:.60}"


# -- metrics --------------------------------------------------------------------------------------


def row_statistics(check: CheckSpec, targets: Any, outputs: Outputs, label_names: Sequence[str]) -> RowStatistics:
    """``check``'s metric over the generated texts and the references of each row."""
    texts = outputs.texts
    if texts is None:
        raise CheckError(f"metric {check.metric} needs the model's generated texts, which this backend did not produce")
    if targets is None:
        raise CheckError(f"check {check.name!r}: metric {check.metric} needs references: set data.label")
    return with_decoding(text_statistics(check, texts, targets), outputs)


def with_decoding(stats: RowStatistics, outputs: Outputs) -> RowStatistics:
    """``stats`` with the backend's decoding settings (greedy, max_new_tokens, stop, seed) in its details."""
    if not outputs.generation:
        return stats
    return replace(stats, details={**stats.details, "generation": dict(outputs.generation)})


def text_statistics(check: CheckSpec, texts: Sequence[str], refs: Sequence[Sequence[str]]) -> RowStatistics:
    """The statistics of a text metric (ROUGE, sacrebleu's, exact_match) shared by text2text and generation."""
    metric = str(check.metric)
    if len(texts) != len(refs):
        raise CheckError(f"check {check.name!r}: {len(texts)} generated texts for {len(refs)} rows of references")
    if metric in ROUGE:
        return _rouge(check, metric, texts, refs)
    if metric in SACREBLEU:
        return _sacrebleu(check, metric, texts, refs)
    if metric == "exact_match":
        norm = normaliser(check)
        hits = [any(norm(text) == norm(ref) for ref in row) for text, row in zip(texts, refs, strict=True)]
        return mean_of_rows(np.asarray(hits, dtype=np.float64), {"normalize": list(normalise_steps(check))})
    raise CheckError(f"check {check.name!r}: no implementation for metric {metric!r}")


def normalise(text: str, steps: Sequence[str] = ()) -> str:
    """``text`` with its ends stripped, then each of ``steps``: ``whitespace`` (runs of whitespace become one
    space), ``lowercase``, ``punctuation`` (ASCII punctuation removed)."""
    if "lowercase" in steps:
        text = text.lower()
    if "punctuation" in steps:
        text = text.translate(_PUNCTUATION)
    if "whitespace" in steps:
        text = _SPACES.sub(" ", text)
    return text.strip()


def normaliser(check: CheckSpec) -> Callable[[str], str]:
    """The text normalisation a check's ``normalize`` option asks for (strip only by default)."""
    steps = normalise_steps(check)
    return lambda text: normalise(text, steps)


def normalise_steps(check: CheckSpec) -> tuple[str, ...]:
    steps = option(check, "normalize", ())
    steps = (steps,) if isinstance(steps, str) else tuple(steps)
    unknown = [s for s in steps if s not in NORMALISATIONS]
    if unknown:
        raise CheckError(
            f"check {check.name!r}: normalize {unknown[0]!r} is not a normalisation; use any of "
            f"{', '.join(NORMALISATIONS)}"
        )
    return steps


def _rouge(check: CheckSpec, metric: str, texts: Sequence[str], refs: Sequence[Sequence[str]]) -> RowStatistics:
    from rouge_score import rouge_scorer

    stemmer = bool(option(check, "use_stemmer", False))
    scorer = rouge_scorer.RougeScorer([metric], use_stemmer=stemmer)
    scores = np.fromiter(
        (
            (scorer.score(row[0], text) if len(row) == 1 else scorer.score_multi(row, text))[metric].fmeasure
            for text, row in zip(texts, refs, strict=True)
        ),
        dtype=np.float64,
        count=len(texts),
    )
    return mean_of_rows(scores, {"library": "rouge-score", "use_stemmer": stemmer, "score": "f-measure, mean of rows"})


def sacrebleu_metric(check: CheckSpec, metric: str) -> Any:
    """The sacrebleu metric object of ``check`` with its ``sacrebleu`` settings (CheckError for bad ones)."""
    import sacrebleu

    class_name, defaults = SACREBLEU[metric]
    settings = option(check, "sacrebleu", None) or {}
    if not isinstance(settings, Mapping):
        raise CheckError(f"check {check.name!r}: sacrebleu must be a mapping of {class_name} settings")
    try:
        return getattr(sacrebleu, class_name)(**{**defaults, **settings})
    except (TypeError, ValueError, AssertionError, KeyError, RuntimeError) as exc:
        raise CheckError(
            f"check {check.name!r}: sacrebleu settings {dict(settings)!r} rejected by sacrebleu.{class_name}: {exc}"
        ) from None


def _sacrebleu(check: CheckSpec, metric: str, texts: Sequence[str], refs: Sequence[Sequence[str]]) -> RowStatistics:
    scorer = sacrebleu_metric(check, metric)
    width = max((len(row) for row in refs), default=1)
    streams = [[row[k] if k < len(row) else None for row in refs] for k in range(width)]
    stats = np.asarray(scorer._extract_corpus_statistics(list(texts), streams), dtype=np.float64)
    stats = stats.reshape(len(texts), -1)
    finalise = vectorised_finaliser(scorer) or library_finaliser(scorer)
    return RowStatistics(stats, finalise, {"library": "sacrebleu", "signature": str(scorer.get_signature())})


def library_finaliser(scorer: Any) -> Finaliser:
    """sacrebleu's own ``_compute_score_from_stats`` on every row of a (..., k) array of sums."""

    def finalise(sums: np.ndarray) -> np.ndarray:
        sums = np.asarray(sums, dtype=np.float64)
        flat = sums.reshape(-1, sums.shape[-1]).tolist()  # lists: BLEU's add-k smoothing edits its input
        scores = [scorer._compute_score_from_stats(row).score for row in flat]
        return np.asarray(scores, dtype=np.float64).reshape(sums.shape[:-1])

    return finalise
