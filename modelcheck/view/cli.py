"""``modelcheck report html REPORT [-o report.html]``: the report as one self-contained HTML page.

Exit: 0 written; 2 usage (a report that cannot be read, an output that cannot be written, or
matplotlib missing: the ``html`` extra).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from modelcheck.errors import ReportError
from modelcheck.report.document import read_report
from modelcheck.view import require_html

__all__ = ["add_html_command", "add_report_commands"]


def add_report_commands(commands: Any) -> None:
    """Register ``modelcheck report merge`` and ``modelcheck report html`` on the top-level subparsers."""
    from modelcheck.report.merge import add_commands

    add_html_command(add_commands(commands))


def add_html_command(actions: Any) -> None:
    """Register ``html`` on the ``modelcheck report`` subparsers."""
    page = actions.add_parser(
        "html",
        help="write a report as one self-contained HTML page with plots",
        description=(
            "Write REPORT as one self-contained HTML page (no network when opened; light and dark): per gate "
            "the verdict, the checks table, the model and data identity and the plot behind each check. "
            "Needs the html extra (matplotlib). Exit: 0 written, 2 usage."
        ),
    )
    page.add_argument("report", metavar="REPORT", help="a report written by pytest --modelcheck-report")
    page.add_argument(
        "-o", "--output", metavar="FILE", help="the page to write (default: REPORT with the suffix .html)"
    )
    page.set_defaults(handler=_cmd_html)


def _cmd_html(args: argparse.Namespace) -> int:
    require_html("modelcheck report html")
    output = Path(args.output) if args.output else Path(args.report).with_suffix(".html")
    if output.is_dir():
        raise ReportError(f"-o {output} is a folder; give the path of the page to write, e.g. -o report.html")
    if output.resolve() == Path(args.report).resolve():
        raise ReportError(f"-o {output} is the report itself; give another path, e.g. -o report.html")
    report = read_report(args.report)
    from modelcheck.view.page import write_html

    write_html(report, output, source=os.path.basename(args.report))
    gates = len(report["gates"])
    print(f"wrote {os.fspath(output)} ({gates} gate{'s' if gates != 1 else ''}, {output.stat().st_size} bytes)")
    return 0
