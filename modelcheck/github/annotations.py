"""Workflow-command annotations on the gate file's lines: ``::error file=gates/x.yaml,line=17,title=...::msg``.

A failed check (judged by the stage) or one that errored is an ``error``, a failed check outside the stage a
``warning``, an inconclusive one a ``notice``. GitHub shows 10 of each level per step and drops the rest
without a word, so each level gets at most 10 lines: the 9 that matter most (blocking failures first) and a
10th saying how many more the job summary holds. Values are escaped as GitHub's toolkit escapes them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from modelcheck.github.judge import StageResult
from modelcheck.report.text import scrub

#: GitHub shows this many annotations of each level per step.
PER_LEVEL = 10
LEVEL = {"failed": "error", "error": "error", "warned": "warning", "inconclusive": "notice"}
MESSAGE_CHARS = 1000


def escape_data(text: str) -> str:
    """Escape a message: ANSI escapes and control characters other than CR/LF removed
    (:func:`modelcheck.report.text.scrub`), then ``%`` -> ``%25``, CR -> ``%0D``, LF -> ``%0A``."""
    return scrub(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value (``file=``, ``title=``): as data, and ``:`` -> ``%3A``, ``,`` -> ``%2C``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(level: str, message: str, **properties: Any) -> str:
    """One workflow command line; properties that are None are left out."""
    props = ",".join(f"{k}={escape_property(str(v))}" for k, v in properties.items() if v is not None)
    if len(message) > MESSAGE_CHARS:
        message = message[: MESSAGE_CHARS - 1] + "…"
    return f"::{level}{' ' + props if props else ''}::{escape_data(message)}"


def annotation_lines(result: StageResult, *, per_level: int = PER_LEVEL) -> list[str]:
    """The annotation lines for a judged report, at most ``per_level`` of each level (fold line included)."""
    by_level: dict[str, list[str]] = {"error": [], "warning": [], "notice": []}
    for gate in result.gate_errors:
        error = str(gate.get("error"))
        # An invalid gate file's message starts "<file>:<line>": point at that line.
        match = re.match(re.escape(str(gate["file"])) + r":(\d+)\b", error)
        line = int(match.group(1)) if match else None
        message = f"the gate could not run: {error}"
        by_level["error"].append(command("error", message, file=gate["file"], line=line, title=gate["file"]))
    # result.checks is ordered failed, error, inconclusive, warned: blocking failures come first.
    for row in result.checks:
        level = LEVEL.get(row.word)
        if level is None:
            continue
        message = _message(row.check, row.word, result.stage)
        by_level[level].append(command(level, message, file=row.gate["file"], line=row.line, title=row.id))
    lines: list[str] = []
    for level, items in by_level.items():
        if len(items) <= per_level:
            lines += items
            continue
        shown = per_level - 1
        lines += items[:shown]
        more = len(items) - shown
        lines.append(
            command(
                level,
                f"{more} more {level}s not annotated (GitHub shows {per_level} per step); "
                f"the job summary lists all {len(items)}",
                title=f"modelcheck: {more} more",
            )
        )
    return lines


def _message(check: Mapping[str, Any], word: str, stage: str) -> str:
    text = " ".join(str(check.get("message") or check.get("status")).split())
    if word == "warned":
        return f"{text} (not in stage {stage}: a warning)"
    if word == "inconclusive":
        return f"{text} (inconclusive in stage {stage})"
    return text
