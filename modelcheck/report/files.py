"""Hashing the files a run touched: sha256 of one file, records of a model's artifact files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_records(root: Path, files: list[Path]) -> list[dict[str, Any]]:
    """``{"path", "sha256", "size"}`` for each file, the path relative to ``root`` in POSIX form.

    A file outside ``root`` (or ``root`` being the file itself) is named by its file name. Sorted by
    path so the same artifacts always give the same list.
    """
    root = Path(root).resolve()
    records = []
    for file in files:
        resolved = Path(file).resolve()
        try:
            relative = resolved.relative_to(root).as_posix()
        except ValueError:
            relative = resolved.name
        if relative in ("", "."):
            relative = resolved.name
        records.append({"path": relative, "sha256": sha256_file(resolved), "size": resolved.stat().st_size})
    return sorted(records, key=lambda record: record["path"])
