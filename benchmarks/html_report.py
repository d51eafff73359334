"""The HTML report at scale: a 100-gate report's page, its size, the time to write it and to render it.

Takes a real report (one gate run, e.g. the reference gate:
``pytest --modelcheck gates/sentiment.yaml --modelcheck-report out.json``), repeats its gates until the
report holds ``--gates`` of them (each under its own file name; a third of them with a failed check, so
the plot budget is spent on failures first), writes the page with ``modelcheck.view.page.write_html`` and
opens it in Debian's chromium under Playwright (``apt-get install chromium``; ``pip install playwright``;
never ``playwright install``):

- write: seconds to render the page in Python (matplotlib included), and its size;
- load: seconds from navigation to the load event (parse, style, layout of the open gates);
- all open: seconds to open every gate's details and lay the whole page out (the worst case a reader causes).

Targets (README "HTML report"): load under 2 s and the file under 4 MiB for 100 gates.

    python benchmarks/html_report.py out.json [--gates 100] [--repeats 3] [--keep page.html]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from modelcheck.report.document import count_statuses, read_report
from modelcheck.view.page import write_html

CHROMIUM = "/usr/bin/chromium"


def scaled(report: dict[str, Any], gates: int) -> dict[str, Any]:
    """``report`` with its gates repeated to ``gates`` of them; every third copy has its first check failed."""
    source = report["gates"]
    if not source:
        raise SystemExit("the report holds no gates; run a gate first")
    made = []
    for number in range(gates):
        gate = copy.deepcopy(source[number % len(source)])
        gate["file"] = f"gates/copy_{number:03d}/{gate['file'].rsplit('/', 1)[-1]}"
        if number % 3 == 0 and gate["checks"]:
            gate["checks"][0].update(status="failed", blocking=True, message="planted failure (benchmark)")
        made.append(gate)
    return {**report, "gates": made, "totals": count_statuses(made)}


def browser_times(page_file: Path, repeats: int) -> tuple[float, float]:
    """Median seconds to the load event, and to open every gate and lay the page out."""
    from playwright.sync_api import sync_playwright

    loads, opens = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        for _ in range(repeats):
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors: list[str] = []
            page.on("console", lambda message, errors=errors: errors.append(message.text)
                    if message.type == "error" else None)  # fmt: skip
            start = time.perf_counter()
            page.goto(page_file.as_uri(), wait_until="load")
            page.evaluate("document.body.offsetHeight")  # style and layout done
            loads.append(time.perf_counter() - start)
            start = time.perf_counter()
            page.evaluate(
                "document.querySelectorAll('details').forEach(d => d.open = true);"
                "document.querySelectorAll('section.gate').forEach(s => s.style.contentVisibility = 'visible');"
                "document.body.offsetHeight"
            )
            opens.append(time.perf_counter() - start)
            if errors:
                raise SystemExit(f"console errors: {errors[:3]}")
            page.close()
        browser.close()
    return statistics.median(loads), statistics.median(opens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path, help="a report written by pytest --modelcheck-report")
    parser.add_argument("--gates", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="also keep the page here")
    args = parser.parse_args()

    report = scaled(read_report(args.report), args.gates)
    checks = sum(len(gate["checks"]) for gate in report["gates"])
    with tempfile.TemporaryDirectory() as folder:
        page_file = args.keep or Path(folder) / "page.html"
        start = time.perf_counter()
        write_html(report, page_file, source=args.report.name)
        written = time.perf_counter() - start
        size = page_file.stat().st_size
        figures = page_file.read_text(encoding="utf-8").count('<figure class="plot"')
        load, all_open = browser_times(page_file, args.repeats)
    print(f"{args.gates} gates, {checks} checks, {figures} plots")
    print(f"{'write (Python)':<22}{written:8.2f} s")
    print(f"{'size':<22}{size / (1 << 20):8.2f} MiB   (target < 4 MiB)")
    print(f"{'load (chromium)':<22}{load:8.2f} s   (target < 2 s)")
    print(f"{'every gate open':<22}{all_open:8.2f} s")


if __name__ == "__main__":
    main()
