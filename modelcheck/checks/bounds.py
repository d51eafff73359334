"""What the latency and memory checks share: the baseline_model through the cache, bounds judged into messages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelcheck.errors import CheckError, DeviceUnavailableError, ModelcheckError
from modelcheck.measure.timing import Verdict, judge_bound

if TYPE_CHECKING:
    from modelcheck.gatefile import CheckSpec, GateSpec, ModelSpec
    from modelcheck.models.backends import LoadedModel
    from modelcheck.models.cache import ModelCache
    from modelcheck.report.results import Status


def baseline_model(check: CheckSpec, gate: GateSpec, models: ModelCache) -> LoadedModel | None:
    """The baseline_model loaded through the cache (both models must stay loaded while measuring)."""
    if check.baseline_model is None:
        return None
    if models.max_loaded == 1:
        raise CheckError(
            f"check {check.name!r} measures two models side by side, and modelcheck_max_loaded_models is 1; "
            "set it to 2 or more (ini option) for checks with baseline_model"
        )
    try:
        baseline = models.get(check.baseline_model)
    except DeviceUnavailableError:
        raise
    except ModelcheckError as exc:
        raise CheckError(f"baseline_model {model_name(check.baseline_model)} cannot be loaded: {exc}") from None
    models.get(gate.model)  # keep the gate's model the most recently used
    return baseline


def model_name(spec: ModelSpec | None) -> str:
    return "?" if spec is None else spec.source


def overall_status(statuses: list[Verdict]) -> Status:
    if "failed" in statuses:
        return "failed"
    if "inconclusive" in statuses:
        return "inconclusive"
    return "passed"


def judged(
    check: CheckSpec,
    value: float,
    ci: tuple[float, float],
    bound: float,
    described: str,
    bound_text: str,
    note: str = "",
) -> tuple[Verdict, str]:
    """One bound judged on an interval (see judge_bound), and the measurement with the bound written into it."""
    status = judge_bound(value, ci, bound, on_uncertain=check.on_uncertain)
    return status, with_bound(described, _sign(value, ci, bound, check), bound_text) + note + _forced(ci, bound, check)


def _sign(value: float, ci: tuple[float, float], bound: float, check: CheckSpec) -> str:
    """How the measurement compares with the bound: by its interval, by the estimate where the gate says so."""
    if not ci[0] <= bound < ci[1]:
        return "<=" if ci[1] <= bound else ">"
    if check.on_uncertain == "estimate":
        return "<=" if value <= bound else ">"
    return "vs"


def _forced(ci: tuple[float, float], bound: float, check: CheckSpec) -> str:
    """The note on a verdict that ``on_uncertain`` made, not the interval."""
    if ci[0] <= bound < ci[1] and check.on_uncertain != "inconclusive":
        return f" (the interval straddles the bound; judged by on_uncertain: {check.on_uncertain})"
    return ""


def with_bound(described: str, sign: str, bound: str) -> str:
    """``p95 latency 48.2 ms (...)`` -> ``p95 latency 48.2 ms > 40 ms (...)``."""
    head, _, tail = described.partition(" (")
    return f"{head} {sign} {bound} ({tail}"
