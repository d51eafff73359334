"""The report's ``stopped`` record as text, and untrusted report text as one safe line.

``stopped`` (written by the pytest plugin when pytest ended before every gate check ran) is shown by
``modelcheck gate``, the job summary, the comment and ``modelcheck summary``, all through :func:`stopped_text`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["one_line", "stopped_text"]


def one_line(value: Any) -> str:
    """``value`` as one line of plain text: control characters (CR, LF, ESC, ...) become spaces, runs of space one.

    Names and messages in a report come from untrusted hands (a pull request's gate files and code); a line
    break in them must never start a new log line (where ``::`` would be a workflow command).
    """
    return " ".join(_CONTROL.sub(" ", str(value)).split())


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def stopped_text(stopped: Mapping[str, Any], limit: int = 3) -> str:
    """``pytest stopped early (exit 2): 1 error during collection — tests/test_x.py: ImportError: ...``."""
    errors = [e for e in stopped.get("errors") or () if isinstance(e, Mapping)]
    shown = "; ".join(
        f"{one_line(e.get('nodeid') or '?')}: {one_line(e.get('message') or '?')}" for e in errors[:limit]
    )
    more = f"; and {len(errors) - limit} more" if len(errors) > limit else ""
    reason = one_line(stopped.get("reason") or "interrupted")
    text = f"pytest stopped early (exit {one_line(stopped.get('exit_status'))}): {reason}"
    return f"{text} — {shown}{more}" if shown else text
