"""Read a gate file: YAML with lines, ``${VAR}``, the shipped schema, semantic rules, the frozen spec.

``load_gate(path)`` either returns a frozen, fully-resolved :class:`GateSpec` or raises one
:class:`~modelcheck.errors.GateFileError` that names the file, the JSON path, the line and the fix.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

from modelcheck.gatefile.build import available_backends, build_gate
from modelcheck.gatefile.paths import resolve_source
from modelcheck.gatefile.schema import gate_schema, validate_schema
from modelcheck.gatefile.source import read_yaml
from modelcheck.gatefile.spec import ACCURACY_LIKE, CheckSpec, DataSpec, GateSpec, ModelSpec

log = logging.getLogger(__name__)

__all__ = [
    "ACCURACY_LIKE",
    "CheckSpec",
    "DataSpec",
    "GateSpec",
    "ModelSpec",
    "available_backends",
    "gate_schema",
    "iter_gate_files",
    "load_gate",
    "resolve_source",
]


def load_gate(path: str | os.PathLike[str], *, display_path: str | None = None) -> GateSpec:
    """Read, validate and resolve one gate file.

    ``display_path`` is how the file is named in messages (default: the path as given).
    """
    gate_path = Path(path)
    shown = display_path or str(path)
    document, node = read_yaml(gate_path, shown)
    log.debug("%s: read, validating against the schema and the rules", shown)
    validate_schema(document, shown, node)  # the structure: keys, types, ranges
    spec = build_gate(document, gate_path, shown, node)  # the rules, each broken one in its own words
    validate_schema(document, shown, node, rules=True)  # and the whole schema, as an editor reads it
    log.info("loaded %s: model %s (%s, %s), %d checks", shown, spec.model.id, spec.model.backend, spec.model.task,
             len(spec.checks))  # fmt: skip
    return spec


def iter_gate_files(paths: list[Path]) -> Iterator[Path]:
    """Yield gate files: each file as given, and ``*.yaml``/``*.yml`` under each folder, sorted."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        else:
            yield path
