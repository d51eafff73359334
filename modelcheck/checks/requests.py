"""``max_error_rate``: how many of a served model's requests may fail before a check over them fails.

A gate whose checks name ``max_error_rate`` predicts with its endpoint tolerating failed requests
(:meth:`modelcheck.models.endpoint.Endpoint.tolerating`): a request that fails for good (after its
retries) leaves its rows out instead of ending the run. Each metric, regression or parity check over
that prediction pass is then judged here first (parity takes no ``max_error_rate``, so it errors):

- failures above the check's ``max_error_rate``: status ``failed``, the counts by kind in the message
  (the metric is still measured on the answered rows where it can be, and shown after them);
- at or below it: the check is judged on the rows answered, its message says how many requests failed;
- failures and no ``max_error_rate`` on this check: status ``error`` (as when nothing is tolerated).

``details.requests`` records what was sent, what failed by kind, and which data rows were left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from modelcheck.errors import CheckError, ModelcheckError
from modelcheck.report.results import CheckResult

if TYPE_CHECKING:
    import numpy as np

    from modelcheck.checks import GateRun
    from modelcheck.gatefile import CheckSpec
    from modelcheck.models.requests import RequestTally

__all__ = ["error_rate_text", "judge_requests", "requests_record"]


#: At most this many failed data rows are listed in ``details.requests.failed_rows``.
MAX_ROWS_LISTED = 100


def requests_record(tally: RequestTally, check: CheckSpec, answered: np.ndarray | None = None) -> dict[str, object]:
    """The check's ``details.requests``: sent, failed (total and by kind), the rate, the bound, and the
    0-based data rows left out (the first :data:`MAX_ROWS_LISTED`)."""
    import numpy as np

    left_out = [] if answered is None else np.flatnonzero(~answered)[:MAX_ROWS_LISTED].tolist()
    return {**tally.to_dict(), "max_error_rate": check.max_error_rate, "failed_rows": left_out}


def error_rate_text(tally: RequestTally, bound: float) -> tuple[bool, str]:
    """Whether the rate is within ``bound``, and ``error rate 7.5% > max_error_rate 5% (3 of 40 ...)``."""
    within = tally.rate <= bound
    return within, (
        f"error rate {tally.rate:.3g}{'' if tally.sent else ' (no requests)'} {'<=' if within else '>'} "
        f"max_error_rate {bound:g} ({tally.counts()})"
    )


def judge_requests(check: CheckSpec, run: GateRun, judge: Callable[[CheckSpec, GateRun], CheckResult]) -> CheckResult:
    """Judge ``check`` with ``judge`` on the rows answered, after its requests' error rate (module docstring)."""
    tally = run.requests
    assert tally is not None
    if check.max_error_rate is None:
        if tally.failures:
            raise CheckError(f"{tally.counts()} and this check sets no max_error_rate to tolerate them; "
                             f"first: {tally.first}")  # fmt: skip
        return judge(check, run)
    within, said = error_rate_text(tally, check.max_error_rate)
    answered = len(run.outputs)
    record = requests_record(tally, check, run.answered)
    if within:
        result = judge(check, run)
        left_out = f"; judged on the {answered} rows answered" if tally.failures else ""
        message = f"{result.message} ({said}{left_out})"
        return replace(result, message=message, details={**result.details, "requests": record})
    measured = None
    if answered:
        try:
            measured = judge(check, run)
        except ModelcheckError as exc:
            measured = CheckResult(name=check.name, kind=check.kind, metric=check.metric, status="error",
                                   message=f"not measured on the {answered} rows answered: {exc}")  # fmt: skip
    message = f"{said}; first: {tally.first}"
    if measured is not None:
        message = f"{said}; on the {answered} rows answered: {measured.message}; first: {tally.first}"
        return replace(measured, status="failed", message=message,
                       details={**measured.details, "requests": record})  # fmt: skip
    return CheckResult(name=check.name, kind=check.kind, metric=check.metric, status="failed", message=message,
                       details={"requests": record})  # fmt: skip
