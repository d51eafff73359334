"""The gate-file JSON Schema that ships inside the package, and its errors as sentences."""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources
from typing import Any

import yaml

from modelcheck.errors import GateFileError
from modelcheck.gatefile.parse import short
from modelcheck.gatefile.source import json_path, key_line, line_of, yaml_type


@cache
def gate_schema() -> dict[str, Any]:
    """The gate-file JSON Schema that ships inside the package (structure and rules: what editors see)."""
    text = resources.files("modelcheck").joinpath("schemas/gate.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(rules: bool) -> Any:
    """Draft 2020-12 over the whole schema (``rules``) or its structure, except that an integer is an int
    (``32.0`` and ``1.0e+23`` are not integers here)."""
    import jsonschema

    def is_integer(checker: Any, instance: object) -> bool:
        return isinstance(instance, int) and not isinstance(instance, bool)

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine("integer", is_integer)
    schema = gate_schema() if rules else _structure_schema()
    return jsonschema.validators.extend(base, type_checker=checker)(schema)


def _structure_schema() -> dict[str, Any]:
    """The shipped schema without its rules (the ``allOf`` of the document and of a check).

    The rules (per kind of check, per task, per metric) say in JSON Schema what ``build`` checks with
    sentences that name the fix; validation reads the structure first, lets ``build`` word a broken rule,
    then holds the document to the whole schema.
    """
    schema = dict(gate_schema())
    schema.pop("allOf", None)
    definitions = dict(schema["$defs"])
    definitions["check"] = {k: v for k, v in definitions["check"].items() if k != "allOf"}
    schema["$defs"] = definitions
    return schema


def validate_schema(document: dict[str, Any], shown: str, node: yaml.Node | None, *, rules: bool = False) -> None:
    """Raise GateFileError for the best-matching schema error: of the structure, or with ``rules`` of all."""
    import jsonschema

    validator = _validator(rules)
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is None:
        return
    parts = list(error.absolute_path)
    where = json_path(parts)
    line = line_of(node, parts)
    problem = _describe(error, parts)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in allowed]
        if unknown:
            key = str(unknown[0])
            line = key_line(node, parts, key)
            where = json_path([*parts, key])
            near = difflib.get_close_matches(key, allowed, n=1) if len(key) <= 64 else []
            hint = f"did you mean {near[0]!r}? " if near else ""
            problem = f"unknown key {short(key)}; {hint}allowed keys here: {', '.join(allowed)}"
    raise GateFileError(shown, problem, json_path=where, line=line)


def _describe(error: Any, parts: list[str | int]) -> str:
    """Turn one jsonschema error into a sentence that says what was expected."""
    field_name = short(str(parts[-1]), 64).strip("'") if parts else "the document"
    value = error.instance
    shown = short(value)
    kind = error.validator
    if kind == "enum":
        choices = ", ".join(repr(c) for c in error.validator_value)
        options = [str(c) for c in error.validator_value]
        near = difflib.get_close_matches(str(value), options, n=1) if len(str(value)) <= 64 else []
        hint = f"; did you mean {near[0]!r}?" if near else ""
        return f"{field_name} {shown} is not supported; expected one of {choices}{hint}"
    if kind == "const":
        if field_name == "version":
            return f"unsupported version {shown}; this modelcheck reads gate files of version 1"
        if field_name == "kind":
            return (
                f"check kind {shown} is not available in this version of modelcheck; "
                "the supported kind is 'metric' (quality metrics on the gate's data)"
            )
        return f"{field_name} must be {error.validator_value!r}, not {shown}"
    if kind == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"{field_name} must be of type {expected}, got {yaml_type(value)} {shown}"
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"missing required key {missing!r}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[kind]
        return f"{field_name} {shown} is out of range; expected a number {bound} {error.validator_value}"
    if kind == "pattern" and parts == ["stages"]:
        return f"stage name {shown} is not valid; stage names are letters, digits, '_' and '-', starting with a letter"
    if kind == "pattern" and field_name == "device":
        return f"device {shown} is not supported; expected auto, cpu, mps, cuda or cuda:N (e.g. cuda:1)"
    if kind == "pattern":
        return f"{field_name} {shown} is not valid; expected it to match {error.validator_value}"
    if kind == "maxLength":
        return f"{field_name} is {len(value)} characters long; at most {error.validator_value} are allowed"
    if kind == "propertyNames":
        return f"{field_name} has a key that is not a valid name: {error.message}"
    if kind == "anyOf" and parts and parts[0] == "checks":
        return "a metric check needs a threshold: give min, max, or both"
    if kind == "minItems":
        return f"{field_name} must not be empty"
    if kind == "oneOf" and len(parts) == 2 and parts[0] == "stages":
        return f'stage {field_name!r} must be a list of check names or "all", got {shown}'
    if kind == "minLength":
        return f"{field_name} must not be empty"
    return short(str(error.message), 300)
