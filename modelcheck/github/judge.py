"""A report judged for one stage: every check's word and the stage's status, as ``modelcheck gate`` judges it.

A check is *judged* for stage S when its gate lists it under S (or the gate defines no stages). A judged
check keeps its status; a check outside S that failed or errored is ``warned``. The stage is ``failed``
when a judged check failed, ``inconclusive`` when none failed but one errored, was inconclusive or its
gate could not run (and when the report holds no gates), else ``passed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelcheck.errors import ReportError

#: Most important first: the order of the summary's rows and of the annotations.
ORDER = ("failed", "error", "inconclusive", "warned", "passed", "skipped")


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

    def count(self, word: str) -> int:
        return sum(1 for c in self.checks if c.word == word)

    def counts(self) -> dict[str, int]:
        return {word: self.count(word) for word in ORDER}


def check_stage(report: Mapping[str, Any], stage: str, *, source: str) -> None:
    """Raise ReportError when no gate of ``report`` defines ``stage`` (and every gate defines stages)."""
    gates = report.get("gates", [])
    if gates and all(g.get("stages") for g in gates) and not any(stage in g["stages"] for g in gates):
        known = sorted({name for g in gates for name in g["stages"]})
        raise ReportError(
            f"no gate in report {source} defines stage {stage!r}; stages in the report: {', '.join(known)}. "
            f"Pass one of them to --stage, or add {stage!r} under stages: in the gate files"
        )


def judge(report: Mapping[str, Any], stage: str) -> StageResult:
    """Judge ``report`` for ``stage`` (call :func:`check_stage` first for a clear unknown-stage error)."""
    rows: list[Judged] = []
    gate_errors: list[Mapping[str, Any]] = []
    for gate in report.get("gates", []):
        stages = gate.get("stages") or {}
        members = set(stages.get(stage, ()))
        if gate.get("error") and not gate.get("checks") and (not stages or stage in stages):
            gate_errors.append(gate)
        for check in gate.get("checks", []):
            judged = not stages or check["name"] in members or stage in (check.get("stages") or ())
            status = str(check.get("status", "error"))
            word = status if judged or status not in ("failed", "error") else "warned"
            rows.append(Judged(gate, check, word, judged))
    rows.sort(key=lambda row: ORDER.index(row.word) if row.word in ORDER else len(ORDER))
    words = {row.word for row in rows if row.judged}
    if "failed" in words:
        status = "failed"
    elif words & {"error", "inconclusive"} or gate_errors or not report.get("gates"):
        status = "inconclusive"
    else:
        status = "passed"
    return StageResult(stage=stage, status=status, checks=tuple(rows), gate_errors=tuple(gate_errors))
