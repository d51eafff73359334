"""automatic-speech-recognition: WER and CER with jiwer, as per-row edit operations.

Targets are the transcripts (one non-empty string per row). ``jiwer.process_words`` /
``process_characters`` align every reference with the model's transcript once; each row keeps its
substitutions, deletions, insertions and hits, so WER = (S + D + I) / (S + D + H) of any set of rows —
all rows, a ``slice_by`` slice, a bootstrap resample — is jiwer's corpus WER of those rows (total
edits over total reference words, not a mean of per-utterance rates). jiwer's default transforms
apply (strip, collapse spaces, split into words or characters); ``normalize`` adds steps before them
(``lowercase``, ``punctuation``, ``whitespace``), recorded in the check's details.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modelcheck.errors import CheckError, DataError
from modelcheck.models.backends import data_row
from modelcheck.tasks.base import RowStatistics

if TYPE_CHECKING:
    import pandas as pd

    from modelcheck.gatefile import CheckSpec
    from modelcheck.models.backends import Outputs

TASKS = ("automatic-speech-recognition",)
#: metric -> its model-index type name.
METRICS = {"wer": "wer", "cer": "cer"}


def targets(
    task: str,
    label: str | tuple[str, ...] | None,
    frame: pd.DataFrame,
    label_names: Sequence[str],
    *,
    inputs: Sequence[str] = (),
    source: str = "the data",
) -> list[str] | None:
    """The transcript of each row; DataError naming the row and column of a missing or empty one."""
    if label is None:
        return None
    column = label if isinstance(label, str) else label[0]
    out = []
    for row, value in enumerate(frame[column].tolist()):
        if not isinstance(value, str) or not value.strip():
            missing = value is None or (isinstance(value, float) and value != value)  # None, or NaN from pandas
            shown = "is empty" if isinstance(value, str) or missing else f"holds {value!r:.40}, not a text"
            raise DataError(
                f"{source}: transcript column {column!r} {data_row(row)} {shown}; WER and CER need a reference "
                "transcript per row: fill it in or drop the row"
            )
        out.append(value)
    return out


def row_statistics(check: CheckSpec, targets: Any, outputs: Outputs, label_names: Sequence[str]) -> RowStatistics:
    """Per row: substitutions, deletions, insertions and hits of words (wer) or characters (cer)."""
    try:
        import jiwer
    except ImportError:
        raise CheckError(
            f"check {check.name!r}: {check.metric} needs jiwer: pip install 'modelcheck[speech]'"
        ) from None
    from modelcheck.tasks.text2text import normalise_steps, normaliser

    if outputs.texts is None:
        raise CheckError(f"check {check.name!r}: {check.metric} needs the model's transcripts, which it did not give")
    if targets is None:
        raise CheckError(f"check {check.name!r}: {check.metric} needs transcripts: set data.label")
    norm = normaliser(check)
    references = [norm(text) for text in targets]
    hypotheses = [norm(text) for text in outputs.texts]
    empty = [row for row, text in enumerate(references) if not text.strip()]
    if empty:
        raise CheckError(f"check {check.name!r}: the transcript at {data_row(empty[0])} is empty after normalize")
    process = jiwer.process_words if check.metric == "wer" else jiwer.process_characters
    aligned = process(references, hypotheses)
    stats = np.zeros((len(references), 4), dtype=np.float64)  # substitutions, deletions, insertions, hits
    column = {"substitute": 0, "delete": 1, "insert": 2, "equal": 3}
    for row, chunks in enumerate(aligned.alignments):
        for chunk in chunks:
            span = chunk.hyp_end_idx - chunk.hyp_start_idx if chunk.type == "insert" else (
                chunk.ref_end_idx - chunk.ref_start_idx
            )  # fmt: skip
            stats[row, column[chunk.type]] += span
    details: dict[str, Any] = {"library": "jiwer", "counted": "words" if check.metric == "wer" else "characters",
                               "normalize": list(normalise_steps(check))}  # fmt: skip
    if outputs.generation:  # the backend's audio handling (rates, resampling) and decoding
        details.update(outputs.generation)
    return RowStatistics(stats, error_rate, details)


def error_rate(sums: np.ndarray) -> np.ndarray:
    """(S + D + I) / (S + D + H) of summed statistics, 0 where there are no reference words."""
    errors = sums[..., 0] + sums[..., 1] + sums[..., 2]
    reference = sums[..., 0] + sums[..., 1] + sums[..., 3]
    return np.asarray(np.divide(errors, reference, out=np.zeros_like(errors), where=reference > 0))
