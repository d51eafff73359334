"""The backend extension point: how modelcheck loads and runs a model of some framework.

A backend is any object with the :class:`Backend` shape, registered in the ``modelcheck.backends``
entry-point group of its distribution::

    [project.entry-points."modelcheck.backends"]
    mybackend = "mypkg.backend:MyBackend"

The core never imports a framework itself: a backend imports its framework when it loads a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from modelcheck.errors import BackendError, DataError
from modelcheck.gatefile.build import BACKENDS_GROUP, available_backends

if TYPE_CHECKING:
    import numpy as np

    from modelcheck.gatefile import ModelSpec

ENTRY_POINT_GROUP = BACKENDS_GROUP
#: The frameworks the models of the bundled backends need (the modelcheck_backend marker checks them;
#: memory checks import them before measuring, so a framework's import is not counted as the model's).
BACKEND_FRAMEWORKS: dict[str, tuple[str, ...]] = {
    "transformers": ("torch", "transformers"),
    "torch": ("torch",),
    "onnx": ("onnxruntime",),
}


def import_frameworks(backend: str) -> None:
    """Import the frameworks a bundled backend's models need (so a measured load does not count their import)."""
    import importlib

    for framework in BACKEND_FRAMEWORKS.get(backend, ()):
        try:
            importlib.import_module(framework)
        except ImportError:
            return  # the backend's load says what is missing


@dataclass(frozen=True)
class Outputs:
    """What a model produced for its inputs, in input order. Which fields are set depends on the task.

    - classification tasks: ``labels`` (class ids, shape (n,)) and, where the model gives them,
      ``scores`` (class probabilities, shape (n, classes));
    - ``tabular-regression``: ``values`` (shape (n,));
    - ``feature-extraction``: ``embeddings`` (shape (n, d)), or with paired inputs also
      ``pair_embeddings`` for the second input of each pair;
    - ``multi-label-classification``: ``scores`` (per-label sigmoid probabilities, shape (n, labels)) and
      ``multi_labels`` (the labels predicted at the model's threshold 0.5, bool, shape (n, labels));
    - ``token-classification``: ``tags`` (one tag name per input word, aligned by each word's first subword);
    - ``question-answering``: ``texts`` (the answer span, "" for no answer) and ``spans`` (its character
      start and end in the context, shape (n, 2); (-1, -1) for no answer);
    - ``text-generation``: ``texts`` (the generated continuation of each prompt) and, for
      ``(prompt, reference)`` inputs, ``token_logprobs`` (shape (n, 2): the sum of the reference tokens'
      log-probabilities given the prompt, and their count); ``generation``: the decoding settings
      (greedy, max_new_tokens, stop strings, seed) for the report;
    - text2text tasks: ``texts`` and ``generation``;
    - ``object-detection``: ``detections``, one (m, 6) float array per image: x_min, y_min, x_max, y_max
      (pixels), score, class id, by descending score.

    ``failed`` (endpoint backends, while tolerating failed requests): True for the rows whose request
    failed for good; their other fields hold placeholders (zeros, empty texts) that no check reads.
    """

    labels: np.ndarray | None = None
    scores: np.ndarray | None = None
    values: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    pair_embeddings: np.ndarray | None = None
    texts: list[str] | None = None
    tags: list[list[str]] | None = None
    multi_labels: np.ndarray | None = None
    spans: np.ndarray | None = None
    token_logprobs: np.ndarray | None = None
    #: Generation: per row how many tokens the model generated (padding and end-of-sequence not counted).
    output_tokens: np.ndarray | None = None
    detections: list[np.ndarray] | None = None
    generation: Mapping[str, Any] | None = None
    failed: np.ndarray | None = None

    def __len__(self) -> int:
        fields = (self.labels, self.values, self.embeddings, self.texts, self.tags, self.multi_labels, self.detections)
        for field in fields:
            if field is not None:
                return len(field)
        return 0

    def take(self, rows: Sequence[int] | np.ndarray) -> Outputs:
        """The outputs of the given rows only (for slices)."""
        import numpy as np

        index = np.asarray(rows, dtype=np.int64)

        def pick(field: np.ndarray | None) -> np.ndarray | None:
            return None if field is None else field[index]

        return Outputs(
            labels=pick(self.labels),
            scores=pick(self.scores),
            values=pick(self.values),
            embeddings=pick(self.embeddings),
            pair_embeddings=pick(self.pair_embeddings),
            texts=None if self.texts is None else [self.texts[i] for i in index],
            tags=None if self.tags is None else [self.tags[i] for i in index],
            multi_labels=pick(self.multi_labels),
            spans=pick(self.spans),
            token_logprobs=pick(self.token_logprobs),
            output_tokens=pick(self.output_tokens),
            detections=None if self.detections is None else [self.detections[i] for i in index],
            generation=self.generation,
            failed=pick(self.failed),
        )


@runtime_checkable
class LoadedModel(Protocol):
    """A model loaded by a backend, ready to run.

    Optionally a model also has ``pinned_threads(n)``: a context manager under which its predict
    calls use ``n`` CPU threads (yielding the settings for the report), for frameworks whose thread
    pools modelcheck cannot pin from outside (ONNX Runtime's live in the session). Latency and memory
    checks use it; torch's and BLAS's pools are pinned for every model. A classifier may also have
    ``classes``: the class values it was trained on, by class id (e.g. ``(3, 7, 9)`` or the names a
    converted scikit-learn model carries), which a label column may hold instead of ids or names.
    """

    #: The device the model actually runs on (``cpu``, ``cuda:0``, ...).
    device: str
    #: Class names by class id, for classification tasks (empty for other tasks).
    label_names: tuple[str, ...]

    def predict(self, inputs: Sequence[Any], *, batch_size: int) -> Outputs:
        """Run the model over ``inputs`` (one per data row) and return its outputs in that order.

        An input is what the task feeds: a string (text tasks), a pair of strings (paired
        feature-extraction), an image (``PIL.Image``), or a 1-D float array (tabular tasks).
        """
        ...

    def artifact_files(self) -> list[Path]:
        """Every file the model was loaded from (hashed into the report)."""
        ...

    def close(self) -> None:
        """Release the model's memory."""
        ...


class Backend(Protocol):
    """Loads models of one framework."""

    name: str

    def load(self, model: ModelSpec) -> LoadedModel:
        """Load ``model`` on the device its spec asks for; raise ModelLoadError with the fix."""
        ...


def require_task(backend: str, model: ModelSpec, supported: Sequence[str]) -> None:
    """Raise BackendError when ``backend`` cannot run ``model.task``, listing the tasks it can."""
    if model.task not in supported:
        raise BackendError(
            f"the {backend} backend does not support task {model.task!r} (model {model.id!r}); "
            f"supported tasks: {', '.join(supported)}"
        )


def check_predict(source: object, *, loaded: bool, batch_size: int) -> None:
    """The guard every ``predict`` starts with: the model is still loaded and the batch size is sane."""
    if not loaded:
        raise BackendError(f"model {source} was closed; load it again to predict")
    if batch_size < 1:
        raise BackendError(f"batch_size must be at least 1, got {batch_size}")


def data_row(index: int) -> str:
    """How messages name the data row at 0-based position ``index``: counted from 1, the header not counted."""
    return f"data row {index + 1} (counting from 1, header not counted)"


class InputRowError(DataError):
    """A DataError about one input of a ``predict`` call: ``before`` + the row's name + ``after``.

    Backends number ``row`` within the inputs they were given (from 0); :func:`modelcheck.models.predict.predict`
    renumbers it from the chunk to the whole data (:meth:`shifted`), so the message names the data row.
    """

    def __init__(self, row: int, before: str, after: str) -> None:
        self.row, self.before, self.after = row, before, after
        super().__init__(f"{before}{data_row(row)}{after}")

    def shifted(self, offset: int) -> InputRowError:
        """The same error for the input ``offset`` rows further on."""
        return InputRowError(self.row + offset, self.before, self.after)


def get_backend(name: str) -> Backend:
    """Instantiate the backend registered under ``name``."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            try:
                factory = ep.load()
            except ImportError as exc:
                raise BackendError(
                    f"backend {name!r} is installed but cannot be imported ({exc}); "
                    f"install its framework, e.g. pip install 'modelcheck[{name}]'"
                ) from None
            backend: Backend = factory()
            return backend
    installed = ", ".join(available_backends()) or "none"
    raise BackendError(f"unknown backend {name!r}; installed backends: {installed}")
