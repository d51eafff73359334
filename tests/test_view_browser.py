"""The HTML report in a real headless browser (Debian's chromium driven by Playwright), from a real gate run.

The gate trains nothing new: it runs the example sentiment model (trained in the session) with a check of
every kind, after a first run of the untrained model wrote the regression baseline. The page must load
with no console errors, draw every plot, show the report's numbers, and keep an injection inert.
Screenshots (light and dark) are saved under the test's tmp path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelcheck.cli import main
from modelcheck.report.document import read_report, write_report
from modelcheck.report.samples import SAMPLE_LIMIT

pytestmark = pytest.mark.e2e
pytest.importorskip("matplotlib", reason="the html extra (matplotlib) is not installed")

REPO = Path(__file__).resolve().parents[1]
SLICE_INJECTION = "<img src=x onerror=\"window.__pwned='slice'\">"
NAME_INJECTION = "<script>window.__pwned='name';alert('name')</script>"
GATE = """\
version: 1
model:
  id: sentiment
  source: {source}
  backend: transformers
  task: text-classification
data:
  source: ../data/test.csv
  input: text
  label: label
checks:
{checks}
"""
STAGES = """\
stages:
  merge: [accuracy, macro_f1, latency_p95, no_regression]
  deploy: all
"""
CHECKS = """\
  - {name: accuracy, metric: accuracy, min: 0.9}
  - {name: macro_f1, metric: f1, average: macro, min: 0.88}
  - {name: accuracy_by_language, metric: accuracy, slice_by: language, min: 0.85, min_samples: 50}
  - {name: no_regression, kind: regression, baseline: ../baselines/sentiment.json, metric: accuracy, max_drop: 0.01}
  - {name: latency_p95, kind: latency, percentile: 95, max_ms: 40, baseline_model: self, max_ratio: 1.5,
     min_time: 0.3, min_iterations: 30, max_time: 5, on_uncertain: estimate}
  - {name: peak_memory, kind: memory, max_mb: 600}
  - {name: onnx_parity, kind: parity, against: {export: true}, max_abs_diff: 1.0e-3, min_agreement: 0.999}
"""
#: The plots each check draws on this gate (a metric without slices: its value with the bound).
PLOTS = {
    "accuracy": 1,
    "macro_f1": 1,
    "accuracy_by_language": 1,
    "no_regression": 1,
    "latency_p95": 1,
    "peak_memory": 1,
    "onnx_parity": 1,
}


def _pytest(project: Path, *args: str) -> None:
    env = {**os.environ, "MODELCHECK_CACHE": str(project / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--modelcheck", *args],
        cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, sentiment_model: Path, untrained_model: Path) -> Path:
    """A project whose gate ran twice: the untrained model wrote the baseline, the trained one the report."""
    root = tmp_path_factory.mktemp("html-project")
    shutil.copytree(sentiment_model, root / "models" / "good")
    shutil.copytree(untrained_model, root / "models" / "untrained")
    (root / "data").mkdir()
    rows = (REPO / "examples" / "sentiment" / "test.csv").read_text(encoding="utf-8")
    extra = "".join(f'"good great {i}",positive,"{SLICE_INJECTION.replace(chr(34), chr(34) * 2)}"\n' for i in range(3))
    (root / "data" / "test.csv").write_text(rows + extra, encoding="utf-8")
    (root / "gates").mkdir()
    gate = root / "gates" / "sentiment.yaml"
    gate.write_text(
        GATE.format(source="../models/untrained", checks="  - {name: accuracy, metric: accuracy, min: 0.9}")
    )
    _pytest(root, "--modelcheck-report", "first.json")
    assert main(["baseline", "update", str(root / "first.json"), "--dir", str(root / "baselines")]) == 0
    gate.write_text(GATE.format(source="../models/good", checks=CHECKS) + STAGES)
    _pytest(root, "--modelcheck-report", "out.json", "--modelcheck-html", "out.html")
    return root


def _open(browser: Any, page_file: Path, scheme: str = "light") -> tuple[Any, list[str], list[str]]:
    page = browser.new_page(viewport={"width": 1200, "height": 900}, color_scheme=scheme)
    errors: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(page_file.as_uri())
    page.wait_for_load_state("load")
    return page, errors, dialogs


def test_the_checks_record_what_the_plots_draw(project: Path) -> None:
    checks = {check["name"]: check for check in read_report(project / "out.json")["gates"][0]["checks"]}
    comparison = checks["latency_p95"]["details"]["comparison"]
    for side in ("candidate", "baseline"):
        timings = comparison[side]["timings_ms"]
        assert len(timings) == min(comparison[side]["n"], SAMPLE_LIMIT) and timings == sorted(timings)
        assert timings[0] == pytest.approx(comparison[side]["min_ms"], rel=1e-5)
        assert timings[-1] == pytest.approx(comparison[side]["max_ms"], rel=1e-5)
    regression = checks["no_regression"]["details"]
    differences = regression["bootstrap_differences"]
    assert len(differences) == SAMPLE_LIMIT, "2000 resamples thinned to the bound"
    low, high = regression["ci"]
    assert differences[0] <= low <= high <= differences[-1]
    parity = checks["onnx_parity"]["details"]
    assert len(parity["row_differences"]) == min(403, SAMPLE_LIMIT)
    assert max(parity["row_differences"]) == pytest.approx(parity["max_abs_diff"], rel=1e-5)
    texts = (REPO / "examples" / "sentiment" / "test.csv").read_text(encoding="utf-8")
    assert all(row["input"] in texts for row in parity["worst"]), "the worst rows carry their inputs"


def test_the_page_of_a_real_gate_run_draws_every_plot_with_the_reports_numbers(
    project: Path, browser: Any, tmp_path: Path
) -> None:
    report = read_report(project / "out.json")
    [gate] = report["gates"]
    checks = {check["name"]: check for check in gate["checks"]}
    assert set(checks) == set(PLOTS) and gate["error"] is None
    assert checks["latency_p95"]["details"]["comparison"]["baseline"]["timings_ms"], "timings recorded"
    assert checks["no_regression"]["details"]["bootstrap_differences"], "bootstrap sample recorded"

    page, errors, dialogs = _open(browser, project / "out.html")
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    page.screenshot(path=str(tmp_path / "light.png"), full_page=True)
    assert errors == [] and dialogs == []

    for name, expected in PLOTS.items():
        figures = page.locator(f'figure.plot[data-check="{name}"]')
        assert figures.count() == expected, name
        for index in range(expected):
            svg = figures.nth(index).locator("svg")
            box = svg.bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 40, name
            assert svg.locator("path").count() > 5, f"{name}: the plot draws something"
        row = page.locator(f'table.checks tr[data-check="{name}"]')
        cell = row.locator("td.num").first
        value = checks[name]["value"]
        assert float(cell.get_attribute("data-value")) == value, name
        assert row.locator(".badge").inner_text() == checks[name]["status"]
        if checks[name]["ci"]:
            low, high = (float(v) for v in row.locator("td[data-ci]").get_attribute("data-ci").split())
            assert [low, high] == checks[name]["ci"]
    first_input = checks["onnx_parity"]["details"]["worst"][0]["input"]
    assert page.locator(".worst td", has_text=first_input).count() == 1, "the worst rows show their inputs"
    sha = gate["model"]["files"][0]["sha256"]
    assert page.get_by_text(sha).count() == 1

    dark, errors, _ = _open(browser, project / "out.html", scheme="dark")
    dark.screenshot(path=str(tmp_path / "dark.png"))
    background = dark.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(13, 17, 23)" and errors == []


def test_an_injection_in_a_check_name_and_in_the_data_stays_inert(project: Path, browser: Any, tmp_path: Path) -> None:
    report = read_report(project / "out.json")
    report["gates"][0]["checks"][0]["name"] = NAME_INJECTION
    report["gates"][0]["checks"][0]["message"] = NAME_INJECTION
    hostile = tmp_path / "hostile.json"
    write_report(hostile, report)
    assert main(["report", "html", str(hostile), "-o", str(tmp_path / "hostile.html")]) == 0

    page, errors, dialogs = _open(browser, tmp_path / "hostile.html")
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    page.screenshot(path=str(tmp_path / "hostile.png"), full_page=True)
    assert dialogs == [] and errors == []
    assert page.evaluate("window.__pwned === undefined")
    assert page.evaluate("document.querySelectorAll('script, img, iframe, object').length") == 0
    assert page.get_by_text(NAME_INJECTION, exact=True).count() >= 1, "the name shows as text"
    slices = json.dumps([s["slice"] for s in report["gates"][0]["checks"][2]["details"]["slices"]])
    assert SLICE_INJECTION in json.loads(slices), "the data's slice reached the report"
    assert page.locator("svg text", has_text="<img src=x").count() >= 1, "and shows as text in the plot"
