"""``kind: regression``: is the candidate worse than its baseline by more than ``max_drop``, on the same examples?"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from modelcheck.checks.metric import Scorer, take_rows
from modelcheck.errors import CheckError
from modelcheck.gatefile import ACCURACY_LIKE
from modelcheck.gatefile.tasks import LOWER_IS_BETTER
from modelcheck.report.baselines import BaselineUnavailable, read_baseline
from modelcheck.report.numbers import interval_text
from modelcheck.report.results import CheckResult, Status
from modelcheck.report.samples import thin

if TYPE_CHECKING:
    import pandas as pd

    from modelcheck.checks import GateRun
    from modelcheck.gatefile import CheckSpec
    from modelcheck.measure.stats import PairedComparison
    from modelcheck.models.backends import Outputs


def judge(check: CheckSpec, run: GateRun) -> CheckResult:
    """The check kind's entry in :data:`modelcheck.checks.KINDS`."""
    if check.baseline_model is not None:
        return judge_against_model(check, run)
    return judge_regression(
        check, run.targets, run.outputs, run.model.label_names, run.frame,
        model_id=run.gate.model.id, data_sha256=run.data_sha256, task=run.gate.model.task, answered=run.answered,
    )  # fmt: skip


def judge_regression(
    check: CheckSpec,
    targets: Any,
    outputs: Outputs,
    label_names: Sequence[str],
    frame: pd.DataFrame,
    *,
    model_id: str,
    data_sha256: str | None,
    task: str | None = None,
    answered: np.ndarray | None = None,
) -> CheckResult:
    """Compare ``outputs`` with the check's baseline row by row and judge non-inferiority.

    ``answered`` (a served model some of whose requests failed): which data rows ``outputs`` holds;
    the baseline is compared on those rows.
    """
    assert check.baseline is not None and check.max_drop is not None and check.metric is not None
    try:
        baseline = read_baseline(check.baseline, model_id=model_id)
    except BaselineUnavailable as exc:
        missing = str(exc).startswith("no baseline at")
        return _without_baseline(check, str(exc), policy=check.on_missing if missing else "inconclusive")
    if baseline.data_sha256 != data_sha256:
        return _without_baseline(
            check,
            f"baseline {baseline.path} was computed on other data (sha256 {baseline.data_sha256}) than this run "
            f"(sha256 {data_sha256}); recreate the baseline on this data before comparing",
            policy="inconclusive",
        )
    rows = len(outputs) if answered is None else len(answered)
    if baseline.rows != rows:
        return _without_baseline(
            check,
            f"baseline {baseline.path} has {baseline.rows} rows, this run {rows}; compare on the same rows "
            "(same data and limit)",
            policy="inconclusive",
        )
    failed = baseline.outputs.failed
    if failed is not None and failed.any():
        return _without_baseline(
            check,
            f"baseline {baseline.path} was made from a run in which the server answered no output for "
            f"{int(failed.sum())} rows; recreate it from a run without failed requests",
            policy="inconclusive",
        )
    if answered is not None:
        baseline = replace(baseline, outputs=baseline.outputs.take(np.flatnonzero(answered)))

    comparison = _compare(check, targets, baseline.outputs, outputs, label_names, task)
    return _result(check, comparison, {"baseline_file": baseline.path, "baseline_created_at": baseline.created_at})


def judge_against_model(check: CheckSpec, run: GateRun) -> CheckResult:
    """Compare the gate's outputs with those of ``baseline_model`` (e.g. production's server) on the same rows,
    run now (interleaved with the gate's own prediction where both are served: ``run/interleave.py``)."""
    from modelcheck.checks.compared import compared_outputs

    assert check.baseline_model is not None
    if run.targets is None:
        raise CheckError(f"check {check.name!r} compares a metric, which needs the data's label column")
    baseline, record = compared_outputs(check.baseline_model, run, role="baseline_model")
    comparison = _compare(check, run.targets, baseline, run.outputs, run.model.label_names, run.gate.model.task)
    return _result(check, comparison, {"baseline_model": record})


def _result(check: CheckSpec, comparison: PairedComparison, extra: dict[str, Any]) -> CheckResult:
    details = {**comparison.to_dict(), **extra}
    if comparison.differences is not None:  # for the HTML report's plot, thinned (modelcheck.report.samples)
        details["bootstrap_differences"] = thin(comparison.differences)
    details["unit"] = "vs baseline"  # tables read "-0.0300 vs baseline (CI -0.0375 to -0.0230)"
    return CheckResult(
        name=check.name,
        kind=check.kind,
        metric=check.metric,
        status="passed" if comparison.verdict == "passed" else "failed",
        message=_message(check, comparison),
        # The judged quantity: the difference (candidate - baseline), which the interval is of; both values in details.
        value=comparison.difference,
        threshold=check.threshold,
        n=comparison.n,
        ci=list(comparison.ci) if comparison.ci is not None else None,
        details=details,
    )


def _compare(
    check: CheckSpec,
    targets: Any,
    baseline: Outputs,
    candidate: Outputs,
    label_names: Sequence[str],
    task: str | None = None,
) -> PairedComparison:
    from modelcheck.measure import stats

    assert check.max_drop is not None and check.metric is not None
    n = len(candidate)
    scorer = Scorer(check, label_names, n_rows=n, task=task)
    per_row = scorer.family is None or task == "text-generation"  # exact_match/contains: 0/1 rows either way
    if per_row and check.metric in ACCURACY_LIKE and check.test in ("paired-bootstrap", "mcnemar"):
        base_right, cand_right = _correct(scorer, targets, baseline), _correct(scorer, targets, candidate)
        if check.test == "mcnemar":
            return stats.mcnemar(base_right, cand_right, max_drop=check.max_drop, confidence=check.confidence)
        return stats.paired_bootstrap_correct(
            base_right, cand_right, max_drop=check.max_drop, resamples=check.resamples,
            confidence=check.confidence, seed=check.seed,
        )  # fmt: skip
    higher_is_better = check.metric not in LOWER_IS_BETTER
    if check.test == "none":
        base_value = scorer.score(targets, baseline, None)
        cand_value = scorer.score(targets, candidate, None)
        return stats.plain_difference(
            base_value, cand_value, n, max_drop=check.max_drop, higher_is_better=higher_is_better
        )

    def score(rows: np.ndarray) -> tuple[float, float]:
        if scorer.family is not None:  # the rows' statistics, computed once per model (the library's slow pass)
            return scorer.statistics(targets, baseline).value(rows), scorer.statistics(targets, candidate).value(rows)
        subset = take_rows(targets, rows)
        return scorer.score(subset, baseline.take(rows), rows), scorer.score(subset, candidate.take(rows), rows)

    from modelcheck.checks.resampled import batch_scorer

    def jackknife() -> tuple[np.ndarray, np.ndarray]:  # the family metrics' BCa interval: each row left out in turn
        return scorer.statistics(targets, baseline).left_out(), scorer.statistics(targets, candidate).left_out()

    return stats.paired_bootstrap(
        score, n, max_drop=check.max_drop, resamples=check.resamples, confidence=check.confidence,
        seed=check.seed, higher_is_better=higher_is_better,
        batch=batch_scorer(scorer, targets, baseline, candidate),
        jackknife=jackknife if scorer.family is not None else None,
    )  # fmt: skip


def _correct(scorer: Scorer, targets: Any, outputs: Outputs) -> np.ndarray:
    """Per-example right/wrong for accuracy-like metrics."""
    if scorer.metric == "accuracy":
        if outputs.labels is None:
            raise CheckError("accuracy needs the model's labels, which the outputs do not hold")
        return np.asarray(outputs.labels == targets)
    return scorer.statistics(targets, outputs).stats[:, 0] > 0.5  # a family's per-row 0/1 (text generation)


def _message(check: CheckSpec, c: PairedComparison) -> str:
    direction = "drop" if c.higher_is_better else "rise"
    change = (-c.difference if c.higher_is_better else c.difference) + 0.0  # + 0.0: no "drop -0.0000"
    if c.verdict == "passed":
        verdict = "within"
    elif change > c.max_drop:
        verdict = "beyond"
    else:  # observed inside the margin, but these rows cannot rule out a drop of max_drop
        verdict = f"not shown at {c.confidence:.0%} confidence to be within"
    evidence = []
    if c.ci is not None:
        evidence.append(f"{int(c.confidence * 100)}% CI of the difference {interval_text(c.ci[0], c.ci[1])}")
    if c.p_value is not None:
        evidence.append(f"p={c.p_value:.3g}")
    if c.regressed is not None and c.improved is not None:
        evidence.append(f"{c.regressed} regressed, {c.improved} improved")
    evidence.append(f"{c.test}, n={c.n}")
    return (
        f"{check.metric} {c.candidate:.4g} vs baseline {c.baseline:.4g}: {direction} {change:+.4f} "
        f"{verdict} max_drop {check.max_drop} ({'; '.join(evidence)}){_too_few_rows(c)}"
    )


def _too_few_rows(c: PairedComparison) -> str:
    """A hint where the interval alone is wider than the margin: even an unchanged model could not pass here."""
    if c.verdict == "passed" or c.ci is None or c.max_drop <= 0 or not c.n:
        return ""
    reach = c.difference - c.ci[0] if c.higher_is_better else c.ci[1] - c.difference  # the bad side's reach
    if not reach >= c.max_drop:
        return ""
    rows = math.ceil(c.n * (reach / c.max_drop) ** 2)  # the interval's width shrinks as 1/sqrt(rows)
    return (
        f". With {c.n} rows the interval reaches {reach:.4g} past the observed difference, more than max_drop: "
        f"even an unchanged model cannot pass here. At this spread an unchanged model needs roughly {rows:,} rows "
        "or more, or a larger max_drop"
    )


def _without_baseline(check: CheckSpec, reason: str, *, policy: str) -> CheckResult:
    status: Status = {"inconclusive": "inconclusive", "pass": "passed", "fail": "failed"}[policy]  # type: ignore[assignment]
    suffix = "" if policy == "inconclusive" else f" (on_missing: {policy})"
    return CheckResult(
        name=check.name, kind=check.kind, metric=check.metric, status=status, message=reason + suffix,
        threshold=check.threshold, details={"baseline_file": check.baseline},
    )  # fmt: skip
