"""The ``modelcheck`` command: validate gate files, judge and summarise results reports.

Exit statuses (the contract in PRODUCT.md)::

    validate   0 every gate file is valid          2 a file is invalid, or none was found
    init       0 written                           2 usage (missing answer, file exists, nothing to infer)
    schema     0 printed
    gate       0 pass   1 fail   3 inconclusive    2 usage (bad report, unknown stage)
    summary    0 written                           2 bad report / cannot write
    report merge  0 written                        2 refused (duplicate gate, mixed stage/version, missing shard)
    report html   0 written                        2 usage (bad report, cannot write, the html extra missing)
    publish    0 published (or already)   1 refused   2 usage   4 the Hub kept failing (a rerun finishes)

Every error modelcheck raises on purpose is printed as ``modelcheck: error: <message>``, never as a
traceback; ``--debug`` (or ``MODELCHECK_DEBUG=1``) shows the traceback of an unexpected error.
This module imports no ML framework.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import TextIO

from modelcheck.errors import ModelcheckError, ReportError
from modelcheck.report.document import modelcheck_version, read_report
from modelcheck.report.summary import format_measurement, format_threshold, markdown
from modelcheck.report.text import COLUMN_CHARS, MESSAGE_CHARS, guarded_output, plain, write_text_file

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INCONCLUSIVE = 3
#: An unexpected error inside modelcheck (EX_SOFTWARE of sysexits.h): a bug to report.
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

DEFAULT_GATES = "gates"
#: --log-level choices; -v is INFO, -vv DEBUG, and without either only errors are printed (as messages).
LOG_LEVELS = ("ERROR", "INFO", "DEBUG", "WARNING")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="modelcheck",
        description="Quality gates for ML models: validate gate files, judge and summarise results reports.",
    )
    parser.add_argument("--version", action="version", version=f"modelcheck {modelcheck_version()}")
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False,
        help="show the traceback of an unexpected error (also: MODELCHECK_DEBUG=1)",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log what modelcheck does (-vv: debug)")
    parser.add_argument("--log-level", choices=LOG_LEVELS, type=str.upper, help="log at this level (default: quiet)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="schema-check gate files",
        description="Schema-check gate files. Folders are searched for *.yaml and *.yml files.",
    )
    validate.add_argument("paths", nargs="*", metavar="PATH", help=f"gate files or folders (default: {DEFAULT_GATES})")
    validate.set_defaults(handler=_cmd_validate)

    gate = commands.add_parser(
        "gate",
        help="judge a results report for a stage",
        description=(
            "Judge a results report for a stage: exit 0 if every check of the stage passed, 1 if one "
            "failed, 3 if none failed but one could not run, was skipped or not run, or pytest stopped early "
            "(inconclusive)."
        ),
    )
    gate.add_argument("--stage", required=True, help="the stage to judge, e.g. merge or deploy")
    gate.add_argument("report", metavar="REPORT", help="a report written by pytest --modelcheck-report")
    gate.add_argument(
        "--skipped",
        choices=("inconclusive", "fail"),
        default="inconclusive",
        help="what a skipped check of the stage (device absent, nothing measured) makes it: inconclusive "
        "(exit 3, the default) or fail (exit 1); it never passes",
    )
    gate.set_defaults(handler=_cmd_gate)

    summary = commands.add_parser(
        "summary",
        help="Markdown summary of a results report",
        description="Print a report as GitHub Markdown, or append it to a file such as $GITHUB_STEP_SUMMARY.",
    )
    summary.add_argument("report", metavar="REPORT", help="a report written by pytest --modelcheck-report")
    summary.add_argument("--output", "-o", metavar="FILE", help="append to FILE instead of printing")
    summary.set_defaults(handler=_cmd_summary)

    baseline = commands.add_parser("baseline", help="manage the baselines regression checks read")
    baseline_commands = baseline.add_subparsers(dest="baseline_command", metavar="ACTION", required=True)
    update = baseline_commands.add_parser(
        "update",
        help="write baselines from a report",
        description=(
            "Write <dir>/<model id>.json and .npz for every gate of REPORT, from the per-example outputs saved "
            "next to it (pytest --modelcheck-report REPORT saves them in REPORT's .outputs folder)."
        ),
    )
    update.add_argument("report", metavar="REPORT", help="a report written by pytest --modelcheck-report")
    update.add_argument("--dir", default="baselines", help="where to write the baselines (default: baselines)")
    update.set_defaults(handler=_cmd_baseline_update)

    from modelcheck.hub.cli import add_publish_parser  # no huggingface_hub import until it runs

    add_publish_parser(commands)

    export = commands.add_parser("export", help="export a gate's model to another format")
    export_commands = export.add_subparsers(dest="export_format", metavar="FORMAT", required=True)
    onnx = export_commands.add_parser(
        "onnx",
        help="export a gate's model to ONNX",
        description="Load GATE's model and export it to DIR/model.onnx (with its tokenizer for text models).",
    )
    onnx.add_argument("gate", metavar="GATE", help="a gate file")
    onnx.add_argument("--output", "-o", default="onnx", metavar="DIR", help="folder to write (default: onnx)")
    onnx.set_defaults(handler=_cmd_export_onnx)

    from modelcheck.gatefile.cli import add_commands as add_gatefile_commands
    from modelcheck.github.cli import add_commands as add_github_commands
    from modelcheck.view.cli import add_report_commands  # report merge, report html

    for add_commands in (add_github_commands, add_gatefile_commands, add_report_commands):
        add_commands(commands)
    return parser


@guarded_output()  # reports, gate files and data are untrusted: no line printed may be a workflow command
def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors (2), --help and --version (0)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
    _configure_logging(args.log_level or LOG_LEVELS[min(args.verbose, 2)])
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    debug = args.debug or os.environ.get("MODELCHECK_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        status: int = handler(args)
    except ModelcheckError as exc:
        print(f"modelcheck: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a path that cannot be read or written: name it and the reason
        print(f"modelcheck: error: {_os_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("modelcheck: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if debug:
            traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        hint = "" if debug else "; run with --debug (or MODELCHECK_DEBUG=1) for the traceback"
        print(
            f"modelcheck: internal error: {type(exc).__name__}: {first} — please report this{hint}",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    return status


def _os_error(exc: OSError) -> str:
    """``path: reason`` for an OSError (``FileExistsError``, ``PermissionError``, ``IsADirectoryError``, ...)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {reason}" if paths else reason


def _configure_logging(level: str) -> None:
    """Show the ``modelcheck`` logger's records at ``level`` and above on stderr (quiet by default)."""
    logger = logging.getLogger("modelcheck")
    for old in [h for h in logger.handlers if h.get_name() == "modelcheck-cli"]:  # main() called again
        logger.removeHandler(old)
    if level == "ERROR":
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name("modelcheck-cli")
    handler.setFormatter(logging.Formatter("modelcheck: %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


# -- validate -------------------------------------------------------------------------------------


def _cmd_validate(args: argparse.Namespace) -> int:
    from modelcheck.gatefile import iter_gate_files, load_gate

    given = [Path(p) for p in (args.paths or [DEFAULT_GATES])]
    missing = [p for p in given if not _exists(p) and p.suffix not in (".yaml", ".yml")]
    files = list(iter_gate_files([p for p in given if p not in missing]))
    if not files:
        looked = ", ".join(f"{p} (does not exist)" if p in missing else str(p) for p in given)
        print(
            f"modelcheck: error: no gate files found in {looked}; looked for *.yaml and *.yml files. "
            "Pass the gate files or folders to check: modelcheck validate PATH...",
            file=sys.stderr,
        )
        return EXIT_USAGE
    invalid = 0
    for path in missing:
        invalid += 1
        print(f"error {path}: no such file or folder")
    for path in files:
        try:
            load_gate(path, display_path=str(path))
        except ModelcheckError as exc:
            invalid += 1
            print(f"error {exc}")
        else:
            print(f"ok    {path}")
    total = len(files) + len(missing)
    if invalid:
        print(f"{invalid} of {total} gate file{'s' if total != 1 else ''} invalid")
        return EXIT_USAGE
    print(f"{total} gate file{'s' if total != 1 else ''} valid")
    return EXIT_OK


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long, a NUL byte: load_gate says why
        return path.suffix in (".yaml", ".yml")


# -- gate -----------------------------------------------------------------------------------------


def _cmd_gate(args: argparse.Namespace) -> int:
    from modelcheck.github.judge import check_stage, judge

    stage: str = args.stage
    report = read_report(args.report)
    gates = report["gates"]
    check_stage(report, stage, source=args.report)
    result = judge(report, stage, skipped=args.skipped)
    if not gates:
        print(f"stage {stage}: INCONCLUSIVE — {'; '.join(result.reasons)} (in {args.report})")
        return EXIT_INCONCLUSIVE

    chosen = {id(row.check) for row in result.checks if row.judged}
    judged = [(gate, check) for gate in gates for check in gate.get("checks", []) if id(check) in chosen]
    errored_gates = [gate for gate in gates if gate.get("error") and (not gate["stages"] or stage in gate["stages"])]
    rows = [(plain(f"{gate['file']}::{check['name']}", COLUMN_CHARS), check) for gate, check in judged]
    gate_errors = {gate["file"]: gate["error"] for gate in errored_gates}
    # Columns sized to their content (at most COLUMN_CHARS wide), so a value with its interval keeps the table in line.
    cells = [(plain(check["status"], 20).upper(), name, plain(format_measurement(check), 40)) for name, check in rows]
    widths = [max((len(cell[column]) for cell in cells), default=0) for column in range(3)]
    for (word, name, value), (_, check) in zip(cells, rows, strict=True):
        threshold = plain(format_threshold(check.get("threshold")), COLUMN_CHARS)
        print(f"{word:<{max(8, widths[0])}} {name:<{widths[1]}}  {value:>{widths[2]}}  {threshold}".rstrip())

    # Why each judged check failed or errored; a gate-wide error once, not once per check.
    messages = [f"  {plain(file, COLUMN_CHARS)}: {plain(error, MESSAGE_CHARS)}" for file, error in gate_errors.items()]
    for (gate, check), (name, _) in zip(judged, rows, strict=True):
        message = check.get("message")
        if (
            check["status"] in ("failed", "error", "inconclusive", "skipped")
            and message
            and message != gate_errors.get(gate["file"])
        ):
            messages.append(f"  {name}: {plain(message, MESSAGE_CHARS)}")
    if messages:
        print()
        print("\n".join(messages))

    counts = result.counts()
    shown = ", ".join(f"{counts[word]} {word}" for word in ("passed", "failed", "error", "inconclusive", "skipped"))
    shown += f", {counts['not run']} not run" if counts["not run"] else ""
    outside = result.outside
    extra = f"; {outside} check{'s' if outside != 1 else ''} outside the stage not judged" if outside else ""
    print()
    if result.status == "passed":
        what = shown if result.judged else "no checks in this stage"
        print(f"stage {stage}: PASSED — {what}{extra}")
        return EXIT_OK
    why = "".join(f"; {reason}" for reason in result.reasons)
    print(f"stage {stage}: {result.status.upper()} — {shown}{extra}{why}")
    return EXIT_FAILED if result.status == "failed" else EXIT_INCONCLUSIVE


# -- baseline update / export ------------------------------------------------------------------------


def _cmd_baseline_update(args: argparse.Namespace) -> int:
    from modelcheck.report.baselines import update_baselines

    report = read_report(args.report)
    folder = Path(args.dir)
    if folder.exists() and not folder.is_dir():
        raise ReportError(f"--dir {folder} is a file, not a folder; give the folder baselines go to")
    written = update_baselines(report, Path(args.report), folder)
    if not written:
        print(
            f"modelcheck: error: {args.report} holds no per-example outputs of a gate that ran; write the report "
            "with pytest --modelcheck --modelcheck-report PATH",
            file=sys.stderr,
        )
        return EXIT_USAGE
    for path in written:
        print(f"wrote {path} (+ {path.with_suffix('.npz').name})")
    return EXIT_OK


def _cmd_export_onnx(args: argparse.Namespace) -> int:
    from modelcheck.gatefile import load_gate
    from modelcheck.models.cache import ModelCache
    from modelcheck.models.export import export_onnx

    out = Path(args.output)
    _check_output_folder(out, "--output")
    gate = load_gate(args.gate)
    cache = ModelCache()
    try:
        path = export_onnx(cache.get(gate.model), out)
    finally:
        cache.close()
    print(f"wrote {path}")
    return EXIT_OK


def _check_output_folder(folder: Path, option: str) -> None:
    """Before any work: ``folder`` is (or can be made) a writable folder; ReportError names it otherwise."""
    import tempfile

    if folder.exists() and not folder.is_dir():
        raise ReportError(f"{option} {folder} is a file, not a folder; give a folder to write into")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".modelcheck-probe-")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise ReportError(
            f"{option} {folder}: cannot write there ({_os_error(exc)}); choose a writable folder"
        ) from None


# -- summary --------------------------------------------------------------------------------------


def _cmd_summary(args: argparse.Namespace) -> int:
    report = read_report(args.report)
    text = markdown(report)
    if args.output is None:
        _write(sys.stdout, text)
        return EXIT_OK
    try:  # a regular file only: a FIFO or device would block (or take) the write
        write_text_file(args.output, text, append=True)
    except OSError as exc:
        raise ReportError(f"cannot append the summary to {args.output} ({exc.strerror or exc}); give a file") from None
    print(f"summary of {args.report} appended to {args.output}")
    return EXIT_OK


def _write(stream: TextIO, text: str) -> None:
    try:
        stream.write(text)
    except UnicodeEncodeError:  # a console that cannot show the emoji
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write(text.encode(encoding, errors="replace").decode(encoding))
    if not text.endswith("\n"):
        stream.write("\n")


if __name__ == "__main__":
    raise SystemExit(main())
