"""The files a run touches: sha256 of one file, records of a model's artifact files, atomic writes."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

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
    path so the same artifacts always give the same list. A file in the Hugging Face cache whose blob
    is named by its sha256 (LFS and Xet files) is not read again: the name is its digest.
    """
    root_given = Path(root).absolute()
    root_resolved = root_given.resolve()
    records = []
    for file in files:
        path = Path(file).absolute()
        resolved = path.resolve()
        relative = None
        for candidate, base in ((path, root_given), (resolved, root_resolved)):
            try:
                relative = candidate.relative_to(base).as_posix()
                break
            except ValueError:
                continue
        if relative in (None, "", "."):
            relative = path.name
        records.append({"path": relative, "sha256": cached_sha256(resolved), "size": resolved.stat().st_size})
    return sorted(records, key=lambda record: record["path"])


_SHA256_NAME = re.compile(r"[0-9a-f]{64}")


def cached_sha256(path: Path) -> str:
    """The sha256 of ``path``: from its name where it is a Hugging Face cache blob named by it, else read."""
    repo = path.parent.parent.name
    if (
        path.parent.name == "blobs"
        and repo.startswith(("models--", "datasets--"))
        and _SHA256_NAME.fullmatch(path.name)
    ):
        return path.name
    return sha256_file(path)


# -- writing --------------------------------------------------------------------------------------

#: Suffix of the temporary files an atomic write leaves only when its process is killed.
TEMP_SUFFIX = ".modelcheck-tmp"


def atomic_write(path: str | os.PathLike[str], data: bytes | str | Callable[[BinaryIO], None]) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part.

    ``data`` is bytes, text (UTF-8) or a function that writes to a binary stream. The file is written
    beside ``path`` (``.<name>.<pid>.<random>.modelcheck-tmp``), flushed to disk and renamed over it,
    with the mode every file modelcheck writes gets: 0666 less the umask. Parent folders are created.
    Temporary files left by killed modelcheck processes in that folder are removed. OSError otherwise.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target.parent)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.{os.getpid()}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def atomic_copy(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Copy ``source`` to ``target`` with :func:`atomic_write`."""
    with open(source, "rb") as stream:
        atomic_write(target, lambda handle: shutil.copyfileobj(stream, handle, _CHUNK))


def remove_stale_temps(folder: Path) -> None:
    """Remove the ``.modelcheck-tmp`` files in ``folder`` whose writing process is gone."""
    try:
        names = [entry.name for entry in os.scandir(folder) if entry.name.endswith(TEMP_SUFFIX)]
    except OSError:
        return
    for name in names:
        pid_text = name.removesuffix(TEMP_SUFFIX).rsplit(".", 2)[-2] if name.count(".") >= 3 else ""
        if pid_text.isdigit() and _alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            os.unlink(folder / name)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask sets it, racing other threads)
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


# -- reading --------------------------------------------------------------------------------------


def read_regular(path: str | os.PathLike[str], *, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, without ever blocking on a FIFO or device.

    OSError for a missing or unreadable file (``IsADirectoryError`` for a folder), ValueError for a NUL
    byte in the path, and :class:`NotRegularFileError` / :class:`FileTooLargeError` (both OSErrors).
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", os.fspath(path))
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(errno.EINVAL, "is not a regular file (a FIFO, socket or device)", os.fspath(path))
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise FileTooLargeError(errno.EFBIG, f"is larger than {limit // (1 << 20)} MiB", os.fspath(path))
    return data


class NotRegularFileError(OSError):
    """A path names a FIFO, socket or device where a file is expected."""


class FileTooLargeError(OSError):
    """A file is larger than modelcheck reads."""
