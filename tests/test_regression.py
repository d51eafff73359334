"""Regression checks against baselines: planted regressions, missing and mismatched baselines, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelcheck.checks.regression import judge_regression
from modelcheck.cli import main
from modelcheck.gatefile import CheckSpec
from modelcheck.models.backends import Outputs
from modelcheck.report.baselines import save_outputs, update_baselines

pytestmark = pytest.mark.usefixtures("frameworks_imported_once")

DATA_SHA = "a" * 64
LABELS = ("negative", "positive")


def regression(metric: str = "accuracy", **options: object) -> CheckSpec:
    defaults: dict[str, object] = {"max_drop": 0.01, "baseline": "", "kind": "regression"}
    return CheckSpec(name="no_regression", metric=metric, **{**defaults, **options})  # type: ignore[arg-type]


def write_baseline(folder: Path, outputs: Outputs, *, data_sha: str = DATA_SHA, model_id: str = "m") -> Path:
    """A baseline as `modelcheck baseline update` writes it, from a report and its saved outputs."""
    report_path = folder / "good.json"
    saved = save_outputs(outputs, folder / "good.outputs" / f"{model_id}.npz", data_sha256=data_sha)
    report = {
        "modelcheck_version": "test",
        "gates": [
            {
                "file": "gates/m.yaml",
                "error": None,
                "model": {"id": model_id, "source": "/m", "backend": "transformers", "task": "text-classification"},
                "data": {"sha256": data_sha, "rows": len(outputs)},
                "checks": [],
                "outputs": {"path": f"good.outputs/{model_id}.npz", "sha256": saved},
            }
        ],
    }
    [written] = update_baselines(report, report_path, folder / "baselines")
    return written


def judge(check: CheckSpec, targets: np.ndarray, outputs: Outputs, *, data_sha: str = DATA_SHA):  # type: ignore[no-untyped-def]
    frame = pd.DataFrame({"row": range(len(targets))})
    return judge_regression(check, targets, outputs, LABELS, frame, model_id="m", data_sha256=data_sha)


def good_model(n: int, accuracy: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, 2, n)
    wrong = rng.permutation(n)[: round(n * (1 - accuracy))]
    predicted = targets.copy()
    predicted[wrong] = 1 - predicted[wrong]
    return targets, predicted


@pytest.mark.parametrize("test", ["paired-bootstrap", "mcnemar"])
def test_flipping_three_percent_of_correct_predictions_is_flagged(tmp_path: Path, test: str) -> None:
    targets, base = good_model(2000, 0.92)
    baseline = write_baseline(tmp_path, Outputs(labels=base))
    candidate = base.copy()
    correct = np.flatnonzero(base == targets)
    flipped = np.random.default_rng(1).choice(correct, size=int(0.03 * 2000), replace=False)
    candidate[flipped] = 1 - candidate[flipped]

    result = judge(regression(baseline=str(baseline), test=test), targets, Outputs(labels=candidate))
    assert result.status == "failed"
    assert result.details["regressed"] == 60 and result.details["improved"] == 0
    assert result.details["baseline"] == pytest.approx(0.92) and result.details["candidate"] == pytest.approx(0.89)
    assert result.value == pytest.approx(-0.03)  # the difference, which the interval is of
    assert "accuracy 0.89 vs baseline 0.92: drop +0.0300 beyond max_drop 0.01" in result.message
    assert ".." not in result.message
    from modelcheck.report.summary import format_measurement

    row = format_measurement(result.to_dict())
    if test == "paired-bootstrap":
        assert result.ci is not None and result.ci[0] <= -0.03 <= result.ci[1]
        assert row.startswith("-0.03") and " vs baseline (CI -0.0" in row and " to -0.0" in row, row
    else:
        assert row.startswith("-0.03") and row.endswith(" vs baseline"), row


@pytest.mark.parametrize("test", ["paired-bootstrap", "mcnemar", "none"])
def test_the_identical_model_passes(tmp_path: Path, test: str) -> None:
    targets, base = good_model(2000, 0.92)
    baseline = write_baseline(tmp_path, Outputs(labels=base))
    result = judge(regression(baseline=str(baseline), test=test), targets, Outputs(labels=base.copy()))
    assert result.status == "passed" and result.details["difference"] == 0.0


def test_a_small_change_within_the_margin_passes(tmp_path: Path) -> None:
    """A 0.1-point drop (two examples) on 2,000 examples, judged with a 1-point margin.

    (On 400 examples one regression is not enough evidence for a 1-point margin: see test_stats.)"""
    targets, base = good_model(2000, 0.9)
    baseline = write_baseline(tmp_path, Outputs(labels=base))
    candidate = base.copy()
    first_correct = np.flatnonzero(base == targets)[:2]
    candidate[first_correct] = 1 - candidate[first_correct]
    for test in ("paired-bootstrap", "mcnemar"):
        result = judge(regression(baseline=str(baseline), test=test), targets, Outputs(labels=candidate))
        assert result.status == "passed", result.message
        assert result.details["regressed"] == 2


def test_lower_is_better_metrics_fail_on_a_rise(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    targets = rng.normal(size=500)
    base = targets + rng.normal(scale=0.1, size=500)
    baseline = write_baseline(tmp_path, Outputs(values=base))
    worse = targets + rng.normal(scale=0.5, size=500)
    result = judge(regression("rmse", baseline=str(baseline), max_drop=0.05), targets, Outputs(values=worse))
    assert result.status == "failed" and "rmse" in result.message and "rise" in result.message
    same = judge(regression("rmse", baseline=str(baseline), max_drop=0.05), targets, Outputs(values=base.copy()))
    assert same.status == "passed"


def test_missing_baseline_is_inconclusive_and_says_how_to_create_one(tmp_path: Path) -> None:
    targets, base = good_model(100, 0.9)
    check = regression(baseline=str(tmp_path / "baselines" / "m.json"))
    result = judge(check, targets, Outputs(labels=base))
    assert result.status == "inconclusive"
    assert "no baseline at" in result.message and "modelcheck baseline update out.json" in result.message
    for policy, status in (("pass", "passed"), ("fail", "failed")):
        decided = judge(regression(baseline=check.baseline, on_missing=policy), targets, Outputs(labels=base))
        assert decided.status == status


def test_baseline_on_other_data_is_never_compared(tmp_path: Path) -> None:
    targets, base = good_model(100, 0.9)
    baseline = write_baseline(tmp_path, Outputs(labels=base), data_sha="b" * 64)
    result = judge(regression(baseline=str(baseline), on_missing="pass"), targets, Outputs(labels=base))
    assert result.status == "inconclusive"
    assert f"sha256 {'b' * 64}" in result.message and f"sha256 {DATA_SHA}" in result.message


def test_corrupt_outputs_and_old_baselines_are_inconclusive(tmp_path: Path) -> None:
    targets, base = good_model(100, 0.9)
    baseline = write_baseline(tmp_path, Outputs(labels=base))
    (baseline.parent / "m.npz").write_bytes(b"not a zip file")
    result = judge(regression(baseline=str(baseline)), targets, Outputs(labels=base))
    assert result.status == "inconclusive" and "are corrupt" in result.message

    document = json.loads(baseline.read_text())
    document["baseline_version"] = 0
    baseline.write_text(json.dumps(document))
    result = judge(regression(baseline=str(baseline)), targets, Outputs(labels=base))
    assert result.status == "inconclusive"
    assert "baseline_version 0; this modelcheck reads version 1. Recreate it" in result.message


def test_outputs_of_another_baseline_are_never_compared(tmp_path: Path) -> None:
    targets, base = good_model(100, 0.9)
    baseline = write_baseline(tmp_path / "one", Outputs(labels=base))
    other = write_baseline(tmp_path / "two", Outputs(labels=targets))
    shutil.copyfile(other.parent / "m.npz", baseline.parent / "m.npz")  # a valid outputs file, but not this one's
    result = judge(regression(baseline=str(baseline)), targets, Outputs(labels=base))
    assert result.status == "inconclusive" and "the files do not belong together" in result.message


def test_hub_baseline_offline_is_inconclusive_with_the_reason() -> None:
    targets, base = good_model(50, 0.9)
    result = judge(regression(baseline="hub://acme/sentiment@v1.2.0"), targets, Outputs(labels=base))
    assert result.status == "inconclusive"
    assert result.message.startswith("cannot fetch baseline hub://acme/sentiment@v1.2.0")
    assert "HF_HUB_OFFLINE" in result.message


# -- end to end: pytest writes outputs, the CLI makes the baseline, the next run compares ---------------------

GATE = """\
version: 1
model:
  id: sentiment
  source: "{source}"
data: {{source: ../data/test.csv, input: text, label: label}}
checks:
  - name: accuracy
    metric: accuracy
    min: 0.5
  - name: no_regression
    kind: regression
    baseline: {baseline}
    metric: accuracy
    max_drop: 0.01
stages:
  merge: all
"""


@pytest.mark.e2e
def test_baseline_round_trip_through_pytest_and_the_cli(
    pytester: pytest.Pytester, sentiment_model: Path, untrained_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(sentiment_model, pytester.path / "models" / "good")
    shutil.copytree(untrained_model, pytester.path / "models" / "untrained")
    (pytester.path / "data").mkdir()
    shutil.copy(repo / "examples" / "sentiment" / "test.csv", pytester.path / "data" / "test.csv")
    (pytester.path / "gates").mkdir()
    gate = pytester.path / "gates" / "sentiment.yaml"
    gate.write_text(GATE.format(source="${CANDIDATE:-../models/good}", baseline="../baselines/sentiment.json"))
    monkeypatch.chdir(pytester.path)

    # First run: no baseline yet -> inconclusive (a skip in pytest, exit 3 from the gate CLI).
    first = pytester.runpytest("--modelcheck", "--modelcheck-report", "good.json", "-rs")
    first.assert_outcomes(passed=1, skipped=1)
    first.stdout.fnmatch_lines(["*inconclusive: no baseline at */baselines/sentiment.json*"])
    assert main(["gate", "--stage", "merge", "good.json"]) == 3
    # Each run's outputs live in their own folder, named by the report (so the two change together).
    saved = json.loads((pytester.path / "good.json").read_text())["gates"][0]["outputs"]["path"]
    assert saved.startswith("good.outputs/run-") and saved.endswith(".npz")
    assert [p.name for p in (pytester.path / "good.outputs").glob("run-*/sentiment-*.npz")] == [Path(saved).name]

    assert main(["baseline", "update", "good.json", "--dir", "baselines"]) == 0
    assert (pytester.path / "baselines" / "sentiment.json").is_file()

    same = pytester.runpytest("--modelcheck", "--modelcheck-report", "same.json")
    same.assert_outcomes(passed=2)
    assert main(["gate", "--stage", "merge", "same.json"]) == 0

    assert_untrained_candidate_fails(pytester, monkeypatch)


def assert_untrained_candidate_fails(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """GATE with CANDIDATE set to the untrained model: the regression check fails and the gate CLI exits 1."""
    monkeypatch.setenv("CANDIDATE", str(pytester.path / "models" / "untrained"))
    worse = pytester.runpytest("--modelcheck", "--modelcheck-report", "worse.json")
    worse.assert_outcomes(passed=1, failed=1)
    worse.stdout.fnmatch_lines(["accuracy 0.5 vs baseline 1: drop +0.5000 beyond max_drop 0.01 *200 regressed*"])
    assert main(["gate", "--stage", "merge", "worse.json"]) == 1


def test_baseline_update_without_outputs_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from modelcheck.report.document import build_report, write_report

    write_report(tmp_path / "r.json", build_report([], stage=None))
    assert main(["baseline", "update", str(tmp_path / "r.json"), "--dir", str(tmp_path / "b")]) == 2
    assert "holds no per-example outputs" in capsys.readouterr().err


def test_a_baseline_saved_from_a_run_with_failed_requests_is_not_compared(tmp_path: Path) -> None:
    """A served model's run that tolerated failed requests saves which rows failed (placeholders in the others'
    place); a baseline made from it would compare placeholders, so it is inconclusive and says to recreate it."""
    targets, base = good_model(100, 0.9)
    failed = np.zeros(100, dtype=bool)
    failed[[3, 50]] = True
    baseline = write_baseline(tmp_path, Outputs(labels=base, failed=failed))
    result = judge(regression(baseline=str(baseline), on_missing="pass"), targets, Outputs(labels=base))
    assert result.status == "inconclusive"
    assert "answered no output for 2 rows; recreate it from a run without failed requests" in result.message
    healthy = write_baseline(tmp_path / "healthy", Outputs(labels=base, failed=np.zeros(100, dtype=bool)))
    assert judge(regression(baseline=str(healthy), max_drop=0.2), targets, Outputs(labels=base)).status == "passed"


def test_too_few_rows_for_the_margin_says_so_and_how_many_would_do(tmp_path: Path) -> None:
    """44 rows, max_drop 0.01: a retrained model with the same accuracy (2 rows flipped each way) cannot pass,
    and the message says why and roughly how many rows an unchanged model needs; 4,400 such rows pass."""
    for n, verdict in ((44, "failed"), (4400, "passed")):
        targets, base = good_model(n, 0.75)
        baseline = write_baseline(tmp_path / str(n), Outputs(labels=base))
        candidate = base.copy()
        right, wrong = np.flatnonzero(base == targets), np.flatnonzero(base != targets)
        flipped = np.concatenate([right[: n // 22], wrong[: n // 22]])
        candidate[flipped] = 1 - candidate[flipped]
        result = judge(regression(baseline=str(baseline)), targets, Outputs(labels=candidate))
        assert result.status == verdict, result.message
        assert result.details["difference"] == 0.0
        if verdict == "failed":
            assert "not shown at 95% confidence to be within max_drop 0.01" in result.message
            assert "even an unchanged model cannot pass here" in result.message
            needed = int(result.message.split("needs roughly ")[1].split(" rows")[0].replace(",", ""))
            assert 1000 < needed < 10000, result.message
        else:
            assert "unchanged model" not in result.message
