"""Load a gate's labelled data through ``datasets`` (imported only when a gate runs)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from modelcheck.spec import DataSpec

_READERS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


@dataclass(frozen=True)
class LoadedData:
    """The rows a gate is judged on, in file order, and what identifies them."""

    frame: pd.DataFrame
    sha256: str | None
    files: tuple[Path, ...] = ()


def load_data(spec: DataSpec, *, columns: list[str]) -> LoadedData:
    """Load ``spec`` and check that every column in ``columns`` is present.

    Local files are read by ``datasets``' packaged builders; anything else is a Hub dataset id
    (``name`` or ``org/name``) loaded with ``datasets.load_dataset(id, split=spec.split)``.
    """
    if spec.is_local:
        dataset, files = _load_local(spec)
    else:
        dataset, files = _load_hub(spec)
    if spec.limit is not None:
        dataset = dataset.select(range(min(spec.limit, len(dataset))))

    missing = [c for c in dict.fromkeys(columns) if c not in dataset.column_names]
    if missing:
        role = {spec.input: "data.input", spec.label: "data.label"}
        named = ", ".join(f"{c!r}" + (f" ({role[c]})" if c in role else "") for c in missing)
        raise DataError(
            f"column {named} not found in {spec.source}; its columns are: {', '.join(dataset.column_names)}"
        )
    if len(dataset) == 0:
        raise DataError(f"{spec.source} has no rows to evaluate")
    frame = dataset.to_pandas()
    return LoadedData(frame=frame, sha256=_sha256_files(files) if files else None, files=tuple(files))


def _load_local(spec: DataSpec) -> tuple[Any, list[Path]]:
    path = Path(spec.source)
    if not path.exists():
        raise DataError(f"data file not found: {path} (data.source); create it or fix the path")
    if path.is_dir():
        raise DataError(
            f"data.source {path} is a folder; give a .csv, .json, .jsonl or .parquet file "
            "(folders of images arrive with image-classification support)"
        )
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(
            f"data file {path} has an unsupported extension {path.suffix!r}; use one of {', '.join(sorted(_READERS))}"
        )
    import datasets

    try:
        dataset = datasets.load_dataset(reader, data_files={spec.split: str(path)}, split=spec.split)
    except Exception as exc:  # datasets raises many kinds; the reason is what the user needs
        raise DataError(f"cannot read {path} as {reader}: {_first_line(exc)}") from None
    return dataset, [path]


def _load_hub(spec: DataSpec) -> tuple[Any, list[Path]]:
    import datasets

    try:
        dataset = datasets.load_dataset(spec.source, split=spec.split)
    except Exception as exc:
        raise DataError(
            f"cannot load Hub dataset {spec.source!r} split {spec.split!r}: {_first_line(exc)} "
            "(offline? download it once with the network on, or point data.source at a local file)"
        ) from None
    return dataset, [Path(f["filename"]) for f in dataset.cache_files]


def _sha256_files(files: list[Path]) -> str:
    """sha256 of one file, or of the concatenated contents of several, in order."""
    digest = hashlib.sha256()
    for file in files:
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
