"""The pre-commit hook this repository offers: ``modelcheck-validate`` on gate files."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BAD = """\
version: 1
model: {source: ./m}
data: {source: d.csv, input: text, label: label}
checks:
  - {name: l, kind: latency}
"""


@pytest.fixture()
def hook() -> dict[str, object]:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text("utf-8"))
    (found,) = [h for h in hooks if h["id"] == "modelcheck-validate"]
    return dict(found)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "gates").mkdir()
    shutil.copy(REPO / "gates" / "sentiment.yaml", tmp_path / "gates" / "ok.yaml")
    (tmp_path / "gates" / "bad.yaml").write_text(BAD, encoding="utf-8")
    (tmp_path / "other.yaml").write_text("not: a gate\n", encoding="utf-8")
    return tmp_path


def test_hook_entry_validates_the_gate_files_pre_commit_passes(hook: dict[str, object], project: Path) -> None:
    """What pre-commit runs: the entry with the staged files its ``files`` pattern selects."""
    assert hook["language"] == "python" and "yaml" in hook["types"]  # type: ignore[operator]
    files = sorted(str(p.relative_to(project)) for p in project.rglob("*.yaml"))
    selected = [f for f in files if re.search(str(hook["files"]), f)]
    assert selected == ["gates/bad.yaml", "gates/ok.yaml"]
    program, *args = shlex.split(str(hook["entry"]))
    assert program == "modelcheck"  # the console script; here through this interpreter
    run = subprocess.run([sys.executable, "-m", "modelcheck", *args, "gates/ok.yaml"], cwd=project,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    run = subprocess.run([sys.executable, "-m", "modelcheck", *args, *selected], cwd=project,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 2
    assert "error gates/bad.yaml:5 at $.checks[0]: a latency check needs a threshold" in run.stdout
    assert "ok    gates/ok.yaml" in run.stdout


@pytest.mark.skipif(
    os.environ.get("MODELCHECK_TEST_PRE_COMMIT") != "1",
    reason="pre-commit try-repo installs modelcheck from a package registry (~2 min): set MODELCHECK_TEST_PRE_COMMIT=1",
)
def test_hook_through_pre_commit_try_repo(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    git = shutil.which("git")
    assert git is not None
    subprocess.run([git, "init", "-q"], cwd=project, check=True)
    subprocess.run([git, "add", "-A"], cwd=project, check=True)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path_factory.mktemp("pre-commit-home"))}
    run = subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), "modelcheck-validate", "--all-files"],
        cwd=project, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr  # pre-commit's "a hook failed"
    assert "a latency check needs a threshold" in run.stdout and "ok    gates/ok.yaml" in run.stdout
    assert "other.yaml" not in run.stdout
