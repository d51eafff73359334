"""The loaded torch model: ``TorchModel`` runs feature rows through the module, names its classes, exports ONNX."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.errors import BackendError
from modelcheck.models.backends import InputRowError, Outputs, check_predict
from modelcheck.models.hardware import per_call_threads, torch_threads
from modelcheck_torch._common import _describe, _detail
from modelcheck_torch._network import _input_width, _labels_of, _tensor_of

if TYPE_CHECKING:
    import numpy as np


class TorchModel:
    """A loaded torch module (implements ``modelcheck.models.backends.LoadedModel``).

    ``label_names`` (classification) is resolved once, on first access (``TorchBackend.load`` does
    it): the gate's ``model.labels``, else the module's ``id2label`` or ``classes_`` attribute, else
    ``"0"``, ``"1"``, ... for each column of the logits. The class count and the check that the labels
    match the logits' width come from one forward pass of an all-zeros row, whose width is read from
    the first ``Linear``/``BatchNorm1d``/``LayerNorm`` layer or the exported program's input shape.
    ``predict`` checks the width again on every batch.
    """

    def __init__(
        self,
        network: Any,
        *,
        task: str,
        device: str,
        dtype: Any,
        files: list[Path],
        source: str,
        threads: int | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        self._network: Any = network
        self.task = task
        self.device = device
        self.dtype = dtype
        self.source = source
        self.threads = threads
        self._files = files
        self._given_labels = tuple(labels) if labels else None
        self._label_names: tuple[str, ...] | None = None if task == "tabular-classification" else ()

    def __repr__(self) -> str:
        return f"TorchModel({self.source!r}, task={self.task!r}, device={self.device!r})"

    @property
    def label_names(self) -> tuple[str, ...]:
        """Class names by class id (empty for regression); see the class docstring for where they come from."""
        if self._label_names is None:
            self._label_names = self._resolve_labels()
        return self._label_names

    def predict(self, inputs: Sequence[Any], *, batch_size: int) -> Outputs:
        """Run the module over ``inputs`` (1-D numeric arrays, one per row) in batches of ``batch_size``.

        Classification: ``labels`` (argmax of the logits) and ``scores`` (softmax); regression:
        ``values`` from outputs of shape (batch,) or (batch, 1).
        """
        import numpy as np

        check_predict(self.source, loaded=self._network is not None, batch_size=batch_size)
        network = self._network
        matrix = _stack(inputs)
        names = self.label_names  # resolved before the first batch, so every batch is checked against it
        chunks: list[np.ndarray] = []
        with torch_threads(self.threads):
            for start in range(0, len(matrix), batch_size):
                chunks.append(self._forward(network, matrix[start : start + batch_size]))
        if self.task == "tabular-regression":
            values = np.concatenate(chunks) if chunks else np.empty(0)
            return Outputs(values=values.astype(np.float64))
        scores = np.concatenate(chunks) if chunks else np.empty((0, len(names)), dtype=np.float32)
        return Outputs(labels=scores.argmax(axis=1).astype(np.int64), scores=scores)

    def pinned_threads(self, threads: int) -> AbstractContextManager[dict[str, int]]:
        """torch runs this model's predict calls on ``threads`` intra-op threads for the block."""
        return per_call_threads(self, threads)

    def artifact_files(self) -> list[Path]:
        """The model file(s) and weights, and the source file of the module that defines the callable."""
        return list(self._files)

    def export_onnx(self, path: Path) -> Path:
        """Write the module as ONNX to ``path``: one float input ``input`` (batch, features), dynamic batch.

        The output is ``logits`` (classification) or ``values`` (regression). The feature count comes from
        the module (see the class docstring); a forward the tracer cannot record faithfully (branches on
        tensor values, numpy) or an operator ONNX lacks raises BackendError with the exporter's reason.
        """
        import torch

        from modelcheck.models.export import torch_to_onnx

        network = self._live()
        features = _input_width(network)
        if features is None:
            raise BackendError(
                f"cannot export model {self.source} to ONNX: its feature count is unknown (no first Linear, "
                "BatchNorm1d or LayerNorm layer, nor an exported input shape) to build the sample input from"
            )

        class Wrapper(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.network = network  # a submodule, so the exporter sees its parameters

            def train(self, mode: bool = True) -> Wrapper:  # the module stays in eval mode (.eval() of an
                self.training = mode  # exported program raises), whatever mode the exporter asks for
                return self

            def forward(self, x: Any) -> Any:
                return _tensor_of(self.network(x))

        output = "values" if self.task == "tabular-regression" else "logits"
        sample = torch.zeros(2, features, device=self.device, dtype=self.dtype)
        return torch_to_onnx(
            Wrapper(),
            (sample,),
            Path(path),
            inputs=["input"],
            outputs=[output],
            dynamic_axes={"input": {0: "batch"}, output: {0: "batch"}},
            what=f"the {self.task} model {self.source}",
        )

    def close(self) -> None:
        """Drop the module and give its memory back."""
        self._network = None
        if self.device.startswith("cuda"):  # CUDA memory comes back only once nothing refers to it
            import torch

            gc.collect()
            torch.cuda.empty_cache()

    # -- internals --------------------------------------------------------------------------------

    def _live(self) -> Any:
        if self._network is None:
            raise BackendError(f"model {self.source} was closed; load it again to predict")
        return self._network

    def _forward(self, network: Any, rows: np.ndarray) -> np.ndarray:
        """One batch: scores (batch, classes) for classification, values (batch,) for regression."""
        import torch

        batch = torch.from_numpy(rows).to(device=self.device, dtype=self.dtype)
        with torch.inference_mode():
            try:
                output = _tensor_of(network(batch))
            except BackendError:
                raise
            except Exception as exc:
                raise BackendError(
                    f"model {self.source} failed on a batch of shape {tuple(batch.shape)} "
                    f"(rows, features): {_detail(exc)}; check that data.input lists the features the model "
                    "was trained on, in that order"
                ) from None
            output = output.float()
            if self.task == "tabular-regression":
                if output.dim() == 2 and output.shape[1] == 1:
                    output = output[:, 0]
                if output.dim() != 1 or output.shape[0] != batch.shape[0]:
                    raise BackendError(
                        f"tabular-regression needs one value per row, shape ({batch.shape[0]},) or "
                        f"({batch.shape[0]}, 1); model {self.source} returned shape {tuple(output.shape)}"
                    )
                values: np.ndarray = output.cpu().numpy()
                return values
            self._check_logits(output, batch.shape[0])
            scores: np.ndarray = output.softmax(dim=-1).cpu().numpy()
            return scores

    def _check_logits(self, logits: Any, rows: int) -> None:
        if logits.dim() != 2 or logits.shape[0] != rows:
            raise BackendError(
                f"tabular-classification needs logits of shape (rows, classes); model {self.source} returned "
                f"shape {tuple(logits.shape)} for {rows} rows"
            )
        width = int(logits.shape[1])
        if self._label_names is not None and width != len(self._label_names):
            raise BackendError(_label_mismatch(self._label_names, width, self._label_origin(), self.source))

    def _label_origin(self) -> str:
        if self._given_labels is not None:
            return "model.labels in the gate"
        return "the model's id2label/classes_ attribute"

    def _resolve_labels(self) -> tuple[str, ...]:
        network = self._live()
        names = self._given_labels or _labels_of(network)
        width = self._probe_width(network)
        if names is not None:
            if width is not None and width != len(names):
                raise BackendError(_label_mismatch(names, width, self._label_origin(), self.source))
            return names
        if width is None:
            raise BackendError(
                f"cannot tell how many classes model {self.source} has: it has no id2label or classes_ "
                "attribute, and no all-zeros row (its width read from a first Linear, BatchNorm1d or LayerNorm "
                "layer) gave logits of shape (1, classes); give the class names in the gate as "
                "model.labels: [name0, name1, ...]"
            )
        return tuple(str(i) for i in range(width))

    def _probe_width(self, network: Any) -> int | None:
        """The logits' width for one all-zeros row, or None where the feature count is unknown."""
        import torch

        features = _input_width(network)
        if features is None:
            return None
        with torch.inference_mode():
            try:
                output = _tensor_of(network(torch.zeros(1, features, device=self.device, dtype=self.dtype)))
            except Exception:  # the guess of the feature count was wrong: predict checks on real data
                return None
        return int(output.shape[1]) if output.dim() == 2 else None


def _stack(inputs: Sequence[Any]) -> np.ndarray:
    """The rows as one C-contiguous float32 matrix; DataError names the first row that does not fit."""
    import numpy as np

    if isinstance(inputs, np.ndarray) and inputs.ndim == 2 and np.issubdtype(inputs.dtype, np.number):
        return np.ascontiguousarray(inputs, dtype=np.float32)  # a gate's feature matrix: no per-row work
    rows = list(inputs)
    if not rows:
        return np.empty((0, 0), dtype=np.float32)
    width = None
    for index, row in enumerate(rows):
        array = np.asarray(row)
        if array.ndim != 1 or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise InputRowError(
                index,
                "the input at ",
                f" is {_describe(row)}; tabular inputs must be 1-D numeric arrays "
                "(one value per feature column in data.input)",
            )
        if width is None:
            width = array.shape[0]
        elif array.shape[0] != width:
            raise InputRowError(index, "the input at ", f" has {array.shape[0]} features, the first row has {width}")
    return np.ascontiguousarray(np.stack(rows).astype(np.float32, copy=False))


def _label_mismatch(names: Sequence[str], width: int, origin: str, source: str) -> str:
    return (
        f"{len(names)} labels ({', '.join(names)}) from {origin}, but model {source} outputs {width} logits "
        f"per row; give exactly {width} names in model.labels"
    )
