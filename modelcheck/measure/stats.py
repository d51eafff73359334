"""Paired comparisons of a candidate model against a baseline, example by example.

The question every function here answers is one of *non-inferiority*: did the candidate get worse
than the baseline by more than ``max_drop``? Both models are scored on the same examples, so the
comparison is paired: an example both get right (or both get wrong) says nothing about the
difference, and the tests use that to be far sharper than comparing two independent accuracies.

- :func:`paired_bootstrap` works for any metric (accuracy, f1, rmse, ...) through a ``score``
  callback; :func:`paired_bootstrap_correct` is its fully vectorised fast path for accuracy-like
  metrics given per-example correctness;
- :func:`mcnemar` is the exact non-inferiority test on paired binary outcomes (right / wrong):
  Tango's score statistic with an exact unconditional p-value (:mod:`modelcheck.measure.noninferiority`),
  McNemar's exact test when ``max_drop`` is 0; the accuracy bootstrap also requires it to pass;
- :func:`plain_difference` compares two values with no statistics (test ``"none"``).

Pure functions on numpy arrays; scipy is imported only inside the exact test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np

__all__ = ["PairedComparison", "mcnemar", "paired_bootstrap", "paired_bootstrap_correct", "plain_difference"]

#: Most resample indices held in memory at once (int32: 16 MiB).
_CHUNK_ELEMENTS = 1 << 22
#: Slack for float rounding when comparing a plain difference with its margin (0.92 - 0.91 > 0.01 in floats).
_TOLERANCE = 1e-12

Verdict = Literal["passed", "failed"]


@dataclass(frozen=True)
class PairedComparison:
    """The outcome of comparing a candidate with a baseline on the same ``n`` examples.

    ``difference`` is always ``candidate - baseline``; whether a positive difference is good is
    ``higher_is_better`` (false for error metrics such as mae and rmse). ``ci`` is set by the
    bootstrap tests, ``p_value`` by the exact test (mcnemar, and the accuracy bootstrap's
    guard), ``improved``/``regressed`` where per-example
    correctness is known. ``confidence`` is 0.0 for test ``"none"`` (no statistics).
    """

    test: str
    n: int
    baseline: float
    candidate: float
    difference: float
    max_drop: float
    confidence: float
    ci: tuple[float, float] | None
    p_value: float | None
    improved: int | None
    regressed: int | None
    verdict: str
    higher_is_better: bool = True
    #: How the bootstrap interval was read off the resampled differences: "percentile" or "bca" (bias-corrected
    #: and accelerated, where leave-one-out values were given); None for the tests that draw no interval.
    interval: str | None = None
    #: The bootstrap's resampled differences (candidate - baseline); not in :meth:`to_dict`.
    differences: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"

    def to_dict(self) -> dict[str, Any]:
        """JSON-plain fields (Python floats and ints, ``ci`` as a list or None)."""
        out = asdict(self)
        del out["differences"]
        out["ci"] = None if self.ci is None else [float(self.ci[0]), float(self.ci[1])]
        return out


def paired_bootstrap(
    score: Callable[[np.ndarray], tuple[float, float]],
    n: int,
    *,
    max_drop: float,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    higher_is_better: bool = True,
    batch: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
    jackknife: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None,
) -> PairedComparison:
    """Paired bootstrap non-inferiority test for any metric.

    ``score(rows)`` returns ``(baseline_value, candidate_value)`` of the metric on the given row
    indices (an int array, possibly with repeats). Each resample draws ``n`` row indices with
    replacement, the same for both models, and records ``candidate - baseline``; ``ci`` is the
    two-sided percentile interval of these differences at ``confidence``. Verdict (higher is
    better): passed iff the lower bound > ``-max_drop``; with ``higher_is_better=False`` passed iff
    the upper bound < ``+max_drop``. No difference at all (interval (0, 0)) passes any margin above
    0; with ``max_drop = 0`` the candidate must be shown better, which unchanged outputs are not.

    ``score`` is called once per resample, so a slow metric is slow here; ``batch(chunk)``, where
    given, scores a (resamples, n) array of row indices at once and returns both models' values
    (:func:`modelcheck.checks.resampled.batch_scorer`). For accuracy-like metrics use
    :func:`paired_bootstrap_correct`. The same ``seed`` draws the same indices in all three.

    ``jackknife()``, where given, returns both models' values with each row left out in turn (two arrays
    of shape (n,)); the interval is then the BCa interval (Efron's bias-corrected and accelerated
    percentile interval), which corrects the percentile interval's bias and skew. Corpus metrics over
    a few hundred rows need it: the plain percentile interval passed 5-6% of candidates whose true drop
    was the margin, BCa 3% (benchmarks/corpus_fidelity.py).
    """
    _check_common(n=n, max_drop=max_drop, confidence=confidence)
    _check_resamples(resamples)
    baseline, candidate = _pair(score(np.arange(n)), where="score(all rows)")
    differences = np.empty(resamples, dtype=np.float64)
    done = 0
    for chunk in _resample_indices(n, resamples, seed):
        if batch is not None:
            b_values, c_values = batch(chunk)
            differences[done : done + len(chunk)] = np.asarray(c_values) - np.asarray(b_values)
            done += len(chunk)
            continue
        for rows in chunk:
            b, c = _pair(score(rows), where=f"score(resample {done})")
            differences[done] = c - b
            done += 1
    left_out = None
    if jackknife is not None:
        b_left, c_left = jackknife()
        left_out = np.asarray(c_left, dtype=np.float64) - np.asarray(b_left, dtype=np.float64)
    return _bootstrap_result(
        "paired-bootstrap", n, baseline, candidate, differences,
        max_drop=max_drop, confidence=confidence, higher_is_better=higher_is_better, left_out=left_out,
    )  # fmt: skip


def paired_bootstrap_correct(
    baseline_correct: np.ndarray,
    candidate_correct: np.ndarray,
    *,
    max_drop: float,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """:func:`paired_bootstrap` of accuracy from per-example correctness (bool or 0/1), vectorised.

    Draws exactly the indices :func:`paired_bootstrap` draws for the same ``seed`` and ``n``, so the
    two give the same interval for an accuracy ``score``; also reports ``improved``/``regressed``.

    When few examples changed, the percentile interval is too narrow: it measures the spread of
    the drop from the handful of flips it saw (1 regression of 400 gives an interval reaching only
    -0.75 points), and it passed up to 37% of candidates whose true drop equalled the margin. So a
    pass also needs the exact test (:func:`mcnemar`, its p-value is reported) to reject a drop of
    ``max_drop`` at the same confidence; where many examples changed the interval is the stricter
    of the two (two-sided, so one-sided at ``(1 - confidence) / 2``) and decides.
    """
    from modelcheck.measure.noninferiority import exact_pvalue

    base, cand = _correctness(baseline_correct, candidate_correct)
    n = len(base)
    _check_common(n=n, max_drop=max_drop, confidence=confidence)
    _check_resamples(resamples)
    # Per example: +1 improved, -1 regressed, 0 unchanged; a resample's accuracy difference is its mean.
    delta = cand.astype(np.int32) - base.astype(np.int32)
    differences = np.empty(resamples, dtype=np.float64)
    done = 0
    if np.any(delta):
        for chunk in _resample_indices(n, resamples, seed):
            differences[done : done + len(chunk)] = delta[chunk].sum(axis=1) / n
            done += len(chunk)
    else:
        differences[:] = 0.0  # identical correctness: every resample's difference is 0
    result = _bootstrap_result(
        "paired-bootstrap", n, float(base.mean()), float(cand.mean()), differences,
        max_drop=max_drop, confidence=confidence, higher_is_better=True,
    )  # fmt: skip
    improved, regressed = int(np.sum(delta > 0)), int(np.sum(delta < 0))
    p_value = exact_pvalue(regressed, improved, n, float(max_drop))
    verdict = "passed" if result.passed and p_value < 1.0 - confidence else "failed"
    return replace(result, improved=improved, regressed=regressed, p_value=p_value, verdict=verdict)


def mcnemar(
    baseline_correct: np.ndarray,
    candidate_correct: np.ndarray,
    *,
    max_drop: float,
    confidence: float = 0.95,
) -> PairedComparison:
    """Exact non-inferiority test on paired right/wrong outcomes (McNemar's exact test at margin 0).

    ``b`` = regressed (baseline right, candidate wrong), ``c`` = improved; the drop is ``(b - c) / n``.
    Null hypothesis: the true drop is ``max_drop`` or more. ``p_value`` is the exact unconditional
    p-value of Tango's score statistic (:func:`modelcheck.measure.noninferiority.exact_pvalue`), which with
    ``max_drop = 0`` is the classic one-sided exact McNemar p-value ``P(Binomial(b + c, 1/2) <= b)``.
    Passed iff ``p_value < 1 - confidence``. No exception for unchanged outputs: with too few
    examples for the margin (``n * max_drop`` under about 3) not even an identical model passes.
    """
    from modelcheck.measure.noninferiority import exact_pvalue

    base, cand = _correctness(baseline_correct, candidate_correct)
    n = len(base)
    _check_common(n=n, max_drop=max_drop, confidence=confidence)
    regressed = int(np.sum(base & ~cand))
    improved = int(np.sum(cand & ~base))
    p_value = exact_pvalue(regressed, improved, n, float(max_drop))
    verdict: Verdict = "passed" if p_value < 1.0 - confidence else "failed"
    baseline, candidate = float(base.mean()), float(cand.mean())
    return PairedComparison(
        test="mcnemar", n=n, baseline=baseline, candidate=candidate, difference=(improved - regressed) / n,
        max_drop=float(max_drop), confidence=float(confidence), ci=None, p_value=p_value,
        improved=improved, regressed=regressed, verdict=verdict,
    )  # fmt: skip


def plain_difference(
    baseline: float, candidate: float, n: int, *, max_drop: float, higher_is_better: bool = True
) -> PairedComparison:
    """Compare two metric values with no statistics (test ``"none"``): passed iff the drop <= ``max_drop``.

    The drop is ``baseline - candidate`` (``candidate - baseline`` when lower is better), compared
    with a 1e-12 slack so that float rounding (0.92 - 0.91) does not fail a drop exactly at the margin.
    """
    _check_common(n=n, max_drop=max_drop, confidence=0.5)
    baseline, candidate = float(baseline), float(candidate)
    if not (math.isfinite(baseline) and math.isfinite(candidate)):
        raise ValueError(f"baseline and candidate must be finite numbers, got {baseline} and {candidate}")
    drop = baseline - candidate if higher_is_better else candidate - baseline
    return PairedComparison(
        test="none", n=n, baseline=baseline, candidate=candidate, difference=candidate - baseline,
        max_drop=float(max_drop), confidence=0.0, ci=None, p_value=None, improved=None, regressed=None,
        verdict="passed" if drop <= max_drop + _TOLERANCE else "failed", higher_is_better=higher_is_better,
    )  # fmt: skip


def _bootstrap_result(
    test: str,
    n: int,
    baseline: float,
    candidate: float,
    differences: np.ndarray,
    *,
    max_drop: float,
    confidence: float,
    higher_is_better: bool,
    left_out: np.ndarray | None = None,
) -> PairedComparison:
    if not np.all(np.isfinite(differences)):
        bad = int(np.argmin(np.isfinite(differences)))
        raise ValueError(f"score returned a non-finite metric value on bootstrap resample {bad}")
    alpha = 1.0 - confidence
    difference = candidate - baseline
    levels, interval = [alpha / 2.0, 1.0 - alpha / 2.0], "percentile"
    if left_out is not None:
        corrected = _bca_levels(differences, difference, left_out, levels)
        if corrected is not None:
            levels, interval = corrected, "bca"
    low, high = (float(q) for q in np.quantile(differences, levels))
    passed = low > -max_drop if higher_is_better else high < max_drop
    return PairedComparison(
        test=test, n=n, baseline=baseline, candidate=candidate, difference=difference, max_drop=float(max_drop),
        confidence=float(confidence), ci=(low, high), p_value=None, improved=None, regressed=None,
        verdict="passed" if passed else "failed", higher_is_better=higher_is_better, interval=interval,
        differences=differences,
    )  # fmt: skip


def _bca_levels(
    differences: np.ndarray, observed: float, left_out: np.ndarray, levels: list[float]
) -> list[float] | None:
    """The BCa interval's quantile levels (Efron 1987; Efron and Tibshirani 1993, 14.3), or None where undefined.

    Bias correction ``z0``: the normal quantile of the share of resampled differences below the observed
    one (ties count half). Acceleration ``a``: the skewness of the leave-one-out differences. Undefined
    (None: keep the percentile levels) when the resamples do not vary or a leave-one-out value is not finite.
    """
    from statistics import NormalDist

    if not np.all(np.isfinite(left_out)) or np.ptp(differences) == 0:
        return None
    normal, resamples = NormalDist(), len(differences)
    below = (np.count_nonzero(differences < observed) + 0.5 * np.count_nonzero(differences == observed)) / resamples
    z0 = normal.inv_cdf(min(max(below, 1.0 / (resamples + 1)), resamples / (resamples + 1)))
    spread = left_out.mean() - left_out
    scale = float(np.sum(spread**2))
    a = float(np.sum(spread**3)) / (6.0 * scale**1.5) if scale > 0 else 0.0
    out = []
    for level in levels:
        z = z0 + normal.inv_cdf(level)
        out.append(normal.cdf(z0 + z / (1.0 - a * z)))
    return out


def _resample_indices(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """All resamples' row indices as (rows, n) int arrays, at most ``_CHUNK_ELEMENTS`` at a time."""
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_ELEMENTS // n)
    dtype = np.int32 if n < 2**31 else np.int64
    for start in range(0, resamples, per_chunk):
        yield rng.integers(0, n, size=(min(per_chunk, resamples - start), n), dtype=dtype)


def _correctness(baseline_correct: Any, candidate_correct: Any) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for name, value in (("baseline_correct", baseline_correct), ("candidate_correct", candidate_correct)):
        array = np.asarray(value)
        if array.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional (one entry per example), got shape {array.shape}")
        if array.dtype != np.bool_:
            if array.size and not np.all((array == 0) | (array == 1)):
                raise ValueError(f"{name} must hold booleans or 0/1 (right/wrong per example)")
            array = array.astype(bool)
        arrays.append(array)
    base, cand = arrays
    if len(base) != len(cand):
        raise ValueError(
            f"baseline_correct and candidate_correct must be paired, one entry per example each; "
            f"got lengths {len(base)} and {len(cand)}"
        )
    return base, cand


def _check_common(*, n: int, max_drop: float, confidence: float) -> None:
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive number of examples, got {n!r}")
    if not (isinstance(max_drop, (int, float, np.floating, np.integer)) and math.isfinite(max_drop) and max_drop >= 0):
        raise ValueError(f"max_drop must be a finite number >= 0 (the largest tolerated drop), got {max_drop!r}")
    if not (isinstance(confidence, (int, float, np.floating)) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be strictly between 0 and 1 (e.g. 0.95), got {confidence!r}")


def _check_resamples(resamples: int) -> None:
    if int(resamples) != resamples or resamples < 100:
        raise ValueError(f"resamples must be an integer >= 100 for a usable interval, got {resamples!r}")


def _pair(value: Any, *, where: str) -> tuple[float, float]:
    try:
        baseline, candidate = value
        return float(baseline), float(candidate)
    except (TypeError, ValueError):
        raise ValueError(f"{where} must return (baseline_value, candidate_value), got {value!r}") from None
