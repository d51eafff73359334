"""The job summary: a report as GitHub Markdown for ``$GITHUB_STEP_SUMMARY``, within GitHub's 1 MiB per step.

Layout: a status line and counts; Mermaid ``xychart-beta`` charts (each fraction-valued check against its
threshold, and each latency check's percentiles against its bound); one table row per check, failing and
inconclusive first; each check's details folded in ``<details>``; the environment and commit.

GitHub drops an oversized summary whole, so :func:`job_summary` degrades instead: the details go first
(least important checks first), then table rows (least important first), and a note says what was left out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from modelcheck.github.judge import ORDER, Judged, StageResult, judge
from modelcheck.report.summary import EMOJI, NONE, format_measurement, format_threshold, format_value
from modelcheck.report.text import md_code, md_paragraph, md_text, plain

#: GitHub's limit per step: 1 MiB of Markdown (bytes of UTF-8).
SUMMARY_LIMIT = 1024 * 1024
#: Bars in one chart: a chart with hundreds of bars is unreadable.
CHART_BARS = 24
#: A table cell or a folded detail longer than this is cut (one message must not eat the page).
CELL_CHARS = 300
DETAIL_CHARS = 4000

HEADLINE = {"passed": "passed", "failed": "failed", "inconclusive": "inconclusive", "error": "error"}


def status_emoji(status: str) -> str:
    return {"passed": EMOJI["passed"], "failed": EMOJI["failed"], "inconclusive": EMOJI["inconclusive"]}.get(
        status, EMOJI["error"]
    )


def cell(value: Any, limit: int = CELL_CHARS) -> str:
    """Untrusted text as a table cell, inline text or ``<summary>`` content: one line, no live Markdown, HTML
    or mention, cut to ``limit`` characters (:func:`modelcheck.report.text.md_text`)."""
    return md_text(value, limit)


def code(value: Any, *, in_table: bool = False) -> str:
    """Untrusted text as an inline code span (:func:`modelcheck.report.text.md_code`)."""
    return md_code(value, CELL_CHARS, in_table=in_table)


def status_line(result: StageResult, report: Mapping[str, Any]) -> list[str]:
    """``## ❌ modelcheck: failed — stage `merge``` and the counts."""
    gates = len(report.get("gates", []))
    lines = [
        f"## {status_emoji(result.status)} modelcheck: {HEADLINE[result.status]} — stage {code(result.stage)}",
        "",
        f"{stage_counts(result)} in {gates} gate file{'s' if gates != 1 else ''}",
        "",
    ]
    for gate in result.gate_errors:
        lines += [f"> {EMOJI['error']} {code(gate['file'])} could not run: {cell(gate.get('error'))}", ""]
    return lines + why_lines(result)


def stage_counts(result: StageResult) -> str:
    """``✅ 13 passed · ❌ 0 failed (of 13 in the stage; 1 outside it)``: only the stage's checks are counted."""
    counts = result.counts()
    shown = " · ".join(f"{EMOJI[w]} {counts[w]} {w}" for w in ORDER if counts[w] or w in ("passed", "failed"))
    outside = f"; {result.outside} outside it" if result.outside else ""
    return f"{shown} (of {result.judged} in the stage{outside})"


def why_lines(result: StageResult) -> list[str]:
    """Why the stage did not pass, beyond failed checks: pytest's early stop (with its errors), skips, gaps."""
    lines: list[str] = []
    if result.stopped is not None:
        stop = result.stopped
        lines.append(
            f"> {EMOJI['error']} **pytest stopped before the gates ran** (exit {cell(stop.get('exit_status'))}): "
            f"{cell(stop.get('reason'))}"
        )
        errors = [e for e in stop.get("errors") or () if isinstance(e, Mapping)]
        lines += [f"> - {code(cell(e.get('nodeid'), 200))}: {cell(e.get('message'))}" for e in errors[:10]]
        if len(errors) > 10:
            lines.append(f"> - … and {len(errors) - 10} more")
        lines.append("")
    for kind, text in result.why:
        if kind in ("skipped", "lacking", "empty"):
            lines += [f"> {EMOJI['inconclusive']} {cell(text, 1000)}", ""]
    return lines


def table_head() -> list[str]:
    return ["| | check | value | threshold | stages | line |", "|---|---|---|---|---|---|"]


def table_row(row: Judged) -> str:
    stages = ", ".join(row.check.get("stages") or []) or NONE
    return (
        f"| {EMOJI.get(row.word, '')} {cell(row.word)} | {cell(row.id)} | {cell(format_measurement(row.check))} | "
        f"{cell(format_threshold(row.check.get('threshold')))} | {cell(stages)} | {row.line or NONE} |"
    )


# -- charts ---------------------------------------------------------------------------------------


def _label(text: Any, limit: int = 40) -> str:
    """A Mermaid label: plain text in double quotes, no quote, bracket or backtick that could end it."""
    shown = plain(text, limit)
    for old, new in (('"', "'"), ("<", "‹"), (">", "›"), ("`", "'"), ("[", "("), ("]", ")"), (";", ",")):
        shown = shown.replace(old, new)
    return f'"{shown}"'


def _number(value: float) -> str:
    return f"{value:.4g}"


def _fraction_bound(check: Mapping[str, Any]) -> float | None:
    threshold = check.get("threshold") or {}
    for key in ("min", "max"):
        bound = threshold.get(key)
        if isinstance(bound, (int, float)) and 0 <= bound <= 1:
            return float(bound)
    return None


def charts(result: StageResult) -> list[str]:
    """Mermaid charts GitHub renders in a job summary: fractions against thresholds, latency percentiles."""
    out: list[str] = []
    fractions = [
        row
        for row in result.checks
        if isinstance(row.check.get("value"), (int, float))
        and 0 <= row.check["value"] <= 1
        and _fraction_bound(row.check) is not None
    ][:CHART_BARS]
    if fractions:
        out += [
            "```mermaid",
            "xychart-beta",
            '    title "Value (bars) against threshold (line)"',
            f"    x-axis [{', '.join(_label(row.check['name']) for row in fractions)}]",
            '    y-axis "value" 0 --> 1',
            f"    bar [{', '.join(_number(row.check['value']) for row in fractions)}]",
            f"    line [{', '.join(_number(_fraction_bound(row.check) or 0.0) for row in fractions)}]",
            "```",
            "",
        ]
    for row in result.checks:
        latency = (row.check.get("details") or {}).get("latency")
        bound = (row.check.get("threshold") or {}).get("max_ms")
        percentiles = latency.get("percentiles_ms") if isinstance(latency, Mapping) else None
        if not isinstance(percentiles, Mapping) or not percentiles or not isinstance(bound, (int, float)):
            continue
        names = [str(k) for k, v in percentiles.items() if isinstance(v, (int, float))]
        values = [float(percentiles[k]) for k in names]
        top = max([*values, float(bound)]) * 1.1
        title = f"{row.check['name']}: latency percentiles (ms), bound {_number(bound)} ms"
        out += [
            "```mermaid",
            "xychart-beta",
            f"    title {_label(title, 80)}",
            f"    x-axis [{', '.join(_label(n) for n in names)}]",
            f'    y-axis "ms" 0 --> {_number(top)}',
            f"    bar [{', '.join(_number(v) for v in values)}]",
            f"    line [{', '.join(_number(float(bound)) for _ in names)}]",
            "```",
            "",
        ]
        if len(out) > 200:  # a few latency charts at most
            break
    return out


# -- details --------------------------------------------------------------------------------------


def details_block(row: Judged) -> str:
    """One check's message and details folded in ``<details>`` (slices and percentiles as tables)."""
    check = row.check
    lines = [f"<details><summary>{EMOJI.get(row.word, '')} {cell(row.id)} — {cell(row.word)}</summary>", ""]
    if check.get("message"):
        lines += [md_paragraph(check["message"], DETAIL_CHARS), ""]
    details = dict(check.get("details") or {})
    slices = details.pop("slices", None)
    if isinstance(slices, list) and slices:
        lines += ["| slice | n | value | status |", "|---|---|---|---|"]
        for item in slices[:200]:
            if isinstance(item, Mapping):
                lines.append(
                    f"| {cell(item.get('slice'))} | {cell(item.get('n', NONE))} | "
                    f"{cell(format_value(item.get('value')))} | {cell(item.get('status', NONE))} |"
                )
        if len(slices) > 200:
            lines.append(f"| … {len(slices) - 200} more slices in the report | | | |")
        lines.append("")
    latency = details.get("latency")
    if isinstance(latency, Mapping) and isinstance(latency.get("percentiles_ms"), Mapping):
        lines += ["| percentile | ms |", "|---|---|"]
        lines += [f"| {cell(k)} | {cell(format_value(v))} |" for k, v in latency["percentiles_ms"].items()]
        lines.append("")
    if details:
        text = json.dumps(details, indent=1, sort_keys=True, default=str)
        if len(text) > DETAIL_CHARS:
            text = text[:DETAIL_CHARS] + "\n… (cut; the report holds all of it)"
        # JSON escapes (still valid JSON): no fence ends early and no copied marker or HTML comment opens
        text = text.replace("```", "\\u0060\\u0060\\u0060").replace("<!--", "<\\u0021--")
        lines += ["```json", text, "```", ""]
    lines += ["</details>", ""]
    return "\n".join(lines)


def _has_details(row: Judged) -> bool:
    return bool(row.check.get("details")) or (row.word != "passed" and bool(row.check.get("message")))


# -- environment ----------------------------------------------------------------------------------


def environment(report: Mapping[str, Any]) -> list[str]:
    """The commit, the machine, the packages and each gate file's sha256."""
    env = report.get("environment") or {}
    git = env.get("git") or {}
    commit = git.get("commit")
    git_text = code(commit, in_table=True) if commit else NONE
    if commit and git.get("branch"):
        git_text += f" on {code(git['branch'], in_table=True)}"
    if git.get("dirty"):
        git_text += " (uncommitted changes)"
    packages = ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items() if v)
    lines = [
        "<details><summary>Environment and commit</summary>",
        "",
        "| | |",
        "|---|---|",
        f"| commit | {git_text} |",
        f"| modelcheck | {cell(report.get('modelcheck_version', NONE))}, "
        f"report written {cell(report.get('created_at'))} |",
        f"| python | {cell(env.get('implementation', ''))} {cell(env.get('python', NONE))} on "
        f"{cell(env.get('platform', NONE))} ({cell(env.get('machine', ''))}) |",
        f"| cpu | {cell(env.get('cpu') or NONE)} × {cell(env.get('cpu_count') or NONE)} |",
        f"| gpu | {cell(', '.join(env.get('gpus') or []) or NONE)} |",
        f"| packages | {cell(packages or NONE, 1000)} |",
    ]
    for gate in report.get("gates", [])[:50]:
        model = gate.get("model") or {}
        digest = gate.get("gate_sha256")
        lines.append(
            f"| {cell(gate['file'])} | gate sha256 {code(digest[:12], in_table=True) if digest else NONE}; model "
            f"{cell(model.get('id', NONE))} on {cell(model.get('device') or NONE)} |"
        )
    return [*lines, "", "</details>", ""]


# -- assembling within the limit ------------------------------------------------------------------


def _size(parts: Sequence[str]) -> int:
    return sum(len(p.encode("utf-8")) + 1 for p in parts)


def job_summary(
    report: Mapping[str, Any], stage: str, *, limit: int = SUMMARY_LIMIT, note: str = "", skipped: str = "inconclusive"
) -> str:
    """The job summary of ``report`` judged for ``stage``, at most ``limit`` bytes of UTF-8.

    ``note`` (e.g. where the report artifact is) is added under the status line; ``skipped`` is
    :func:`~modelcheck.github.judge.judge`'s.
    """
    result = judge(report, stage, skipped=skipped)
    head = status_line(result, report) + ([note, ""] if note else []) + charts(result)
    tail = environment(report)
    rows = [table_row(row) for row in result.checks]
    blocks = [(row, details_block(row)) for row in result.checks if _has_details(row)]
    reserve = 2048  # the notes about what was left out
    budget = limit - reserve - _size(head) - _size(tail) - _size(table_head())
    if budget < 0:  # a huge environment or error list: keep the status line at least
        head, tail = status_line(result, report)[:4], []
        budget = limit - reserve - _size(head) - _size(table_head())

    kept_rows: list[str] = []
    used = 0
    for row_text in rows:
        size = len(row_text.encode("utf-8")) + 1
        if used + size > budget:
            break
        kept_rows.append(row_text)
        used += size
    kept_blocks: list[str] = []
    if len(kept_rows) == len(rows):
        for _, block in blocks:
            size = len(block.encode("utf-8")) + 1
            if used + size > budget:
                break
            kept_blocks.append(block)
            used += size

    notes: list[str] = []
    if len(kept_blocks) < len(blocks):
        notes.append(
            f"> ✂️ Details of {len(blocks) - len(kept_blocks)} of {len(blocks)} checks left out to stay under "
            "GitHub's 1 MiB job-summary limit; the report file holds them."
        )
    if len(kept_rows) < len(rows):
        left = result.checks[len(kept_rows) :]
        by_word = ", ".join(f"{n} {w}" for w in ORDER if (n := sum(1 for r in left if r.word == w)))
        notes.append(
            f"> ✂️ {len(left)} of {len(rows)} table rows left out ({by_word}) to stay under GitHub's 1 MiB "
            "job-summary limit; `modelcheck gate` and the report file list every check."
        )
    parts = [*head, *[n + "\n" for n in notes], *table_head(), *kept_rows, ""]
    if kept_blocks:
        parts += ["### Details", "", *kept_blocks]
    parts += tail
    return "\n".join(parts).rstrip("\n") + "\n"
