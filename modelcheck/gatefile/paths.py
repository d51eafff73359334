"""Paths written in a gate file: resolved against the gate file's folder, or kept as Hub ids / module names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from modelcheck.gatefile.parse import short

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")
_LOCAL_SUFFIXES = (".csv", ".json", ".jsonl", ".parquet", ".onnx", ".pt2", ".pt", ".safetensors")


class SourcePathError(ValueError):
    """A path written in a gate file cannot be resolved (NUL byte, symlink loop, too long, unknown ~user)."""

    def __init__(self, raw: str, problem: str) -> None:
        super().__init__(problem)
        self.raw = raw


def resolve_source(raw: str, base: Path, *, bare_hub_names: bool) -> str:
    """Resolve a model/data source written in a gate file.

    An existing path (relative ones against the gate file's folder), anything that starts with
    ``.``/``/``/``~`` or ends like a file becomes an absolute path; ``org/name@rev``, ``hub://...``
    and ``module:callable`` stay as written (and so does a bare ``name`` where ``bare_hub_names``).
    A path that cannot be resolved is a :class:`SourcePathError` (a ValueError) saying why.
    """
    if "\0" in raw:
        raise SourcePathError(raw, f"path {short(raw)} holds a NUL byte; give the real path")
    try:
        return _resolve(raw, base, bare_hub_names=bare_hub_names)
    except (OSError, RuntimeError) as exc:  # ENAMETOOLONG, a symlink loop (RuntimeError before 3.13), ~nobody
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SourcePathError(raw, f"path {short(raw)} cannot be resolved ({reason}); fix the path") from None


def _resolve(raw: str, base: Path, *, bare_hub_names: bool) -> str:
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        candidate = base / candidate
    if raw.startswith(("hub://", "http://", "https://")):
        return raw
    if candidate.exists() or raw.startswith((".", "/", "~")) or raw.endswith(_LOCAL_SUFFIXES):
        return str(candidate.resolve())
    if _HUB_ID.match(raw) or (":" in raw and "/" not in raw) or (bare_hub_names and "/" not in raw):
        return raw
    return str(candidate.resolve())


def public_url(url: str) -> str:
    """``url`` as it may be shown: scheme, host, port and path; userinfo, query and fragment left out."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def find_value(value: Any, wanted: str, parts: tuple[str | int, ...] = ()) -> list[str | int] | None:
    """The JSON path of the first string equal to ``wanted`` in the document."""
    if value == wanted:
        return list(parts)
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found = find_value(child, wanted, (*parts, key))
        if found is not None:
            return found
    return None
