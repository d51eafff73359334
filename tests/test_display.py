"""Result objects of the fixtures render as small tables in Jupyter (HTML) and Markdown."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pandas as pd

from modelcheck.gatefile import CheckSpec
from modelcheck.measure.latency_result import LatencyComparison, LatencyResult
from modelcheck.measure.memory import MemoryResult
from modelcheck.models import Outputs
from modelcheck.pytest_plugin.fixtures import Evaluation
from modelcheck.pytest_plugin.perf_fixtures import Latency, Memory
from modelcheck.report.display import format_value


class _Cells(HTMLParser):
    """The text of every th/td, and whether every opened tag was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.open.append(tag)
        if tag in ("th", "td"):
            self.cells.append("")

    def handle_endtag(self, tag: str) -> None:
        assert self.open.pop() == tag

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1] in ("th", "td"):
            self.cells[-1] += data


def cells(html: str) -> list[str]:
    parser = _Cells()
    parser.feed(html)
    assert parser.open == [], "every tag is closed"
    return parser.cells


def timings(values: list[float], percentile: float = 95) -> LatencyResult:
    array = np.array(values)
    ci = (float(np.percentile(array, percentile)) * 0.9, float(np.percentile(array, percentile)) * 1.1)
    return LatencyResult(array, percentile, ci, 0.95, warmup_calls=5, settled=True, timer="perf_counter")


def test_evaluation_table() -> None:
    outputs = Outputs(labels=np.array([0, 1, 1, 0]))
    evaluation = Evaluation(
        outputs,
        "text-classification",
        ("neg", "pos"),
        targets=np.array([0, 1, 0, 0]),
        frame=pd.DataFrame({"text": list("abcd")}),
        metrics={"accuracy": 0.75, "f1<macro>": None},
    )
    assert cells(evaluation._repr_html_()) == ["accuracy", "0.75", "f1<macro>", "—", "n", "4"]
    assert "&lt;macro&gt;" in evaluation._repr_html_(), "labels are escaped"
    markdown = evaluation._repr_markdown_().splitlines()
    assert markdown[0] == "**Evaluation**" and "| accuracy | 0.75 |" in markdown and "| n | 4 |" in markdown


def test_latency_table_with_and_without_a_baseline() -> None:
    result = timings([1.0, 2.0, 3.0, 4.0, 100.0])
    latency = Latency(result, None, CheckSpec(name="latency", kind="latency"))
    shown = cells(latency._repr_html_())
    table = dict(zip(shown[::2], shown[1::2], strict=True))
    assert table["p50 ms"] == "3" and table["n"] == "5"
    assert table["p95 0.95 CI ms"] == f"{format_value(result.ci[0])}–{format_value(result.ci[1])}"
    assert "ratio to baseline" not in table

    comparison = LatencyComparison(
        result, timings([1.0, 1.0, 2.0, 2.0, 50.0]), 1.5, (1.2, 1.8), rounds=10, calls_per_round=1
    )
    shown = cells(Latency(result, comparison, CheckSpec(name="latency", kind="latency"))._repr_html_())
    table = dict(zip(shown[::2], shown[1::2], strict=True))
    assert table["ratio to baseline"] == "1.5" and table["ratio CI"] == "1.2–1.8"
    assert "| ratio CI | 1.2–1.8 |" in Latency(result, comparison, CheckSpec(name="l"))._repr_markdown_()


def test_memory_table() -> None:
    result = MemoryResult(
        212.345,
        "CPU peak RSS above the phase's start",
        "VmHWM",
        "cpu",
        "inference",
        "this process",
        {"rss_before": 300.0, "peak_rss": 512.3, "peak_increase": 212.345},
    )
    shown = cells(Memory(result)._repr_html_())
    table = dict(zip(shown[::2], shown[1::2], strict=True))
    assert table["peak MB"] == "212.3" and table["phase"] == "inference" and table["CPU peak_rss MB"] == "512.3"
    assert Memory(result)._repr_markdown_().startswith("**Memory**\n")
