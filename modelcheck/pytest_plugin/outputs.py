"""Where ``--modelcheck-report`` and ``--modelcheck-html`` write: checked before any gate runs (usage errors)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from modelcheck.report.baselines import outputs_dir


def report_path(base: Path, given: str, option: str = "--modelcheck-report") -> Path:
    try:
        if "\0" in given:
            raise ValueError("the path holds a NUL byte")
        return Path(base, given).resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise pytest.UsageError(f"{option} {given!r}: not a usable path ({exc})") from None


def html_path(base: Path, given: str) -> Path:
    """--modelcheck-html's path, checked before any gate runs: a file in a folder, and matplotlib installed."""
    from modelcheck.view import HtmlUnavailableError, require_html

    try:
        require_html("--modelcheck-html")
    except HtmlUnavailableError as exc:
        raise pytest.UsageError(str(exc)) from None
    path = report_path(base, given, "--modelcheck-html")
    if path.is_dir():
        raise pytest.UsageError(f"--modelcheck-html {given} is a folder; give a file path, e.g. report.html")
    existing = next((p for p in (path.parent, *path.parent.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise pytest.UsageError(f"--modelcheck-html {given}: {existing} is not a folder")
    return path


def check_report_path(report: Path | None) -> None:
    """Before any gate runs: the report (and its outputs folder) can be written where asked."""
    if report is None:
        return
    try:
        _check_writable(report)
    except OSError as exc:  # a name too long, a loop: whatever the system says, with the path
        raise pytest.UsageError(f"--modelcheck-report {report}: not a usable path ({exc.strerror or exc})") from None


def _check_writable(report: Path) -> None:
    if report.is_dir():
        raise pytest.UsageError(f"--modelcheck-report {report} is a folder; give a file path")
    parent = report.parent
    existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise pytest.UsageError(f"--modelcheck-report {report}: {existing} is not a folder")
    outputs = outputs_dir(report)
    if outputs.exists() and not outputs.is_dir():
        raise pytest.UsageError(
            f"--modelcheck-report {report}: {outputs} (where the per-example outputs go) is not "
            "a folder; move it away or choose another report path"
        )
    try:  # the only honest test of writability (permissions, read-only mounts, ACLs): write a file
        probe, name = tempfile.mkstemp(dir=existing, prefix=".modelcheck-probe-")
        os.close(probe)
        os.unlink(name)
    except OSError as exc:
        raise pytest.UsageError(
            f"--modelcheck-report {report}: cannot write in {existing} ({exc.strerror or exc}); "
            "choose a writable folder"
        ) from None
