"""The Mermaid charts of job summaries, parsed by the real Mermaid (the npm package) in headless Chromium.

GitHub renders ```` ```mermaid ```` blocks with Mermaid; a chart it cannot parse shows as an error box in
the summary. Every chart modelcheck writes — from ordinary reports and from hostile check names (quotes,
brackets, backticks, newlines, HTML, very long names) — must parse, and render to an SVG.

Mermaid comes from the npm registry at install time (``.ci/run``: ``npm install mermaid@11`` into
``.ci/mermaid``; or ``MODELCHECK_MERMAID_JS`` naming ``mermaid.min.js``); without it the test skips, saying so.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_report import ENV, check, gate

from modelcheck.github.summary import job_summary
from modelcheck.report.document import build_report

REPO = Path(__file__).resolve().parents[1]
BUNDLE = Path(os.environ.get("MODELCHECK_MERMAID_JS", REPO / ".ci" / "mermaid" / "node_modules" / "mermaid" / "dist" /
                             "mermaid.min.js"))  # fmt: skip
HOSTILE = ['say "hi"', "a]b[c", "back`tick`", "semi;colon", "new\nline", "<script>alert(1)</script>", "é ü 中文 🚀",
           "x" * 300, "--> arrow", "#hash %% comment", "{curly}", "a, b, c"]  # fmt: skip


def charts_of(text: str) -> list[str]:
    return re.findall(r"```mermaid\n(.*?)```", text, flags=re.S)


def reports() -> list[dict[str, Any]]:
    latency = {"latency": {"percentiles_ms": {"p50": 3.1, "p90": 4.2, "p95": 5.0, "p99": 9.75}}}
    ordinary = [
        check("accuracy", value=0.91, threshold={"min": 0.9}, stages=["merge"]),
        check("f1", "failed", value=0.5, threshold={"min": 0.88}, stages=["merge"], message="f1 0.5 < 0.88"),
        check("latency_p95", value=5.0, threshold={"max_ms": 40}, stages=["merge"], details=latency),
    ]
    hostile = [check(name, value=0.5, threshold={"min": 0.6}, stages=["merge"]) for name in HOSTILE]
    hostile.append(check('lat "p95" ]', value=5.0, threshold={"max_ms": 4}, stages=["merge"], details=latency))
    return [build_report([gate(checks, {"merge": [c.name for c in checks]}, gate_sha256="e" * 64)], stage="merge",
                         env=ENV) for checks in (ordinary, hostile)]  # fmt: skip


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:
    if not BUNDLE.is_file():
        pytest.skip(f"no Mermaid bundle at {BUNDLE}: .ci/run installs it (npm install mermaid@11), or set "
                    "MODELCHECK_MERMAID_JS")  # fmt: skip
    opened = browser.new_page()
    opened.set_content("<html><body><div id='out'></div></body></html>")
    opened.add_script_tag(path=str(BUNDLE))
    opened.evaluate("mermaid.initialize({startOnLoad: false, securityLevel: 'strict'})")
    yield opened
    opened.close()


def test_every_summary_chart_parses_and_renders_with_mermaid(page: Any) -> None:
    charts = [chart for report in reports() for chart in charts_of(job_summary(report, "merge"))]
    assert len(charts) >= 4  # bars against thresholds and latency percentiles, ordinary and hostile
    for i, chart in enumerate(charts):
        outcome = page.evaluate(
            """async ([text, id]) => {
                try {
                    await mermaid.parse(text);
                    const {svg} = await mermaid.render(id, text);
                    return svg.includes('<svg') ? 'ok' : 'no svg';
                } catch (error) { return String(error && error.message || error); }
            }""",
            [chart, f"chart{i}"],
        )
        assert outcome == "ok", f"Mermaid rejects chart {i}: {outcome}\n{chart}"


def test_a_chart_mermaid_rejects_is_caught(page: Any) -> None:
    """The check above can fail: a chart with an unquoted bracket in a label is rejected by the parser."""
    broken = "xychart-beta\n    x-axis [a]b]\n    bar [1]\n"
    outcome = page.evaluate("async (text) => { try { await mermaid.parse(text); return 'ok'; } "
                            "catch (error) { return 'rejected'; } }", broken)  # fmt: skip
    assert outcome == "rejected"
