"""The torch backend's loaded model (``TorchModel``) and the helpers it loads and runs with."""

from __future__ import annotations

import difflib
import gc
import importlib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.errors import BackendError, DataError, ModelLoadError
from modelcheck.models.backends import Outputs, check_predict
from modelcheck.models.hardware import per_call_threads, torch_threads

if TYPE_CHECKING:
    import numpy as np

    from modelcheck.gatefile import ModelSpec


SOURCE_KINDS = (
    '"package.module:callable" returning a torch.nn.Module (optionally with weights: a .safetensors, .pt or .pth file)',
    "a .pt2 file written by torch.export.save",
    "a .pt/.pth file holding a whole module saved with torch.save(model) (needs allow_pickle: true)",
)
_CALLABLE = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<attr>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$")
_CHECKPOINT_SUFFIXES = (".pt", ".pth")
_WEIGHTS_SUFFIXES = (".safetensors", *_CHECKPOINT_SUFFIXES)
#: Keys under which training loops commonly nest the state dict in a checkpoint.
_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")
_SIZE_MISMATCH = re.compile(
    r"size mismatch for ([\w.]+): copying a param with shape torch\.Size\((\[[\d, ]*\])\) from checkpoint, "
    r"the shape in current model is torch\.Size\((\[[\d, ]*\])\)"
)


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
            strict_trace=True,
        )

    def close(self) -> None:
        """Drop the module and give its memory back."""
        self._network = None
        gc.collect()
        if self.device.startswith("cuda"):
            import torch

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


# -- loading --------------------------------------------------------------------------------------


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


# -- helpers --------------------------------------------------------------------------------------


def _is_module(value: object) -> bool:
    import torch

    return isinstance(value, torch.nn.Module)


def _parameter_dtype(network: Any, default: Any) -> Any:
    """The dtype inputs are cast to when the gate sets none: the module's first floating parameter's."""
    for tensor in (*network.parameters(), *network.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return default


def _input_width(network: Any) -> int | None:
    """The feature count the module takes, read from its exported input shape or its first feature layer."""
    import torch
    from torch import nn

    placeholders = [n for n in getattr(getattr(network, "graph", None), "nodes", ()) if n.op == "placeholder"]
    if isinstance(network, torch.fx.GraphModule) and len(placeholders) == 1:
        value = placeholders[0].meta.get("val")
        shape = getattr(value, "shape", None)
        if shape is not None and len(shape) == 2 and isinstance(shape[1], int):
            return int(shape[1])
    for layer in network.modules():
        if isinstance(layer, nn.Linear) and not isinstance(layer, nn.LazyLinear):
            return int(layer.in_features)
        if isinstance(layer, nn.BatchNorm1d) and not isinstance(layer, nn.LazyBatchNorm1d):
            return int(layer.num_features)
        if isinstance(layer, nn.LayerNorm) and len(layer.normalized_shape) == 1:
            return int(layer.normalized_shape[0])
    return None


def _labels_of(network: Any) -> tuple[str, ...] | None:
    """Class names from a module's ``id2label`` (dict or list) or ``classes_`` attribute."""
    id2label = getattr(network, "id2label", None)
    if isinstance(id2label, Mapping) and id2label:
        try:
            ordered = {int(k): str(v) for k, v in id2label.items()}
        except (TypeError, ValueError):
            return None
        return tuple(ordered[k] for k in sorted(ordered))
    for candidate in (id2label, getattr(network, "classes_", None)):
        if candidate is not None and not isinstance(candidate, (str, bytes, Mapping)):
            try:
                names = tuple(str(v) for v in candidate)
            except TypeError:
                continue
            if names:
                return names
    return None


def _tensor_of(output: Any) -> Any:
    """The logits/values tensor of a forward's result: a tensor, ``.logits``, ``["logits"]`` or the first item."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if isinstance(getattr(output, "logits", None), torch.Tensor):
        return output.logits
    if isinstance(output, Mapping) and isinstance(output.get("logits"), torch.Tensor):
        return output["logits"]
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise BackendError(
        f"the model returned {_describe(output)}; the torch backend needs a tensor (or a tuple/dict whose "
        "first item / 'logits' is one)"
    )


def _stack(inputs: Sequence[Any]) -> np.ndarray:
    """The rows as one C-contiguous float32 matrix; DataError names the first row that does not fit."""
    import numpy as np

    rows = list(inputs)
    if not rows:
        return np.empty((0, 0), dtype=np.float32)
    width = None
    for index, row in enumerate(rows):
        array = np.asarray(row)
        if array.ndim != 1 or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise DataError(
                f"input at row {index} is {_describe(row)}; tabular inputs must be 1-D numeric arrays "
                "(one value per feature column in data.input)"
            )
        if width is None:
            width = array.shape[0]
        elif array.shape[0] != width:
            raise DataError(f"input at row {index} has {array.shape[0]} features, row 0 has {width}")
    return np.ascontiguousarray(np.stack(rows).astype(np.float32, copy=False))


def _label_mismatch(names: Sequence[str], width: int, origin: str, source: str) -> str:
    return (
        f"{len(names)} labels ({', '.join(names)}) from {origin}, but model {source} outputs {width} logits "
        f"per row; give exactly {width} names in model.labels"
    )


def _shape_mismatches(exc: BaseException) -> str:
    """load_state_dict's size-mismatch error, shortened to ``name: checkpoint [13] vs module [10]`` items."""
    found = _SIZE_MISMATCH.findall(str(exc))
    if not found:
        return _first_lines(exc, 3)
    return "size mismatch for " + _few([f"{name}: checkpoint {ckpt} vs module {mine}" for name, ckpt, mine in found], 3)


def _describe(value: object) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"a {type(value).__name__} of shape {tuple(shape)}"
    text = repr(value)
    return f"a {type(value).__name__} ({text[:60]}{'...' if len(text) > 60 else ''})"


def _few(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return f"{shown} and {len(items) - limit} more" if len(items) > limit else shown


def _first_lines(exc: BaseException, count: int) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {' '.join(lines[:count])}" if lines else type(exc).__name__


def _detail(exc: BaseException) -> str:
    return _first_lines(exc, 1)
