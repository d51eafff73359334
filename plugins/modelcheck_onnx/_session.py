"""Session options and devices: the execution providers a gate asks for, the session, the device it runs on."""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.errors import DeviceUnavailableError, ModelLoadError
from modelcheck.models.hardware import DEVICE_PATTERN
from modelcheck.models.threads import idle_cores
from modelcheck_onnx._common import _short

if TYPE_CHECKING:
    from modelcheck.gatefile import ModelSpec


#: ``model.graph_optimization`` -> the name of the ``onnxruntime.GraphOptimizationLevel`` member.
GRAPH_OPTIMIZATION = {
    "disabled": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


CPU = "CPUExecutionProvider"


CUDA = "CUDAExecutionProvider"


#: Execution providers that run on an NVIDIA GPU chosen by ``device_id``.
_GPU_PROVIDERS = (CUDA, "TensorrtExecutionProvider", "NvTensorRTRTXExecutionProvider")


def select_providers(model: ModelSpec, available: Sequence[str]) -> list[str | tuple[str, dict[str, Any]]]:
    """The execution providers for ``model``: ``model.providers`` if given, else chosen by ``model.device``.

    ``auto``: CUDA when onnxruntime has it, then CPU; ``cpu``: CPU; ``cuda``/``cuda:N``: CUDA on GPU N
    (DeviceUnavailableError without it). GPU providers get ``device_id`` N.
    """
    device = model.device.strip().lower()
    if not DEVICE_PATTERN.match(device):
        raise DeviceUnavailableError(f"device {model.device!r} is not a device name; use auto, cpu, cuda or cuda:N")
    device_id = int(device.partition(":")[2] or 0)
    if model.providers:
        unknown = [p for p in model.providers if p not in available]
        if unknown:
            near = difflib.get_close_matches(unknown[0], list(available), n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise ModelLoadError(
                f"execution provider {unknown[0]!r} (model.providers) is not available in this onnxruntime "
                f"build; {hint}available: {', '.join(available)}. Install the onnxruntime package that has it "
                "(e.g. onnxruntime-gpu for CUDAExecutionProvider), or leave model.providers out"
            )
        names: list[str] = list(model.providers)
    elif device == "cpu":
        names = [CPU]
    elif device.startswith("cuda"):
        if CUDA not in available:
            raise DeviceUnavailableError(
                f"device {model.device!r} needs onnxruntime's CUDAExecutionProvider, which this onnxruntime "
                f"build lacks (available: {', '.join(available)}); install onnxruntime-gpu, or use device: "
                "auto or cpu"
            )
        names = [CUDA, CPU]
    elif device == "mps":
        raise DeviceUnavailableError(
            "the onnx backend does not run on device 'mps'; use device: cpu, or model.providers: "
            "[CoreMLExecutionProvider, CPUExecutionProvider] where onnxruntime has CoreML"
        )
    else:
        names = [CUDA, CPU] if CUDA in available else [CPU]
    return [(name, {"device_id": device_id}) if name in _GPU_PROVIDERS else name for name in names]


def _create_session(
    ort: Any, path: Path, model: ModelSpec, providers: list[Any], *, graph_bytes: bytes | None = None
) -> Any:
    """An InferenceSession of ``path`` (or of ``graph_bytes``, the same graph rewritten, where given)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: ORT's warnings (e.g. node placement) would clutter gate runs
    # Unset: the cores other work leaves free now, not ORT's one spinning thread per core (modelcheck.models.threads).
    options.intra_op_num_threads = model.threads if model.threads is not None else idle_cores()
    options.inter_op_num_threads = 1
    if model.graph_optimization is not None:
        level = GRAPH_OPTIMIZATION.get(model.graph_optimization)
        if level is None:
            raise ModelLoadError(
                f"graph_optimization {model.graph_optimization!r} is not a level; use one of "
                f"{', '.join(GRAPH_OPTIMIZATION)}"
            )
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    try:
        with warnings.catch_warnings():  # a provider ORT cannot start: it falls back, which _device_of reports
            warnings.filterwarnings("ignore", message="Specified provider", category=UserWarning)
            source = graph_bytes if graph_bytes is not None else str(path)
            return ort.InferenceSession(source, sess_options=options, providers=providers)
    except Exception as exc:  # InvalidProtobuf, Fail, NoSuchFile, ... all derive from Exception only
        raise ModelLoadError(
            f"cannot load {path} (model.source) with ONNX Runtime: {_short(exc)}. model.source must be an ONNX "
            "model file (e.g. written by torch.onnx.export), with its external data files beside it"
        ) from None


def _device_of(session: Any) -> str:
    """The device the session actually runs on: its first provider (ORT drops the ones it cannot start)."""
    first = session.get_providers()[0]
    if first in _GPU_PROVIDERS:
        options = session.get_provider_options().get(first, {})
        return f"cuda:{options.get('device_id', 0)}"
    if first == CPU:
        return "cpu"
    if first == "CoreMLExecutionProvider":
        return "mps"
    return str(first).removesuffix("ExecutionProvider").lower()
