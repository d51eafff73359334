"""The onnx backend's loaded model (``OnnxModel``) and the helpers it loads and runs with."""

from __future__ import annotations

import contextlib
import difflib
import gc
import json
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.errors import BackendError, DataError, DeviceUnavailableError, ModelLoadError
from modelcheck.models.backends import Outputs, check_predict
from modelcheck.models.hardware import DEVICE_PATTERN

if TYPE_CHECKING:
    import numpy as np

    from modelcheck.gatefile import ModelSpec


TEXT_TASKS = ("text-classification", "feature-extraction")
TABULAR_TASKS = ("tabular-classification", "tabular-regression")
SUPPORTED_TASKS = TEXT_TASKS + TABULAR_TASKS
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
#: ONNX element types -> numpy dtype names.
_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}
_FLOAT_TYPES = ("tensor(float)", "tensor(double)", "tensor(float16)")
#: Files in a tokenizer folder that are model weights, not tokenizer files (left out of the artifacts).
_WEIGHT_SUFFIXES = {".onnx", ".data", ".onnx_data", ".bin", ".safetensors", ".pt", ".pth", ".pt2", ".ckpt", ".h5"}
_MAX_REASON = 300


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
        config = _read_config(tokenizer_folder, tokenizer_name) if task in TEXT_TASKS else {}
        if task in TEXT_TASKS:
            self._feeds = self._check_text_inputs()
            self._max_length = _max_length(tokenizer, config, self._static_dim(1))
        else:
            self._feeds = self._check_tabular_inputs()
            self._max_length = 0
        self.label_names: tuple[str, ...] = ()
        if task in ("text-classification", "tabular-classification"):
            self.label_names = self._label_names(labels, config)

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
        rows = list(inputs)
        if self.task == "feature-extraction":
            return self._embed(rows, batch_size)
        if self.task == "text-classification":
            for row, text in enumerate(rows):
                if not isinstance(text, str):
                    raise DataError(_bad_text(row, text, self.task))
            raw = self._run_texts(rows, batch_size, self._classification_rows)
        else:
            raw = self._run_tabular(rows, batch_size)
        if self.task == "tabular-regression":
            return Outputs(values=self._values(raw))
        if not rows:
            return Outputs(labels=np.empty(0, dtype=np.int64), scores=np.zeros((0, len(self.label_names)), np.float32))
        scores = _probabilities(raw)
        if scores.shape[1] != len(self.label_names):
            raise BackendError(self._width_mismatch(scores.shape[1]))
        return Outputs(labels=scores.argmax(axis=1).astype(np.int64), scores=scores)

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
                raise DataError(_bad_text(row, value, self.task))
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

    def _run_tabular(self, rows: list[Any], batch_size: int) -> np.ndarray:
        import numpy as np

        name = self._feeds[0]
        declared = self._inputs[name]
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        try:
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
        results: np.ndarray | None = None
        for start in range(0, len(matrix), self._batch(batch_size)):
            chunk = matrix[start : start + self._batch(batch_size)]
            output = np.asarray(self._run({name: chunk}, len(chunk)), dtype=np.float32)
            output = output[:, None] if output.ndim == 1 else output.reshape(len(chunk), -1)
            results = output if results is None else np.concatenate([results, output])
        assert results is not None
        return results

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

        fixed = self._static_dim(0)
        padded = {
            name: _pad_rows(np.asarray(value).astype(_dtype(self._inputs[name].type, name), copy=False), fixed)
            for name, value in feeds.items()
        }
        try:
            (output,) = self.session.run([self._output], padded)
        except Exception as exc:  # onnxruntime raises its own exception types (InvalidArgument, Fail, ...)
            given = ", ".join(f"{k} {list(v.shape)} {v.dtype}" for k, v in padded.items())
            raise BackendError(
                f"ONNX Runtime cannot run {self.path.name}: {_short(exc)}. The graph expects "
                f"{_describe_inputs(self.session.get_inputs())}; it was given {given}"
            ) from None
        return np.asarray(output)[:rows]

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

    def _label_names(self, labels: Sequence[str] | None, config: dict[str, Any]) -> tuple[str, ...]:
        width = self._width()
        if labels:
            names, where = tuple(labels), "model.labels"
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
        gc.collect()


# -- providers and session ------------------------------------------------------------------------


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


def _create_session(ort: Any, path: Path, model: ModelSpec, providers: list[Any]) -> Any:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: ORT's warnings (e.g. node placement) would clutter gate runs
    if model.threads is not None:
        options.intra_op_num_threads = model.threads
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
            return ort.InferenceSession(str(path), sess_options=options, providers=providers)
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


# -- files -----------------------------------------------------------------------------------------


def _check_model_file(model: ModelSpec) -> Path:
    path = Path(model.source)
    if not model.is_local:
        raise ModelLoadError(
            f"model.source {model.source!r} is not a local file; the onnx backend loads an .onnx file "
            "(a relative path resolves against the gate file's folder)"
        )
    if not path.exists():
        raise ModelLoadError(
            f"ONNX model file not found: {path} (model.source); export the model there, or fix the path"
        )
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.onnx"))
        hint = f" It holds {', '.join(found)}: name one of them." if found else ""
        raise ModelLoadError(f"model.source {path} is a folder; the onnx backend loads one .onnx file.{hint}")
    return path


def _external_data_files(path: Path) -> list[Path]:
    """The external data files the graph's tensors name (and ``<model>.onnx.data`` beside it), checked to exist."""
    onnx = _import("onnx")
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelLoadError(
            f"{path} (model.source) is not an ONNX model: {_short(exc)}. model.source must be an .onnx file, "
            "e.g. written by torch.onnx.export"
        ) from None
    locations = dict.fromkeys(
        ExternalDataInfo(tensor).location for tensor in _tensors(proto.graph) if uses_external_data(tensor)
    )
    files = [path.parent / location for location in locations]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ModelLoadError(
            f"{path.name} keeps its weights in external data files, and {', '.join(missing)} is missing; "
            "copy the .onnx file together with its data files (they must stay in the same folder)"
        )
    sibling = path.with_name(path.name + ".data")
    if sibling.is_file() and sibling not in files:
        files.append(sibling)
    return files


def _tensors(graph: Any) -> Iterator[Any]:
    """Every tensor of ``graph``: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _tensors(subgraph)


# -- tokenizer -------------------------------------------------------------------------------------


def _load_tokenizer(model: ModelSpec) -> tuple[Any, Path | None]:
    """The tokenizer of ``model.tokenizer`` (a folder, or a Hub id ``org/name@revision``) and its local folder."""
    source = str(model.tokenizer)
    folder: Path | None = None
    revision = None
    if Path(source).is_absolute():
        folder = Path(source)
        if not folder.is_dir():
            what = "is a file" if folder.exists() else "does not exist"
            raise ModelLoadError(
                f"tokenizer folder {folder} (model.tokenizer) {what}; point it at the folder written by "
                "tokenizer.save_pretrained (tokenizer.json, tokenizer_config.json)"
            )
        name = str(folder)
    else:
        name, _, rev = source.partition("@")
        revision = rev or None
    try:
        transformers = _import("transformers")
        tokenizer = transformers.AutoTokenizer.from_pretrained(name, revision=revision)
    except BackendError:
        raise
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError, ... for bad folders
        where = "folder" if folder else "Hub id (it must be in the local Hugging Face cache when offline)"
        raise ModelLoadError(
            f"cannot load the tokenizer {source} (model.tokenizer, a {where}): {_short(exc)}. Save it with "
            "tokenizer.save_pretrained(folder) and point model.tokenizer there"
        ) from None
    if tokenizer.pad_token is None and getattr(tokenizer, "eos_token", None) is not None:
        tokenizer.pad_token = tokenizer.eos_token  # padding is masked out, any token does
    return tokenizer, folder


def _read_config(folder: Path | None, name: str | None) -> dict[str, Any]:
    """``config.json`` of the tokenizer folder (or its cached Hub snapshot), else ``{}``."""
    path: Path | None = folder / "config.json" if folder is not None else None
    if folder is None and name:
        try:
            from huggingface_hub import try_to_load_from_cache

            repo_id, _, rev = name.partition("@")
            cached = try_to_load_from_cache(repo_id, "config.json", revision=rev or None)
            path = Path(cached) if isinstance(cached, str) else None
        except Exception:  # no huggingface_hub, or a malformed id: no config, default labels
            path = None
    if path is None or not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def _max_length(tokenizer: Any, config: dict[str, Any], static: int | None) -> int:
    """Tokens per text: the graph's fixed sequence length, else the tokenizer's limit, else the config's."""
    if static:
        return static
    limit = getattr(tokenizer, "model_max_length", None)
    positions = config.get("max_position_embeddings")
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        return min(limit, positions) if isinstance(positions, int) and positions > 0 else limit
    return positions if isinstance(positions, int) and positions > 0 else 512


# -- arrays ----------------------------------------------------------------------------------------


def _pick_output(session: Any, task: str, path: Path) -> str:
    """The graph output the task reads: the first float tensor (``sentence_embedding`` first for embeddings)."""
    outputs = session.get_outputs()
    if task == "feature-extraction":
        for output in outputs:
            if output.name == "sentence_embedding":
                return str(output.name)
    for output in outputs:
        if output.type in _FLOAT_TYPES:
            return str(output.name)
    described = ", ".join(f"{o.name} ({o.type}, {o.shape})" for o in outputs)
    raise BackendError(
        f"graph {path.name} has no float tensor output ({described}); {task} reads the first float output "
        "(logits or probabilities for classifiers; for scikit-learn models convert with options "
        "{'zipmap': False})"
    )


def _probabilities(raw: np.ndarray) -> np.ndarray:
    """Class probabilities from logits, or ``raw`` itself if its rows already are probabilities.

    One column is a binary model's positive score (probability or logit).
    """
    import numpy as np

    raw = raw.astype(np.float64)
    is_probability = bool(np.all(raw >= 0) and np.all(raw <= 1))
    if raw.shape[1] == 1:
        positive = raw[:, 0] if is_probability else 1 / (1 + np.exp(-raw[:, 0]))
        return np.stack([1 - positive, positive], axis=1).astype(np.float32)
    if is_probability and np.allclose(raw.sum(axis=1), 1, atol=1e-3):
        return raw.astype(np.float32)
    shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)


def _pool(output: np.ndarray, mask: np.ndarray, name: str, path: Path) -> np.ndarray:
    """Mean of the token vectors under the attention mask ((batch, seq, dim)), or (batch, dim) as is."""
    import numpy as np

    if output.ndim == 2:
        return output
    if output.ndim != 3:
        raise BackendError(
            f"graph output {name!r} of {path.name} has shape {list(output.shape)}; feature-extraction needs "
            "(batch, tokens, dim) token vectors or (batch, dim) embeddings"
        )
    weights = mask[: len(output), : output.shape[1], None].astype(np.float32)
    return np.asarray((output * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None))


def _normalise(vectors: np.ndarray) -> np.ndarray:
    import numpy as np

    norms = np.linalg.norm(vectors, axis=1, keepdims=True) if vectors.size else np.ones((len(vectors), 1))
    return np.asarray(vectors / np.clip(norms, 1e-12, None), dtype=np.float32)


def _pad_rows(array: np.ndarray, rows: int | None) -> np.ndarray:
    """Repeat the last row until ``array`` has ``rows`` rows (graphs exported with a fixed batch size)."""
    import numpy as np

    if rows is None or len(array) >= rows:
        return array
    return np.concatenate([array, np.repeat(array[-1:], rows - len(array), axis=0)])


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _static(shape: Sequence[Any], axis: int) -> int | None:
    value = shape[axis] if shape else None
    return value if isinstance(value, int) and value > 0 else None


def _dtype(onnx_type: str, name: str) -> str:
    try:
        return _DTYPES[onnx_type]
    except KeyError:
        raise BackendError(
            f"graph input {name!r} has type {onnx_type}; the onnx backend feeds numeric tensors ({', '.join(_DTYPES)})"
        ) from None


def _describe_inputs(inputs: Sequence[Any]) -> str:
    return ", ".join(f"{i.name} {i.shape} {i.type}" for i in inputs)


def _short(exc: BaseException) -> str:
    """The first line of an exception's message, without ORT's ``[ONNXRuntimeError] : 7 : ...`` prefix."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if text.startswith("[ONNXRuntimeError]"):
        text = text.split(" : ", 3)[-1]
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def _import(name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise BackendError(
            f"the onnx backend needs {name} ({exc}); install it with pip install 'modelcheck[onnx]'"
            + (" 'modelcheck[transformers]' for text models" if name == "transformers" else "")
        ) from None


def _bad_text(row: int, value: object, task: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        what = "missing (None/NaN)"
    else:
        what = f"of type {type(value).__name__} ({value!r:.40})"
    expected = "strings, or pairs of strings" if task == "feature-extraction" else "strings"
    return f"input at row {row} is {what}; {task} inputs must be {expected}. Drop or fill them in the data"
