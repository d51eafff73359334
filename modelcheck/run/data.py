"""Load a gate's labelled data: local files with pandas/pyarrow, image folders and Hub datasets with ``datasets``."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.errors import DataError
from modelcheck.models.backends import data_row
from modelcheck.run.local_files import read_local

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from modelcheck.gatefile import DataSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedData:
    """The rows a gate is judged on, in file order, and what identifies them."""

    frame: pd.DataFrame
    sha256: str | None
    files: tuple[Path, ...] = ()
    #: The folder relative file names in the data (e.g. image paths) resolve against.
    base: Path | None = None


def load_data(spec: DataSpec, *, columns: list[str], task: str = "text-classification") -> LoadedData:
    """Load ``spec`` and check that every column in ``columns`` is present.

    Local files are read with pandas/pyarrow (:mod:`modelcheck.run.local_files`), a local folder as an image folder
    (one sub-folder per label, optionally under a ``<split>/`` folder); anything else is a Hub
    dataset id (``name`` or ``org/name``) loaded with ``datasets.load_dataset(id, split=spec.split)``.
    Class-label columns come back as class names, so they map onto the model's labels.
    """
    base = None
    sha256: str | None = None
    if spec.is_local and Path(spec.source).is_dir():
        frame, files = _frame(_load_image_folder(spec, task), spec.limit)
        base = Path(spec.source)
    elif spec.is_local:
        frame, sha256 = _load_local(spec)
        files = [Path(spec.source)]
        base = Path(spec.source).parent
    else:
        frame, files = _frame(_load_hub(spec), spec.limit)

    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        role = {**{c: "data.input" for c in spec.input_columns}, **{c: "data.label" for c in spec.label_columns}}
        named = ", ".join(f"{c!r}" + (f" ({role[c]})" if c in role else "") for c in missing)
        known = ", ".join(map(str, frame.columns)) or "none"
        raise DataError(f"column {named} not found in {spec.source}; its columns are: {known}")
    if len(frame) == 0:
        raise DataError(f"{spec.source} has no rows to evaluate (only a header, or an empty selection)")
    log.info("read %d rows from %s", len(frame), spec.source)
    if sha256 is None and files:
        sha256 = _sha256_files(files)
    return LoadedData(frame=frame, sha256=sha256, files=tuple(files), base=base)


def numeric_matrix(frame: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    """The feature columns of a tabular task as a float32 matrix; DataError names a non-numeric column."""
    import numpy as np
    import pandas as pd

    for column in columns:
        if not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
            sample = frame[column].dropna().head(1).tolist()
            raise DataError(
                f"feature column {column!r} (data.input) is not numeric (dtype {frame[column].dtype}, "
                f"e.g. {sample[0]!r}); encode it as numbers before the gate runs"
                if sample
                else f"feature column {column!r} (data.input) holds no values"
            )
        missing = frame[column].isna()
        if missing.any():
            raise DataError(
                f"feature column {column!r} has no value at {data_row(int(missing.to_numpy().argmax()))}; "
                "fill or drop it"
            )
    # Column-major as pandas holds it: a whole-matrix row-major copy would cost more than the model's
    # forward pass here (fresh pages for every byte); backends copy one chunk of rows at a time instead.
    return frame[list(columns)].to_numpy(dtype=np.float32)


def images(values: list[Any], *, column: str, base: Path | None) -> list[Any]:
    """Decode an image column (PIL images, ``{bytes, path}`` records or file paths) to RGB PIL images.

    An image that cannot be decoded is a DataError naming the file (or the row).
    """
    import io

    try:
        from PIL import Image
    except ImportError:
        raise DataError("image inputs need Pillow: pip install 'modelcheck[vision]'") from None

    decoded = []
    for row, value in enumerate(values):
        name = f"{data_row(row)} of column {column!r}"
        try:
            if isinstance(value, Image.Image):
                image = value
            elif isinstance(value, dict) and value.get("bytes"):
                name = str(value.get("path") or name)
                image = Image.open(io.BytesIO(value["bytes"]))
            elif isinstance(value, (dict, str)):
                raw = value.get("path") if isinstance(value, dict) else value
                path = Path(str(raw))
                path = path if path.is_absolute() or base is None else base / path
                name = str(path)
                if path.exists() and not path.is_file():
                    raise DataError(f"image {name} is not a regular file (a folder, FIFO or device)")
                image = Image.open(path)
            else:
                raise DataError(f"{name} holds {type(value).__name__}, not an image or an image path")
            if image.mode == "RGB":  # decoded in place: convert() would copy every pixel once more
                image.load()
            else:
                image = image.convert("RGB")
            decoded.append(image)
        except DataError:
            raise
        except FileNotFoundError:
            raise DataError(f"image file not found: {name}") from None
        except Exception as exc:  # PIL raises UnidentifiedImageError, OSError, SyntaxError, ...
            raise DataError(f"cannot decode image {name}: {exc}") from None
    return decoded


def _load_local(spec: DataSpec) -> tuple[pd.DataFrame, str]:
    """A local file read with pandas/pyarrow (no ``datasets`` import, no Arrow cache written), and its sha256.

    The file is hashed on a second thread while it is read: hashlib and pyarrow both release the GIL,
    so on two cores the hash costs no wall time.
    """
    path = Path(spec.source)
    if not path.exists():
        raise DataError(f"data file not found: {path} (data.source); create it or fix the path")
    if not path.is_file():
        raise DataError(
            f"data.source {path} is not a regular file (a folder, FIFO, socket or device); "
            "give a .csv, .json, .jsonl or .parquet file"
        )
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelcheck-sha256") as pool:
        digest = pool.submit(_sha256_files, [path])
        frame = read_local(path, limit=spec.limit)
        return frame, digest.result()


def _frame(loaded: tuple[Any, list[Path]], limit: int | None) -> tuple[pd.DataFrame, list[Path]]:
    """A ``datasets`` Dataset as a frame (its first ``limit`` rows), class labels as their names."""
    dataset, files = loaded
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    frame = dataset.to_pandas()
    for name, feature in dataset.features.items():
        if type(feature).__name__ == "ClassLabel" and name in frame:
            frame[name] = [feature.int2str(int(v)) if v is not None and v >= 0 else None for v in frame[name]]
    return frame, files


def _load_image_folder(spec: DataSpec, task: str) -> tuple[Any, list[Path]]:
    folder = Path(spec.source)
    if task != "image-classification":
        raise DataError(
            f"data.source {folder} is a folder; for task {task!r} give a .csv, .json, .jsonl or .parquet file "
            "(folders of images, one sub-folder per label, are for image-classification)"
        )
    if (folder / spec.split).is_dir():
        folder = folder / spec.split
    try:
        with _quiet_datasets() as datasets:
            dataset = datasets.load_dataset("imagefolder", data_dir=str(folder), split="train")
    except Exception as exc:
        raise DataError(
            f"cannot read the image folder {folder}: {_first_line(exc)} "
            "(expected one sub-folder per label holding the images)"
        ) from None
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return dataset, files


def _load_hub(spec: DataSpec) -> tuple[Any, list[Path]]:
    try:
        with _quiet_datasets() as datasets:
            dataset = datasets.load_dataset(spec.source, split=spec.split)
    except Exception as exc:
        raise DataError(
            f"cannot load Hub dataset {spec.source!r} split {spec.split!r}: {_first_line(exc)} "
            "(offline? download it once with the network on, or point data.source at a local file)"
        ) from None
    return dataset, [Path(f["filename"]) for f in dataset.cache_files]


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[Any]:
    """``datasets`` without its progress bars (they would clutter every gate run), restored after."""
    import datasets

    were_on = datasets.utils.logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield datasets
    finally:
        if were_on:
            datasets.enable_progress_bars()


def _sha256_files(files: list[Path]) -> str:
    """sha256 of one file; for several (an image folder, a Hub dataset's cache), of their names and digests."""
    from modelcheck.report.document import sha256_file

    if len(files) == 1:
        return sha256_file(files[0])
    root = Path(os.path.commonpath([str(f.parent) for f in files]))
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.relative_to(root).as_posix()}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
