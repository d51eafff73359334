"""The documentation site: it builds strictly, every gate file it shows validates, its links resolve, it opens.

The site is built once with MkDocs (``mkdocs build --strict``, as ``.ci/run`` does; the reference pages are
generated from the schema and the CLI's parsers) and opened in Debian's headless Chromium.
"""

from __future__ import annotations

import html.parser
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from modelcheck.gatefile import gate_schema

REPO = Path(__file__).resolve().parents[1]
PAGES = [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]


def yaml_blocks(path: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def test_every_gate_file_and_check_the_docs_show_validates_against_the_schema() -> None:
    """Whole gate files (``model`` and ``data``; ``version: 1`` added where a snippet leaves it out) against the
    schema, the checks of snippets that show only ``checks:`` against its check definition, and snippets of
    ``model:``, ``publish:``, ``stages:`` alone against their part of it."""
    schema = gate_schema()
    whole = jsonschema.Draft202012Validator(schema)
    check = jsonschema.Draft202012Validator({"$defs": schema["$defs"], "$ref": "#/$defs/check"})
    shown = 0
    for page in PAGES:
        for block in yaml_blocks(page):
            try:
                document = yaml.safe_load(block)
            except yaml.YAMLError:
                continue  # workflows with ${{ }} expressions are linted by test_github_act
            if isinstance(document, dict) and "model" in document and "data" in document:
                problems = list(whole.iter_errors({"version": 1, **document}))
            elif isinstance(document, dict) and set(document) == {"checks"}:
                problems = [e for item in document["checks"] for e in check.iter_errors(item)]
            elif isinstance(document, dict) and document and set(document) <= {"model", "data", "stages", "publish"}:
                problems = [e for key, value in document.items() for e in part(schema, key).iter_errors(value)]
            else:
                continue  # workflows (linted by test_github_act) and pre-commit's config
            errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in problems]
            assert not errors, f"{page.name}: a gate file it shows does not validate: {errors}\n{block}"
            shown += 1
    assert shown >= 6, f"only {shown} gate files or check lists found in the docs"


def part(schema: dict[str, Any], key: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$defs": schema["$defs"], **schema["properties"][key]})


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (the docs extra)")
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"), "-d", str(out)],
        capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"}, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    return out


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value and not re.match(r"^(https?:|mailto:|#|data:|javascript:)", value):
                self.links.append(value)


def test_the_site_has_no_broken_internal_links_and_a_search_index(site: Path) -> None:
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    assert any("max_drop" in doc["text"] for doc in index["docs"])  # the reference pages are indexed
    broken = []
    pages = list(site.rglob("*.html"))
    assert len(pages) > 15
    for page in pages:
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for link in parser.links:
            path = link.split("#")[0].split("?")[0]
            target = (site / path.lstrip("/") if path.startswith("/") else page.parent / path).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)} -> {link}")
    assert not broken, broken[:20]


def test_the_references_are_generated_from_the_schema_and_the_parsers(site: Path) -> None:
    gate_page = (site / "reference" / "gate-file" / "index.html").read_text(encoding="utf-8")
    for key in gate_schema()["$defs"]["regression_check"]["properties"]:
        assert f"<code>{key}</code>" in gate_page, key
    cli_page = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    for command in ("modelcheck gate", "modelcheck report merge", "modelcheck init", "modelcheck publish"):
        assert command in cli_page, command


def test_the_site_opens_in_a_browser_and_its_navigation_leads_to_the_reference(site: Path, browser: Any) -> None:
    """Served over HTTP on 127.0.0.1 (as a static host would), so the search runs as it does on the web."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    try:
        page.goto(f"{base}/index.html")
        assert page.locator("h1").first.inner_text().strip().rstrip("¶") == "modelcheck"
        page.goto(f"{base}/reference/gate-file/")
        assert "Gate file reference" in page.locator("h1").first.inner_text()
        assert page.locator("table").count() >= 5
        page.goto(f"{base}/?q=max_drop")  # Material's search, from its own index
        page.locator(".md-search-result__item").first.wait_for(timeout=15000)
        assert not errors, errors
    finally:
        page.close()
        server.shutdown()
        server.server_close()
