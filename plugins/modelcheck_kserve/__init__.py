"""The ``kserve-v2`` backend: a model behind an Open Inference Protocol server (KServe v2).

Triton, KServe, Seldon MLServer and TorchServe's KServe mode speak it. Loading checks
``GET /v2/health/ready``, reads the server's metadata (``GET /v2``: name and version, for the
report) and the model's (``GET /v2/models/{model}[/versions/{version}]``: its input name and
datatype); each batch of rows is one ``POST .../infer`` with one typed tensor:

- ``tabular-classification`` / ``tabular-regression``: the feature rows as a ``[batch, features]``
  tensor (FP32 unless the model's metadata asks for FP64 or INT64);
- ``text-classification`` and ``feature-extraction``: the texts as a ``[batch]`` BYTES tensor (text pairs:
  the batch's first texts, then its second texts, in one tensor of ``2 x batch``).

Answers: a ``[batch, classes]`` float output is read as class scores, a ``[batch]`` or
``[batch, 1]`` output as class ids or names (classification) or values (regression), and for
feature-extraction the ``[batch, dim]`` float output as the embeddings. Class names come from
``model.labels`` (needed unless the metadata's output shape gives the class count).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.errors import ModelLoadError
from modelcheck.models.backends import Outputs, check_predict, require_task
from modelcheck.models.endpoint import Call, Endpoint
from modelcheck.models.requests import join_answered

if TYPE_CHECKING:
    import numpy as np

    from modelcheck.gatefile import ModelSpec
    from modelcheck.models.endpoint_load import EndpointLoad
    from modelcheck.models.requests import RequestTally

__all__ = ["SUPPORTED_TASKS", "KServeBackend", "KServeModel"]

SUPPORTED_TASKS = ("tabular-classification", "tabular-regression", "text-classification", "feature-extraction")
_NUMERIC = {"FP16": "float16", "FP32": "float32", "FP64": "float64", "INT8": "int8", "INT16": "int16",
            "INT32": "int32", "INT64": "int64", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32",
            "UINT64": "uint64", "BOOL": "bool"}  # fmt: skip


class KServeBackend:
    """Connects to an Open Inference Protocol server (see the module docstring)."""

    name = "kserve-v2"

    def load(self, model: ModelSpec) -> KServeModel:
        """Check the server is ready and read the model's metadata; EndpointError names the URL otherwise."""
        require_task(self.name, model, SUPPORTED_TASKS)
        endpoint = Endpoint(model, self.name)
        settings = endpoint.settings
        path = f"/v2/models/{settings.model}" + (f"/versions/{settings.version}" if settings.version else "")
        _, server, metadata = endpoint.send([Call("GET", "/v2/health/ready"), Call("GET", "/v2"), Call("GET", path)])
        if isinstance(server, dict):
            for key in ("name", "version"):
                if isinstance(server.get(key), str):
                    endpoint.server[f"oip_{key}"] = server[key][:200]
        return KServeModel(endpoint, model, path, metadata if isinstance(metadata, dict) else {})


class KServeModel:
    """A served model; ``predict`` sends ``ceil(rows / batch_size)`` infer requests, ``concurrency`` at once."""

    device = "remote"

    def __init__(self, endpoint: Endpoint, spec: ModelSpec, path: str, metadata: dict[str, Any]) -> None:
        self.endpoint = endpoint
        self.task = spec.task
        self.path = path
        inputs = metadata.get("inputs") if isinstance(metadata.get("inputs"), list) else []
        first = inputs[0] if inputs and isinstance(inputs[0], dict) else {}
        self.input_name = str(first.get("name") or "input-0")
        wanted = str(first.get("datatype") or "")
        if spec.task in ("text-classification", "feature-extraction"):
            self.datatype = "BYTES"
        else:
            self.datatype = wanted if wanted in ("FP32", "FP64", "INT64", "INT32") else "FP32"
        self.label_names: tuple[str, ...] = ()
        if spec.task.endswith("classification"):
            self.label_names = spec.labels or _classes_from(metadata)
            if not self.label_names:
                raise ModelLoadError(
                    f"the {spec.task} model {endpoint.settings.model!r} at {endpoint.url} does not say its classes "
                    "(its metadata has no [batch, classes] output): set model.labels to the class names, in order"
                )
        self._open = True
        self._pairs = False

    def endpoint_record(self) -> dict[str, Any]:
        """The report's ``model.endpoint`` (requests since the last call)."""
        return self.endpoint.record()

    def tolerating_failures(self) -> AbstractContextManager[RequestTally]:
        """Within: a request that fails for good marks its rows in ``Outputs.failed`` (counted in the tally)."""
        return self.endpoint.tolerating()

    def load_target(self, batch: Callable[[int], Sequence[Any]], batch_size: int) -> EndpointLoad:
        """A load test's requests: request ``i`` infers ``batch(i)``; its answer is checked as predict checks it."""
        from modelcheck.models.endpoint_load import EndpointLoad

        def call(i: int) -> Call:
            return Call("POST", f"{self.path}/infer", self._request(batch(i)))

        return EndpointLoad(self.endpoint, f"POST {self.path}/infer, {batch_size} row(s)", call,
                            read=lambda answer, i: self._outputs(answer, len(batch(i))))  # fmt: skip

    def predict(self, inputs: Sequence[Any], *, batch_size: int) -> Outputs:
        """One infer request per ``batch_size`` rows; the answers joined in input order."""
        import numpy as np

        check_predict(self.endpoint.url, loaded=self._open, batch_size=batch_size)
        batches = [inputs[i : i + batch_size] for i in range(0, len(inputs), batch_size)]
        answers = self.endpoint.send([Call("POST", f"{self.path}/infer", self._request(b)) for b in batches])
        parts = self.endpoint.decode(answers, lambda answer, i: self._outputs(answer, len(batches[i])))

        def empty(rows: int) -> Outputs:
            if self.task == "feature-extraction":
                return Outputs(embeddings=np.zeros((rows, 1), dtype=np.float32))
            if self.label_names:
                return Outputs(labels=np.zeros(rows, dtype=np.int64))
            return Outputs(values=np.zeros(rows, dtype=np.float64))

        if not parts:
            return empty(0)
        tolerating = self.endpoint.tally is not None
        return join_answered(parts, [len(b) for b in batches], tolerating=tolerating, fallback=empty)

    def _request(self, batch: Sequence[Any]) -> dict[str, Any]:
        import numpy as np

        if self.datatype == "BYTES":
            pairs = bool(batch) and isinstance(batch[0], tuple)
            self._pairs = pairs  # every batch of a run has the same shape: its answers are read alike
            texts = [str(a) for a, _ in batch] + [str(b) for _, b in batch] if pairs else [str(t) for t in batch]
            tensor = {"shape": [len(texts)], "data": texts}
        else:
            rows = np.asarray(np.stack([np.asarray(row).ravel() for row in batch]), dtype=_NUMERIC[self.datatype])
            tensor = {"shape": list(rows.shape), "data": rows.ravel().tolist()}
        return {"inputs": [{"name": self.input_name, "datatype": self.datatype, **tensor}]}

    def _outputs(self, answer: Any, rows: int) -> Outputs:
        import numpy as np

        tensors = answer.get("outputs") if isinstance(answer, dict) else None
        if not isinstance(tensors, list) or not tensors:
            raise self.endpoint.invalid("invalid_body", "the infer answer has no outputs list")
        if self.task == "feature-extraction":
            return self._embeddings(tensors, rows)
        scores, labels = None, None
        for tensor in tensors:
            array = self._array(tensor, rows)
            if array.ndim == 2 and array.shape[1] > 1 and array.dtype.kind == "f":
                scores = array if scores is None else scores
            elif labels is None:
                labels = array.reshape(rows)
        if not self.label_names:  # regression
            source = labels if labels is not None else scores
            if source is None or source.dtype.kind not in "fiu" or source.size != rows:
                raise self.endpoint.invalid("invalid_body", "the answer holds no [batch] or [batch, 1] numeric output")
            return Outputs(values=np.asarray(source, dtype=np.float64).reshape(rows))
        if scores is not None and scores.shape[1] != len(self.label_names):
            raise self.endpoint.invalid("invalid_body", f"the answer has {scores.shape[1]} class scores per row, "
                                        f"but model.labels names {len(self.label_names)} classes")  # fmt: skip
        if labels is not None:
            return Outputs(labels=self._label_ids(labels), scores=scores)
        assert scores is not None
        return Outputs(labels=scores.argmax(axis=1).astype(np.int64), scores=scores)

    def _embeddings(self, tensors: list[Any], rows: int) -> Outputs:
        """The first ``[n, dim]`` float output; with text pairs ``n`` is twice the rows (first texts, then second)."""
        pairs = self._pairs
        array = self._array(tensors[0], rows * 2 if pairs else rows)
        if array.ndim != 2 or array.dtype.kind != "f":
            raise self.endpoint.invalid("invalid_body", f"output {tensors[0].get('name')!r} is not a [batch, dim] "
                                        "float tensor of embeddings")  # fmt: skip
        if pairs:
            return Outputs(embeddings=array[:rows], pair_embeddings=array[rows:])
        return Outputs(embeddings=array)

    def _array(self, tensor: Any, rows: int) -> np.ndarray:
        import numpy as np

        if not isinstance(tensor, dict) or not isinstance(tensor.get("data"), list):
            raise self.endpoint.invalid("invalid_body", "an output tensor has no data list")
        shape = tensor.get("shape")
        data = tensor["data"]
        if not isinstance(shape, list) or not shape or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise self.endpoint.invalid("invalid_body", f"output {tensor.get('name')!r} has no valid shape")
        if shape[0] != rows:
            raise self.endpoint.invalid("missing_rows", f"output {tensor.get('name')!r} has {shape[0]} rows for "
                                        f"the {rows} rows sent")  # fmt: skip
        if len(data) != int(np.prod(shape)):
            raise self.endpoint.invalid("invalid_body", f"output {tensor.get('name')!r} holds {len(data)} values, "
                                        f"not the {int(np.prod(shape))} its shape {shape} says")  # fmt: skip
        dtype = _NUMERIC.get(str(tensor.get("datatype")), object)
        try:
            return np.asarray(data, dtype=dtype).reshape(shape)
        except (TypeError, ValueError) as exc:
            raise self.endpoint.invalid(
                "invalid_body", f"output {tensor.get('name')!r} is not {dtype}: {exc}"
            ) from None

    def _label_ids(self, labels: np.ndarray) -> np.ndarray:
        import numpy as np

        names = self.label_names
        if labels.dtype.kind in "iu" and (labels.size == 0 or (labels.min() >= 0 and labels.max() < len(names))):
            return labels.astype(np.int64)
        index = {name: i for i, name in enumerate(names)}
        ids = [index.get(str(value)) for value in labels.tolist()]
        if None in ids:
            bad = labels.tolist()[ids.index(None)]
            raise self.endpoint.invalid("invalid_body", f"the server predicted class {bad!r}, which is not one of "
                                        f"model.labels ({', '.join(names)})")  # fmt: skip
        return np.asarray(ids, dtype=np.int64)

    def artifact_files(self) -> list[Path]:
        """None: a served model's files are on the server, not hashed here (the report records the endpoint)."""
        return []

    def close(self) -> None:
        self._open = False


def _classes_from(metadata: dict[str, Any]) -> tuple[str, ...]:
    """Class ids ``0..C-1`` when the metadata has a ``[-1, C]`` output (C > 1); else none."""
    for output in metadata.get("outputs") or []:
        shape = output.get("shape") if isinstance(output, dict) else None
        if isinstance(shape, list) and len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 1:
            return tuple(str(i) for i in range(shape[1]))
    return ()
