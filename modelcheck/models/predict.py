"""Run a loaded model over many inputs: in chunks (with progress), outputs joined in input order."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from typing import Any

from modelcheck.errors import BackendError
from modelcheck.models.backends import InputRowError, LoadedModel, Outputs, data_row
from modelcheck.models.threads import evaluation_threads, threads_used

#: ``progress(done, total)``: called as prediction over a gate's rows advances (see :func:`predict`).
Progress = Callable[[int, int], None]


def chunk_size(batch_size: int) -> int:
    """Rows per ``predict`` call when predicting in chunks: ``max(batch_size * 8, 256)``."""
    return max(batch_size * 8, 256)


def predict(
    model: LoadedModel,
    inputs: Sequence[Any],
    *,
    batch_size: int,
    progress: Progress | None = None,
    name: str | None = None,
    on_threads: Callable[[int | None], None] | None = None,
) -> Outputs:
    """``model.predict`` over ``inputs`` in chunks of :func:`chunk_size` rows, outputs in input order.

    Outputs that are not finite (NaN or inf scores, values or embeddings) raise BackendError naming
    the model (``name``), how many rows and the first: a broken model never reaches a check.
    Chunking lets ``progress(done, total)`` report between chunks (called once with ``done=0``
    first, and last with ``done == total``); backends still batch (and sort by length) within a chunk.
    Chunks do not depend on ``progress``, so the outputs are the same with or without it.
    A torch model whose gate sets no ``threads`` runs on the cores other work leaves free
    (:func:`modelcheck.models.threads.evaluation_threads`); ``on_threads`` is told the thread count
    the evaluation ran on (:func:`modelcheck.models.threads.threads_used`; None where unknown).
    """
    total = len(inputs)
    size = chunk_size(batch_size)
    if progress is not None:
        progress(0, total)
    parts = []
    with evaluation_threads(model) as chosen:
        if on_threads is not None:
            on_threads(threads_used(model, chosen))
        for start in range(0, max(total, 1), size):
            chunk = inputs[start : start + size]
            try:
                outputs = model.predict(chunk, batch_size=batch_size)
            except InputRowError as exc:  # numbered within the chunk: name the data row
                raise exc.shifted(start) from None
            if len(outputs) != len(chunk):
                raise BackendError(
                    f"backend of {model!r} returned {len(outputs)} outputs for {len(chunk)} inputs "
                    f"(rows {start} to {start + len(chunk) - 1}); a backend returns one output per input"
                )
            parts.append(outputs)
            if progress is not None:
                progress(start + len(chunk), total)
    outputs = concat_outputs(parts)
    check_finite(outputs, name or type(model).__name__)
    return outputs


def concat_outputs(parts: Sequence[Outputs]) -> Outputs:
    """The outputs of consecutive chunks of inputs as one :class:`Outputs`, in order."""
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return Outputs()
    import numpy as np

    joined: dict[str, Any] = {}
    for output_field in fields(Outputs):
        values = [getattr(part, output_field.name) for part in parts]
        if all(v is None for v in values):
            joined[output_field.name] = None
        elif any(v is None for v in values):
            raise BackendError(f"the backend set Outputs.{output_field.name} for some inputs but not for others")
        elif isinstance(values[0], Mapping):  # run-wide details (generation settings): the same in every part
            joined[output_field.name] = values[0]
        elif isinstance(values[0], list):
            joined[output_field.name] = [item for value in values for item in value]
        else:
            joined[output_field.name] = np.concatenate(values, axis=0)
    return Outputs(**joined)


# -- inputs and targets ---------------------------------------------------------------------------


#: Output fields that hold numbers a check reads (labels are class ids, finite by construction).
_NUMERIC_FIELDS = ("scores", "values", "embeddings", "pair_embeddings")


def check_finite(outputs: Outputs, name: str) -> None:
    """BackendError when any numeric output is NaN or infinite: how many rows, the first, which field."""
    import numpy as np

    for output_field in _NUMERIC_FIELDS:
        array = getattr(outputs, output_field)
        if array is None:
            continue
        array = np.asarray(array)
        if not np.issubdtype(array.dtype, np.number):
            continue
        rows = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1) if len(array) else np.zeros(0, bool)
        if rows.any():
            bad = np.flatnonzero(rows)
            raise BackendError(
                f"model {name} produced non-finite outputs (NaN or inf) in {output_field} for {bad.size} of "
                f"{len(array)} rows (first: {data_row(int(bad[0]))}); a broken model cannot be judged: check its "
                "weights, dtype and inputs"
            )
