"""Human-readable views of a results report: GitHub Markdown and terminal rows.

``markdown(report)`` is what ``modelcheck summary`` appends to ``$GITHUB_STEP_SUMMARY`` or posts as a PR
comment; ``terminal_rows``, ``format_value``, ``format_threshold`` and ``status_word`` are shared with the
pytest terminal summary and ``modelcheck gate`` so every view words a result the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from modelcheck.report.numbers import bound_text, interval_text, value_text
from modelcheck.report.text import md_code, md_text

EMOJI = {
    "passed": "✅",
    "failed": "❌",
    "warned": "⚠️",
    "error": "💥",
    "skipped": "⏭️",
    "inconclusive": "❔",
    "not run": "➖",
}
NONE = "—"

#: Threshold keys ``min_<x>``/``max_<x>`` whose suffix is a unit rather than a quantity.
_UNITS = {"ms": "ms", "mb": "MiB", "gb": "GiB", "s": "s", "ratio": "x"}


def status_word(check: Mapping[str, Any]) -> str:
    """passed / failed / warned (failed, not blocking) / error / skipped."""
    status = str(check.get("status", "error"))
    if status == "failed" and check.get("blocking") is False:
        return "warned"
    return status


def format_status(word: str) -> str:
    """``✅ passed``-style status with its emoji."""
    emoji = EMOJI.get(word)
    return f"{emoji} {word}" if emoji else word


def format_value(value: Any) -> str:
    """A measured value in 4 significant digits (0.91254 -> ``0.9125``, 1.0 -> ``1.0``); ``—`` for none."""
    if value is None:
        return NONE
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if abs(value) >= 1000:
            return f"{value:.0f}"
        text = f"{value:.4g}"
        return text if any(c in text for c in ".en") else text + ".0"
    return str(value)


def format_threshold(threshold: Mapping[str, Any] | None) -> str:
    """Bounds as a reader says them: ``>= 0.9``, ``<= 40 ms``, ``0.1 .. 0.9``, ``drop <= 0.01``."""
    if not threshold:
        return NONE
    if set(threshold) == {"min", "max"}:
        return f"{_bound(threshold['min'])} .. {_bound(threshold['max'])}"
    parts = []
    for key, bound in threshold.items():
        shown = _bound(bound)
        if key in ("min", "max"):
            parts.append(f"{'>=' if key == 'min' else '<='} {shown}")
        elif key.startswith(("min_", "max_")):
            op = ">=" if key.startswith("min_") else "<="
            what = key[4:]
            unit = _UNITS.get(what)
            if unit == "x":
                parts.append(f"{op} {shown}x baseline")
            elif unit:
                parts.append(f"{op} {shown} {unit}")
            else:
                parts.append(f"{what.replace('_', ' ')} {op} {shown}")
        else:
            parts.append(f"{key.replace('_', ' ')} = {shown}")
    return ", ".join(parts)


def _bound(bound: Any) -> str:
    return bound_text(bound) if isinstance(bound, (int, float)) and not isinstance(bound, bool) else format_value(bound)


def format_measurement(check: Mapping[str, Any]) -> str:
    """The value (with its unit, where the check gives one) and its confidence interval where there is one:
    ``0.9125 (CI 0.90–0.92)``, ``4.16 ms (CI 3.79–5.28)``."""
    value, threshold = check.get("value"), check.get("threshold") or {}
    if isinstance(value, float) and not isinstance(value, bool) and isinstance(threshold, Mapping):
        text = value_text(value, [b for b in threshold.values() if isinstance(b, (int, float))])
    else:
        text = format_value(value)
    details = check.get("details")
    unit = details.get("unit") if isinstance(details, Mapping) else None
    if check.get("value") is not None and unit:
        text += "x" if unit == "x" else f" {unit}"
    ci = check.get("ci")
    if check.get("value") is not None and isinstance(ci, (list, tuple)) and len(ci) == 2:
        numeric = all(isinstance(end, (int, float)) and not isinstance(end, bool) for end in ci)
        shown = interval_text(float(ci[0]), float(ci[1])) if numeric else f"{format_value(ci[0])}–{format_value(ci[1])}"
        text += f" (CI {shown})"
    return text


def terminal_rows(report: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """One ``(gate file::check, value, threshold, status word)`` row per check in the report.

    A gate that could not run and has no checks gets one ``(gate file, —, —, error)`` row.
    """
    rows: list[tuple[str, str, str, str]] = []
    for gate in report.get("gates", []):
        checks = gate.get("checks", [])
        if not checks and gate.get("error"):
            rows.append((str(gate["file"]), NONE, NONE, "error"))
        for check in checks:
            rows.append(
                (
                    f"{gate['file']}::{check['name']}",
                    format_measurement(check),
                    format_threshold(check.get("threshold")),
                    status_word(check),
                )
            )
    return rows


def verdict(report: Mapping[str, Any]) -> str:
    """The run as one word: failed (a blocking check failed), error (one could not run or decide, a blocking
    check was skipped, pytest stopped before the gates ran, or no gate ran) or passed."""
    counts = report.get("totals", {})
    gates = report.get("gates", [])
    if counts.get("failed", 0):
        return "failed"
    if (
        counts.get("error", 0)
        or counts.get("inconclusive", 0)
        or counts.get("not_run", 0)
        or any(gate.get("error") for gate in gates)
        or any(c.get("status") == "skipped" and c.get("blocking", True) for g in gates for c in g.get("checks", []))
        or report.get("stopped")
        or not gates
    ):
        return "error"
    return "passed"


#: A cell or a message of the Markdown summary longer than this is cut (the report holds all of it).
CELL_CHARS = 300
MESSAGE_CHARS = 2000


def _cell(value: Any, limit: int = CELL_CHARS) -> str:
    """Untrusted text as a Markdown table cell or inline text: one line, no live markup (see report.text)."""
    return md_text(value, limit)


def _code(value: Any, *, in_table: bool = False) -> str:
    return md_code(value, CELL_CHARS, in_table=in_table)


def _short_hash(digest: Any) -> str:
    return _code(str(digest)[:12], in_table=True) if digest else NONE


def _size(size: Any) -> str:
    if not isinstance(size, int):
        return NONE
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{size} B"  # pragma: no cover


def markdown(report: Mapping[str, Any]) -> str:
    """GitHub-flavoured Markdown of a report: headline, one table per gate, messages, provenance."""
    counts = report.get("totals", {})
    outcome = verdict(report)
    headline = {"failed": "failed", "error": "inconclusive", "passed": "passed"}[outcome]
    emoji = EMOJI["passed" if outcome == "passed" else outcome]
    stage = report.get("stage")
    lines = [f"## {emoji} modelcheck: {headline}" + (f" (stage {_code(stage)})" if stage else ""), ""]
    order = ("passed", "failed", "warned", "error", "inconclusive", "skipped", "not run")
    lines.append(" · ".join(f"{EMOJI[key]} {counts.get(key.replace(' ', '_'), 0)} {key}" for key in order))
    lines.append("")
    if report.get("stopped"):  # pytest ended before every gate check ran: say why (one line, escaped)
        from modelcheck.report.stopped import stopped_text

        lines += [f"> {EMOJI['error']} {_cell(stopped_text(report['stopped'])).replace('<', '&lt;')}", ""]

    for gate in report.get("gates", []):
        lines.extend(_gate_section(gate))

    lines.extend(_provenance(report))
    return "\n".join(lines).rstrip("\n") + "\n"


def _gate_section(gate: Mapping[str, Any]) -> list[str]:
    model = gate.get("model", {})
    lines = [f"### {_code(gate['file'])}" + (f" — model {_code(model['id'])}" if model.get("id") else ""), ""]
    if gate.get("error"):
        lines += [f"> {EMOJI['error']} **the gate could not run:** {_cell(gate['error'], MESSAGE_CHARS)}", ""]
    checks = gate.get("checks", [])
    if checks:
        lines.append("| check | stages | value | threshold | status |")
        lines.append("|---|---|---|---|---|")
        for check in checks:
            stages = ", ".join(check.get("stages") or []) or NONE
            lines.append(
                f"| {_cell(check['name'])} | {_cell(stages)} | {_cell(format_measurement(check))} | "
                f"{_cell(format_threshold(check.get('threshold')))} | {_cell(format_status(status_word(check)))} |"
            )
        lines.append("")
    problems = [
        c
        for c in checks
        if status_word(c) in ("failed", "warned", "error") and c.get("message") and c["message"] != gate.get("error")
    ]
    for check in problems:
        word = status_word(check)
        lines.append(
            f"- {EMOJI.get(word, '')} **{_cell(check['name'])}** ({_cell(word)}): "
            f"{_cell(check['message'], MESSAGE_CHARS)}"
        )
    if problems:
        lines.append("")
    return lines


def _provenance(report: Mapping[str, Any]) -> list[str]:
    lines = ["<details><summary>Models, data and environment</summary>", ""]
    for gate in report.get("gates", []):
        model, data = gate.get("model", {}), gate.get("data", {})
        lines.append(f"**{_code(gate['file'])}**")
        lines.append("")
        if not model and not data:
            lines += ["- not run (see the error above)", ""]
            continue
        device = model.get("device") or NONE
        lines.append(
            f"- model {_code(model.get('id', NONE))}: {_code(model.get('source', NONE))} "
            f"({_cell(model.get('backend', NONE))}, {_cell(model.get('task', NONE))}, device {_cell(device)}, "
            f"requested {_cell(model.get('device_requested', NONE))})"
        )
        for record in model.get("files", []):
            digest, size = _short_hash(record.get("sha256")), _size(record.get("size"))
            lines.append(f"  - {_code(record.get('path'))} sha256 {digest}, {size}")
        rows = data.get("rows")
        lines.append(
            f"- data {_code(data.get('source', NONE))} (split {_cell(data.get('split') or NONE)}, "
            f"input {_code(data.get('input', NONE))}, label {_code(data.get('label', NONE))}, "
            f"{_cell(rows if rows is not None else NONE)} rows"
            + (f", limit {_cell(data['limit'])}" if data.get("limit") is not None else "")
            + f"): sha256 {_short_hash(data.get('sha256'))}"
        )
        lines.append("")
    env = report.get("environment", {})
    git = env.get("git") or {}
    commit = git.get("commit")
    git_text = NONE
    if commit:
        git_text = _code(str(commit)[:12], in_table=True)
        if git.get("branch"):
            git_text += f" on {_code(git['branch'], in_table=True)}"
        if git.get("dirty"):
            git_text += " (uncommitted changes)"
    packages = env.get("packages") or {}
    installed = ", ".join(f"{name} {version}" for name, version in packages.items() if version)
    lines += [
        "| | |",
        "|---|---|",
        f"| modelcheck | {_cell(report.get('modelcheck_version', NONE))} |",
        f"| created | {_cell(report.get('created_at', NONE))} |",
        f"| python | {_cell(env.get('implementation', ''))} {_cell(env.get('python', NONE))} |",
        f"| platform | {_cell(env.get('platform', NONE))} ({_cell(env.get('machine', ''))}) |",
        f"| cpu | {_cell(env.get('cpu') or NONE)} × {_cell(env.get('cpu_count') or NONE)} |",
    ]
    if env.get("gpus"):
        lines.append(f"| gpu | {_cell(', '.join(env['gpus']))} |")
    lines += [
        f"| git | {git_text} |",
        f"| packages | {_cell(installed or NONE, MESSAGE_CHARS)} |",
        "",
        "</details>",
    ]
    return lines
