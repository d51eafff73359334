"""The results report: one JSON document per run, with its own JSON Schema.

``build_report`` turns in-memory :class:`~modelcheck.report.results.GateResult` objects into the document,
``write_report`` validates and writes it atomically, ``read_report`` loads and validates one.
``gate``, ``summary``, ``baseline update`` and ``publish`` read the report; they never re-run a model.

This module is imported by the CLI and the pytest plugin: it must never import a framework
(torch, transformers, datasets, onnxruntime), not even to read its version.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from functools import cache
from importlib import resources
from typing import Any

from modelcheck.errors import ReportError
from modelcheck.report.environment import environment, modelcheck_version, runtime_environment
from modelcheck.report.files import atomic_write, file_records, read_regular, sha256_file
from modelcheck.report.results import GateResult, totals

__all__ = [
    "REPORT_VERSION",
    "build_report",
    "environment",
    "file_records",
    "modelcheck_version",
    "plain",
    "read_report",
    "report_schema",
    "runtime_environment",
    "sha256_file",
    "validate_report",
    "write_report",
]

REPORT_VERSION = 1
#: Largest report read (bytes).
MAX_REPORT_BYTES = 256 << 20


# -- building -------------------------------------------------------------------------------------


def build_report(
    gates: list[GateResult],
    *,
    stage: str | None,
    env: dict[str, Any] | None = None,
    created_at: _dt.datetime | None = None,
    shard: tuple[int, int] | None = None,
    stopped: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report document for ``gates`` (see ``schemas/report.schema.json``).

    ``shard`` is ``(index, count)`` of a ``--modelcheck-shard`` run, recorded as ``shard: {index, count}``.
    ``stopped`` (``{reason, exit_status, errors: [{nodeid, message}]}``) records that pytest ended before
    every gate check ran; no stage passes such a report.
    ``env`` defaults to :func:`environment` and ``created_at`` to now (UTC). Values are made
    JSON-plain: numpy scalars become Python numbers, tuples lists, NaN/infinity ``None``.
    """
    when = created_at or _dt.datetime.now(_dt.timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    doc = {
        "report_version": REPORT_VERSION,
        "modelcheck_version": modelcheck_version(),
        "created_at": when.isoformat(timespec="seconds"),
        "stage": stage,
        "environment": env if env is not None else environment(),
        "gates": [gate.to_dict() for gate in gates],
        "totals": totals([]),
    }
    if shard is not None:
        doc["shard"] = {"index": shard[0], "count": shard[1]}
    if stopped is not None:
        doc["stopped"] = stopped
    document: dict[str, Any] = plain(doc)
    document["gates"] = [_reportable(gate) for gate in document["gates"]]
    document["totals"] = count_statuses(document["gates"])
    return document


def count_statuses(gates: list[dict[str, Any]]) -> dict[str, int]:
    """The report's ``totals``: checks by status over ``gates`` (report records), failed-but-not-blocking as warned."""
    counts: dict[str, int] = totals([])
    for gate in gates:
        for check in gate["checks"]:
            status = str(check["status"]).replace(" ", "_")
            counts["warned" if status == "failed" and not check["blocking"] else status] += 1
    return counts


def _reportable(gate: dict[str, Any]) -> dict[str, Any]:
    """``gate``, or where its results do not fit the report schema, an error record of the same file.

    One gate's unexpected value must never cost the report, and with it the other gates' results.
    """
    import jsonschema

    validator = _gate_validator()
    error = jsonschema.exceptions.best_match(validator.iter_errors(gate))
    if error is None:
        return gate
    where = error.json_path.replace("$", "gate", 1)
    problem = f"{where}: {_describe(error)}"
    return {
        "file": str(gate.get("file") or "<unknown gate>"),
        "model": {},
        "data": {},
        "stages": {},
        "checks": [],
        "error": f"the results of this gate could not be reported ({problem}); please report this",
        "outputs": None,
    }


@cache
def _gate_validator() -> Any:
    import jsonschema

    schema = report_schema()
    return jsonschema.Draft202012Validator(
        {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/gate"}
    )


def plain(value: Any) -> Any:
    """A JSON-plain copy of ``value`` (numpy scalars/arrays without importing numpy)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):  # numpy.float64 is a float: make it a plain one
        return float(value) if math.isfinite(value) else None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if type(value).__module__ == "numpy":
        if hasattr(value, "tolist"):
            return plain(value.tolist())
        if hasattr(value, "item"):
            return plain(value.item())
    return value


# -- schema ---------------------------------------------------------------------------------------


@cache
def report_schema() -> dict[str, Any]:
    """The report JSON Schema that ships inside the package."""
    text = resources.files("modelcheck").joinpath("schemas/report.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_report(doc: Any, *, source: str) -> None:
    """Raise ReportError naming ``source``, the JSON path and what is expected if ``doc`` is not a report."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(report_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is None:
        return
    path = error.json_path
    where = f"{source}" if path == "$" else f"{source} at {path}"
    raise ReportError(f"{where}: {_describe(error)} (the report does not match the report schema, version 1)")


def _describe(error: Any) -> str:
    """One jsonschema error as a sentence that quotes the value and says what is expected."""
    parts = list(error.absolute_path)
    name = str(parts[-1]) if parts else "the document"
    value = error.instance
    kind = error.validator
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"missing required key {missing!r}"
    if kind == "additionalProperties" and isinstance(value, dict):
        allowed = list(error.schema.get("properties", {}))
        unknown = [str(k) for k in value if k not in allowed]
        if unknown and allowed:
            return f"unknown key {unknown[0]!r}; allowed keys here: {', '.join(allowed)}"
    if kind == "enum":
        choices = ", ".join(repr(c) for c in error.validator_value)
        return f"{name} {_short(value)} is not allowed; expected one of {choices}"
    if kind == "const":
        return f"{name} must be {error.validator_value!r}, not {_short(value)}"
    if kind == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"{name} must be of type {expected}, got {type(value).__name__} {_short(value)}"
    if kind == "pattern":
        if error.validator_value == report_schema()["$defs"]["sha256"]["pattern"]:
            return f"{name} {_short(value)} is not a sha256; expected 64 lowercase hex digits"
        return f"{name} {_short(value)} is not valid; expected it to match {error.validator_value}"
    if kind == "minimum":
        return f"{name} {_short(value)} is out of range; expected a number >= {error.validator_value}"
    if kind == "minLength":
        return f"{name} must not be empty"
    return str(error.message)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- reading and writing --------------------------------------------------------------------------


def read_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and validate a report; ReportError names the file and the fix when it cannot."""
    shown = os.fspath(path)
    try:
        text = read_regular(path, limit=MAX_REPORT_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise ReportError(
            f"report {shown} not found; write one with pytest --modelcheck --modelcheck-report {shown}"
        ) from None
    except IsADirectoryError:
        raise ReportError(f"report {shown} is a folder; give the path of the JSON report file") from None
    except OSError as exc:
        raise ReportError(f"cannot read report {shown} ({exc.strerror or exc})") from None
    except ValueError as exc:  # a NUL byte in the path, or bytes that are not UTF-8
        raise ReportError(f"cannot read report {shown} ({exc})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"report {shown} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "was it cut short? regenerate it with pytest --modelcheck --modelcheck-report"
        ) from None
    except RecursionError:
        raise ReportError(f"report {shown} nests too deeply to be a modelcheck report") from None
    if not isinstance(doc, dict):
        raise ReportError(f"report {shown}: the top level is a {type(doc).__name__}; a report is a JSON object")
    found = doc.get("report_version")
    if "report_version" in doc and found != REPORT_VERSION:
        raise ReportError(
            f"report {shown} has report_version {found!r}; this modelcheck ({modelcheck_version()}) reads "
            f"report_version {REPORT_VERSION}; regenerate the report with this modelcheck, or install the "
            "modelcheck version that wrote it"
        )
    try:
        validate_report(doc, source=f"report {shown}")
    except RecursionError:
        raise ReportError(f"report {shown} nests too deeply to be a modelcheck report") from None
    return doc


def write_report(path: str | os.PathLike[str], doc: dict[str, Any]) -> None:
    """Validate ``doc`` and write it to ``path`` atomically (temp file in the same folder + rename).

    A crash mid-write leaves the previous report (if any) untouched and no partial file behind.
    Parent folders are created.
    """
    shown = os.fspath(path)
    validate_report(doc, source=f"report for {shown}")
    try:
        text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError as exc:
        raise ReportError(f"report for {shown} cannot be written as JSON ({exc})") from None
    try:
        atomic_write(path, text)
    except OSError as exc:
        raise ReportError(f"cannot write report {shown} ({exc}); check that its folder is writable") from None
