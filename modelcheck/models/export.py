"""ONNX export of a loaded model, once per set of model files (cached by their sha256).

A backend's loaded model exports itself with an optional ``export_onnx(path) -> Path`` method (the
transformers backend for text-classification, feature-extraction and the language tasks it reads with
the onnx backend (multi-label-classification, token-classification, question-answering), the torch backend for tabular
models); the export lands in a folder that ``backend: onnx, source: <folder>/model.onnx,
tokenizer: <folder>`` loads.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.errors import BackendError

if TYPE_CHECKING:
    from modelcheck.models.backends import LoadedModel

log = logging.getLogger(__name__)

FILENAME = "model.onnx"
OPSET = 18
#: Longest exporter reason quoted in an error.
MAX_REASON = 200


def export_onnx(model: LoadedModel, out_dir: Path) -> Path:
    """Export ``model`` to ``out_dir/model.onnx`` (plus tokenizer files for text models); the .onnx path."""
    method = getattr(model, "export_onnx", None)
    if not callable(method):
        raise BackendError(
            f"{type(model).__name__} ({getattr(model, 'source', model)!r}) cannot be exported to ONNX: its backend "
            "has no export_onnx; the transformers backend (text and language tasks) and the torch "
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
) -> Path:
    """``torch.onnx.export`` with the current (``torch.export``-based) exporter of an ``.eval()`` module to ``path``.

    ``dynamic_axes`` (input or output name -> axis -> name) become ``torch.export`` dynamic shapes of the
    inputs. Weights stay inside the one file unless the model is too large for a single protobuf (then
    ``model.onnx.data`` beside it). Warnings reach the caller's filters, except the exporter's own progress
    chatter, which goes to the ``modelcheck`` logger at debug level. A forward that depends on tensor values
    in Python (a branch, ``.item()``, numpy) cannot be captured and raises BackendError saying so. Other
    failures raise BackendError with the exporter's reason.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dynamic = torch.export.Dim.DYNAMIC
    shapes: tuple[Any, ...] = tuple(
        {axis: dynamic for axis in dynamic_axes.get(input_name, {})} for input_name in inputs
    )
    parameters = inspect.signature(module.forward).parameters.values()
    if any(parameter.kind is inspect.Parameter.VAR_POSITIONAL for parameter in parameters):
        shapes = (shapes,)  # forward(*tensors): the inputs are one group
    size = sum(p.numel() * p.element_size() for p in module.parameters()) + sum(
        b.numel() * b.element_size() for b in module.buffers()
    )
    started = time.perf_counter()
    try:
        with _exporter_chatter_to_debug():
            torch.onnx.export(
                module.eval(),
                args,
                str(path),
                dynamo=True,
                opset_version=OPSET,
                input_names=inputs,
                output_names=outputs,
                dynamic_shapes=shapes,
                external_data=size > _EXTERNAL_DATA_BYTES,
                verbose=False,
            )
    except BackendError:
        _remove(path)
        raise
    except Exception as exc:  # the exporter raises TorchExportError, ConversionError, UserError, TypeError, ...
        _remove(path)
        reason = _data_dependent(exc)
        if reason is not None:
            raise BackendError(
                f"torch cannot export {what} to ONNX faithfully ({shorten(reason)}): its forward depends on tensor "
                "values in Python (a branch, .item(), numpy), which an export cannot follow for every input; "
                "rewrite it with torch operations only"
            ) from None
        raise BackendError(f"torch cannot export {what} to ONNX ({shorten(_root_reason(exc))})") from None
    log.info("exported %s to %s in %.1f s", what, path, time.perf_counter() - started)
    return path


#: Weights above this size go to an external data file (a protobuf holds at most 2 GiB).
_EXTERNAL_DATA_BYTES = 1 << 30
_DATA_DEPENDENT = ("data-dependent", "data dependent", "GuardOnDataDependentSymNode", "numpy", "NumPy",
                   "Python boolean", ".item()", "unbacked")  # fmt: skip


def _root_reason(exc: BaseException) -> BaseException:
    """The innermost cause: the exporter wraps torch.export's error in its own."""
    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    return exc


def _data_dependent(exc: BaseException) -> BaseException | None:
    """The error torch.export raised for a forward that depends on tensor values, else None."""
    chain: list[BaseException] = [exc]
    while chain[-1].__cause__ is not None and chain[-1].__cause__ not in chain:
        chain.append(chain[-1].__cause__)
    for error in reversed(chain):
        if any(marker in str(error) for marker in _DATA_DEPENDENT):
            return error
    return None


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".data").unlink(missing_ok=True)


#: torch's own exporter trips torch's own deprecation (torch 2.13, torch.utils._pytree): not the user's to fix.
_TORCH_INTERNAL_WARNINGS = (r"`isinstance\(treespec, LeafSpec\)` is deprecated",)
#: torch.onnx logs a warning per torchvision operator it skips when torchvision is absent.
_REGISTRATION_LOGGER = "torch.onnx._internal.exporter._registration"


class _ToDebug(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        log.debug("torch.onnx: %s", record.getMessage())
        return False


@contextlib.contextmanager
def _exporter_chatter_to_debug() -> Iterator[None]:
    """The exporter's progress lines (``[torch.onnx] Obtain model graph ... ✅``) and its registration notes go to
    the debug log; torch's warnings about its own internals are ignored; every other warning reaches the caller."""
    buffer = io.StringIO()
    registration = logging.getLogger(_REGISTRATION_LOGGER)
    quiet = _ToDebug()
    registration.addFilter(quiet)
    try:
        with contextlib.redirect_stdout(buffer), warnings.catch_warnings():
            for message in _TORCH_INTERNAL_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=FutureWarning)
            yield
    finally:
        registration.removeFilter(quiet)
        for line in buffer.getvalue().splitlines():
            log.debug("%s", line)


def shorten(reason: object, limit: int = MAX_REASON) -> str:
    """The first line of an error or warning message, at most ``limit`` characters."""
    text = str(reason).strip()
    line = text.splitlines()[0].strip() if text else type(reason).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."
