"""Packaging: the metadata built from pyproject.toml says what the code and CI do."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest
import yaml

import modelcheck

ROOT = Path(__file__).resolve().parents[1]
#: Import names whose distribution is named differently.
_DISTRIBUTIONS = {
    "yaml": "pyyaml",
    "sklearn": "scikit-learn",
    "PIL": "pillow",
    "xdist": "pytest-xdist",
    "github": "pygithub",
}


@pytest.fixture(scope="module")
def metadata(tmp_path_factory: pytest.TempPathFactory) -> Message:
    """The core metadata setuptools builds from this source tree (not the installed copy's)."""
    pytest.importorskip("setuptools", minversion="77", reason="the metadata is built with setuptools>=77 (dev extra)")
    out = tmp_path_factory.mktemp("metadata")
    code = "import sys; from setuptools import build_meta as b; print(b.prepare_metadata_for_build_wheel(sys.argv[1]))"
    done = subprocess.run(
        [sys.executable, "-c", code, str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    folder = out / done.stdout.strip().splitlines()[-1]
    return Parser().parsestr((folder / "METADATA").read_text("utf-8"))


def _requirements(metadata: Message, extra: str | None = None) -> set[str]:
    names = set()
    for line in metadata.get_all("Requires-Dist") or []:
        requirement, _, marker = line.partition(";")
        if (extra is None) == ("extra ==" not in marker) and (extra is None or f'"{extra}"' in marker):
            names.add(re.split(r"[<>=!~\[ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-"))
    return names


def test_one_version_source(metadata: Message) -> None:
    from modelcheck.report.environment import modelcheck_version

    assert metadata["Version"] == modelcheck.__version__ == modelcheck_version()


def test_license_is_an_spdx_expression(metadata: Message) -> None:
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["License"] is None


def test_urls_and_typed(metadata: Message) -> None:
    urls = dict(line.split(", ", 1) for line in metadata.get_all("Project-URL") or [])
    assert {"Homepage", "Source", "Issues", "Documentation"} <= set(urls)
    assert "Typing :: Typed" in metadata.get_all("Classifier")
    assert (ROOT / "modelcheck" / "py.typed").is_file()


def test_claimed_pythons_are_the_ci_matrix(metadata: Message) -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text("utf-8"))
    tested = workflow["jobs"]["test"]["strategy"]["matrix"]["python-version"]
    claimed = [c.rsplit(" :: ", 1)[1] for c in metadata.get_all("Classifier") if re.search(r"Python :: 3\.\d+$", c)]
    assert sorted(tested, key=lambda v: tuple(map(int, v.split(".")))) == claimed
    assert metadata["Requires-Python"] == f">={claimed[0]}"


def _imported_distributions() -> set[str]:
    """Third-party top-level modules imported anywhere in the core (lazy imports included)."""
    found: set[str] = set()
    for path in (ROOT / "modelcheck").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module.split(".")[0])
    stdlib = set(sys.stdlib_module_names) | {"modelcheck", "_pytest", "__future__"}
    return {_DISTRIBUTIONS.get(name, name).lower().replace("_", "-") for name in found - stdlib}


def test_directly_imported_packages_are_declared(metadata: Message) -> None:
    declared = _requirements(metadata)
    optional = {name for extra in metadata.get_all("Provides-Extra") for name in _requirements(metadata, extra)}
    imported = _imported_distributions()
    assert {"scipy", "threadpoolctl"} <= imported & declared
    assert imported - declared - optional == set()


def test_python_dash_m_modelcheck() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "modelcheck", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"modelcheck {modelcheck.__version__}"
