"""Reading a gate file's YAML: the document, its node tree (for line numbers), ``${VAR}`` expansion."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from modelcheck.errors import GateFileError
from modelcheck.gatefile.parse import ParseError, parse, short

#: Largest gate file read (bytes); gate files are a few KiB.
MAX_GATE_BYTES = 1 << 20
#: Deepest nesting of ``${A:-${B:-default}}`` defaults.
MAX_ENV_NESTING = 8


def read_yaml(gate_path: Path, shown: str) -> tuple[dict[str, Any], yaml.Node | None]:
    """The gate file's top-level mapping (``${VAR}`` expanded) and its node tree; GateFileError otherwise.

    The file is parsed once, with the limits of :mod:`modelcheck.gatefile.parse`; a FIFO, device or
    folder is refused before it is read, and so is a file over :data:`MAX_GATE_BYTES`.
    """
    raw = _read_bytes(gate_path, shown)
    if b"\0" in raw:
        line = raw[: raw.index(b"\0")].count(b"\n") + 1
        raise GateFileError(shown, "the file holds a NUL byte; a gate file is UTF-8 text", line=line)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise GateFileError(
            shown, f"the file is not UTF-8 (byte 0x{raw[exc.start]:02x}); save it as UTF-8", line=line
        ) from None

    try:
        document, node = parse(text)
    except ParseError as exc:
        raise GateFileError(
            shown, exc.problem, json_path=json_path(exc.parts) if exc.parts else None, line=exc.line
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        at = mark.line + 1 if mark is not None else None
        raise GateFileError(shown, f"invalid YAML: {problem}", line=at) from None

    if document is None:
        raise GateFileError(shown, "the file is empty; a gate file is a mapping with version, model, data, checks")
    if not isinstance(document, dict):
        raise GateFileError(
            shown,
            f"the top level is a {yaml_type(document)}; a gate file is a mapping with keys "
            "version, model, data, checks",
            line=1,
        )
    return expand_env(document, shown, node), node


def _read_bytes(gate_path: Path, shown: str) -> bytes:
    """The file's bytes; a missing, unreadable, non-regular or oversized file is a GateFileError."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
        fd = os.open(gate_path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise GateFileError(shown, "file not found") from None
    except ValueError:
        raise GateFileError(shown, "the path holds a NUL byte; give the gate file's real path") from None
    except OSError as exc:
        raise GateFileError(shown, f"cannot read the file ({exc.strerror or exc})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
            raise GateFileError(shown, f"the path is {what}; a gate file is a regular YAML file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            raw = handle.read(MAX_GATE_BYTES + 1)
    except OSError as exc:
        raise GateFileError(shown, f"cannot read the file ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_GATE_BYTES:
        raise GateFileError(
            shown,
            f"the file is larger than {MAX_GATE_BYTES // 1024} KiB; gate files are a few KiB (is this the right file?)",
        )
    return raw


def yaml_type(value: object) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def json_path(parts: tuple[str | int, ...] | list[str | int]) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def line_of(node: yaml.Node | None, parts: tuple[str | int, ...] | list[str | int]) -> int | None:
    """Walk the composed YAML along a JSON path and return the 1-based line of the deepest match."""
    if node is None:
        return None
    current = node
    for part in parts:
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                if key.value == part:
                    current = value
                    break
            else:
                break
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int) and part < len(current.value):
            current = current.value[part]
        else:
            break
    return int(current.start_mark.line) + 1


def key_line(node: yaml.Node | None, parts: list[str | int], key: str) -> int | None:
    """Line of ``key`` inside the mapping at ``parts`` (for unknown keys)."""
    if node is None:
        return None
    line = line_of(node, parts)
    current: yaml.Node = node
    for part in parts:
        found = None
        if isinstance(current, yaml.MappingNode):
            found = next((v for k, v in current.value if k.value == part), None)
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int):
            found = current.value[part] if part < len(current.value) else None
        if found is None:
            return line
        current = found
    if isinstance(current, yaml.MappingNode):
        for k, _ in current.value:
            if k.value == key:
                return int(k.start_mark.line) + 1
    return line


# -- ${VAR} expansion -----------------------------------------------------------------------------


def expand_env(value: Any, shown: str, node: yaml.Node | None, parts: tuple[str | int, ...] = ()) -> Any:
    """``value`` with ``${VAR}`` / ``${VAR:-default}`` in its strings replaced (defaults may nest)."""
    if isinstance(value, dict):
        return {k: expand_env(v, shown, node, (*parts, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, shown, node, (*parts, i)) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    if len(parts) >= 2 and parts[-2] == "headers":
        return value  # endpoint headers: expanded when the server is contacted, so secrets never enter the spec
    try:
        expanded, _ = _expand(value, 0, depth=0)
    except _EnvError as exc:
        raise GateFileError(shown, exc.args[0], json_path=json_path(parts), line=line_of(node, parts)) from None
    return expanded


class _EnvError(Exception):
    pass


def _expand(text: str, start: int, *, depth: int) -> tuple[str, int]:
    """Expand ``text`` from ``start``; inside a default (``depth`` > 0) stop at its closing ``}``.

    Returns the expansion and the index after what was read. Values taken from the environment are
    used as they are (never expanded again).
    """
    if depth > MAX_ENV_NESTING:
        raise _EnvError(f"{short(text)} nests ${{...:-...}} defaults deeper than {MAX_ENV_NESTING} levels")
    nested = depth > 0
    out: list[str] = []
    i = start
    while i < len(text):
        if nested and text[i] == "}":
            return "".join(out), i + 1
        if not text.startswith("${", i):
            out.append(text[i])
            i += 1
            continue
        end = i + 2
        while end < len(text) and (text[end].isascii() and (text[end].isalnum() or text[end] == "_")):
            end += 1
        name = text[i + 2 : end]
        if not name or name[0].isdigit():
            raise _EnvError(
                f"{short(text)} has '${{' not followed by a variable name; write ${{NAME}} or ${{NAME:-default}}"
            )
        if text.startswith(":-", end):
            default, after = _expand(text, end + 2, depth=depth + 1)
        elif end < len(text) and text[end] == "}":
            default, after = None, end + 1
        else:
            raise _EnvError(f"${{{name} in {short(text)} is not closed; write ${{{name}}} or ${{{name}:-default}}")
        found = os.environ.get(name)
        if found:
            out.append(found)
        elif default is not None:
            out.append(default)
        else:
            raise _EnvError(
                f"environment variable {name} is not set (used in {short(text)}); set it, "
                f"or give a default as ${{{name}:-value}}"
            )
        i = after
    if nested:
        raise _EnvError(f"a default in {short(text)} is not closed by '}}'")
    return "".join(out), i
