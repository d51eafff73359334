"""A results report as one self-contained HTML page: verdicts, checks tables, identities and plots.

Nothing is fetched when the page is opened (styles inline, plots inline SVG, no script), so it works
from ``file://`` and as a CI artifact. Every string from the report is escaped. The page is bounded:
at most :data:`PLOT_BUDGET` checks get plots (blocking failures first), a gate lists at most
:data:`MAX_FILES` artifact files, and a message is cut at :data:`MESSAGE_CHARS` characters.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from modelcheck.report.files import atomic_write
from modelcheck.report.summary import NONE, format_measurement, format_threshold, format_value, status_word
from modelcheck.view.plots import plots_for, records
from modelcheck.view.style import CSS

__all__ = ["COLLAPSE_FROM", "MAX_FILES", "MESSAGE_CHARS", "PLOT_BUDGET", "render_html", "write_html"]

#: Most checks of one page that get plots; the others show their numbers in the table only.
PLOT_BUDGET = 150
#: Most model files listed per gate.
MAX_FILES = 20
#: From this many gates on, gates that passed start collapsed (their plots are one click away).
COLLAPSE_FROM = 10
#: Longest message, input or text shown (characters); longer ones end in "…".
MESSAGE_CHARS = 600
#: Severity order of a check's status word: blocking failures first.
_ORDER = {"failed": 0, "error": 1, "inconclusive": 2, "warned": 3, "passed": 4, "skipped": 5, "not run": 6}
_VERDICT = {"failed": "FAILED", "error": "ERROR", "inconclusive": "INCONCLUSIVE", "warned": "PASSED WITH WARNINGS"}


def esc(value: Any) -> str:
    """``value`` as HTML text (quotes escaped too, so it is safe in attributes)."""
    return html.escape(str(value), quote=True)


def cut(value: Any, limit: int = MESSAGE_CHARS) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_html(report: Mapping[str, Any], *, source: str = "") -> str:
    """The page for ``report`` (a document as :func:`modelcheck.report.document.read_report` returns it)."""
    gates = sorted(
        enumerate(report.get("gates") or []),
        key=lambda item: (_ORDER.get(_gate_word(item[1]), 9), item[0]),
    )
    plotted = _plotted(report)
    title = f"modelcheck report{' — ' + source if source else ''}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="color-scheme" content="light dark">',
        # No script, no remote anything: the page is inert whatever the report holds.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        'img-src data:">',
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        _header(report, source),
        _index(gates),
    ]
    for position, gate in gates:
        parts.append(_gate(position, gate, plotted, len(gates)))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html(report: Mapping[str, Any], path: str | os.PathLike[str], *, source: str = "") -> None:
    """Render ``report`` and write it to ``path`` atomically (temp file + rename): never half-written."""
    atomic_write(path, render_html(report, source=source))


# -- page header ----------------------------------------------------------------------------------


def _header(report: Mapping[str, Any], source: str) -> str:
    totals = report.get("totals") or {}
    words = [(word, totals.get(word.replace(" ", "_"), 0)) for word in _ORDER]
    badges = " ".join(
        f'<span class="badge s-{esc(w.replace(" ", "-"))}" data-total="{esc(w)}">{count} {esc(w)}</span>'
        for w, count in words
        if count
    )
    env = report.get("environment") or {}
    git = env.get("git") or {}
    facts = [
        ("report", source or NONE),
        ("created", report.get("created_at")),
        ("stage", report.get("stage") or "none (every check blocks)"),
        ("modelcheck", report.get("modelcheck_version")),
        ("python", f"{env.get('python', '')} {env.get('implementation', '')}".strip()),
        ("platform", env.get("platform")),
        ("cpu", f"{env.get('cpu') or NONE} ({env.get('cpu_count') or '?'} logical)"),
        ("gpus", ", ".join(str(g) for g in env.get("gpus") or []) or NONE),
        ("git", f"{git.get('commit') or NONE} {git.get('branch') or ''}{' (dirty)' if git.get('dirty') else ''}"),
    ]
    packages = env.get("packages") or {}
    if packages:
        facts.append(("packages", ", ".join(f"{k} {v}" for k, v in sorted(packages.items()) if v)))
    shards = report.get("shards")
    if shards:
        facts.append(("shards", f"{len(shards)} reports merged"))
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(cut(v if v is not None else NONE))}</td></tr>" for k, v in facts)
    return (
        f'<header><h1>modelcheck report</h1><p class="totals">{badges or "no checks"}</p>'
        f'<details class="env"><summary>environment</summary><table class="facts">{rows}</table></details></header>'
    )


def _index(gates: Sequence[tuple[int, Mapping[str, Any]]]) -> str:
    if len(gates) < 2:
        return ""
    items = "".join(
        f'<li><a href="#gate-{position}"><span class="badge s-{esc(_gate_word(gate).replace(" ", "-"))}">'
        f"{esc(_verdict(_gate_word(gate)))}</span> {esc(gate.get('file'))}</a></li>"
        for position, gate in gates
    )
    return f'<nav><h2>{len(gates)} gates</h2><ul class="index">{items}</ul></nav>'


# -- one gate -------------------------------------------------------------------------------------


def _gate(position: int, gate: Mapping[str, Any], plotted: set[tuple[int, int]], gates_shown: int) -> str:
    word = _gate_word(gate)
    checks = sorted(
        enumerate(gate.get("checks") or []), key=lambda item: (_ORDER.get(status_word(item[1]), 9), item[0])
    )
    model = gate.get("model") or {}
    heading = (
        f'<h2><span class="badge s-{esc(word.replace(" ", "-"))}">{esc(_verdict(word))}</span> '
        f"{esc(gate.get('file'))} <small>{esc(model.get('id') or '')}</small></h2>"
    )
    body = [_verdict_block(gate), _checks_table(position, checks), _identity(gate)]
    figures = []
    for index, check in checks:
        if (position, index) not in plotted:
            continue
        try:
            drawn = plots_for(check, f"g{position}c{index}")
        except (TypeError, ValueError, KeyError, IndexError, OverflowError) as exc:  # a record no check writes
            reason = f"{type(exc).__name__}: {cut(exc, 200)}"
            figures.append(
                f'<p class="no-plot">{esc(check.get("name"))}: no plot, its details do not read ({esc(reason)})</p>'
            )
            continue
        for caption, svg in drawn:
            figures.append(
                f'<figure class="plot" data-check="{esc(check.get("name"))}" data-kind="{esc(check.get("kind"))}">'
                f"<figcaption><b>{esc(check.get('name'))}</b> — {esc(caption)}</figcaption>{svg}</figure>"
            )
    if figures:
        body.append(f'<div class="plots">{"".join(figures)}</div>')
    body += [_worst_rows(check) for _, check in checks]
    is_open = " open" if word not in ("passed", "skipped", "not run") or gates_shown < COLLAPSE_FROM else ""
    return (
        f'<section class="gate" id="gate-{position}" data-file="{esc(gate.get("file"))}" data-verdict="{esc(word)}">'
        f"<details{is_open}><summary>{heading}</summary>{''.join(body)}</details></section>"
    )


def _gate_word(gate: Mapping[str, Any]) -> str:
    """The gate's worst status word (``error`` for a gate that could not run)."""
    if gate.get("error"):
        return "error"
    words = [status_word(check) for check in gate.get("checks") or []]
    return min(words, key=lambda w: _ORDER.get(w, 9)) if words else "not run"


def _verdict(word: str) -> str:
    return _VERDICT.get(word, word.upper())


def _verdict_block(gate: Mapping[str, Any]) -> str:
    lines = []
    if gate.get("error"):
        lines.append(f'<p class="gate-error"><b>could not run:</b> {esc(cut(gate["error"]))}</p>')
    stages = gate.get("stages") or {}
    checks = gate.get("checks") or []
    if stages:
        by_name = {c.get("name"): c for c in checks}
        items = []
        for stage, names in stages.items():
            words = [str(by_name[n].get("status")) if n in by_name else "not run" for n in names]  # warned: failed
            failed = [n for n, w in zip(names, words, strict=True) if w in ("failed", "error", "inconclusive")]
            worst = "failed" if failed else "passed"
            listed = f": {esc(', '.join(failed))}" if failed else ""
            count = f"{len(names)} check{'s' if len(names) != 1 else ''}"
            items.append(f'<li><span class="badge s-{worst}">{esc(stage)}</span> {count}{listed}</li>')
        lines.append(f'<ul class="stages">{"".join(items)}</ul>')
    blocking = [c for c in checks if c.get("status") == "failed" and c.get("blocking")]
    other = [c for c in checks if status_word(c) in ("error", "inconclusive", "warned")]
    for title, group in (("blocking failures", blocking), ("errors, inconclusive checks and warnings", other)):
        if group:
            listed_checks = "".join(
                f'<li><b>{esc(c.get("name"))}</b> <span class="badge s-{esc(status_word(c))}">{esc(status_word(c))}'
                f"</span> {esc(cut(c.get('message') or ''))}</li>"
                for c in group
            )
            lines.append(f'<div class="why"><h3>{esc(title)}</h3><ul>{listed_checks}</ul></div>')
    return "".join(lines)


def _checks_table(position: int, checks: Sequence[tuple[int, Mapping[str, Any]]]) -> str:
    if not checks:
        return ""
    rows = []
    for index, check in checks:
        word = status_word(check)
        css = f"s-{esc(word.replace(' ', '-'))}"
        value = check.get("value")
        interval = check.get("ci")
        ci_text = f"{format_value(interval[0])} – {format_value(interval[1])}" if interval else NONE
        ci_data = f' data-ci="{esc(_exact(interval[0]))} {esc(_exact(interval[1]))}"' if interval else ""
        stages = ", ".join(check.get("stages") or []) or NONE
        rows.append(
            f'<tr class="{css}" id="g{position}c{index}" data-check="{esc(check.get("name"))}">'
            f"<td>{esc(check.get('name'))}</td><td>{esc(check.get('kind'))}</td>"
            f'<td class="status"><span class="badge {css}">{esc(word)}</span></td>'
            f'<td class="num" data-value="{esc(_exact(value))}">{esc(format_measurement({**check, "ci": None}))}</td>'
            f'<td class="num">{esc(format_threshold(check.get("threshold")))}</td>'
            f'<td class="num"{ci_data}>{esc(ci_text)}</td>'
            f'<td class="num">{esc(check.get("n") if check.get("n") is not None else NONE)}</td>'
            f"<td>{esc(stages)}{'' if check.get('blocking') else ' <small>(not blocking)</small>'}</td></tr>"
        )
        if check.get("message"):
            rows.append(f'<tr class="msg {css}"><td colspan="8">{esc(cut(check["message"]))}</td></tr>')
    head = "".join(f"<th>{h}</th>" for h in ("check", "kind", "status", "value", "threshold", "CI", "n", "stages"))
    return f'<table class="checks"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _exact(value: Any) -> str:
    """A number as JSON writes it (the report's own digits), for the DOM's data attributes."""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return "" if value is None else str(value)


def _identity(gate: Mapping[str, Any]) -> str:
    model, data = gate.get("model") or {}, gate.get("data") or {}
    facts = [
        ("model", model.get("id")),
        ("source", model.get("source")),
        ("backend / task", f"{model.get('backend') or NONE} / {model.get('task') or NONE}"),
        ("device", f"{model.get('device') or NONE} (asked: {model.get('device_requested') or NONE})"),
        ("data", f"{data.get('source') or NONE}{' split ' + str(data['split']) if data.get('split') else ''}"),
        ("rows", data.get("rows")),
        ("data sha256", data.get("sha256")),
        ("gate file sha256", gate.get("gate_sha256")),
    ]
    rows = "".join(
        f"<tr><th>{esc(k)}</th><td><code>{esc(cut(v))}</code></td></tr>" for k, v in facts if v not in (None, "")
    )
    files = model.get("files") or []
    listed = "".join(
        f"<tr><td><code>{esc(cut(f.get('path'), 200))}</code></td><td><code>{esc(f.get('sha256'))}</code></td>"
        f'<td class="num">{esc(f.get("size"))}</td></tr>'
        for f in files[:MAX_FILES]
    )
    more = f"<p>… and {len(files) - MAX_FILES} more files</p>" if len(files) > MAX_FILES else ""
    file_table = (
        f'<table class="files"><thead><tr><th>model file</th><th>sha256</th><th>bytes</th></tr></thead>'
        f"<tbody>{listed}</tbody></table>{more}"
        if files
        else ""
    )
    return (
        f'<details class="identity"><summary>model and data</summary><table class="facts">{rows}</table>'
        f"{file_table}</details>"
    )


def _worst_rows(check: Mapping[str, Any]) -> str:
    """A parity check's worst rows: row, difference, labels, texts and inputs (cut and escaped)."""
    details = check.get("details") or {}
    worst = records(details.get("worst")) if check.get("kind") == "parity" else []
    if not worst:
        return ""
    columns = [c for c in ("row", "abs_diff", "cosine", "labels", "texts", "input") if any(c in r for r in worst)]
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(cut(_cell(row.get(c)), 200))}</td>" for c in columns) + "</tr>" for row in worst
    )
    return (
        f'<div class="worst" data-check="{esc(check.get("name"))}"><h3>{esc(check.get("name"))}: worst rows</h3>'
        f'<table class="checks"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return format_value(value)
    if isinstance(value, list):
        return " → ".join(_cell(v) for v in value)
    return NONE if value is None else str(value)


def _plotted(report: Mapping[str, Any]) -> set[tuple[int, int]]:
    """``(gate, check)`` positions that get plots: at most PLOT_BUDGET, blocking failures first."""
    candidates = [
        (_ORDER.get(status_word(check), 9), gate_index, check_index)
        for gate_index, gate in enumerate(report.get("gates") or [])
        for check_index, check in enumerate(gate.get("checks") or [])
        if check.get("status") != "not run"
    ]
    return {(g, c) for _, g, c in sorted(candidates)[:PLOT_BUDGET]}
