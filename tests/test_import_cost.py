"""The plugin loads in every pytest run of a user's environment: it must not import the frameworks."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# httpx: the endpoint backends, when they send; matplotlib: the HTML report, when it draws.
HEAVY = ("torch", "transformers", "datasets", "onnxruntime", "httpx", "matplotlib")

CHECK_MODULES = f"""
import sys
heavy = [m for m in {HEAVY!r} if m in sys.modules]
assert not heavy, f"imported: {{heavy}}"
"""


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_import_modelcheck_and_the_plugin_is_light(tmp_path: Path) -> None:
    code = (
        "import modelcheck, modelcheck.pytest_plugin, modelcheck.cli, modelcheck_transformers, modelcheck_openai, "
        "modelcheck_kserve\n" + CHECK_MODULES
    )
    result = run([sys.executable, "-c", code], tmp_path)
    assert result.returncode == 0, result.stderr


def test_pytest_run_with_the_plugin_installed_stays_light(tmp_path: Path) -> None:
    """An ordinary pytest run, and --modelcheck collection, import none of the frameworks."""
    body = textwrap.indent(CHECK_MODULES.strip(), "    ")
    (tmp_path / "test_user.py").write_text(f"def test_frameworks_not_imported():\n{body}\n")
    (tmp_path / "gates").mkdir()
    (tmp_path / "gates" / "g.yaml").write_text(
        "version: 1\nmodel: {source: ./m}\ndata: {source: d.csv, input: text, label: label}\n"
        "checks: [{name: acc, metric: accuracy, min: 0.9}]\n"
    )
    plain = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], tmp_path)
    assert plain.returncode == 0 and "1 passed" in plain.stdout, plain.stdout + plain.stderr

    collect = "import pytest\npytest.main(['--modelcheck', '--collect-only', '-q', '-p', 'no:cacheprovider'])\n"
    probe = run([sys.executable, "-c", collect + CHECK_MODULES], tmp_path)
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert "gates/g.yaml::acc" in probe.stdout
