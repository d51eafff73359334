"""``token-classification`` (NER and other span tagging): entity-level metrics as ``seqeval`` computes them.

Data: an input column of word lists and a label column of tag lists, one tag per word (JSON/JSONL/parquet
lists; in CSV a JSON list per cell). The backend tags each word by the prediction at its first subword.
Entities are extracted by seqeval itself: ``get_entities`` in the default mode (conlleval's lenient
reading of IOB1/IOB2/IOE/IOBES tags), ``seqeval.scheme.Entities`` with the check's ``scheme`` in
``mode: strict`` (which reads an entity only where it follows the scheme exactly). Per sentence and
entity type the row statistics are TP, predicted and true entity counts, so ``precision``/``recall``/
``f1`` (``average`` micro, the default; macro; weighted; or one ``entity`` type) equal
``seqeval.metrics`` on any subset of rows; ``token_accuracy`` is the share of words tagged right
(seqeval's ``accuracy_score``). Undefined ratios are 0 (seqeval's default); with no entity at all,
macro and weighted are 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modelcheck.errors import CheckError, DataError
from modelcheck.gatefile.tasks import TOKEN_METRICS
from modelcheck.models.backends import data_row
from modelcheck.tasks.base import RowStatistics, list_column, ratio

if TYPE_CHECKING:
    import pandas as pd

    from modelcheck.gatefile import CheckSpec
    from modelcheck.models.backends import Outputs

TASKS = ("token-classification",)
#: Metric -> the model-index type name (the Hub shows entity metrics as ``seqeval``).
METRICS = {"f1": "seqeval", "precision": "seqeval", "recall": "seqeval", "token_accuracy": "accuracy"}
assert tuple(METRICS) == TOKEN_METRICS
#: Tag prefixes seqeval's default mode reads (others it warns about and misreads).
_DEFAULT_PREFIXES = ("B-", "I-", "E-", "S-")


def inputs(task: str, columns: tuple[str, ...], frame: pd.DataFrame, *, source: str = "the data") -> list[list[str]]:
    """The word list of each row (DataError for a row that is not a list of strings)."""
    column = columns[0]
    rows = _strings(list_column(frame[column].tolist(), column=column, source=source), column, source, "words")
    return rows


def targets(
    task: str,
    label: str | tuple[str, ...],
    frame: pd.DataFrame,
    label_names: Sequence[str],
    *,
    inputs: tuple[str, ...] = (),
    source: str = "the data",
) -> list[list[str]]:
    """The tag list of each row; DataError where a row's tags and words differ in number."""
    assert isinstance(label, str)
    tags = _strings(list_column(frame[label].tolist(), column=label, source=source), label, source, "tags")
    if inputs:
        words = list_column(frame[inputs[0]].tolist(), column=inputs[0], source=source)
        for row, (sentence, tagged) in enumerate(zip(words, tags, strict=True)):
            if sentence is not None and len(sentence) != len(tagged):
                longer = "longer" if len(tagged) > len(sentence) else "shorter"
                raise DataError(
                    f"{source}: {data_row(row)}"
                    f" has {len(tagged)} tags in column {label!r} for {len(sentence)} words in "
                    f"column {inputs[0]!r} (the tag list is {longer}); give one tag per word"
                )
    return tags


def _strings(rows: list[list[Any] | None], column: str, source: str, what: str) -> list[list[str]]:
    for row, values in enumerate(rows):
        bad = next((v for v in values or () if not isinstance(v, str)), None)
        if bad is not None:
            raise DataError(f"{source}: column {column!r} {data_row(row)} holds {bad!r}; {what} are strings")
    return [list(values or ()) for values in rows]


def row_statistics(
    check: CheckSpec, targets: list[list[str]], outputs: Outputs, label_names: Sequence[str]
) -> RowStatistics:
    """The check's metric as per-sentence statistics (see the module docstring)."""
    predicted = outputs.tags
    if predicted is None:
        raise CheckError(
            f"check {check.name!r}: {check.metric} needs the model's word tags, which the backend did not give"
        )
    for row, (truth, guess) in enumerate(zip(targets, predicted, strict=True)):
        if len(truth) != len(guess):
            raise CheckError(
                f"check {check.name!r}: {data_row(row)}"
                f" has {len(truth)} true tags but the model tagged {len(guess)} words"
            )
    if check.metric == "token_accuracy":
        pairs = zip(targets, predicted, strict=True)
        right = [[sum(a == b for a, b in zip(t, p, strict=True)), len(t)] for t, p in pairs]
        counts = np.array(right, dtype=np.float64).reshape(-1, 2)
        return RowStatistics(counts, ratio, {})
    _require_seqeval(check)
    mode = check.options.get("mode", "default")
    scheme = check.options.get("scheme")
    details: dict[str, Any] = {"mode": mode, "library": "seqeval"}
    if mode == "strict":
        if scheme is None:
            raise CheckError(
                f"check {check.name!r}: mode strict needs scheme: (IOB1, IOB2, IOE1, IOE2, IOBES or BILOU)"
            )
        details["scheme"] = scheme
        true_entities = _strict(targets, scheme, "data", check)
        pred_entities = _strict(predicted, scheme, "the model's", check)
    else:
        true_entities = _lenient(targets, "data", check)
        pred_entities = _lenient(predicted, "the model's", check)
    types = sorted({t for row in (*true_entities, *pred_entities) for t, *_ in row})
    entity = check.options.get("entity")
    if entity is not None:
        details["entity"] = entity
        types = [entity]
    position = {name: i for i, name in enumerate(types)}
    width = len(types)
    stats = np.zeros((len(targets), 3 * width), dtype=np.float64)  # per type: TP, predicted, true
    for row, (true_set, pred_set) in enumerate(zip(true_entities, pred_entities, strict=True)):
        for kind, entities in ((1, pred_set), (2, true_set)):
            for item in entities:
                if item[0] in position:
                    stats[row, kind * width + position[item[0]]] += 1
        for item in true_set & pred_set:
            if item[0] in position:
                stats[row, position[item[0]]] += 1
    average = "micro" if entity is not None else (check.average or "micro")
    details["average"] = average if entity is None else f"entity {entity}"
    details["entity_types"] = types
    metric = check.metric

    def finalise(sums: np.ndarray) -> np.ndarray:
        tp, pred, true = sums[..., :width], sums[..., width : 2 * width], sums[..., 2 * width :]
        if average == "micro":
            return _prf(metric, tp.sum(axis=-1), pred.sum(axis=-1), true.sum(axis=-1))
        per_type = _prf(metric, tp, pred, true)
        present = (pred + true) > 0  # seqeval averages over the types found in the rows evaluated
        weights = present.astype(np.float64) if average == "macro" else true
        total = weights.sum(axis=-1)
        summed = (per_type * weights).sum(axis=-1)
        return np.divide(summed, total, out=np.zeros_like(summed), where=total > 0)

    return RowStatistics(stats, finalise, details)


def _require_seqeval(check: CheckSpec) -> None:
    import importlib.util

    if importlib.util.find_spec("seqeval") is None:
        raise CheckError(
            f"check {check.name!r}: entity metrics are computed by seqeval, which is not installed; "
            "pip install 'modelcheck[language]' (or seqeval)"
        )


def _prf(metric: str | None, tp: np.ndarray, pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    recall = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    if metric == "precision":
        return precision
    if metric == "recall":
        return recall
    denominator = precision + recall
    return np.divide(2 * precision * recall, denominator, out=np.zeros_like(tp), where=denominator > 0)


def _lenient(sequences: list[list[str]], whose: str, check: CheckSpec) -> list[set[tuple[str, int, int]]]:
    """seqeval's default-mode entities (``get_entities``) of each sentence, as (type, start, end) sets."""
    from seqeval.metrics.sequence_labeling import get_entities

    out = []
    for row, tags in enumerate(sequences):
        for position, tag in enumerate(tags):
            if tag not in ("O", "B", "I", "E", "S") and not tag.startswith(_DEFAULT_PREFIXES):
                raise _bad_tag(check, whose, row, position, tag, "default mode reads O and B-/I-/E-/S- tags")
        out.append(set(get_entities(list(tags))))
    return out


def _strict(sequences: list[list[str]], scheme: str, whose: str, check: CheckSpec) -> list[set[tuple[str, int, int]]]:
    """seqeval's strict-mode entities (``seqeval.scheme.Entities``) of each sentence."""
    from seqeval import scheme as schemes
    from seqeval.scheme import Entities, Tokens

    kind = getattr(schemes, scheme)
    try:
        found = Entities([list(tags) for tags in sequences], scheme=kind).entities
    except (KeyError, ValueError, IndexError):  # find the row and the tag that break the scheme
        for row, tags in enumerate(sequences):
            for position, tag in enumerate(tags):
                try:
                    Tokens([tag], scheme=kind).tokens[0].is_valid()
                except (KeyError, ValueError, IndexError):
                    raise _bad_tag(check, whose, row, position, tag, f"it is not a tag of scheme {scheme}") from None
        raise
    return [{(e.tag, e.start, e.end) for e in sentence} for sentence in found]


def _bad_tag(check: CheckSpec, whose: str, row: int, position: int, tag: str, rule: str) -> Exception:
    where = f"{data_row(row)}, word {position + 1}"
    if whose == "data":
        return DataError(
            f"check {check.name!r}: tag {tag!r} at {where} of the label column does not fit: {rule}; fix the tag, "
            "or set scheme:/mode: to the tagging scheme the data uses (BILOU needs mode: strict, scheme: BILOU)"
        )
    return CheckError(f"check {check.name!r}: {whose} tag {tag!r} at {where} does not fit: {rule}")
