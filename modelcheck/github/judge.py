"""A report judged for one stage: every check's word and the stage's status, as ``modelcheck gate`` judges it.

A check is *judged* for stage S when its gate lists it under S (or the gate defines no stages). A judged
check keeps its status; a check outside S that failed or errored is ``warned``. The stage is

- ``failed`` when a judged check failed (or, with ``skipped="fail"``, a judged check was skipped);
- ``inconclusive`` when none failed but a judged check errored, was inconclusive, was skipped (its device
  is absent, or no slice reached ``min_samples``: nothing was measured) or was not run (left out by
  ``-k``/``-m``/``--deselect``, or missing from the report), a gate of the stage could not run, pytest
  stopped before the gates ran, or the report holds no gates;
- ``passed`` otherwise: every judged check passed (a stage that lists no checks passes).

Checks outside the stage are counted apart (``outside``), never in the stage's counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelcheck.errors import ReportError
from modelcheck.report.stopped import one_line, stopped_text

#: Most important first: the order of the summary's rows and of the annotations.
ORDER = ("failed", "error", "inconclusive", "warned", "passed", "skipped", "not run")
#: What a skipped blocking check does to its stage (``modelcheck gate --skipped``, the action's ``skipped``).
SKIPPED_POLICIES = ("inconclusive", "fail")


@dataclass(frozen=True)
class Judged:
    """One check of the report, as the stage sees it."""

    gate: Mapping[str, Any]
    check: Mapping[str, Any]
    word: str  # one of ORDER
    judged: bool

    @property
    def id(self) -> str:
        """``<gate file>::<check name>``, the pytest id."""
        return f"{self.gate['file']}::{self.check['name']}"

    @property
    def line(self) -> int | None:
        line = self.check.get("line")
        return line if isinstance(line, int) and line >= 1 else None


@dataclass(frozen=True)
class StageResult:
    """Every check of a report in ORDER (report order within a word), and the stage's status."""

    stage: str
    status: str  # passed | failed | inconclusive
    checks: tuple[Judged, ...]
    gate_errors: tuple[Mapping[str, Any], ...]  # gates that could not run at all (no checks)
    #: ``<file>::<check>`` of the stage's checks the report holds no verdict for (not run, or absent).
    lacking: tuple[str, ...] = ()
    #: The report's ``stopped`` record: pytest ended before every collected test ran.
    stopped: Mapping[str, Any] | None = None
    #: Why the stage did not pass, beyond failed checks (the counts say those): ``(kind, sentence)`` pairs,
    #: kind one of stopped, empty, skipped, lacking, gate_errors, undecided.
    why: tuple[tuple[str, str], ...] = ()

    @property
    def reasons(self) -> tuple[str, ...]:
        """The sentences of :attr:`why`."""
        return tuple(text for _, text in self.why)

    def count(self, word: str) -> int:
        """Checks of the stage (judged) with this word."""
        return sum(1 for c in self.checks if c.judged and c.word == word)

    def counts(self) -> dict[str, int]:
        """The stage's checks by word (checks outside the stage are in :attr:`outside`)."""
        return {word: self.count(word) for word in ORDER}

    @property
    def judged(self) -> int:
        return sum(1 for c in self.checks if c.judged)

    @property
    def outside(self) -> int:
        """Checks of the report outside the stage: shown, never judged."""
        return sum(1 for c in self.checks if not c.judged)


def check_stage(report: Mapping[str, Any], stage: str, *, source: str) -> None:
    """Raise ReportError when no gate of ``report`` defines ``stage`` (and every gate defines stages)."""
    gates = report.get("gates", [])
    if gates and all(g.get("stages") for g in gates) and not any(stage in g["stages"] for g in gates):
        known = sorted({name for g in gates for name in g["stages"]})
        raise ReportError(
            f"no gate in report {source} defines stage {stage!r}; stages in the report: {', '.join(known)}. "
            f"Pass one of them to --stage, or add {stage!r} under stages: in the gate files"
        )


def judge(report: Mapping[str, Any], stage: str, *, skipped: str = "inconclusive") -> StageResult:
    """Judge ``report`` for ``stage`` (call :func:`check_stage` first for a clear unknown-stage error).

    ``skipped`` (one of :data:`SKIPPED_POLICIES`) says whether a skipped check of the stage makes it
    inconclusive or failed; it never passes.
    """
    if skipped not in SKIPPED_POLICIES:
        raise ReportError(f"skipped={skipped!r}: use one of {', '.join(SKIPPED_POLICIES)}")
    rows: list[Judged] = []
    gate_errors: list[Mapping[str, Any]] = []
    lacking: list[str] = []
    for gate in report.get("gates", []):
        stages = gate.get("stages") or {}
        members = set(stages.get(stage, ()))
        if gate.get("error") and not gate.get("checks") and (not stages or stage in stages):
            gate_errors.append(gate)
        names = set()
        for check in gate.get("checks", []):
            names.add(check["name"])
            judged = not stages or check["name"] in members or stage in (check.get("stages") or ())
            status = str(check.get("status", "error"))
            word = status if judged or status not in ("failed", "error") else "warned"
            rows.append(Judged(gate, check, word, judged))
            if judged and status == "not run":
                lacking.append(f"{gate['file']}::{check['name']}")
        if gate.get("checks"):  # the stage names a check this gate's results do not hold
            lacking += [f"{gate['file']}::{name}" for name in stages.get(stage, ()) if name not in names]
    rows.sort(key=lambda row: ORDER.index(row.word) if row.word in ORDER else len(ORDER))
    stopped = report.get("stopped") if isinstance(report.get("stopped"), Mapping) else None
    judged_rows = [row for row in rows if row.judged]

    def ids(word: str) -> list[str]:
        return [row.id for row in judged_rows if row.word == word]

    reasons: list[tuple[str, str]] = []
    if stopped is not None:
        reasons.append(("stopped", stopped_text(stopped)))
    if not report.get("gates"):
        reasons.append(("empty", "the report holds no gate results; nothing was judged"))
    if skips := ids("skipped"):
        first = next(row for row in judged_rows if row.word == "skipped").check.get("message")
        said = one_line(first or "a device this machine lacks, or no slice with min_samples rows")
        text = f"{_n(len(skips))} of the stage skipped, so not measured: {_list(skips)} ({said[:200]})"
        reasons.append(("skipped", text))
    if lacking:
        reasons.append(
            (
                "lacking",
                f"the report lacks {_n(len(lacking))} of the stage (not run: pytest -k/-m/--deselect/--lf, "
                f"or missing): "
                f"{_list(lacking)}; run them all for a verdict",
            )
        )
    if gate_errors:
        reasons.append(
            ("gate_errors", f"{len(gate_errors)} gate file(s) could not run: {_list([g['file'] for g in gate_errors])}")
        )
    if undecided := ids("error") + ids("inconclusive"):
        reasons.append(("undecided", f"{_n(len(undecided))} could not run or decide: {_list(undecided)}"))

    if ids("failed") or (skips and skipped == "fail"):
        status = "failed"
    elif reasons:
        status = "inconclusive"
    else:
        status = "passed"
    return StageResult(
        stage=stage, status=status, checks=tuple(rows), gate_errors=tuple(gate_errors),
        lacking=tuple(lacking), stopped=stopped, why=tuple(reasons),
    )  # fmt: skip


def _n(count: int) -> str:
    return f"{count} check{'s' if count != 1 else ''}"


def _list(names: list[str], limit: int = 10) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(one_line(name) for name in names[:limit]) + more
