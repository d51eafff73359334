"""Bootstrap resamples scored with numpy equal scikit-learn on the same resampled rows, and are fast."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics

from modelcheck.checks.metric import Scorer
from modelcheck.checks.regression import _compare
from modelcheck.checks.resampled import batch_scorer
from modelcheck.gatefile import CheckSpec
from modelcheck.measure.stats import _resample_indices
from modelcheck.models.backends import Outputs

RNG = np.random.default_rng(0)


def check(metric: str, **options: object) -> CheckSpec:
    return CheckSpec(name="x", kind="regression", metric=metric, max_drop=0.01, baseline="", **options)  # type: ignore[arg-type]


def chunk(n: int, resamples: int = 60) -> np.ndarray:
    return next(_resample_indices(n, resamples, 7))[:resamples]


def sklearn_value(scorer: Scorer, targets, outputs: Outputs, rows: np.ndarray | None = None) -> float:  # type: ignore[no-untyped-def]
    """What scikit-learn says the check's metric is (the reference every numpy path is held to)."""
    if scorer.metric == "accuracy":
        return float(metrics.accuracy_score(targets, outputs.labels))
    if scorer.metric in ("precision", "recall", "f1"):
        options: dict[str, object] = {"average": scorer.average, "zero_division": 0}
        if scorer.average == "binary":
            options.update(pos_label=scorer.pos_label, labels=[0, 1])
        score = {"precision": metrics.precision_score, "recall": metrics.recall_score, "f1": metrics.f1_score}
        return float(score[scorer.metric](targets, outputs.labels, **options))
    regression = {"mae": metrics.mean_absolute_error, "rmse": metrics.root_mean_squared_error, "r2": metrics.r2_score}
    if scorer.metric in regression:
        return float(regression[scorer.metric](targets, outputs.values))
    return scorer.score(targets, outputs, rows)  # cosine, exact_match, contains: a mean of per-row values


def assert_equal_to_sklearn(  # type: ignore[no-untyped-def]
    spec: CheckSpec, labels: tuple[str, ...], targets, base: Outputs, cand: Outputs, task: str | None = None
) -> None:
    n = len(base)
    scorer = Scorer(spec, labels, n_rows=n, task=task)
    for outputs in (base, cand):  # the point estimate on all rows
        assert scorer.score(targets, outputs, None) == pytest.approx(sklearn_value(scorer, targets, outputs), rel=1e-12)
    batch = batch_scorer(scorer, targets, base, cand)
    assert batch is not None
    rows = chunk(n)
    got_base, got_cand = batch(rows)
    for i, r in enumerate(rows):
        from modelcheck.checks.metric import take_rows

        subset = take_rows(targets, r)
        assert got_base[i] == pytest.approx(sklearn_value(scorer, subset, base.take(r), r), rel=1e-12, abs=1e-15)
        assert got_cand[i] == pytest.approx(sklearn_value(scorer, subset, cand.take(r), r), rel=1e-12, abs=1e-15)


def labelled(n: int, classes: int, *, missing_class: bool = False) -> tuple[np.ndarray, Outputs, Outputs]:
    high = classes - 1 if missing_class else classes  # the last class never a target: macro over present classes
    targets = RNG.integers(0, high, n)
    noisy = [np.where(RNG.random(n) < 0.7, targets, RNG.integers(0, classes, n)) for _ in range(2)]
    return targets, Outputs(labels=noisy[0]), Outputs(labels=noisy[1])


@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall", "f1"])
@pytest.mark.parametrize("average", [None, "macro", "micro", "weighted"])
@pytest.mark.parametrize("classes", [3, 20])  # 3: one joint count for both models; 20: counts per model
def test_classification_metrics_equal_sklearn(metric: str, average: str | None, classes: int) -> None:
    targets, base, cand = labelled(120, classes, missing_class=True)
    names = tuple(f"c{i}" for i in range(classes))
    assert_equal_to_sklearn(check(metric, average=average), names, targets, base, cand)


@pytest.mark.parametrize("metric", ["precision", "recall", "f1"])
@pytest.mark.parametrize("pos_label", [None, "neg"])
def test_binary_metrics_equal_sklearn(metric: str, pos_label: str | None) -> None:
    targets, base, cand = labelled(80, 2)
    assert_equal_to_sklearn(check(metric, pos_label=pos_label), ("neg", "pos"), targets, base, cand)
    # A positive class that never occurs (zero_division=0 everywhere) is still scored like scikit-learn.
    zeros = Outputs(labels=np.zeros(80, dtype=np.int64))
    assert_equal_to_sklearn(check(metric), ("neg", "pos"), np.zeros(80, dtype=np.int64), zeros, cand)


@settings(max_examples=300, deadline=None)
@given(
    metric=st.sampled_from(["accuracy", "precision", "recall", "f1"]),
    average=st.sampled_from(["binary", "macro", "micro", "weighted"]),
    pairs=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=40),
    positive=st.sampled_from([None, "c0"]),
)
def test_point_estimates_equal_sklearn_on_any_labels(metric: str, average: str, pairs, positive) -> None:  # type: ignore[no-untyped-def]
    """Any targets and predictions (absent classes, one class, nothing right) score as scikit-learn does."""
    names = ("c0", "c1") if average == "binary" else tuple(f"c{i}" for i in range(5))
    limit = len(names)
    targets = np.array([t % limit for t, _ in pairs], dtype=np.int64)
    outputs = Outputs(labels=np.array([p % limit for _, p in pairs], dtype=np.int64))
    spec = check(metric, average=average, pos_label=positive if average == "binary" else None)
    scorer = Scorer(spec, names, n_rows=len(targets))
    assert scorer.score(targets, outputs, None) == pytest.approx(sklearn_value(scorer, targets, outputs), rel=1e-12)


@pytest.mark.parametrize("metric", ["mae", "rmse", "r2"])
def test_regression_metrics_equal_sklearn(metric: str) -> None:
    targets = RNG.normal(size=90)
    base, cand = (Outputs(values=targets + RNG.normal(scale=s, size=90)) for s in (0.3, 0.5))
    assert_equal_to_sklearn(check(metric), ("value",), targets, base, cand)


def test_r2_of_a_constant_target_follows_sklearn() -> None:
    targets = np.full(30, 2.0)
    exact = Outputs(values=targets.copy())
    off = Outputs(values=targets + RNG.normal(size=30))
    assert_equal_to_sklearn(check("r2"), ("value",), targets, exact, off)


def test_text_and_embedding_metrics_equal_the_scorer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    texts = ["a", "b", "c", "d"] * 10
    targets = [[" a"], ["x"], ["c "], ["d"]] * 10
    base, cand = Outputs(texts=texts), Outputs(texts=list(reversed(texts)))
    for metric in ("exact_match", "contains"):  # text-generation's family: a mean of per-row 0/1
        assert_equal_to_sklearn(check(metric), (), targets, base, cand, task="text-generation")
    reference = RNG.normal(size=(40, 8))
    np.save(tmp_path / "ref.npy", reference)
    spec = check("cosine_similarity", reference=str(tmp_path / "ref.npy"))
    one, two = (Outputs(embeddings=reference + RNG.normal(scale=s, size=(40, 8))) for s in (0.1, 0.5))
    assert_equal_to_sklearn(spec, (), None, one, two)


def test_metrics_without_per_example_terms_keep_the_per_resample_path() -> None:
    targets, base, cand = labelled(50, 2)
    scorer = Scorer(check("roc_auc"), ("neg", "pos"), n_rows=50)
    assert batch_scorer(scorer, targets, base, cand) is None


def test_the_interval_is_the_one_sklearn_gives() -> None:
    """The whole bootstrap (same seed, same resamples) equals the per-resample scikit-learn path."""
    import modelcheck.checks.resampled as resampled

    targets, base, cand = labelled(300, 4)
    spec = check("f1", average="macro", resamples=200)
    fast = _compare(spec, targets, base, cand, ("a", "b", "c", "d"))
    original = resampled.batch_scorer
    resampled.batch_scorer = lambda *args: None  # type: ignore[assignment]
    try:
        slow = _compare(spec, targets, base, cand, ("a", "b", "c", "d"))
    finally:
        resampled.batch_scorer = original
    assert fast.ci is not None and slow.ci is not None
    assert fast.ci == pytest.approx(slow.ci, abs=1e-12) and fast.verdict == slow.verdict


def test_f1_macro_interval_at_ten_thousand_rows_is_fast() -> None:
    targets, base, cand = labelled(10_000, 5)
    spec = check("f1", average="macro")
    _compare(spec, targets[:100], base.take(range(100)), cand.take(range(100)), tuple("abcde"))  # imports
    start = time.perf_counter()
    result = _compare(spec, targets, base, cand, tuple("abcde"))
    # ~0.2-0.4 s on 2 shared cores (scikit-learn once per resample: 7-26 s at 400 rows). Loose for busy machines.
    assert time.perf_counter() - start < 3.0
    assert result.ci is not None and result.n == 10_000
