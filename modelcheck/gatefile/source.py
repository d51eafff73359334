"""Reading a gate file's YAML: the document, its node tree (for line numbers), ``${VAR}`` expansion."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from modelcheck.errors import GateFileError

_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def read_yaml(gate_path: Path, shown: str) -> tuple[dict[str, Any], yaml.Node | None]:
    """The gate file's top-level mapping (``${VAR}`` expanded) and its node tree; GateFileError otherwise."""
    try:
        text = gate_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GateFileError(shown, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GateFileError(shown, f"cannot read the file ({exc})") from None

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise GateFileError(shown, f"invalid YAML: {problem}", line=line) from None

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
    if isinstance(value, dict):
        return {k: expand_env(v, shown, node, (*parts, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, shown, node, (*parts, i)) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found:
            return found
        if default is not None:
            return default
        raise GateFileError(
            shown,
            f"environment variable {name} is not set (used in {value!r}); set it, "
            f"or give a default as ${{{name}:-value}}",
            json_path=json_path(parts),
            line=line_of(node, parts),
        )

    return _ENV_VAR.sub(substitute, value)
