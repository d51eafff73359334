"""``modelcheck schema`` and ``modelcheck init``: the gate-file schema for editors, and a new gate file."""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK = 0


def add_commands(commands: Any) -> None:
    """Register ``schema`` and ``init`` on the CLI's subcommands."""
    _add_schema_parser(commands)
    _add_init_parser(commands)


def _add_schema_parser(commands: Any) -> None:
    schema = commands.add_parser(
        "schema",
        help="print the gate-file JSON Schema (for editors)",
        description="Print the gate-file JSON Schema that validate uses, or with --path where it is installed "
        "(for an editor's yaml.schemas setting or a '# yaml-language-server: $schema=' line).",
    )
    schema.add_argument("--path", action="store_true", help="print the schema file's path instead of its content")
    schema.set_defaults(handler=_cmd_schema)


def _cmd_schema(args: argparse.Namespace) -> int:
    from modelcheck.gatefile.scaffold import schema_path

    path = schema_path()
    print(path if args.path else path.read_text("utf-8").rstrip("\n"))
    return EXIT_OK


def _add_init_parser(commands: Any) -> None:
    init = commands.add_parser(
        "init",
        help="write a gate file for a model and a data file",
        description="Write a gate file that validates, with checks chosen from the model's task. Asks for what "
        "the flags do not give when run in a terminal. Never overwrites a file (exit 2).",
    )
    init.add_argument("path", nargs="?", metavar="GATE", help="the gate file to write (default: gates/<id>.yaml)")
    init.add_argument("--model", metavar="SOURCE", help="model folder, .onnx/.pt2 file, Hub id or module:callable")
    init.add_argument("--data", metavar="FILE", help="labelled data: .csv, .json, .jsonl, .parquet or image folder")
    init.add_argument("--label", metavar="COLUMN", help="the column of expected outputs (default: guessed)")
    init.add_argument("--input", metavar="COLUMN", action="append", help="input column(s) (default: guessed)")
    init.add_argument("--task", help="the model's task (default: read from the model where possible)")
    init.add_argument("--backend", help="transformers, torch or onnx (default: from the model source)")
    init.add_argument("--id", dest="model_id", help="the model's name in reports (default: from the source)")
    init.add_argument("--reference", metavar="NPY", help="feature-extraction: reference embeddings for cosine")
    init.add_argument("--schema", metavar="URL_OR_PATH", help="the schema for the yaml-language-server line")
    init.set_defaults(handler=_cmd_init)


def _cmd_init(args: argparse.Namespace) -> int:
    from modelcheck.gatefile.scaffold import Answers, ask, write_gate

    keys = ("model", "data", "label", "input", "task", "backend", "model_id", "reference", "schema")
    answers = Answers(**{key: getattr(args, key) for key in keys})
    path, summary = write_gate(answers, args.path, ask=ask if sys.stdin.isatty() else None)
    print(f"wrote {path}: {summary}")
    return EXIT_OK
