"""Weights and checkpoints: safetensors, torch.load (weights-only unless allow_pickle), state dicts, torch.export."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.errors import ModelLoadError
from modelcheck_torch._common import _describe, _detail, _few, _first_lines, _is_module

if TYPE_CHECKING:
    from modelcheck.gatefile import ModelSpec


_CHECKPOINT_SUFFIXES = (".pt", ".pth")


_WEIGHTS_SUFFIXES = (".safetensors", *_CHECKPOINT_SUFFIXES)


#: Keys under which training loops commonly nest the state dict in a checkpoint.
_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")


_SIZE_MISMATCH = re.compile(
    r"size mismatch for ([\w.]+): copying a param with shape torch\.Size\((\[[\d, ]*\])\) from checkpoint, "
    r"the shape in current model is torch\.Size\((\[[\d, ]*\])\)"
)


def _build(model: ModelSpec, factory: Callable[[], Any]) -> Any:
    try:
        network = factory()
    except Exception as exc:
        raise ModelLoadError(f"calling {model.source} (model.source) failed: {_detail(exc)}") from None
    if not _is_module(network):
        raise ModelLoadError(
            f"{model.source} (model.source) returned {_describe(network)}, not a torch.nn.Module; "
            "make the callable return the module (e.g. return MyNet(...))"
        )
    return network


def _weights_path(weights: str) -> Path:
    path = Path(weights)
    if path.suffix.lower() not in _WEIGHTS_SUFFIXES:
        raise ModelLoadError(
            f"model.weights {weights!r} has suffix {path.suffix!r}; the torch backend reads weights from "
            f"{', '.join(_WEIGHTS_SUFFIXES)} files (safetensors preferred: it cannot run code)"
        )
    return _existing(path, "model.weights")


def _load_weights(model: ModelSpec, factory: Callable[[], Any], path: Path, device: str) -> Any:
    """The module with ``path`` loaded into it, or the pickled module ``path`` holds (allow_pickle)."""
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            state: Any = load_file(str(path), device="cpu")
        except Exception as exc:
            raise ModelLoadError(f"cannot read safetensors file {path} (model.weights): {_detail(exc)}") from None
    else:
        state = _load_checkpoint(path, model.allow_pickle, device, role="model.weights")
        if _is_module(state):
            return state  # a whole pickled module, accepted as the model itself (allow_pickle was given)
        state = _state_dict_of(state, path)
    network = _build(model, factory)
    try:
        result = network.load_state_dict(state, strict=False)
    except Exception as exc:  # shape mismatches raise RuntimeError
        raise ModelLoadError(
            f"cannot load {path.name} (model.weights) into the module built by {model.source}: "
            f"{_shape_mismatches(exc)}; point weights at the checkpoint of this architecture"
        ) from None
    problems = []
    if result.missing_keys:
        problems.append(f"missing keys: {_few(result.missing_keys)}")
    if result.unexpected_keys:
        problems.append(f"unexpected keys: {_few(result.unexpected_keys)}")
    if problems:
        raise ModelLoadError(
            f"{path.name} (model.weights) does not match the module built by {model.source} "
            f"({'; '.join(problems)}); point weights at the checkpoint of this architecture"
        )
    return network


def _load_checkpoint(path: Path, allow_pickle: bool, device: str, *, role: str) -> Any:
    """``torch.load`` with ``weights_only=True``, or fully unpickled where the gate allows it."""
    import torch

    location = device if device.startswith("cuda") else "cpu"
    if allow_pickle:
        try:
            return torch.load(path, weights_only=False, map_location=location)
        except Exception as exc:
            raise ModelLoadError(f"cannot load {path} ({role}) with torch.load: {_detail(exc)}") from None
    try:
        return torch.load(path, weights_only=True, map_location=location)
    except Exception as exc:
        needs = _unsafe_globals(path)
        if needs is None:
            raise ModelLoadError(
                f"cannot load {path} ({role}): it is not a checkpoint written by torch.save ({_first_lines(exc, 1)})"
            ) from None
        raise ModelLoadError(
            f"refusing to unpickle {path} ({role}): it needs full unpickling (it references "
            f"{_few(needs) or 'objects outside the weights-only allowlist'}), and unpickling a file can run "
            "arbitrary code. If you trust the file, set allow_pickle: true in the gate's model section; "
            "better, save a state dict (safetensors) and load it into the module built by a "
            '"module:callable" source'
        ) from None


def _unsafe_globals(path: Path) -> list[str] | None:
    """The globals a checkpoint needs beyond the weights-only allowlist; None if it is no torch checkpoint."""
    import torch

    finder = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    if finder is None:
        return []
    try:
        found: list[str] = finder(str(path))
    except Exception:
        return None
    return found


def _state_dict_of(loaded: Any, path: Path) -> Mapping[str, Any]:
    import torch

    if isinstance(loaded, Mapping):
        if loaded and all(isinstance(v, torch.Tensor) for v in loaded.values()):
            return loaded
        for key in _STATE_DICT_KEYS:
            nested = loaded.get(key)
            if isinstance(nested, Mapping) and all(isinstance(v, torch.Tensor) for v in nested.values()):
                return nested
        keys = ", ".join(repr(k) for k in list(loaded)[:8])
        raise ModelLoadError(
            f"{path} (model.weights) holds a dict that is not a state dict (keys: {keys}); save "
            f"model.state_dict() itself, or nest it under one of {', '.join(_STATE_DICT_KEYS)}"
        )
    raise ModelLoadError(f"{path} (model.weights) holds {_describe(loaded)}, not a state dict or a module")


def _load_exported(path: Path) -> Any:
    import torch

    try:
        return torch.export.load(str(path)).module()
    except Exception as exc:
        raise ModelLoadError(
            f"cannot load {path} (model.source) as a torch.export program: {_detail(exc)}; write it with "
            "torch.export.save(torch.export.export(model, example_inputs), path)"
        ) from None


def _existing(path: Path, role: str) -> Path:
    if not path.exists():
        raise ModelLoadError(f"{role} file not found: {path}; build or download it there, or fix the path")
    if not path.is_file():
        raise ModelLoadError(f"{role} {path} is a folder; the torch backend expects a file")
    return path


def _shape_mismatches(exc: BaseException) -> str:
    """load_state_dict's size-mismatch error, shortened to ``name: checkpoint [13] vs module [10]`` items."""
    found = _SIZE_MISMATCH.findall(str(exc))
    if not found:
        return _first_lines(exc, 3)
    return "size mismatch for " + _few([f"{name}: checkpoint {ckpt} vs module {mine}" for name, ckpt, mine in found], 3)
