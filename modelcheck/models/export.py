"""ONNX export of a loaded model, once per set of model files (cached by their sha256).

A backend's loaded model exports itself with an optional ``export_onnx(path) -> Path`` method (the
transformers backend for text-classification and feature-extraction, the torch backend for tabular
models); the export lands in a folder that ``backend: onnx, source: <folder>/model.onnx,
tokenizer: <folder>`` loads.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.errors import BackendError

if TYPE_CHECKING:
    from modelcheck.models.backends import LoadedModel

FILENAME = "model.onnx"
OPSET = 17
#: Longest exporter reason quoted in an error.
MAX_REASON = 200


def export_onnx(model: LoadedModel, out_dir: Path) -> Path:
    """Export ``model`` to ``out_dir/model.onnx`` (plus tokenizer files for text models); the .onnx path."""
    method = getattr(model, "export_onnx", None)
    if not callable(method):
        raise BackendError(
            f"{type(model).__name__} ({getattr(model, 'source', model)!r}) cannot be exported to ONNX: its backend "
            "has no export_onnx; the transformers backend (text-classification, feature-extraction) and the torch "
            "backend (tabular models) can export"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return Path(method(out_dir / FILENAME))


def cache_dir(root: Path | None = None) -> Path:
    """``root``, else ``$MODELCHECK_CACHE``, else ``~/.cache/modelcheck``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("MODELCHECK_CACHE", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "modelcheck"


def cache_key(artifact_sha256s: list[str]) -> str:
    """The sha256 of the sorted artifact hashes, one per line: the same files give the same key in any order."""
    return hashlib.sha256("\n".join(sorted(artifact_sha256s)).encode()).hexdigest()


def cached_export(model: LoadedModel, artifact_sha256s: list[str], cache_root: Path | None = None) -> Path:
    """``<cache>/onnx/<key>/model.onnx`` for the model with these artifact hashes, exported on first use.

    The export is written to a temporary folder beside it and renamed into place, so a crash or a
    failed export leaves nothing half-written, and a concurrent export of the same model is harmless.
    """
    if not artifact_sha256s:
        raise BackendError("cached_export needs the sha256 of the model's files to key the cache; none were given")
    parent = cache_dir(cache_root) / "onnx"
    folder = parent / cache_key(artifact_sha256s)
    if (folder / FILENAME).is_file():
        return folder / FILENAME
    parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{folder.name[:16]}-", suffix=".tmp", dir=parent))
    try:
        export_onnx(model, temporary)
        try:
            temporary.rename(folder)
        except OSError:  # another process finished the same export first
            if not (folder / FILENAME).is_file():
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return folder / FILENAME


def torch_to_onnx(
    module: Any,
    args: tuple[Any, ...],
    path: Path,
    *,
    inputs: list[str],
    outputs: list[str],
    dynamic_axes: dict[str, dict[int, str]],
    what: str,
    strict_trace: bool = False,
) -> Path:
    """``torch.onnx.export`` (TorchScript exporter, opset 17) of an ``.eval()`` module into one file at ``path``.

    The exporter's warnings are kept out of the caller's warning filters. ``strict_trace`` refuses an
    export the tracer warned about (a forward that branches on tensor values or leaves torch, e.g. through
    numpy, is recorded for the sample input only). Failures raise BackendError with the exporter's reason.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            torch.onnx.export(
                module.eval(),
                args,
                str(path),
                dynamo=False,
                opset_version=OPSET,
                input_names=inputs,
                output_names=outputs,
                dynamic_axes=dynamic_axes,
            )
        except BackendError:
            path.unlink(missing_ok=True)
            raise
        except Exception as exc:  # the exporter raises RuntimeError, UnsupportedOperatorError, TypeError, ...
            path.unlink(missing_ok=True)
            raise BackendError(f"torch cannot export {what} to ONNX ({shorten(exc)})") from None
    tracer = getattr(torch.jit, "TracerWarning", None)
    traced = [w for w in caught if tracer is not None and issubclass(w.category, tracer)]
    if strict_trace and traced:
        path.unlink(missing_ok=True)
        raise BackendError(
            f"torch cannot export {what} to ONNX faithfully ({shorten(traced[0].message)}): its forward depends "
            "on tensor values in Python (a branch, .item(), numpy), which the export would freeze for one input; "
            "rewrite it with torch operations only"
        )
    return path


def shorten(reason: object, limit: int = MAX_REASON) -> str:
    """The first line of an error or warning message, at most ``limit`` characters."""
    text = str(reason).strip()
    line = text.splitlines()[0].strip() if text else type(reason).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."
