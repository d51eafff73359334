"""Hugging Face ``evaluate`` modules as metrics, end to end through pytest, offline.

The module is tests/data/evaluate_metrics/word_overlap (a mean word-overlap F1); the model is the tiny
counting GPT-2 of tests/tiny_models.py, judged by ``metric: {evaluate: ../metrics/word_overlap}``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("frameworks_imported_once")]

if importlib.util.find_spec("evaluate") is None or importlib.util.find_spec("transformers") is None:
    pytest.skip("evaluate and transformers are needed", allow_module_level=True)

import tiny_models  # noqa: E402

WORD_OVERLAP = Path(__file__).resolve().parent / "data" / "evaluate_metrics" / "word_overlap"

GATE = """\
version: 1
model:
  source: ../models/{model}
  task: text-generation
  device: cpu
  max_new_tokens: 4
data:
  source: ../data/count.csv
  input: prompt
  label: answer
checks:
  - name: overlap
    metric: {{evaluate: {module}, key: word_overlap}}
    min: 0.9
  - name: exact
    metric: exact_match
    min: 0.9
"""


@pytest.fixture()
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """models/{good,untrained} (counting GPT-2s), data/count.csv, metrics/word_overlap, gates/."""
    shutil.copytree(tiny_models.shared("gpt2"), pytester.path / "models" / "good")
    shutil.copytree(tiny_models.shared("gpt2-untrained"), pytester.path / "models" / "untrained")
    shutil.copytree(WORD_OVERLAP, pytester.path / "metrics" / "word_overlap")
    tiny_models.write_count_data(pytester.path / "data" / "count.csv")
    (pytester.path / "gates").mkdir()
    return pytester


def add_gate(
    project: pytest.Pytester, name: str, *, model: str = "good", module: str = "../metrics/word_overlap"
) -> None:
    text = GATE.format(model=model, module=module)
    (project.path / "gates" / f"{name}.yaml").write_text(text, encoding="utf-8")


def checks(project: pytest.Pytester) -> dict[str, dict[str, object]]:
    report = json.loads((project.path / "out.json").read_text(encoding="utf-8"))
    return {c["name"]: c for gate in report["gates"] for c in gate["checks"]}


def test_the_module_scores_word_overlap() -> None:
    import evaluate

    module = evaluate.load(str(WORD_OVERLAP))
    result = module.compute(predictions=["6 7", "1 2 3", "", "x"], references=["6 7", "1 2 4", "", "y"])
    assert result == {"word_overlap": pytest.approx((1 + 2 / 3 + 1 + 0) / 4)}


def test_evaluate_module_judges_the_generation_gate(project: pytest.Pytester) -> None:
    add_gate(project, "good")
    add_gate(project, "untrained", model="untrained")
    result = project.runpytest("--modelcheck", "-v", "--modelcheck-report", "out.json")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*gates/good.yaml::overlap PASSED*", "*gates/untrained.yaml::overlap FAILED*"])
    report = json.loads((project.path / "out.json").read_text(encoding="utf-8"))
    good, untrained = (
        sorted(report["gates"], key=lambda g: g["file"])[0],
        sorted(report["gates"], key=lambda g: g["file"])[1],
    )
    assert good["checks"][0]["value"] == 1.0 and good["checks"][0]["status"] == "passed"
    assert good["checks"][0]["details"]["evaluate"].endswith("metrics/word_overlap")
    assert untrained["checks"][0]["status"] == "failed" and untrained["checks"][0]["value"] < 0.5


def test_missing_module_says_where_it_looked(project: pytest.Pytester) -> None:
    add_gate(project, "good", module="../metrics/absent")
    result = project.runpytest("--modelcheck", "--modelcheck-report", "out.json")
    result.assert_outcomes(passed=1, failed=1)
    overlap = checks(project)["overlap"]
    assert overlap["status"] == "error"
    message = str(overlap["message"])
    assert f"no local module at {project.path / 'metrics' / 'absent'}" in message
    assert "absent.py" in message and "evaluate cache" in message


def test_uncached_module_name_is_never_downloaded(project: pytest.Pytester) -> None:
    add_gate(project, "good", module="bleu")
    result = project.runpytest("--modelcheck", "--modelcheck-report", "out.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*'bleu' is not in the evaluate cache*modelcheck never downloads metric scripts*"])
    assert "Traceback" not in result.stdout.str()
    assert checks(project)["overlap"]["status"] == "error"
