"""The local files a gate publishes, and the path each gets in the Hub repo.

Model artifact files keep their path relative to the model folder (the folder itself for a folder
model, the file's folder for a single-file model such as ``model.onnx``). The gate's ``publish.files``
extras are globs relative to the gate file; an extra inside the model folder keeps its relative path,
one outside it goes to the repo root under its file name. No Hub import: a gate's run hashes the
extras into the report with :func:`publish_records`; ``modelcheck publish`` reads them back.
"""

from __future__ import annotations

import glob
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.report.files import sha256_file

_CHUNK = 1 << 20

if TYPE_CHECKING:
    from modelcheck.gatefile import GateSpec

#: Git LFS pointer files start with this line (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md).
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"
_LFS_POINTER_MAX = 1024


def model_root(gate: GateSpec) -> Path | None:
    """The folder model files are relative to, or None for a model that is not local files."""
    if not gate.model.is_local:
        return None
    source = Path(gate.model.source)
    return source if source.is_dir() else source.parent


def extra_files(gate: GateSpec) -> list[Path]:
    """The files ``publish.files`` matches now (globs relative to the gate file; ``**`` recurses), sorted."""
    patterns = list((gate.publish or {}).get("files") or [])
    found: set[Path] = set()
    for pattern in patterns:
        full = pattern if os.path.isabs(pattern) else os.path.join(gate.path.parent, pattern)
        found.update(Path(p).resolve() for p in glob.glob(full, recursive=True) if Path(p).is_file())
    return sorted(found)


def unmatched_patterns(gate: GateSpec) -> list[str]:
    """The ``publish.files`` patterns that match no file now."""
    missing = []
    for pattern in (gate.publish or {}).get("files") or []:
        full = pattern if os.path.isabs(pattern) else os.path.join(gate.path.parent, pattern)
        if not any(Path(p).is_file() for p in glob.glob(full, recursive=True)):
            missing.append(pattern)
    return missing


def repo_path(file: Path, root: Path | None) -> str:
    """Where ``file`` goes in the Hub repo: relative to ``root`` when inside it, else its file name."""
    if root is not None:
        try:
            return file.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return file.name


def publish_records(gate: GateSpec) -> list[dict[str, Any]] | None:
    """``{path, sha256, size}`` of every extra ``publish.files`` matches, or None without a ``publish`` section."""
    if gate.publish is None:
        return None
    root = model_root(gate)
    records = []
    for file in extra_files(gate):
        records.append({"path": repo_path(file, root), "sha256": sha256_file(file), "size": file.stat().st_size})
    return sorted(records, key=lambda record: record["path"])


def git_blob_id(path: str | os.PathLike[str]) -> str:
    """git's blob id of a file (``git hash-object``): what the Hub reports for a file stored in git."""
    digest = hashlib.sha1(b"blob %d\0" % os.path.getsize(path))
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def git_blob_id_of(data: bytes) -> str:
    """git's blob id of ``data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_lfs_pointer(path: str | os.PathLike[str]) -> bool:
    """True for a small Git LFS pointer file, what a checkout without ``lfs: true`` leaves instead of weights."""
    if os.path.getsize(path) > _LFS_POINTER_MAX:
        return False
    with open(path, "rb") as handle:
        return handle.read(len(LFS_POINTER_PREFIX)) == LFS_POINTER_PREFIX
