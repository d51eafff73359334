"""The HTML report (modelcheck report html, --modelcheck-html): its content, escaping, bounds and errors.

The browser-side proof (console, plots drawn, injection inert, screenshots) is tests/test_view_browser.py.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from modelcheck.cli import main
from modelcheck.report.document import build_report, read_report, write_report
from modelcheck.report.results import CheckResult, GateResult
from modelcheck.report.samples import SAMPLE_LIMIT, thin

pytest.importorskip("matplotlib", reason="the html extra (matplotlib) is not installed")

from modelcheck.view.page import PLOT_BUDGET, render_html

INJECTION = "<script>alert('check')</script>"
SLICE_INJECTION = "<img src=x onerror=alert('slice')>"
ENV: dict[str, Any] = {
    "python": "3.12.0",
    "implementation": "CPython",
    "platform": "Linux",
    "machine": "x86_64",
    "cpu": "test cpu",
    "cpu_count": 2,
    "packages": {"modelcheck": "0.0", "pytest": "8"},
    "git": {"commit": None, "branch": None, "dirty": None},
}
SHA = "ab" * 32


def timings(seed: int, scale: float, n: int = 400) -> list[float]:
    import numpy as np

    return [float(v) for v in np.random.default_rng(seed).gamma(4.0, scale / 4.0, n)]


def every_kind(name: str = "accuracy", *, failing: bool = True) -> list[CheckResult]:
    """One check of every kind, with the details their checks record."""
    import numpy as np

    differences = np.random.default_rng(0).normal(-0.02, 0.006, 2000)
    slices = [
        {"slice": "en", "n": 120, "value": 0.95, "judged": True, "status": "passed"},
        {"slice": SLICE_INJECTION, "n": 80, "value": 0.81, "judged": True, "status": "failed" if failing else "passed"},
        {"slice": "fr", "n": 9, "value": 0.5, "judged": False, "status": "skipped"},
    ]
    status = "failed" if failing else "passed"
    return [
        CheckResult(name=name, kind="metric", metric="accuracy", status="passed", message="accuracy 0.9312 >= 0.9",
                    value=0.9312, threshold={"min": 0.9}, n=200, ci=[0.9, 0.958],
                    details={"confusion_matrix": {"labels": ["negative", "positive"], "counts": [[90, 8], [6, 96]]}}),
        CheckResult(name="by_language", kind="metric", metric="accuracy", status=status, message="slices",
                    value=0.81, threshold={"min": 0.85}, n=209, details={"slice_by": "language", "slices": slices}),
        CheckResult(name="no_regression", kind="regression", metric="accuracy", status=status, message="drop",
                    value=0.91, threshold={"max_drop": 0.01}, n=200, ci=[-0.032, -0.008],
                    details={"test": "paired-bootstrap", "n": 200, "baseline": 0.93, "candidate": 0.91,
                             "difference": -0.02, "max_drop": 0.01, "confidence": 0.95, "ci": [-0.032, -0.008],
                             "p_value": 0.41, "improved": 2, "regressed": 6, "verdict": status,
                             "higher_is_better": True, "bootstrap_differences": thin(differences)}),
        CheckResult(name="latency_p95", kind="latency", status="passed", message="p95 latency", value=1.31,
                    threshold={"max_ms": 40, "max_ratio": 1.5}, n=400, ci=[1.2, 1.4],
                    details={"unit": "x", "comparison": {
                        "ratio": 1.31, "ratio_ci": [1.2, 1.4],
                        "candidate": {"percentile": 95, "timings_ms": thin(timings(1, 3.0))},
                        "baseline": {"percentile": 95, "timings_ms": thin(timings(2, 2.3))}}}),
        CheckResult(name="peak_memory", kind="memory", status="passed", message="peak", value=120.5,
                    threshold={"max_mb": 600}, n=1,
                    details={"unit": "MiB", "memory": {"peak_mb": 120.5}, "baseline": {"peak_mb": 100.0}}),
        CheckResult(name="onnx_parity", kind="parity", status="passed", message="parity", value=2e-6,
                    threshold={"max_abs_diff": 1e-3}, n=200,
                    details={"compared": "scores", "max_abs_diff": 2e-6,
                             "row_differences": thin(abs(differences) / 1e4),
                             "worst": [{"row": 7, "abs_diff": 2e-6, "labels": ["<b>neg</b>", "pos"],
                                        "input": "x" * 1000 + "<script>alert('row')</script>"},
                                       {"row": 3, "abs_diff": 1e-6}]}),
    ]  # fmt: skip


def gate(file: str, checks: list[CheckResult]) -> GateResult:
    model = {"id": "sentiment", "source": "models/<sentiment>", "backend": "transformers",
             "task": "text-classification", "device_requested": "auto", "device": "cpu",
             "files": [{"path": "model.safetensors", "sha256": SHA, "size": 1234}]}  # fmt: skip
    data = {"source": "data/test.csv", "split": "test", "input": "text", "label": "label", "limit": None,
            "rows": 200, "sha256": SHA}  # fmt: skip
    for check in checks:
        check.stages = ["merge"]
    return GateResult(file=file, model=model, data=data, stages={"merge": [c.name for c in checks]}, checks=checks)


def report(gates: int = 1, **options: Any) -> dict[str, Any]:
    results = [gate(f"gates/g{i:03d}.yaml", every_kind(**options)) for i in range(gates)]
    return build_report(results, stage="merge", env=ENV)


def _no_plots(page: str) -> list[str]:
    """Why checks got no plot (the page says so per check), for a failing assertion's message."""
    return re.findall(r'<p class="no-plot">(.*?)</p>', page)


def write(tmp_path: Path, document: dict[str, Any], name: str = "out.json") -> Path:
    path = tmp_path / name
    write_report(path, document)
    return path


def test_the_page_holds_every_check_its_numbers_and_a_plot_per_kind(tmp_path: Path) -> None:
    document = report()
    page = render_html(document)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for check in document["gates"][0]["checks"]:
        row = re.search(rf'<tr [^>]*data-check="{re.escape(_esc(check["name"]))}">.*?</tr>', page)
        assert row, check["name"]
        assert f'data-value="{check["value"]!r}"' in row.group(0)
    kinds = re.findall(r'<figure class="plot" data-check="[^"]*" data-kind="([a-z]+)">', page)
    assert sorted(set(kinds)) == ["latency", "memory", "metric", "parity", "regression"], _no_plots(page)
    assert kinds.count("metric") == 3, "value line, slices and confusion matrix"
    assert page.count("<svg ") == len(kinds)
    assert SHA in page and "model.safetensors" in page


def test_blocking_failures_come_first_with_their_messages() -> None:
    page = render_html(report())
    verdict = page.index("blocking failures")
    assert page.index("FAILED") < verdict < page.index('<table class="checks">')
    names = re.findall(r'<tr class="s-[a-z-]+" id="g0c\d+" data-check="([^"]+)"', page)
    assert names[:2] == ["by_language", "no_regression"], "the failed checks head the table"


def test_a_failure_outside_the_blocking_stage_is_a_warning_but_fails_its_own_stage() -> None:
    document = report()
    gate = document["gates"][0]
    check = next(c for c in gate["checks"] if c["name"] == "no_regression")
    check.update(blocking=False, stages=["deploy"])
    gate["stages"] = {"merge": [c["name"] for c in gate["checks"] if c is not check], "deploy": ["no_regression"]}
    page = render_html(document)
    blocking = re.search(r"<h3>blocking failures</h3><ul>(.*?)</ul>", page).group(1)  # type: ignore[union-attr]
    warnings = re.search(r"<h3>errors, inconclusive checks and warnings</h3><ul>(.*?)</ul>", page).group(1)  # type: ignore[union-attr]
    assert "by_language" in blocking and "no_regression" not in blocking and "no_regression" in warnings
    assert '<span class="badge s-failed">deploy</span> 1 check: no_regression' in page


def test_everything_from_the_report_is_escaped() -> None:
    page = render_html(report(name=INJECTION))
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert _esc(INJECTION) in page, "the name shows as text"
    svgs = re.findall(r"<svg .*?</svg>", page, re.S)
    assert svgs and not any("<img" in svg or "<script" in svg for svg in svgs)
    assert any("&lt;img src=x" in svg for svg in svgs), "the slice name is text inside the plot"
    assert "x" * 300 not in page, "a long input is cut"


def test_plots_are_deterministic_and_ids_unique() -> None:
    document = report(gates=2)
    first, second = render_html(document), render_html(document)
    assert first == second
    ids = re.findall(r' id="([^"]+)"', first)
    assert len(ids) == len(set(ids))


def test_the_thinned_samples_keep_the_extremes_and_the_bound() -> None:
    values = list(range(10_000, 0, -1))
    thinned = thin(values)
    assert len(thinned) == SAMPLE_LIMIT and thinned[0] == 1 and thinned[-1] == 10_000
    assert thinned == sorted(thinned) and thin(values) == thinned
    assert thin([3.0, float("nan"), 1.0]) == [1.0, 3.0]


def test_a_hundred_gate_report_stays_under_the_documented_size() -> None:
    document = report(gates=100)
    page = render_html(document)
    assert len(page.encode()) < 4 << 20
    assert page.count("<figure") <= PLOT_BUDGET * 3
    assert page.count('<section class="gate"') == 100


# -- the command --------------------------------------------------------------------------------------


def test_report_html_writes_the_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, report())
    assert main(["report", "html", str(path), "-o", str(tmp_path / "page.html")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert (tmp_path / "page.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert main(["report", "html", str(path)]) == 0
    assert (tmp_path / "out.html").is_file(), "default: the report's name with .html"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".modelcheck-tmp")]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "is not valid JSON"),
        ('{"report_version": 1}', "missing required key"),
        (None, "is not a regular file"),
    ],
)
def test_bad_reports_are_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, expected: str
) -> None:
    path = tmp_path / "bad.json"
    if content is None:
        os.mkfifo(path)
    else:
        path.write_text(content)
    assert main(["report", "html", str(path), "-o", str(tmp_path / "page.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("modelcheck: error: ") and expected in err and "Traceback" not in err
    assert not (tmp_path / "page.html").exists()


def test_a_report_over_the_size_limit_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelcheck.report import document

    path = write(tmp_path, report())
    monkeypatch.setattr(document, "MAX_REPORT_BYTES", 1000)
    assert main(["report", "html", str(path), "-o", str(tmp_path / "page.html")]) == 2
    assert "is larger than" in capsys.readouterr().err and not (tmp_path / "page.html").exists()


@pytest.mark.parametrize("garbage", [None, "x", 3, [1, "a"], {"a": {"b": None}}, [[None]], {"labels": 5}])
def test_details_no_check_writes_still_give_a_page(garbage: Any) -> None:
    """A hand-edited report: every details field the plots read holds the wrong type; the page is still drawn."""
    document = report()
    keys = ("slices", "confusion_matrix", "per_class", "bootstrap_differences", "ci", "baseline", "candidate",
            "max_drop", "comparison", "latency", "memory", "worst", "row_differences")  # fmt: skip
    for check in document["gates"][0]["checks"]:
        check["details"] = dict.fromkeys(keys, garbage)
    page = render_html(document)
    assert page.count('<tr class="s-') >= 6 and page.rstrip().endswith("</html>")


def test_an_output_folder_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, report())
    assert main(["report", "html", str(path), "-o", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_without_matplotlib_report_html_names_the_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    path = write(tmp_path, report())
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert main(["report", "html", str(path)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'modelcheck[html]'" in err and "matplotlib" in err


def test_a_report_written_before_samples_were_recorded_still_plots(tmp_path: Path) -> None:
    """Older reports hold percentiles, not timings, and no bootstrap sample: the plots use what is there."""
    document = report()
    for check in document["gates"][0]["checks"]:
        details = check["details"]
        details.pop("bootstrap_differences", None)
        for side in ("candidate", "baseline"):
            record = details.get("comparison", {}).get(side)
            if record:
                del record["timings_ms"]
                record.update(percentiles_ms={"p50": 2.0, "p90": 3.0, "p95": 3.5, "p99": 4.0}, min_ms=1.0)
    page = render_html(json.loads(json.dumps(document)))
    kinds = re.findall(r'data-kind="([a-z]+)">', page)
    assert "latency" in kinds and "regression" in kinds, _no_plots(page)


# -- pytest --modelcheck --modelcheck-html ----------------------------------------------------------------

BROKEN_GATE = "version: 1\nmodel: {source: ./missing}\ndata: {source: d.csv, input: text, label: label}\n"
BROKEN_GATE += "checks: [{name: acc, metric: accuracy, min: 0.9}]\n"


@pytest.fixture()
def in_process(frameworks_imported_once: None) -> None:
    """pytester's in-process runs drop the modules first imported inside them: import what they use first."""
    render_html(report())  # matplotlib and its SVG backend


@pytest.mark.usefixtures("in_process")
def test_the_plugin_writes_the_page_at_the_end_of_the_session(pytester: pytest.Pytester) -> None:
    (pytester.path / "gates").mkdir()
    (pytester.path / "gates" / "g.yaml").write_text(BROKEN_GATE)
    result = pytester.runpytest("--modelcheck", "--modelcheck-html", "out/page.html", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*HTML report written to *page.html"])
    page = (pytester.path / "out" / "page.html").read_text(encoding="utf-8")
    assert 'data-verdict="error"' in page and "could not run" in page
    assert not [p for p in (pytester.path / "out").iterdir() if p.name != "page.html"], "no temp file left"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--modelcheck-html", "page.html"], "--modelcheck-html needs --modelcheck"),
        (["--modelcheck", "--modelcheck-html", "."], "--modelcheck-html . is a folder"),
    ],
)
@pytest.mark.usefixtures("in_process")
def test_plugin_usage_errors_name_the_option(pytester: pytest.Pytester, args: list[str], expected: str) -> None:
    result = pytester.runpytest(*args, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{expected}*"])


def _esc(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def test_read_back(tmp_path: Path) -> None:
    assert read_report(write(tmp_path, report()))["gates"][0]["checks"][2]["details"]["bootstrap_differences"]
