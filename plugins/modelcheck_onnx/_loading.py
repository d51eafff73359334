"""Loading: the .onnx file and its external data files, the tokenizer of text models and its config."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.errors import BackendError, ModelLoadError
from modelcheck_onnx._common import _import, _short

if TYPE_CHECKING:
    from modelcheck.gatefile import ModelSpec


#: Files in a tokenizer folder that are model weights, not tokenizer files (left out of the artifacts).
_WEIGHT_SUFFIXES = {".onnx", ".data", ".onnx_data", ".bin", ".safetensors", ".pt", ".pth", ".pt2", ".ckpt", ".h5"}


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


def _read_graph(path: Path) -> Any:
    """The ``onnx.ModelProto`` of ``path`` without its external data; ModelLoadError when it is not ONNX."""
    onnx = _import("onnx")
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelLoadError(
            f"{path} (model.source) is not an ONNX model: {_short(exc)}. model.source must be an .onnx file, "
            "e.g. written by torch.onnx.export"
        ) from None


#: Node attributes converters (skl2onnx, onnxmltools) store a classifier's classes in, by class id.
_CLASS_ATTRIBUTES = ("classlabels_ints", "classlabels_int64s", "classlabels_strings")


def _graph_classes(proto: Any) -> tuple[int | str, ...] | None:
    """The class labels a converted classifier carries in its graph, in score-column order, else None.

    Read from the ``ZipMap`` node where there is one (it names the probability columns), else from the
    classifier node (``LinearClassifier``, ``TreeEnsembleClassifier``, ``SVMClassifier``, ...); graphs
    whose classifier nodes disagree (ensembles of differently labelled models) give None.
    """
    found: list[tuple[bool, tuple[int | str, ...]]] = []
    for node in proto.graph.node:
        for attribute in node.attribute:
            if attribute.name not in _CLASS_ATTRIBUTES:
                continue
            if attribute.name == "classlabels_strings":
                labels: tuple[int | str, ...] = tuple(v.decode("utf-8", "replace") for v in attribute.strings)
            else:
                labels = tuple(int(v) for v in attribute.ints)
            if labels:
                found.append((node.op_type == "ZipMap", labels))
    zipmaps = {labels for is_zipmap, labels in found if is_zipmap}
    distinct = zipmaps or {labels for _, labels in found}
    return distinct.pop() if len(distinct) == 1 else None


def _unzipped(proto: Any, classes: tuple[int | str, ...] | None) -> bytes | None:
    """``proto`` with the float input of its ZipMap node as a graph output too, serialised; None without one.

    skl2onnx's default (``zipmap: True``) gives probabilities only as a sequence of maps, one Python
    dict per row; the tensor the ZipMap node reads holds the same probabilities in one array.
    """
    from onnx import TensorProto, helper

    outputs = {output.name for output in proto.graph.output}
    for node in proto.graph.node:
        if node.op_type == "ZipMap" and node.output[0] in outputs and node.input[0] not in outputs:
            width = len(classes) if classes else None
            proto.graph.output.append(helper.make_tensor_value_info(node.input[0], TensorProto.FLOAT, [None, width]))
            return bytes(proto.SerializeToString())
    return None


def _external_data_files(path: Path, proto: Any) -> list[Path]:
    """The external data files the graph's tensors name (and ``<model>.onnx.data`` beside it), checked to exist."""
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

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
        if folder is not None and (folder / "tokenizer.json").is_file():
            from modelcheck_onnx._fast_tokenizer import FastTokenizer  # tokenizers alone, no transformers

            return FastTokenizer(folder), folder
        transformers = _import("transformers")  # a Hub id, or a folder with only a slow tokenizer's files
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
