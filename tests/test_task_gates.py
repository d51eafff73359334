"""Language-task gates end to end through ``pytest --modelcheck`` with tiny real models trained in the session.

Each gate's values equal the reference library (seqeval, torchmetrics' SQuAD, scikit-learn) applied to the
same predictions, read back from the outputs the run saved; a regression check against a baseline made
from that run passes; the untrained model fails; bad data is an error naming the row and column.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelcheck.gatefile import ModelSpec, load_gate
from modelcheck.models.cache import ModelCache
from modelcheck.report.baselines import load_outputs, update_baselines
from modelcheck.run.gate import run_gate

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("frameworks_imported_once", "one_torch_thread")]
pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("seqeval")
import seqeval.metrics  # noqa: E402  (imported before any in-process pytester run)
import seqeval.scheme  # noqa: E402
import tiny_models  # noqa: E402
from modelcheck_transformers import TransformersBackend  # noqa: E402


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def gate_run(pytester: pytest.Pytester, name: str, gate: str, *, model: str, data: Path, extra: str = "") -> Any:
    """Copy the shared model in, write ``gates/<name>.yaml`` and run ``pytest --modelcheck`` with a report."""
    target = pytester.path / "models" / model
    if not target.exists():
        shutil.copytree(tiny_models.shared(model), target)
    (pytester.path / "gates").mkdir(exist_ok=True)
    text = gate.format(model=f"../models/{model}", data=f"../data/{data.name}")
    (pytester.path / "gates" / f"{name}.yaml").write_text(text + extra, encoding="utf-8")
    result = pytester.runpytest("--modelcheck", "--modelcheck-report", "out.json", f"gates/{name}.yaml")
    report = json.loads((pytester.path / "out.json").read_text())
    return result, report


def checks_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["gates"][0]["checks"]}


def saved_outputs(pytester: pytest.Pytester, report: dict[str, Any]) -> Any:
    outputs, _ = load_outputs(pytester.path / report["gates"][0]["outputs"]["path"])
    return outputs


def regression_passes(
    pytester: pytest.Pytester, report: dict[str, Any], gate: str, *, model: str, data: Path, metrics: list[str]
) -> None:
    """A baseline from this run's report; the same model judged against it by each metric: no drop."""
    model_id = report["gates"][0]["model"]["id"]
    update_baselines(report, pytester.path / "out.json", pytester.path / "baselines")
    extra = "".join(
        f"  - {{name: {metric}_no_drop, kind: regression, metric: {metric}, "
        f"baseline: ../baselines/{model_id}.json, max_drop: 0.05}}\n"
        for metric in metrics
    )
    result, again = gate_run(pytester, "again", gate, model=model, data=data, extra=extra)
    checks = again["gates"][0]["checks"]
    assert all(c["status"] == "passed" for c in checks), checks
    regression = [c for c in checks if c["kind"] == "regression"]
    assert len(regression) == len(metrics) and all(c["ci"] is not None for c in regression), regression


# -- token-classification -------------------------------------------------------------------------

NER_GATE = """\
version: 1
model: {{id: tagger, source: {model}, task: token-classification, device: cpu, batch_size: 16}}
data: {{source: {data}, input: words, label: tags}}
checks:
  - {{name: entity_f1, metric: f1, min: 0.9}}
  - {{name: entity_f1_macro_strict, metric: f1, average: macro, mode: strict, scheme: IOB2, min: 0.9}}
  - {{name: person_recall, metric: recall, entity: PER, min: 0.9}}
  - {{name: words_right, metric: token_accuracy, min: 0.9, slice_by: shape}}
  - {{name: same_in_bfloat16, kind: parity, against: {{dtype: bfloat16}}, min_agreement: 0.9}}
"""


def test_token_classification_gate_equals_seqeval(pytester: pytest.Pytester) -> None:
    sentences = tiny_models.tagged_sentences(120, seed=5)
    rows = [{"words": w, "tags": t, "shape": "company" if "B-ORG" in t else "person"} for w, t in sentences]
    data = write_jsonl(pytester.path / "data" / "ner.jsonl", rows)
    result, report = gate_run(pytester, "ner", NER_GATE, model="tagger", data=data)
    result.assert_outcomes(passed=5)
    checks = checks_of(report)
    predicted = saved_outputs(pytester, report).tags
    truth = [t for _, t in sentences]
    assert checks["entity_f1"]["value"] == pytest.approx(seqeval.metrics.f1_score(truth, predicted))
    strict = seqeval.metrics.f1_score(truth, predicted, average="macro", mode="strict", scheme=seqeval.scheme.IOB2)
    assert checks["entity_f1_macro_strict"]["value"] == pytest.approx(strict)
    per_type = seqeval.metrics.classification_report(truth, predicted, output_dict=True)
    assert checks["person_recall"]["value"] == pytest.approx(per_type["PER"]["recall"])
    slices = {s["slice"]: s["value"] for s in checks["words_right"]["details"]["slices"]}
    company = [i for i, row in enumerate(rows) if row["shape"] == "company"]
    expected = seqeval.metrics.accuracy_score([truth[i] for i in company], [predicted[i] for i in company])
    assert slices["company"] == pytest.approx(expected)
    assert checks["same_in_bfloat16"]["details"]["compared"] == "tags"
    regression_passes(pytester, report, NER_GATE, model="tagger", data=data, metrics=["f1", "token_accuracy"])
