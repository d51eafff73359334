"""The ``onnx`` backend: ``.onnx`` files run with ONNX Runtime.

Registered in the ``modelcheck.backends`` entry-point group as ``onnx``. onnxruntime, onnx and
transformers (for the tokenizer of text models) are imported only when a model is loaded, so
importing this package is cheap.

Tasks: ``text-classification`` and ``feature-extraction`` (texts tokenised by ``model.tokenizer``
and fed to the graph's inputs by name), ``tabular-classification`` and ``tabular-regression``
(the feature rows fed to the graph's single input).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from modelcheck.errors import DeviceUnavailableError, ModelLoadError
from modelcheck.models.backends import require_task
from modelcheck_onnx._common import SUPPORTED_TASKS, TEXT_TASKS, _import
from modelcheck_onnx._loading import (
    _check_model_file,
    _external_data_files,
    _graph_classes,
    _load_tokenizer,
    _read_graph,
    _unzipped,
)
from modelcheck_onnx._model import OnnxModel
from modelcheck_onnx._session import GRAPH_OPTIMIZATION, _create_session, _device_of, select_providers

if TYPE_CHECKING:
    from modelcheck.gatefile import ModelSpec

__all__ = ["GRAPH_OPTIMIZATION", "SUPPORTED_TASKS", "OnnxBackend", "OnnxModel", "graph_classes", "select_providers"]


def graph_classes(path: Path) -> tuple[int | str, ...] | None:
    """The class labels a converted classifier (skl2onnx's ``classlabels_*``) carries in the graph at ``path``."""
    return _graph_classes(_read_graph(path))


class OnnxBackend:
    """Loads ``.onnx`` files into an ``onnxruntime.InferenceSession``."""

    name = "onnx"
    #: What ``modelcheck init`` reads to find the label column of a converted classifier.
    graph_classes = staticmethod(graph_classes)

    def load(self, model: ModelSpec) -> OnnxModel:
        """Load ``model`` with the providers its spec asks for; raise ModelLoadError / BackendError with the fix."""
        require_task(self.name, model, SUPPORTED_TASKS)
        path = _check_model_file(model)
        ort = _import("onnxruntime")
        if model.task in TEXT_TASKS and not model.tokenizer:
            raise ModelLoadError(
                f"model {model.id!r} ({path.name}) is a {model.task} model: set model.tokenizer to the folder "
                "(or Hub id) of the tokenizer that makes its inputs, e.g. the folder the model was exported from"
            )
        graph = _read_graph(path)
        external = _external_data_files(path, graph)
        classes = _graph_classes(graph) if model.task == "tabular-classification" else None
        rewritten = _unzipped(graph, classes) if model.task == "tabular-classification" and not external else None
        del graph
        providers = select_providers(model, ort.get_available_providers())
        session = _create_session(ort, path, model, providers, graph_bytes=rewritten)
        device = _device_of(session)
        if model.device.strip().lower().startswith("cuda") and not device.startswith("cuda"):
            raise DeviceUnavailableError(
                f"device {model.device!r} was asked for, but ONNX Runtime runs {path.name} on "
                f"{', '.join(session.get_providers())} (CUDA could not be initialised: check the CUDA and cuDNN "
                "libraries that onnxruntime-gpu needs); use device: auto or cpu to run without a GPU"
            )
        tokenizer, folder = _load_tokenizer(model) if model.task in TEXT_TASKS else (None, None)
        return OnnxModel(
            session,
            path=path,
            task=model.task,
            device=device,
            tokenizer=tokenizer,
            tokenizer_folder=folder,
            labels=model.labels,
            graph_classes=classes,
            external_files=external,
            tokenizer_name=model.tokenizer,
            session_factory=lambda threads: _create_session(
                ort, path, replace(model, threads=threads), providers, graph_bytes=rewritten
            ),
        )
