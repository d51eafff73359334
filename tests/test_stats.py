"""Paired candidate-vs-baseline comparisons on synthetic per-example correctness (no models)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats as scipy_stats

from modelcheck.measure.stats import mcnemar, paired_bootstrap, paired_bootstrap_correct, plain_difference


def correctness(
    n: int, accuracy: float, *, regressed: int = 0, improved: int = 0, seed: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """A baseline right on ``accuracy * n`` examples, and a candidate with planted flips."""
    rng = np.random.default_rng(seed)
    base = np.zeros(n, dtype=bool)
    base[rng.permutation(n)[: round(accuracy * n)]] = True
    cand = base.copy()
    cand[rng.choice(np.flatnonzero(base), regressed, replace=False)] = False
    cand[rng.choice(np.flatnonzero(~base), improved, replace=False)] = True
    return base, cand


def accuracy_score(base: np.ndarray, cand: np.ndarray) -> Callable[[np.ndarray], tuple[float, float]]:
    return lambda rows: (float(base[rows].mean()), float(cand[rows].mean()))


# --- the planted cases ---------------------------------------------------------------


def test_three_percent_of_correct_flipped_fails_both_tests() -> None:
    base, cand = correctness(2000, 0.92, regressed=round(0.03 * 1840))  # 55 flips: a 2.75-point drop
    boot = paired_bootstrap_correct(base, cand, max_drop=0.01)
    exact = mcnemar(base, cand, max_drop=0.01)
    assert (boot.verdict, exact.verdict) == ("failed", "failed")
    assert boot.baseline == pytest.approx(0.92) and boot.candidate == pytest.approx(0.8925)
    assert boot.difference == pytest.approx(-0.0275)
    assert boot.ci is not None and boot.ci[1] < -0.01  # the whole interval is past the margin
    assert (exact.regressed, exact.improved) == (55, 0) == (boot.regressed, boot.improved)
    assert exact.p_value is not None and exact.p_value > 0.5


def test_identical_model_passes_both_tests() -> None:
    base, cand = correctness(2000, 0.92)
    boot = paired_bootstrap_correct(base, cand, max_drop=0.01)
    exact = mcnemar(base, cand, max_drop=0.01)
    assert (boot.verdict, exact.verdict) == ("passed", "passed")
    assert boot.ci == (0.0, 0.0) and boot.difference == 0.0
    assert exact.p_value is not None and exact.p_value < 1e-4 and (exact.regressed, exact.improved) == (0, 0)
    # With no margin the candidate must be shown better; unchanged outputs are no evidence of that.
    zero_margin = mcnemar(base, cand, max_drop=0.0)
    assert zero_margin.verdict == "failed" and zero_margin.p_value == 1.0
    assert paired_bootstrap_correct(base, cand, max_drop=0.0).verdict == "failed"


def test_unchanged_outputs_on_too_few_examples_for_the_margin_fail() -> None:
    # 200 examples, margin 0.5 points = 1 example: a candidate 0.5 points worse changes nothing on
    # these rows 37% of the time (0.995**200), so "nothing changed" cannot show it is within the margin.
    base, cand = correctness(200, 0.9)
    assert mcnemar(base, cand, max_drop=0.005).verdict == "failed"
    assert paired_bootstrap_correct(base, cand, max_drop=0.005).verdict == "failed"
    assert mcnemar(base, cand, max_drop=0.02).verdict == "passed"  # 4 examples of margin: enough


def test_quarter_point_drop_within_one_point_margin() -> None:
    # 1 regression of 400, margin 1 point (4 examples): a candidate truly 1 point worse shows 0 or 1
    # regressions 9% of the time, so 400 examples cannot show this one is within the margin at 95%.
    base, cand = correctness(400, 0.9, regressed=1)
    boot = paired_bootstrap_correct(base, cand, max_drop=0.01)
    exact = mcnemar(base, cand, max_drop=0.01)
    assert boot.difference == pytest.approx(-0.0025)
    assert boot.ci is not None and -0.01 < boot.ci[0] < 0.0  # the interval alone would pass it
    assert exact.p_value is not None and 0.05 < exact.p_value < 0.15 and boot.p_value == exact.p_value
    assert (boot.verdict, exact.verdict) == ("failed", "failed")
    # The same quarter-point drop on 2,000 examples (margin 20 examples) passes both.
    base, cand = correctness(2000, 0.9, regressed=5)
    both = (paired_bootstrap_correct(base, cand, max_drop=0.01), mcnemar(base, cand, max_drop=0.01))
    assert [r.verdict for r in both] == ["passed", "passed"]


def test_two_regressed_one_improved_of_400_fails_both_tests() -> None:
    base, cand = correctness(400, 0.9, regressed=2, improved=1)
    assert mcnemar(base, cand, max_drop=0.01).verdict == "failed"
    boot = paired_bootstrap_correct(base, cand, max_drop=0.01)
    assert boot.verdict == "failed" and boot.ci is not None and boot.ci[0] <= -0.01


# --- mcnemar against scipy -------------------------------------------------------------------


@pytest.mark.parametrize(("regressed", "improved"), [(0, 3), (5, 5), (12, 4), (30, 1), (1, 20)])
def test_mcnemar_without_margin_is_the_classic_exact_one_sided_test(regressed: int, improved: int) -> None:
    base, cand = correctness(500, 0.8, regressed=regressed, improved=improved)
    result = mcnemar(base, cand, max_drop=0.0)
    expected = scipy_stats.binomtest(regressed, regressed + improved, 0.5, alternative="less").pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-12)
    assert result.verdict == ("passed" if expected < 0.05 else "failed")


@pytest.mark.parametrize(
    ("n", "regressed", "improved", "max_drop"),
    [(2000, 20, 15, 0.005), (2000, 40, 10, 0.01), (1000, 6, 30, 0.01), (400, 10, 9, 0.01), (5000, 70, 60, 0.002)],
)
def test_mcnemar_with_margin_is_the_exact_score_test(n: int, regressed: int, improved: int, max_drop: float) -> None:
    from modelcheck.measure.noninferiority import exact_pvalue

    base, cand = correctness(n, 0.85, regressed=regressed, improved=improved)
    result = mcnemar(base, cand, max_drop=max_drop)
    expected = exact_pvalue(regressed, improved, n, max_drop)
    assert result.p_value == expected
    assert result.verdict == ("passed" if expected < 0.05 else "failed")
    assert result.difference == pytest.approx((improved - regressed) / n)


def test_mcnemar_confidence_sets_the_threshold() -> None:
    base, cand = correctness(2000, 0.9, regressed=20, improved=12)
    p = mcnemar(base, cand, max_drop=0.01).p_value
    assert p is not None and 0.001 < p < 0.05  # 0.026
    assert mcnemar(base, cand, max_drop=0.01, confidence=0.95).verdict == "passed"
    assert mcnemar(base, cand, max_drop=0.01, confidence=0.999).verdict == "failed"


# --- paired bootstrap ------------------------------------------------------------------------


def test_same_seed_same_interval_and_other_seed_close() -> None:
    base, cand = correctness(1000, 0.9, regressed=30, improved=20)
    first = paired_bootstrap_correct(base, cand, max_drop=0.02, seed=7)
    assert paired_bootstrap_correct(base, cand, max_drop=0.02, seed=7) == first
    other = paired_bootstrap_correct(base, cand, max_drop=0.02, seed=8)
    assert other.ci is not None and first.ci is not None
    assert other.ci == pytest.approx(first.ci, abs=0.004)


def test_generic_bootstrap_matches_the_fast_path_for_accuracy() -> None:
    base, cand = correctness(300, 0.8, regressed=12, improved=5)
    fast = paired_bootstrap_correct(base, cand, max_drop=0.02, resamples=500, seed=3)
    generic = paired_bootstrap(accuracy_score(base, cand), 300, max_drop=0.02, resamples=500, seed=3)
    assert generic.ci is not None and fast.ci is not None
    assert generic.ci == pytest.approx(fast.ci, abs=1e-12)
    assert (generic.verdict, generic.baseline, generic.candidate) == (fast.verdict, fast.baseline, fast.candidate)
    assert generic.improved is None and fast.improved == 5 and fast.regressed == 12


@pytest.mark.parametrize(("regressed", "improved"), [(30, 20), (5, 40), (60, 0)])
def test_interval_contains_the_observed_difference(regressed: int, improved: int) -> None:
    base, cand = correctness(1500, 0.85, regressed=regressed, improved=improved)
    result = paired_bootstrap_correct(base, cand, max_drop=0.01)
    assert result.ci is not None and result.ci[0] <= result.difference <= result.ci[1]


def test_interval_narrows_with_more_examples() -> None:
    widths = []
    for n in (200, 800, 3200):
        base, cand = correctness(n, 0.9, regressed=n // 20, improved=n // 40)  # same rates at every n
        ci = paired_bootstrap_correct(base, cand, max_drop=0.01).ci
        assert ci is not None
        widths.append(ci[1] - ci[0])
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] / widths[2] == pytest.approx(4, rel=0.3)  # ~ 1/sqrt(n)


def test_lower_is_better_flips_the_verdict() -> None:
    rng = np.random.default_rng(0)
    n = 1000
    targets = rng.normal(size=n)
    baseline = targets + rng.normal(scale=0.5, size=n)

    def rmse_score(candidate: np.ndarray) -> Callable[[np.ndarray], tuple[float, float]]:
        def score(rows: np.ndarray) -> tuple[float, float]:
            t = targets[rows]
            return float(np.sqrt(np.mean((baseline[rows] - t) ** 2))), float(
                np.sqrt(np.mean((candidate[rows] - t) ** 2))
            )

        return score

    worse = targets + rng.normal(scale=0.7, size=n)  # rmse rises ~0.2, margin 0.05
    failed = paired_bootstrap(rmse_score(worse), n, max_drop=0.05, resamples=500, higher_is_better=False)
    assert failed.verdict == "failed" and failed.difference > 0.1
    assert failed.ci is not None and failed.ci[0] > 0.05
    # Read as higher-is-better, the same rise would look like an improvement and pass.
    assert paired_bootstrap(rmse_score(worse), n, max_drop=0.05, resamples=500).verdict == "passed"

    better = targets + rng.normal(scale=0.3, size=n)  # rmse falls: passes only when lower is better
    passed = paired_bootstrap(rmse_score(better), n, max_drop=0.05, resamples=500, higher_is_better=False)
    assert passed.verdict == "passed" and passed.difference < 0
    assert paired_bootstrap(rmse_score(better), n, max_drop=0.05, resamples=500).verdict == "failed"


def test_fast_path_is_fast_for_2000_examples() -> None:
    base, cand = correctness(2000, 0.92, regressed=40, improved=25)
    start = time.perf_counter()
    paired_bootstrap_correct(base, cand, max_drop=0.01)
    assert time.perf_counter() - start < 1.0


# --- plain difference and the report shape ---------------------------------------------------


def test_plain_difference() -> None:
    assert plain_difference(0.92, 0.91, 400, max_drop=0.01).verdict == "passed"  # exactly at the margin
    assert plain_difference(0.92, 0.905, 400, max_drop=0.01).verdict == "failed"
    assert plain_difference(0.50, 0.52, 400, max_drop=0.01, higher_is_better=False).verdict == "failed"
    assert plain_difference(0.50, 0.40, 400, max_drop=0.0, higher_is_better=False).verdict == "passed"
    result = plain_difference(0.9, 0.95, 10, max_drop=0.0)
    assert (result.test, result.ci, result.p_value, result.improved) == ("none", None, None, None)
    assert result.difference == pytest.approx(0.05)


def test_to_dict_is_json_plain() -> None:
    base, cand = correctness(500, 0.9, regressed=10, improved=4)
    for result in (
        paired_bootstrap_correct(base, cand, max_drop=0.01),
        mcnemar(base, cand, max_drop=0.01),
        plain_difference(0.9, 0.88, 500, max_drop=0.01),
    ):
        data = result.to_dict()
        assert json.loads(json.dumps(data)) == data
        assert data["verdict"] in ("passed", "failed") and data["test"] == result.test
    boot = paired_bootstrap_correct(base, cand, max_drop=0.01).to_dict()
    assert isinstance(boot["ci"], list) and all(type(x) is float for x in boot["ci"])
    assert type(boot["improved"]) is int


# --- invalid arguments -----------------------------------------------------------------------

BASE, CAND = correctness(100, 0.9, regressed=2)


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5, -0.1, 95])
def test_confidence_outside_open_unit_interval(confidence: float) -> None:
    for call in (
        lambda: mcnemar(BASE, CAND, max_drop=0.01, confidence=confidence),
        lambda: paired_bootstrap_correct(BASE, CAND, max_drop=0.01, confidence=confidence),
        lambda: paired_bootstrap(accuracy_score(BASE, CAND), 100, max_drop=0.01, confidence=confidence),
    ):
        with pytest.raises(ValueError, match="confidence must be strictly between 0 and 1"):
            call()


@pytest.mark.parametrize("resamples", [0, 99, -5])
def test_too_few_resamples(resamples: int) -> None:
    with pytest.raises(ValueError, match="resamples must be an integer >= 100"):
        paired_bootstrap_correct(BASE, CAND, max_drop=0.01, resamples=resamples)
    with pytest.raises(ValueError, match="resamples must be an integer >= 100"):
        paired_bootstrap(accuracy_score(BASE, CAND), 100, max_drop=0.01, resamples=resamples)


@pytest.mark.parametrize("max_drop", [-0.01, float("nan"), float("inf")])
def test_bad_max_drop(max_drop: float) -> None:
    for call in (
        lambda: mcnemar(BASE, CAND, max_drop=max_drop),
        lambda: paired_bootstrap_correct(BASE, CAND, max_drop=max_drop),
        lambda: plain_difference(0.9, 0.9, 100, max_drop=max_drop),
    ):
        with pytest.raises(ValueError, match="max_drop must be a finite number >= 0"):
            call()


def test_mismatched_lengths_and_shapes() -> None:
    for fn in (mcnemar, paired_bootstrap_correct):
        with pytest.raises(ValueError, match="lengths 100 and 99"):
            fn(BASE, CAND[:99], max_drop=0.01)
        with pytest.raises(ValueError, match="one-dimensional"):
            fn(BASE.reshape(10, 10), CAND.reshape(10, 10), max_drop=0.01)
        with pytest.raises(ValueError, match="booleans or 0/1"):
            fn(BASE * 0.5, CAND, max_drop=0.01)
        with pytest.raises(ValueError, match="positive number of examples"):
            fn(BASE[:0], CAND[:0], max_drop=0.01)


def test_zero_one_integers_are_accepted() -> None:
    assert mcnemar(BASE.astype(int), CAND.astype(int), max_drop=0.01) == mcnemar(BASE, CAND, max_drop=0.01)


def test_bad_score_callback() -> None:
    with pytest.raises(ValueError, match=r"must return \(baseline_value, candidate_value\)"):
        paired_bootstrap(lambda rows: 0.5, 100, max_drop=0.01)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="non-finite metric value"):
        paired_bootstrap(lambda rows: (0.5, float("nan")), 100, max_drop=0.01)
    with pytest.raises(ValueError, match="positive number of examples"):
        paired_bootstrap(accuracy_score(BASE, CAND), 0, max_drop=0.01)


def test_bca_interval_equals_scipys_on_the_same_resamples() -> None:
    """With leave-one-out values the interval is Efron's BCa, equal to scipy's own BCa levels on the same draws."""
    resampling = pytest.importorskip("scipy.stats._resampling")
    if not hasattr(resampling, "_bca_interval"):
        pytest.skip("this scipy has no _bca_interval to cross-check against")
    import scipy._lib._array_api as array_api

    rng = np.random.default_rng(4)
    n = 300
    base = rng.random(n)
    cand = np.where(rng.random(n) < 0.1, base - rng.exponential(0.5, n), base)  # a few rows drop a lot: skewed

    def left_out(x: np.ndarray) -> np.ndarray:
        return (x.sum() - x) / (n - 1)

    def score(rows: np.ndarray) -> tuple[float, float]:
        return float(base[rows].mean()), float(cand[rows].mean())

    def batch(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return base[chunk].mean(axis=1), cand[chunk].mean(axis=1)

    plain = paired_bootstrap(score, n, max_drop=0.05, batch=batch)
    bca = paired_bootstrap(score, n, max_drop=0.05, batch=batch, jackknife=lambda: (left_out(base), left_out(cand)))
    assert (plain.interval, bca.interval) == ("percentile", "bca")
    assert plain.differences is not None
    np.testing.assert_array_equal(plain.differences, bca.differences)  # the same draws, read differently
    levels = resampling._bca_interval(
        (np.arange(n),), lambda i, axis=-1: cand[i].mean(axis) - base[i].mean(axis), -1, 0.025,
        plain.differences, None, xp=array_api.array_namespace(plain.differences),
    )  # fmt: skip
    expected = [np.quantile(plain.differences, float(level)) for level in levels[:2]]
    assert bca.ci == pytest.approx(expected, abs=1e-12)
    assert bca.ci != pytest.approx(plain.ci, abs=1e-4)  # the skew moved it
    assert bca.to_dict()["interval"] == "bca"


def test_bca_keeps_the_percentile_interval_where_it_is_undefined() -> None:
    same = np.full(50, 0.7)
    unchanged = paired_bootstrap(lambda rows: (0.7, 0.7), 50, max_drop=0.01,
                                 jackknife=lambda: (same, same))  # fmt: skip
    assert (unchanged.interval, unchanged.ci, unchanged.verdict) == ("percentile", (0.0, 0.0), "passed")
    rng = np.random.default_rng(0)
    values = rng.random(50)
    broken = paired_bootstrap(lambda rows: (0.5, float(values[rows].mean())), 50, max_drop=0.5,
                              jackknife=lambda: (same, np.full(50, np.nan)))  # fmt: skip
    assert broken.interval == "percentile"
