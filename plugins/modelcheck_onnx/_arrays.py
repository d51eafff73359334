"""Arrays in and out of the graph: batching and padding inputs, picking and decoding the output."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.errors import BackendError

if TYPE_CHECKING:
    import numpy as np


_FLOAT_TYPES = ("tensor(float)", "tensor(double)", "tensor(float16)")


def _pick_output(session: Any, task: str, path: Path) -> str:
    """The graph output the task reads: the first float tensor (``sentence_embedding`` first for embeddings)."""
    outputs = session.get_outputs()
    if task == "feature-extraction":
        for output in outputs:
            if output.name == "sentence_embedding":
                return str(output.name)
    for output in outputs:
        if output.type in _FLOAT_TYPES:
            return str(output.name)
    described = ", ".join(f"{o.name} ({o.type}, {o.shape})" for o in outputs)
    raise BackendError(
        f"graph {path.name} has no float tensor output ({described}); {task} reads the first float output "
        "(logits or probabilities for classifiers; for scikit-learn models convert with options "
        "{'zipmap': False})"
    )


#: Names converters give a classifier's own predicted label (skl2onnx: ``label``; some: ``output_label``).
LABEL_OUTPUTS = ("label", "output_label")
_LABEL_TYPES = ("tensor(int64)", "tensor(int32)", "tensor(string)")


def _label_output(session: Any, task: str) -> str | None:
    """A classifier graph's own predicted-label output (e.g. skl2onnx's ``label``), where it has one.

    For such models the float output may hold decision values, not probabilities (an SVC's votes), whose
    argmax can disagree with the model: the label output is what the model predicts.
    """
    if task != "tabular-classification":  # converted scikit-learn models; text graphs give logits
        return None
    for output in session.get_outputs():
        if output.name in LABEL_OUTPUTS and output.type in _LABEL_TYPES:
            return str(output.name)
    return None


def _probabilities(raw: np.ndarray) -> np.ndarray:
    """Class probabilities from logits, or ``raw`` itself if its rows already are probabilities.

    One column is a binary model's positive score (probability or logit).
    """
    import numpy as np

    raw = raw.astype(np.float64)
    is_probability = bool(np.all(raw >= 0) and np.all(raw <= 1))
    if raw.shape[1] == 1:
        positive = raw[:, 0] if is_probability else 1 / (1 + np.exp(-raw[:, 0]))
        return np.stack([1 - positive, positive], axis=1).astype(np.float32)
    if is_probability and np.allclose(raw.sum(axis=1), 1, atol=1e-3):
        return raw.astype(np.float32)
    shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)


def _pool(output: np.ndarray, mask: np.ndarray, name: str, path: Path) -> np.ndarray:
    """Mean of the token vectors under the attention mask ((batch, seq, dim)), or (batch, dim) as is."""
    import numpy as np

    if output.ndim == 2:
        return output
    if output.ndim != 3:
        raise BackendError(
            f"graph output {name!r} of {path.name} has shape {list(output.shape)}; feature-extraction needs "
            "(batch, tokens, dim) token vectors or (batch, dim) embeddings"
        )
    weights = mask[: len(output), : output.shape[1], None].astype(np.float32)
    return np.asarray((output * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None))


def _normalise(vectors: np.ndarray) -> np.ndarray:
    import numpy as np

    norms = np.linalg.norm(vectors, axis=1, keepdims=True) if vectors.size else np.ones((len(vectors), 1))
    return np.asarray(vectors / np.clip(norms, 1e-12, None), dtype=np.float32)


def _pad_rows(array: np.ndarray, rows: int | None) -> np.ndarray:
    """Repeat the last row until ``array`` has ``rows`` rows (graphs exported with a fixed batch size)."""
    import numpy as np

    if rows is None or len(array) >= rows:
        return array
    return np.concatenate([array, np.repeat(array[-1:], rows - len(array), axis=0)])


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
