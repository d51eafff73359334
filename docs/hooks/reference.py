"""MkDocs hook: the reference pages are generated at build time, never copied by hand.

- ``reference/gate-file.md`` from the shipped JSON Schema (``modelcheck/schemas/gate.schema.json``): every
  key of a gate file with its type, allowed values, default and description;
- ``reference/cli.md`` from the argparse parsers (``modelcheck.cli.build_parser``): every command's help.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, "reference/gate-file.md", content=gate_file_reference()))
    files.append(File.generated(config, "reference/cli.md", content=cli_reference()))
    return files


def gate_file_reference() -> str:
    schema = json.loads((ROOT / "modelcheck" / "schemas" / "gate.schema.json").read_text("utf-8"))
    out = [
        "# Gate file reference",
        "",
        "Generated from the JSON Schema modelcheck ships (`modelcheck schema` prints its path; editors with a",
        "YAML language server use it through the `# yaml-language-server: $schema=...` line that `modelcheck init`",
        "writes). `modelcheck validate` checks a gate file against it and against the rules a schema cannot say.",
        "",
    ]
    out += _object("Top level", schema, schema)
    for name in ("model", "data", "stages", "publish"):
        node = schema["properties"].get(name, {})
        if node.get("properties"):
            out += _object(f"`{name}`", node, schema)
    for name, node in schema.get("$defs", {}).items():
        if node.get("properties"):
            out += _object(f"`{name}` (checks[])", node, schema)
    return "\n".join(out) + "\n"


def _object(title: str, node: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    lines = [f"## {title}", ""]
    if node.get("description"):
        lines += [node["description"], ""]
    lines += ["| key | type | values | default | description |", "|---|---|---|---|---|"]
    for key, prop in node.get("properties", {}).items():
        if not isinstance(prop, dict):
            continue
        prop = _resolve(prop, schema)
        lines.append(
            f"| `{key}` | {_type(prop)} | {_values(prop)} | {_cell(prop.get('default', ''))} | "
            f"{_cell(prop.get('description', ''))} |"
        )
    return [*lines, ""]


def _resolve(prop: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return {**schema["$defs"].get(ref.split("/")[-1], {}), **{k: v for k, v in prop.items() if k != "$ref"}}
    return prop


def _type(prop: dict[str, Any]) -> str:
    kind = prop.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind:
        return str(kind)
    variants = prop.get("anyOf") or prop.get("oneOf") or []
    kinds = sorted({str(v.get("type")) for v in variants if isinstance(v, dict) and v.get("type")})
    return " or ".join(kinds)


def _values(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return ", ".join(f"`{v}`" for v in prop["enum"])
    bounds = []
    for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
        if key in prop:
            bounds.append(f"{sign} {prop[key]}")
    if "pattern" in prop:
        bounds.append(f"matches `{prop['pattern']}`")
    return ", ".join(bounds)


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace("|", "\\|").replace("\n", " ")


def cli_reference() -> str:
    from modelcheck.cli import build_parser

    out = ["# CLI reference", "", "Generated from modelcheck's own argparse parsers (`modelcheck COMMAND --help`).", ""]
    for path, parser in _parsers(build_parser(), ["modelcheck"]):
        out += [f"## `{' '.join(path)}`", "", "```text", parser.format_help().rstrip(), "```", ""]
    return "\n".join(out) + "\n"


def _parsers(parser: argparse.ArgumentParser, path: list[str]) -> list[tuple[list[str], argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _parsers(sub, [*path, name])
    return found
