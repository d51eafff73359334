"""Why a ``pytest --modelcheck`` run ended before its gates ran: collection errors, an interrupt, ``-x``.

A test module of the user's that cannot be imported stops pytest before any test runs, gates included;
the report then holds no verdict, and without this record nothing would say why. :class:`EarlyStop`
(registered with the session) keeps each collection error's node id and first line and the reason
pytest gave, and :meth:`EarlyStop.record` turns them into the report's ``stopped`` record.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelcheck.report.stopped import one_line

#: Collection errors kept in the report (the rest are counted in the reason).
MAX_ERRORS = 20
#: Characters kept of one error's line.
MAX_LINE = 300


class EarlyStop:
    """A pytest plugin: the collection errors and the interrupt of this run."""

    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []
        self.interrupt: str | None = None

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            # one line each: a file name or message with a line break must not start a log line of its own
            self.errors.append({"nodeid": one_line(report.nodeid or "."), "message": first_line(report.longreprtext)})

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        value = excinfo.value
        if isinstance(value, pytest.Session.Interrupted):
            self.interrupt = str(value) or "interrupted"
        elif isinstance(value, KeyboardInterrupt):
            self.interrupt = "interrupted (Ctrl-C or a signal)"
        else:  # pytest.exit(...)
            self.interrupt = f"pytest.exit: {first_line(str(getattr(value, 'msg', value)))}"

    def record(self, session: pytest.Session, *, gates_ran: bool) -> dict[str, Any] | None:
        """The report's ``stopped`` record, or None when pytest did not stop before every gate check ran."""
        if gates_ran:
            return None
        status = int(session.exitstatus)
        reason = self.interrupt
        if reason is None and isinstance(session.shouldfail, str) and session.shouldfail:
            reason = session.shouldfail
        if reason is None and isinstance(session.shouldstop, str) and session.shouldstop:
            reason = session.shouldstop
        if reason is None and status == pytest.ExitCode.USAGE_ERROR:
            reason = "a usage error (pytest's message is above)"
        if reason is None and status == pytest.ExitCode.INTERNAL_ERROR:
            reason = "an internal error (pytest's message is above)"
        if reason is None and self.errors:
            reason = f"{len(self.errors)} error{'s' if len(self.errors) != 1 else ''} during collection"
        if reason is None:
            return None
        return {"reason": reason, "exit_status": status, "errors": self.errors[:MAX_ERRORS]}


def first_line(text: str) -> str:
    """The line that says what went wrong: pytest's last ``E   `` line, else the first non-empty one."""
    lines = [line.rstrip() for line in str(text).splitlines() if line.strip()]
    marked = [line[1:].strip() for line in lines if line.startswith("E ")]
    line = one_line(marked[-1] if marked else lines[0]) if lines else "no message"
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"
