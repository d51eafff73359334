"""Results of running gates: what the report, the terminal summary and the CLI all read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

#: ``inconclusive``: the check ran but cannot say pass or fail (e.g. no baseline yet); the gate CLI exits 3.
#: ``not run``: the run left the check out (pytest's -k, -m, --deselect, --lf); the gate CLI exits 3 for it too.
Status = Literal["passed", "failed", "error", "skipped", "inconclusive", "not run"]


@dataclass
class CheckResult:
    """The outcome of one check. ``blocking`` says whether a failure fails the run."""

    name: str
    kind: str
    status: Status
    message: str
    metric: str | None = None
    stages: list[str] = field(default_factory=list)
    blocking: bool = True
    value: float | None = None
    threshold: dict[str, float] = field(default_factory=dict)
    n: int | None = None
    ci: list[float] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    #: Seconds: this check's own judging plus an equal share of the gate's load, data and prediction.
    duration_s: float | None = None
    #: The 1-based line of the check in its gate file; None when unknown.
    line: int | None = None

    @property
    def warned(self) -> bool:
        """A failed check outside the blocking stage: reported, not failing the run."""
        return self.status == "failed" and not self.blocking

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GateResult:
    """The outcome of one gate file: the model and data it ran on and every check."""

    file: str
    model: dict[str, Any]
    data: dict[str, Any]
    stages: dict[str, list[str]]
    checks: list[CheckResult]
    error: str | None = None
    #: Where the per-example outputs were saved (relative to the report) and their sha256.
    outputs: dict[str, str] | None = None
    #: sha256 of the gate file's bytes, so ``publish`` can tell the report came from this gate file.
    gate_sha256: str | None = None
    #: The gate's ``publish.files`` extras as ``{path, sha256, size}``, hashed at run time (what ``publish`` may ship).
    publish_files: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["checks"] = [c.to_dict() for c in self.checks]
        return out


def totals(gates: list[GateResult]) -> dict[str, int]:
    """Counts by status over every check, with ``warned`` (failed but not blocking) apart."""
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0, "inconclusive": 0, "not_run": 0, "warned": 0}
    for gate in gates:
        for check in gate.checks:
            counts["warned" if check.warned else check.status.replace(" ", "_")] += 1
    return counts
