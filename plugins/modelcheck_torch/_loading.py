"""Loading: which kind of model.source a gate names, importing a ``module:callable``, the files a model comes from."""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.errors import ModelLoadError
from modelcheck_torch._checkpoints import (
    _CHECKPOINT_SUFFIXES,
    _build,
    _existing,
    _load_checkpoint,
    _load_exported,
    _load_weights,
    _weights_path,
)
from modelcheck_torch._common import _describe, _detail, _is_module

if TYPE_CHECKING:
    from modelcheck.gatefile import ModelSpec


SOURCE_KINDS = (
    '"package.module:callable" returning a torch.nn.Module (optionally with weights: a .safetensors, .pt or .pth file)',
    "a .pt2 file written by torch.export.save",
    "a .pt/.pth file holding a whole module saved with torch.save(model) (needs allow_pickle: true)",
)


_CALLABLE = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<attr>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$")


def _load_network(model: ModelSpec, device: str) -> tuple[Any, list[Path], bool]:
    """The module, the files it came from, and whether it is a ``torch.export`` program."""
    match = None if model.is_local else _CALLABLE.match(model.source)
    if match is not None:
        factory, files = _import_callable(match["module"], match["attr"])
        network = None
        if model.weights is not None:
            weights = _weights_path(model.weights)
            files.insert(0, weights)
            network = _load_weights(model, factory, weights, device)
        if network is None:
            network = _build(model, factory)
        files += [f for f in _class_file(network) if f not in files]
        return network, files, False

    path = Path(model.source)
    if model.weights is not None and model.is_local and path.suffix.lower() in (".pt2", *_CHECKPOINT_SUFFIXES):
        raise ModelLoadError(
            f'model.weights ({model.weights}) is only used with a "module:callable" source; {path.name} '
            "already holds the weights: remove weights from the gate"
        )
    if model.is_local and path.suffix.lower() == ".pt2":
        return _load_exported(_existing(path, "model.source")), [path], True
    if model.is_local and path.suffix.lower() in _CHECKPOINT_SUFFIXES:
        checkpoint = _load_checkpoint(_existing(path, "model.source"), model.allow_pickle, device, role="model.source")
        if not _is_module(checkpoint):
            raise ModelLoadError(
                f"{path} (model.source) holds {_describe(checkpoint)}, not a whole module; for a state dict "
                'use source: "package.module:callable" (a function that builds the module) with '
                f"weights: {path.name}"
            )
        return checkpoint, [path, *_class_file(checkpoint)], False
    raise ModelLoadError(_unsupported_source(model))


def _unsupported_source(model: ModelSpec) -> str:
    path = Path(model.source)
    if model.is_local and path.is_dir():
        what = "is a folder"
    elif model.is_local and path.suffix.lower() == ".safetensors":
        what = f'holds only weights: use source: "package.module:callable" with weights: {path.name}'
    elif model.is_local and path.suffix:
        what = f"has suffix {path.suffix!r}"
    elif ":" in model.source:
        what = 'is not a valid "package.module:callable" reference'
    else:
        what = 'is neither a file nor a "module:callable" reference'
    kinds = "; ".join(SOURCE_KINDS)
    return f"the torch backend cannot load model.source {model.source!r}: it {what}. Supported sources: {kinds}"


def _import_callable(module_name: str, attr: str) -> tuple[Callable[[], Any], list[Path]]:
    """The callable named by ``module:attr``, and the source files of that module and of the callable's own."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise ModelLoadError(
                f'cannot import module {module_name!r} of model.source "{module_name}:{attr}" (no module named '
                f"{exc.name!r}); make it importable: install its package, or add its folder to sys.path "
                "(pytest ini option pythonpath = .)"
            ) from None
        raise ModelLoadError(
            f'importing module {module_name!r} of model.source "{module_name}:{attr}" failed: {_detail(exc)}'
        ) from None
    except Exception as exc:
        raise ModelLoadError(
            f'importing module {module_name!r} of model.source "{module_name}:{attr}" failed: {_detail(exc)}'
        ) from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            public = [n for n in dir(target) if not n.startswith("_")]
            near = difflib.get_close_matches(part, public, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ModelLoadError(
                f"module {module_name!r} ({getattr(module, '__file__', None) or 'no file'}) has no attribute "
                f'{attr!r} (model.source "{module_name}:{attr}"){hint}'
            )
        target = getattr(target, part)
    if not callable(target):
        raise ModelLoadError(
            f"{module_name}:{attr} (model.source) is a {type(target).__name__}, not a callable; point it at a "
            "function or class that returns a torch.nn.Module"
        )
    files = [f for f in (_source_file(module), _source_file(target)) if f is not None]
    return target, list(dict.fromkeys(files))


def _source_file(obj: Any) -> Path | None:
    try:
        found = inspect.getsourcefile(obj)
    except TypeError:  # builtins, C extensions, functools.partial
        return None
    return Path(found).resolve() if found is not None and Path(found).is_file() else None


def _class_file(network: Any) -> list[Path]:
    """The source file of the module's class, unless it is torch's own (hashed with the model)."""
    import torch

    found = _source_file(type(network))
    torch_root = Path(torch.__file__).resolve().parent
    return [] if found is None or found.is_relative_to(torch_root) else [found]
