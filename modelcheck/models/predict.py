"""Run a loaded model over many inputs: in chunks (with progress), outputs joined in input order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any

from modelcheck.errors import BackendError
from modelcheck.models.backends import LoadedModel, Outputs

#: ``progress(done, total)``: called as prediction over a gate's rows advances (see :func:`predict`).
Progress = Callable[[int, int], None]


def chunk_size(batch_size: int) -> int:
    """Rows per ``predict`` call when predicting in chunks: ``max(batch_size * 8, 256)``."""
    return max(batch_size * 8, 256)


def predict(model: LoadedModel, inputs: Sequence[Any], *, batch_size: int, progress: Progress | None = None) -> Outputs:
    """``model.predict`` over ``inputs`` in chunks of :func:`chunk_size` rows, outputs in input order.

    Chunking lets ``progress(done, total)`` report between chunks (it is called once with ``done=0``
    first, and last with ``done == total``); backends still batch (and sort by length) within a chunk.
    Chunks do not depend on ``progress``, so the outputs are the same with or without it.
    """
    total = len(inputs)
    size = chunk_size(batch_size)
    if progress is not None:
        progress(0, total)
    parts = []
    for start in range(0, max(total, 1), size):
        chunk = inputs[start : start + size]
        outputs = model.predict(chunk, batch_size=batch_size)
        if len(outputs) != len(chunk):
            raise BackendError(
                f"backend of {model!r} returned {len(outputs)} outputs for {len(chunk)} inputs "
                f"(rows {start} to {start + len(chunk) - 1}); a backend returns one output per input"
            )
        parts.append(outputs)
        if progress is not None:
            progress(start + len(chunk), total)
    return concat_outputs(parts)


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
        elif isinstance(values[0], list):
            joined[output_field.name] = [item for value in values for item in value]
        else:
            joined[output_field.name] = np.concatenate(values, axis=0)
    return Outputs(**joined)


# -- inputs and targets ---------------------------------------------------------------------------
