"""Parity checks in gate files, end to end: the export path, a perturbed graph, absent devices, the export CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelcheck.cli import main
from modelcheck.report.document import read_report

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("frameworks_imported_once")]

GATE = """\
version: 1
model:
  id: sentiment
  source: ../models/good
data:
  source: ../data/test.csv
  input: text
  label: label
checks:
  - name: onnx_parity
    kind: parity
    against: {against}
    max_abs_diff: 1.0e-3
    min_agreement: 0.999
"""


@pytest.fixture()
def project(pytester: pytest.Pytester, sentiment_model: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(sentiment_model, pytester.path / "models" / "good")
    (pytester.path / "data").mkdir()
    shutil.copy(repo / "examples" / "sentiment" / "test.csv", pytester.path / "data" / "test.csv")
    (pytester.path / "gates").mkdir()
    monkeypatch.setenv("MODELCHECK_CACHE", str(pytester.path / "cache"))
    monkeypatch.chdir(pytester.path)
    return pytester


def gate(project: pytest.Pytester, against: str) -> None:
    (project.path / "gates" / "sentiment.yaml").write_text(GATE.format(against=against))


def test_export_parity_passes_and_is_reported(project: pytest.Pytester) -> None:
    gate(project, "{export: true}")
    project.runpytest("--modelcheck", "--modelcheck-report", "out.json").assert_outcomes(passed=1)
    check = read_report(project.path / "out.json")["gates"][0]["checks"][0]
    assert check["status"] == "passed" and check["details"]["agreement"] == 1.0
    assert check["details"]["max_abs_diff"] < 1e-4 and check["details"]["against"]["backend"] == "onnx"
    assert list((project.path / "cache" / "onnx").glob("*/model.onnx")), "the export is cached"


def test_a_perturbed_graph_is_caught_and_its_worst_rows_named(project: pytest.Pytester) -> None:
    import onnx
    from onnx import numpy_helper

    assert main(["export", "onnx", "gates/../gates/sentiment.yaml", "-o", "exported"]) == 2  # no gate yet
    gate(project, "{export: true}")
    assert main(["export", "onnx", "gates/sentiment.yaml", "-o", "exported"]) == 0
    path = project.path / "exported" / "model.onnx"
    proto = onnx.load(str(path))
    (weight,) = [t for t in proto.graph.initializer if t.name.endswith("classifier.weight")]
    weight.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(weight), weight.name))
    onnx.save_model(proto, str(path))

    gate(project, "{backend: onnx, source: ../exported/model.onnx, tokenizer: ../exported}")
    result = project.runpytest("--modelcheck")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["onnx (auto) vs transformers: abs_diff * > 0.001, agreement 0.0 < 0.999 *worst rows: data row *"]
    )


def test_against_an_absent_device_skips(project: pytest.Pytester) -> None:
    gate(project, "{device: 'cuda:7'}")
    result = project.runpytest("--modelcheck", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*device 'cuda:7' is not available on this machine*"])


def test_parity_checks_against_one_model_run_it_over_the_data_once(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from modelcheck.gatefile import load_gate
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    text = GATE.format(against="{export: true}") + (
        "  - {name: onnx_agreement, kind: parity, against: {export: true}, min_agreement: 0.99}\n"
    )
    (project.path / "gates" / "sentiment.yaml").write_text(text)
    calls: list[str | None] = []
    predict_module = importlib.import_module("modelcheck.models.predict")  # the module checks import from
    real = predict_module.predict

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(kwargs.get("name"))  # type: ignore[arg-type]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(predict_module, "predict", counting)
    result = run_gate(load_gate(project.path / "gates" / "sentiment.yaml"), file="g", models=ModelCache(), stage=None)
    assert [c.status for c in result.checks] == ["passed", "passed"]
    assert calls == ["sentiment", "sentiment-against"], calls  # each model over the data once
