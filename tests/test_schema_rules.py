"""The shipped schema says what ``modelcheck validate`` says: an editor's YAML language server, validating
with plain jsonschema, rejects exactly the per-kind, per-task and per-metric mistakes that validate rejects."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from modelcheck.errors import GateFileError
from modelcheck.gatefile import gate_schema, load_gate
from modelcheck.gatefile.build import _KIND_KEYS, _KIND_REQUIRED
from modelcheck.gatefile.tasks import TASKS

REPO = Path(__file__).resolve().parents[1]
BASE: dict[str, Any] = {
    "version": 1,
    "model": {"source": "./model", "task": "text-classification"},
    "data": {"source": "data.csv", "input": "text", "label": "label"},
    "checks": [{"name": "accuracy", "metric": "accuracy", "min": 0.9}],
}


def gate(check: dict[str, Any] | None = None, *, task: str | None = None, **sections: dict[str, Any]) -> dict[str, Any]:
    """BASE with one more check, another task and/or sections' keys changed (None removes a key)."""
    document = copy.deepcopy(BASE)
    if check is not None:
        document["checks"].append({"name": "extra", **check})
    if task is not None:
        document["model"]["task"] = task
        document["checks"] = document["checks"][1:]
    for section, changes in sections.items():
        for key, value in changes.items():
            if value is None:
                document[section].pop(key, None)
            else:
                document[section][key] = value
    return document


FE = "feature-extraction"
LAT, MEM = {"kind": "latency"}, {"kind": "memory"}
REJECTED = {
    "latency check with no bound": gate(LAT),
    "memory check with no bound": gate(MEM),
    "latency key on a metric check": gate({"metric": "f1", "min": 0.5, "max_ms": 40}),
    "metric key on a latency check": gate({**LAT, "max_ms": 40, "average": "macro"}),
    "parity key on a memory check": gate({**MEM, "max_mb": 100, "max_abs_diff": 0.1}),
    "regression key on a parity check": gate(
        {"kind": "parity", "against": {"export": True}, "min_agreement": 0.9, "max_drop": 0.01}
    ),
    "metric check with no threshold": gate({"metric": "f1"}),
    "metric check with no metric": gate({"min": 0.5}),
    "regression check with no baseline": gate({"kind": "regression", "metric": "accuracy", "max_drop": 0.01}),
    "regression on an evaluate module": gate(
        {"kind": "regression", "metric": {"evaluate": "m.py"}, "baseline": "b.json", "max_drop": 0.01}
    ),
    "mcnemar on f1": gate(
        {"kind": "regression", "metric": "f1", "baseline": "b.json", "max_drop": 0.01, "test": "mcnemar"}
    ),
    "parity check with no bound": gate({"kind": "parity", "against": {"device": "cpu"}}),
    "parity against nothing": gate({"kind": "parity", "against": {}, "min_agreement": 0.9}),
    "parity against export: false only": gate({"kind": "parity", "against": {"export": False}, "min_agreement": 0.9}),
    "export with a source": gate(
        {"kind": "parity", "against": {"export": True, "source": "m.onnx"}, "min_agreement": 0.9}
    ),
    "export with another backend": gate(
        {"kind": "parity", "against": {"export": True, "backend": "torch"}, "min_agreement": 0.9}
    ),
    "latency max_ratio without baseline_model": gate({**LAT, "max_ratio": 1.1}),
    "latency baseline_model without max_ratio": gate({**LAT, "max_ms": 40, "baseline_model": "self"}),
    "memory max_ratio without baseline_model": gate({**MEM, "max_ratio": 1.2}),
    "memory against self": gate({**MEM, "max_ratio": 1.2, "baseline_model": "self"}),
    "max_error_rate on a latency check without concurrency": gate({**LAT, "max_ms": 40, "max_error_rate": 0.1}),
    "max_error_rate of 1": gate({"metric": "f1", "min": 0.5, "max_error_rate": 1}),
    "max_error_rate on a memory check": gate({**MEM, "max_mb": 100, "max_error_rate": 0.1}),
    "concurrency 0": gate({**LAT, "max_ms": 40, "concurrency": 0}),
    "concurrency on a metric check": gate({"metric": "f1", "min": 0.5, "concurrency": 2}),
    "load test against a baseline_model": gate(
        {**LAT, "max_ms": 40, "concurrency": 2, "max_ratio": 1.1, "baseline_model": "self"}
    ),
    "load test without max_ms": gate({**LAT, "concurrency": 2}),
    "accuracy min 90": gate({"metric": "accuracy", "min": 90}),
    "f1 max below 0": gate({"metric": "f1", "max": -0.1}),
    "mae min below 0": gate(
        {"metric": "mae", "max": 0.5, "min": -1}, task="tabular-regression", data={"input": ["a", "b"]}
    ),
    "spearman min -2": gate({"metric": "spearman", "min": -2}, task=FE),
    "metric of another task": gate({"metric": "cosine_similarity", "min": 0.5, "reference": "e.npy"}),
    "accuracy on a regression task": gate(
        {"metric": "accuracy", "min": 0.5}, task="tabular-regression", data={"input": ["a", "b"]}
    ),
    "cosine_similarity without reference": gate({"metric": "cosine_similarity", "min": 0.9}, task=FE),
    "reference on accuracy": gate({"metric": "accuracy", "min": 0.5, "reference": "e.npy"}),
    "no label for a label metric": gate(data={"label": None}),
    "two input columns for text-classification": gate(data={"input": ["a", "b"]}),
    "three input columns for feature-extraction": gate(
        {"metric": "spearman", "min": 0.5}, task=FE, data={"input": ["a", "b", "c"]}
    ),
}
ACCEPTED = {
    "latency with max_ms": gate({**LAT, "max_ms": 40, "percentile": 50, "threads": 1}),
    "latency A/A": gate({**LAT, "max_ratio": 1.1, "baseline_model": "self"}),
    "memory with max_mb": gate({**MEM, "max_mb": 600, "phase": "load", "isolate": True}),
    "memory against another model": gate({**MEM, "max_ratio": 1.2, "baseline_model": "../main"}),
    "regression with mcnemar": gate(
        {"kind": "regression", "metric": "accuracy", "baseline": "b.json", "max_drop": 0.01, "test": "mcnemar"}
    ),
    "parity against an export": gate({"kind": "parity", "against": {"export": True}, "min_agreement": 0.99}),
    "parity against another device": gate({"kind": "parity", "against": {"device": "cpu"}, "max_abs_diff": 0.01}),
    "an evaluate module": gate({"metric": {"evaluate": "m.py", "key": "score"}, "min": 0.5}),
    "f1 with slices": gate({"metric": "f1", "average": "macro", "min": 0.5, "max": 1, "slice_by": "lang"}),
    "cosine with reference, no label": gate(
        {"metric": "cosine_similarity", "min": 0.9, "reference": "e.npy"}, task=FE, data={"label": None}
    ),
    "pairs for feature-extraction": gate({"metric": "spearman", "min": 0.5}, task=FE, data={"input": ["a", "b"]}),
    "tabular regression": gate({"metric": "r2", "min": -5}, task="tabular-regression", data={"input": ["a", "b"]}),
    "text generation": gate({"metric": "exact_match", "min": 0.5}, task="text-generation"),
    "the default task": gate({"metric": "roc_auc", "min": 0.5}, model={"task": None}),
    "a metric tolerating failed requests": gate(
        {"metric": "f1", "average": "macro", "min": 0.5, "max_error_rate": 0.05}
    ),
    "a regression tolerating failed requests": gate(
        {"kind": "regression", "metric": "accuracy", "baseline": "b.json", "max_drop": 0.01, "max_error_rate": 0}
    ),
    "a load test": gate({**LAT, "max_ms": 40, "concurrency": 8, "max_error_rate": 0.01, "percentile": 99}),
}
#: Rules across keys or about the machine, which JSON Schema cannot say: validate alone rejects these.
VALIDATE_ONLY = {
    "duplicate check names": {**gate(), "checks": [*BASE["checks"], {"name": "accuracy", "metric": "f1", "min": 0.5}]},
    "min above max": gate({"metric": "f1", "min": 0.9, "max": 0.5}),
    "min_time above max_time": gate({**LAT, "max_ms": 40, "min_time": 10, "max_time": 5}),
    "stage naming a missing check": {**gate(), "stages": {"merge": ["nope"]}},
    "backend not installed": gate(model={"backend": "not-installed"}),
}


def editor_rejects(document: dict[str, Any]) -> bool:
    """What a YAML language server does: plain jsonschema over the YAML as written."""
    return any(jsonschema.Draft202012Validator(gate_schema()).iter_errors(yaml.safe_load(yaml.safe_dump(document))))


def validate_rejects(document: dict[str, Any], tmp_path: Path) -> str | None:
    path = tmp_path / "gate.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    try:
        load_gate(path)
    except GateFileError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_schema_rejects_what_validate_rejects(case: str, tmp_path: Path) -> None:
    message = validate_rejects(REJECTED[case], tmp_path)
    assert message is not None, f"validate accepts {case}"
    assert editor_rejects(REJECTED[case]), f"the schema accepts {case}, which validate rejects: {message}"


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_schema_accepts_what_validate_accepts(case: str, tmp_path: Path) -> None:
    assert validate_rejects(ACCEPTED[case], tmp_path) is None
    assert not editor_rejects(ACCEPTED[case]), case


@pytest.mark.parametrize("case", sorted(VALIDATE_ONLY))
def test_rules_only_validate_knows(case: str, tmp_path: Path) -> None:
    assert validate_rejects(VALIDATE_ONLY[case], tmp_path) is not None
    assert not editor_rejects(VALIDATE_ONLY[case]), f"the schema now says {case}: move it to REJECTED (and README)"


def test_validate_words_a_broken_rule_itself(tmp_path: Path) -> None:
    """The rules in the schema do not replace validate's messages, which name the fix."""
    assert "a latency check needs a threshold: max_ms" in str(
        validate_rejects(REJECTED["latency check with no bound"], tmp_path)
    )
    assert "max_ms does not apply to a metric check (it belongs to latency checks)" in str(
        validate_rejects(REJECTED["latency key on a metric check"], tmp_path)
    )
    for case, says in {
        "max_error_rate on a latency check without concurrency": "checks[1].max_error_rate: max_error_rate on a "
        "latency check judges the requests of a load test: give concurrency",
        "load test against a baseline_model": "checks[1].concurrency: a load test (concurrency) is judged by max_ms",
        "load test without max_ms": "a latency check needs a threshold: max_ms",
        "concurrency on a metric check": "concurrency does not apply to a metric check (it belongs to latency checks)",
    }.items():
        assert says in str(validate_rejects(REJECTED[case], tmp_path)), case


def test_the_shipped_gates_satisfy_the_whole_schema() -> None:
    for path in sorted((REPO / "gates").glob("**/*.yaml")):
        assert not editor_rejects(yaml.safe_load(path.read_text("utf-8"))), path


def test_schema_rules_follow_the_tables_validate_reads() -> None:
    definitions = gate_schema()["$defs"]
    for kind, keys in _KIND_KEYS.items():
        assert set(definitions[f"{kind}_check"]["properties"]) == {"name", "kind", *keys}, kind
        assert set(definitions[f"{kind}_check"].get("required", ())) == set(_KIND_REQUIRED[kind]), kind
    by_task = {}
    for rule in gate_schema()["allOf"]:
        task = rule["if"]["properties"].get("model", {}).get("properties", {}).get("task", {}).get("const")
        if task:
            by_task[task] = rule["then"]["properties"]["checks"]["items"]["properties"]["metric"]["anyOf"][0]["enum"]
    assert by_task == {name: list(task.metrics) for name, task in TASKS.items()}


def test_the_reference_gate_names_its_schema_for_editors() -> None:
    for path in sorted((REPO / "gates").glob("**/*.yaml")):
        first = path.read_text("utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        target = (path.parent / first.split("$schema=", 1)[1]).resolve()
        assert target == REPO / "modelcheck" / "schemas" / "gate.schema.json", path
