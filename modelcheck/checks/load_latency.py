"""``kind: latency`` with ``concurrency``: a served model's latency under load (:mod:`modelcheck.measure.load`).

The judged percentile is of the answered requests' end-to-end latency, on its bootstrap interval
with sequential looks, as for latency in process; the message and ``details.latency`` add requests/s,
the achieved concurrency and, for streamed generation, time to first token and time per output
token. Failed requests make the check error, unless it sets ``max_error_rate``: then they are left
out of the percentiles and their rate is judged (over every request the test sent, warm-up included).
A model in files has no server to load: the check is skipped, so one gate file serves both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelcheck.checks.requests import error_rate_text, requests_record
from modelcheck.errors import CheckError
from modelcheck.measure.latency_result import LatencyResult
from modelcheck.measure.load import LoadResult, measure_load
from modelcheck.measure.timing import LatencyPlan, judge_bound
from modelcheck.models.requests import run_coroutine
from modelcheck.report.results import CheckResult, Status
from modelcheck.report.samples import thin

if TYPE_CHECKING:
    from modelcheck.gatefile import CheckSpec, GateSpec
    from modelcheck.models.backends import LoadedModel

__all__ = ["judge_load"]


#: ``verdict(check, latency, None)``: the status and message of ``max_ms`` (``checks.latency.latency_verdict``).
Verdict = Callable[["CheckSpec", LatencyResult, None], tuple[Status, str]]


def judge_load(
    check: CheckSpec, gate: GateSpec, model: LoadedModel, batch: Callable[[int], list[Any]], verdict: Verdict
) -> CheckResult:
    """Load the gate's served model with ``check.concurrency`` requests in flight (request ``i`` sends
    ``batch(i)``) and judge ``max_ms`` by ``verdict``."""
    assert check.concurrency is not None and check.max_ms is not None
    target_of = getattr(model, "load_target", None)
    if not callable(target_of):
        return CheckResult(
            name=check.name, kind=check.kind, status="skipped", threshold=check.threshold,
            message=f"concurrency {check.concurrency}: a load test needs a model behind a server (backend openai "
            f"or kserve-v2); model {gate.model.id!r} runs in this process (backend {gate.model.backend}), so this "
            "check is skipped here",
        )  # fmt: skip
    batch_size = check.batch_size or 1
    target = target_of(batch, batch_size)
    plan = LatencyPlan(
        percentile=check.percentile,
        min_iterations=check.min_iterations,
        min_time=check.min_time,
        max_time=check.max_time,
        confidence=check.confidence,
        resamples=check.resamples,
        seed=check.seed,
    )
    bound = check.max_ms

    def decided(result: LoadResult) -> bool:
        latency = result.latency
        return latency is not None and judge_bound(latency.value_ms, latency.ci, bound) != "inconclusive"

    result = measure_load(target, concurrency=check.concurrency, plan=plan, decided=decided, run=run_coroutine)
    tally = result.tally()
    where = f"load test at concurrency {check.concurrency} ({target.request} per request)"
    if tally.failures and check.max_error_rate is None:
        raise CheckError(f"{where}: {tally.counts()} and this check sets no max_error_rate to tolerate them; "
                         f"first: {tally.first}")  # fmt: skip
    details: dict[str, Any] = {"unit": "ms"}
    if check.max_error_rate is not None:
        details["requests"] = requests_record(tally, check)
    within, rate = (True, "") if check.max_error_rate is None else error_rate_text(tally, check.max_error_rate)
    latency = result.latency
    if latency is None:
        message = f"{where}: no request was answered; {rate}; first: {tally.first}"
        details["latency"] = result.figures()
        return CheckResult(name=check.name, kind=check.kind, status="failed", message=message,
                           threshold=check.threshold, details=details)  # fmt: skip
    status, message = verdict(check, latency, None)
    message = message.replace(" latency ", " latency under load ", 1)
    message += f" {result.describe()}"
    if rate:
        message += f"; {rate}"
    if not within:
        status = "failed"
        message += f"; first: {tally.first}"
    rows = "one fixed batch" if check.inputs == "fixed" else "successive batches of the data"
    details["latency"] = {
        **latency.to_dict(),
        **result.figures(),
        "measured": f"{target.request}, {batch_size} row(s) per request ({rows}), {check.concurrency} in flight",
        "timings_ms": thin(latency.timings_ms),
    }
    final: Status = status
    return CheckResult(
        name=check.name,
        kind=check.kind,
        status=final,
        message=message,
        value=latency.value_ms,
        threshold=check.threshold,
        n=latency.n,
        ci=list(latency.ci),
        details=details,
    )
