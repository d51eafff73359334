"""The loaded ONNX model: ``OnnxModel`` feeds tokenised texts or feature rows to the session and decodes its output."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.errors import BackendError, DataError
from modelcheck.models.backends import Outputs, check_predict
from modelcheck_onnx import _language
from modelcheck_onnx._arrays import (
    _chunks,
    _label_output,
    _normalise,
    _pad_rows,
    _pick_output,
    _pool,
    _probabilities,
)
from modelcheck_onnx._common import LANGUAGE_TASKS, TEXT_TASKS, _bad_text, _describe_inputs, _dtype, _short, _static
from modelcheck_onnx._loading import _WEIGHT_SUFFIXES, _max_length, _read_config

if TYPE_CHECKING:
    import numpy as np


class OnnxModel:
    """A loaded ONNX model (implements ``modelcheck.models.backends.LoadedModel``).

    ``session`` is the ``onnxruntime.InferenceSession`` (None once closed).
    """

    def __init__(
        self,
        session: Any,
        *,
        path: Path,
        task: str,
        device: str,
        tokenizer: Any = None,
        tokenizer_folder: Path | None = None,
        tokenizer_name: str | None = None,
        labels: Sequence[str] | None = None,
        graph_classes: Sequence[int | str] | None = None,
        external_files: Sequence[Path] = (),
        session_factory: Callable[[int], Any] | None = None,
    ) -> None:
        self.session: Any = session
        self._session_factory = session_factory
        self._pinned_sessions: dict[int, Any] = {}
        self.path = path
        self.task = task
        self.device = device
        self._tokenizer: Any = tokenizer
        self._tokenizer_folder = tokenizer_folder
        self._tokenizer_name = tokenizer_name or ""
        self._external_files = list(external_files)
        self._inputs = {i.name: i for i in session.get_inputs()}
        self._output = _pick_output(session, task, path)
        #: The graph's own predicted label (skl2onnx's ``label``): what labels are judged on where present.
        self._label_output = _label_output(session, task)
        self._predicted: list[np.ndarray] = []
        config = _read_config(tokenizer_folder, tokenizer_name) if task in TEXT_TASKS else {}
        if task in TEXT_TASKS:
            self._feeds = self._check_text_inputs()
            self._max_length = _max_length(tokenizer, config, self._static_dim(1))
        else:
            self._feeds = self._check_tabular_inputs()
            self._max_length = 0
        self.label_names: tuple[str, ...] = ()
        #: The class values a converted classifier carries in its graph (skl2onnx's ``classlabels_*``), by class id.
        self.classes: tuple[int | str, ...] | None = None
        if task in ("text-classification", "tabular-classification"):
            width = self._width()
            self.classes = self._graph_classes(graph_classes, width)
            self.label_names = self._label_names(labels, config, width)
        elif task in ("token-classification", "multi-label-classification"):
            self.label_names = _language.label_names(self, labels, config)

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r}, task={self.task!r}, device={self.device!r})"

    @contextlib.contextmanager
    def pinned_threads(self, threads: int) -> Iterator[dict[str, int]]:
        """Predict calls run on a session with ``threads`` intra-op threads for the block (created once).

        ONNX Runtime fixes its thread pools when a session is created, so a second session is made.
        """
        if self._session_factory is None or self.session is None:
            yield {}
            return
        if threads not in self._pinned_sessions:
            self._pinned_sessions[threads] = self._session_factory(threads)
        before, self.session = self.session, self._pinned_sessions[threads]
        try:
            yield {"onnxruntime_intra_op": threads}
        finally:
            self.session = before

    # -- predict --------------------------------------------------------------------------------

    def predict(self, inputs: Sequence[Any], *, batch_size: int) -> Outputs:
        """Run the graph over ``inputs`` in batches of ``batch_size`` and return the outputs in input order."""
        import numpy as np

        check_predict(self.path, loaded=self.session is not None, batch_size=batch_size)
        matrix_given = isinstance(inputs, np.ndarray) and inputs.ndim == 2  # a gate's feature matrix
        rows: Any = inputs if matrix_given else list(inputs)
        self._predicted = []
        if self.task == "feature-extraction":
            return self._embed(rows, batch_size)
        if self.task in LANGUAGE_TASKS:
            return _language.predict(self, rows, batch_size)
        if self.task == "text-classification":
            for row, text in enumerate(rows):
                if not isinstance(text, str):
                    raise _bad_text(row, text, self.task)
            raw = self._run_texts(rows, batch_size, self._classification_rows)
        else:
            raw = self._run_tabular(rows, batch_size)
        if self.task == "tabular-regression":
            return Outputs(values=self._values(raw))
        if len(rows) == 0:
            return Outputs(labels=np.empty(0, dtype=np.int64), scores=np.zeros((0, len(self.label_names)), np.float32))
        scores = _probabilities(raw)
        if scores.shape[1] != len(self.label_names):
            raise BackendError(self._width_mismatch(scores.shape[1]))
        if self._label_output is not None:
            predicted, self._predicted = np.concatenate(self._predicted)[: len(rows)], []
            return Outputs(labels=self._label_ids(predicted), scores=scores)
        return Outputs(labels=scores.argmax(axis=1).astype(np.int64), scores=scores)

    def _label_ids(self, predicted: np.ndarray) -> np.ndarray:
        """The graph's predicted labels (its class values, class ids or class names) as ids into ``label_names``."""
        from modelcheck.models.labels import UNKNOWN, class_ids, first_rows

        ids = class_ids(predicted, self.label_names, classes=self.classes)
        if (ids < 0).any():
            bad = ids == UNKNOWN
            shown = ", ".join(repr(value) for value, _ in first_rows(predicted, ids)) if bad.any() else "no label"
            classes = f"the graph's classes ({', '.join(map(str, self.classes))}), " if self.classes else ""
            raise BackendError(
                f"graph output {self._label_output!r} of {self.path.name} predicts label {shown}, which is none of "
                f"{classes}the class ids 0 to {len(self.label_names) - 1} and the model's labels "
                f"({', '.join(self.label_names)}); set model.labels to the classifier's classes_, in order"
            )
        return ids

    def _embed(self, rows: list[Any], batch_size: int) -> Outputs:
        pairs = bool(rows) and not isinstance(rows[0], str)
        firsts: list[str] = []
        seconds: list[str] = []
        for row, value in enumerate(rows):
            if (
                pairs
                and isinstance(value, (tuple, list))
                and len(value) == 2
                and all(isinstance(v, str) for v in value)
            ):
                firsts.append(value[0])
                seconds.append(value[1])
            elif not pairs and isinstance(value, str):
                firsts.append(value)
            else:
                raise _bad_text(row, value, self.task)
        embeddings = _normalise(self._run_texts(firsts, batch_size, self._pooled_rows))
        if not pairs:
            return Outputs(embeddings=embeddings)
        return Outputs(
            embeddings=embeddings, pair_embeddings=_normalise(self._run_texts(seconds, batch_size, self._pooled_rows))
        )

    def _run_texts(
        self, texts: list[str], batch_size: int, reduce: Callable[[np.ndarray, np.ndarray], np.ndarray]
    ) -> np.ndarray:
        """Tokenise ``texts``, run them longest first in padded batches, and return ``reduce``d rows in order."""
        import numpy as np

        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        encoded = self._tokenizer(
            texts,
            truncation=True,
            max_length=self._max_length,
            return_attention_mask=True,
            return_token_type_ids="token_type_ids" in self._feeds or None,
        )
        keys = list(encoded.keys())
        order = sorted(range(len(texts)), key=lambda i: -len(encoded["input_ids"][i]))
        static_seq = self._static_dim(1)
        results: np.ndarray | None = None
        for rows in _chunks(order, self._batch(batch_size)):
            features = [{k: encoded[k][i] for k in keys} for i in rows]
            padding: Any = "max_length" if static_seq else True
            batch = self._tokenizer.pad(features, padding=padding, max_length=static_seq, return_tensors="np")
            output = self._run({name: batch[name] for name in self._feeds}, len(rows))
            reduced = reduce(output, np.asarray(batch["attention_mask"]))
            if results is None:
                results = np.zeros((len(texts), *reduced.shape[1:]), dtype=np.float32)
            results[rows] = reduced
        assert results is not None
        return results

    def _classification_rows(self, output: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if output.ndim == 1:
            output = output[:, None]
        if output.ndim != 2:
            raise BackendError(
                f"graph output {self._output!r} of {self.path.name} has shape {list(output.shape)}; a classifier's "
                "output must be (batch, classes) logits or probabilities"
            )
        return output

    def _pooled_rows(self, output: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return _pool(output, mask, self._output, self.path)

    def _run_tabular(self, rows: Any, batch_size: int) -> np.ndarray:
        import numpy as np

        name = self._feeds[0]
        declared = self._inputs[name]
        if len(rows) == 0:
            return np.zeros((0, 0), dtype=np.float32)
        try:
            if isinstance(rows, np.ndarray) and rows.ndim == 2:
                matrix = np.asarray(rows, dtype=np.float32)
            else:
                matrix = np.stack([np.asarray(r, dtype=np.float32).reshape(-1) for r in rows])
        except (TypeError, ValueError) as exc:
            raise DataError(f"tabular inputs must be numeric rows of equal length ({exc})") from None
        expected = _static(declared.shape, -1) if len(declared.shape) >= 2 else None
        if expected is not None and matrix.shape[1] != expected:
            raise BackendError(
                f"graph input {name!r} of {self.path.name} expects {expected} features (shape {declared.shape}); "
                f"the data gives {matrix.shape[1]} (data.input columns). List the {expected} feature columns the "
                "model was trained on, in its order"
            )
        matrix = matrix.astype(_dtype(declared.type, name), copy=False)
        if len(declared.shape) == 1 and matrix.shape[1] == 1:
            matrix = matrix[:, 0]
        results: list[np.ndarray] = []
        for start in range(0, len(matrix), self._batch(batch_size)):
            chunk = np.ascontiguousarray(matrix[start : start + self._batch(batch_size)])
            output = np.asarray(self._run({name: chunk}, len(chunk)), dtype=np.float32)
            results.append(output[:, None] if output.ndim == 1 else output.reshape(len(chunk), -1))
        return np.concatenate(results)

    def _values(self, raw: np.ndarray) -> np.ndarray:
        import numpy as np

        if raw.size == 0:
            return np.zeros(0, dtype=np.float32)
        if raw.shape[1] != 1:
            raise BackendError(
                f"graph output {self._output!r} of {self.path.name} gives {raw.shape[1]} values per row; "
                "tabular-regression needs one (shape (batch,) or (batch, 1))"
            )
        return np.asarray(raw[:, 0], dtype=np.float32)

    def _run(self, feeds: dict[str, np.ndarray], rows: int) -> np.ndarray:
        """One ``session.run`` of ``rows`` rows (padded to a static batch size), cast as the graph declares."""
        import numpy as np

        names = [self._output] + ([self._label_output] if self._label_output else [])
        output, *predicted = self._run_named(feeds, rows, names)
        if predicted:
            self._predicted.append(np.asarray(predicted[0]).reshape(-1))
        return output

    def _run_named(self, feeds: dict[str, np.ndarray], rows: int, names: Sequence[str]) -> list[np.ndarray]:
        """The graph's outputs ``names`` for ``rows`` rows of ``feeds`` (BackendError naming what it was given)."""
        import numpy as np

        fixed = self._static_dim(0)
        padded = {
            name: _pad_rows(np.asarray(value).astype(_dtype(self._inputs[name].type, name), copy=False), fixed)
            for name, value in feeds.items()
        }
        try:
            outputs = self.session.run(list(names), padded)
        except Exception as exc:  # onnxruntime raises its own exception types (InvalidArgument, Fail, ...)
            given = ", ".join(f"{k} {list(v.shape)} {v.dtype}" for k, v in padded.items())
            raise BackendError(
                f"ONNX Runtime cannot run {self.path.name}: {_short(exc)}. The graph expects "
                f"{_describe_inputs(self.session.get_inputs())}; it was given {given}"
            ) from None
        return [np.asarray(output)[:rows] for output in outputs]

    # -- loading helpers ------------------------------------------------------------------------

    def _check_text_inputs(self) -> list[str]:
        """The graph's inputs, each of which the tokenizer must give (BackendError names the missing ones)."""
        wants_types = "token_type_ids" in self._inputs
        given = list(self._tokenizer("a", return_attention_mask=True, return_token_type_ids=wants_types or None))
        missing = [name for name in self._inputs if name not in given]
        if missing:
            raise BackendError(
                f"graph {self.path.name} expects inputs {', '.join(self._inputs)}, but the tokenizer "
                f"({self._tokenizer_name}) gives {', '.join(given)}; nothing feeds {', '.join(missing)}. Export "
                "the model with the tokenizer's output names as its input names, or set model.tokenizer to the "
                "tokenizer it was exported with"
            )
        return list(self._inputs)

    def _check_tabular_inputs(self) -> list[str]:
        if len(self._inputs) != 1:
            raise BackendError(
                f"graph {self.path.name} has {len(self._inputs)} inputs "
                f"({_describe_inputs(self.session.get_inputs())}); a tabular model must take one input of shape "
                "(batch, features). Export it with all features in one tensor"
            )
        (name,) = self._inputs
        _dtype(self._inputs[name].type, name)
        return [name]

    def _static_dim(self, axis: int) -> int | None:
        """The size of ``axis`` shared by every graph input when it is fixed in the graph, else None."""
        sizes = {_static(i.shape, axis) for i in self._inputs.values() if len(i.shape) > axis}
        return sizes.pop() if len(sizes) == 1 and None not in sizes else None

    def _batch(self, batch_size: int) -> int:
        return self._static_dim(0) or batch_size

    def _graph_classes(self, classes: Sequence[int | str] | None, width: int) -> tuple[int | str, ...] | None:
        """The graph's class values when they name the score columns (one per column), else None."""
        if not classes or self._label_output is None:
            return None
        return tuple(classes) if len(classes) == max(width, 2) else None

    def _label_names(self, labels: Sequence[str] | None, config: dict[str, Any], width: int) -> tuple[str, ...]:
        if labels:
            names, where = tuple(labels), "model.labels"
        elif self.classes:
            names, where = tuple(str(c) for c in self.classes), f"the class labels in {self.path.name}"
        elif config.get("id2label"):
            id2label = {int(k): str(v) for k, v in config["id2label"].items()}
            names, where = (
                tuple(id2label[k] for k in sorted(id2label)),
                f"id2label of {self._tokenizer_name}/config.json",
            )
        else:
            return tuple(str(i) for i in range(max(width, 2)))
        if len(names) != max(width, 2):
            raise BackendError(
                f"{where} names {len(names)} classes ({', '.join(names)}), but graph output {self._output!r} of "
                f"{self.path.name} gives {width} scores per row; give one label per output class, in order"
            )
        return names

    def _width(self) -> int:
        """Scores per row of the classification output: from its static shape, else from one probe run."""
        output = next(o for o in self.session.get_outputs() if o.name == self._output)
        if len(output.shape) > 2:
            raise BackendError(
                f"graph output {self._output!r} of {self.path.name} has shape {output.shape}; a classifier's "
                "output must be (batch, classes) logits or probabilities"
            )
        width = _static(output.shape, -1) if len(output.shape) >= 2 else (1 if len(output.shape) == 1 else None)
        if width is not None:
            return width
        if self.task in TEXT_TASKS:
            return int(self._run_texts(["a"], 1, self._classification_rows).shape[1])
        name = self._feeds[0]
        features = _static(self._inputs[name].shape, -1)
        if features is None:
            raise BackendError(
                f"cannot tell how many classes {self.path.name} predicts (output {self._output!r} and input "
                f"{name!r} have dynamic shapes); set model.labels to the class names, in order"
            )
        import numpy as np

        return int(self._run_tabular([np.zeros(features, dtype=np.float32)], 1).shape[1])

    def _width_mismatch(self, width: int) -> str:
        return (
            f"graph output {self._output!r} of {self.path.name} gave {width} scores per row, but the model has "
            f"{len(self.label_names)} labels ({', '.join(self.label_names)}); give one label per output class"
        )

    # -- LoadedModel ------------------------------------------------------------------------------

    def artifact_files(self) -> list[Path]:
        """The .onnx file, its external data files and (for a local tokenizer) the tokenizer folder's files."""
        files = [self.path, *self._external_files]
        if self._tokenizer_folder is not None:
            files += sorted(
                p for p in self._tokenizer_folder.iterdir() if p.is_file() and p.suffix.lower() not in _WEIGHT_SUFFIXES
            )
        return list(dict.fromkeys(f.resolve() for f in files))

    def close(self) -> None:
        """Drop the session(s) and the tokenizer."""
        self.session = None
        self._pinned_sessions.clear()
        self._tokenizer = None
