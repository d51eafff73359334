"""Gate-file loading: resolution, ${VAR} expansion, and one clear message per kind of bad input."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from modelcheck.errors import GateFileError
from modelcheck.gatefile import gate_schema, load_gate

REPO = Path(__file__).resolve().parents[1]

VALID = """\
version: 1
model:
  id: sentiment
  source: ../models/sentiment
data:
  source: ../data/test.csv
  input: text
  label: label
checks:
  - name: accuracy
    metric: accuracy
    min: 0.9
  - name: macro_f1
    metric: f1
    average: macro
    min: 0.88
stages:
  merge: [accuracy]
  deploy: all
"""


def write(tmp_path: Path, text: str, name: str = "gate.yaml") -> Path:
    path = tmp_path / "gates" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def bad(tmp_path: Path, text: str) -> GateFileError:
    path = write(tmp_path, text)
    with pytest.raises(GateFileError) as info:
        load_gate(path, display_path="gates/gate.yaml")
    assert str(info.value).startswith("gates/gate.yaml"), "every message names the file"
    return info.value


def test_valid_gate_resolves_paths_against_its_folder(tmp_path: Path) -> None:
    gate = load_gate(write(tmp_path, VALID))
    assert gate.model.source == str((tmp_path / "models" / "sentiment").resolve())
    assert gate.data.source == str((tmp_path / "data" / "test.csv").resolve())
    assert gate.model.backend == "transformers" and gate.model.device == "auto"
    assert [c.name for c in gate.checks] == ["accuracy", "macro_f1"]
    assert gate.check("accuracy").stages == ("merge", "deploy")
    assert gate.check("macro_f1").stages == ("deploy",)
    assert gate.check("macro_f1").threshold == {"min": 0.88}


def test_hub_ids_stay_as_written(tmp_path: Path) -> None:
    text = VALID.replace("../models/sentiment", "acme/sentiment@v1.2").replace("../data/test.csv", "imdb")
    gate = load_gate(write(tmp_path, text))
    assert gate.model.source == "acme/sentiment@v1.2" and not gate.model.is_local
    assert gate.data.source == "imdb" and not gate.data.is_local


def test_env_vars_expand_with_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_DIR", "/opt/models/candidate")
    monkeypatch.delenv("DATA_FILE", raising=False)
    text = VALID.replace("../models/sentiment", "${MODEL_DIR}").replace(
        "../data/test.csv", "${DATA_FILE:-../data/other.csv}"
    )
    gate = load_gate(write(tmp_path, text))
    assert gate.model.source == "/opt/models/candidate"
    assert gate.data.source == str((tmp_path / "data" / "other.csv").resolve())


def test_unset_env_var_without_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODEL_DIR", raising=False)
    error = bad(tmp_path, VALID.replace("../models/sentiment", "${MODEL_DIR}"))
    assert error.json_path == "$.model.source" and error.line == 4
    assert "MODEL_DIR is not set" in str(error) and "${MODEL_DIR:-value}" in str(error)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    error = bad(tmp_path, VALID.replace("  input: text", "  input: [text"))
    assert "invalid YAML" in str(error) and error.line is not None and error.line >= 7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "the top level is a list"),
        ("just a string\n", "the top level is a string"),
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
    ],
)
def test_wrong_top_level(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in str(bad(tmp_path, text))


def test_unknown_key_suggests_the_near_one(tmp_path: Path) -> None:
    error = bad(tmp_path, VALID.replace("  input: text", "  inptu: text\n  input: text"))
    assert error.json_path == "$.data.inptu" and error.line == 7
    assert "unknown key 'inptu'; did you mean 'input'?" in str(error)


def test_unknown_top_level_key(tmp_path: Path) -> None:
    error = bad(tmp_path, VALID.replace("checks:", "chekcs:"))
    assert "unknown key 'chekcs'; did you mean 'checks'?" in str(error)


def test_unsupported_version(tmp_path: Path) -> None:
    error = bad(tmp_path, VALID.replace("version: 1", "version: 2"))
    assert error.json_path == "$.version" and error.line == 1
    assert "unsupported version 2; this modelcheck reads gate files of version 1" in str(error)


def test_unknown_metric(tmp_path: Path) -> None:
    error = bad(tmp_path, VALID.replace("metric: accuracy", "metric: acuracy"))
    assert error.json_path == "$.checks[0].metric" and error.line == 11
    assert "metric 'acuracy' is not supported" in str(error) and "did you mean 'accuracy'?" in str(error)


def test_unknown_backend_lists_installed_ones(tmp_path: Path) -> None:
    error = bad(tmp_path, VALID.replace("  id: sentiment", "  id: sentiment\n  backend: transfomers"))
    assert error.json_path == "$.model.backend" and error.line == 4
    assert "unknown backend 'transfomers'; did you mean 'transformers'?" in str(error)
    assert "installed backends: kserve-v2, onnx, openai, torch, transformers" in str(error)


def test_unknown_task(tmp_path: Path) -> None:
    error = bad(tmp_path, VALID.replace("  id: sentiment", "  id: sentiment\n  task: sentiment-analysis"))
    assert error.json_path == "$.model.task"
    assert "task 'sentiment-analysis' is not supported; expected one of 'text-classification'" in str(error)


def test_unknown_device(tmp_path: Path) -> None:
    error = bad(tmp_path, VALID.replace("  id: sentiment", "  id: sentiment\n  device: gpu"))
    assert error.json_path == "$.model.device"
    assert "device 'gpu' is not supported; expected auto, cpu, mps, cuda or cuda:N" in str(error)


def test_wrong_value_type(tmp_path: Path) -> None:
    error = bad(tmp_path, VALID.replace("min: 0.9\n", "min: high\n"))
    assert error.json_path == "$.checks[0].min" and error.line == 12
    assert "min must be of type number, got string 'high'" in str(error)


def test_out_of_range_number(tmp_path: Path) -> None:
    error = bad(tmp_path, VALID.replace("min: 0.9\n", "min: 90\n"))
    assert error.json_path == "$.checks[0].min"
    assert "min 90 is out of range for accuracy, whose values lie in [0, 1]" in str(error)


def test_metric_not_offered_by_the_task(tmp_path: Path) -> None:
    error = bad(tmp_path, VALID.replace("metric: accuracy", "metric: rmse"))
    assert error.json_path == "$.checks[0].metric"
    assert "metric 'rmse' is not available for task 'text-classification'; its metrics: accuracy," in str(error)


def test_label_is_required_by_label_metrics(tmp_path: Path) -> None:
    error = bad(tmp_path, VALID.replace("  label: label\n", ""))
    assert error.json_path == "$.data" and "give data.label" in str(error)


def test_lists_of_input_columns_are_for_tabular_tasks(tmp_path: Path) -> None:
    error = bad(tmp_path, VALID.replace("input: text", "input: [text, title]"))
    assert error.json_path == "$.data.input" and "takes one input column" in str(error)


def test_check_without_threshold(tmp_path: Path) -> None:
    error = bad(tmp_path, VALID.replace("    min: 0.88\n", ""))
    assert error.json_path == "$.checks[1]"
    assert "needs a threshold: give min, max, or both" in str(error)


def test_min_above_max(tmp_path: Path) -> None:
    error = bad(tmp_path, VALID.replace("min: 0.9\n", "min: 0.9\n    max: 0.5\n"))
    assert "min 0.9 is greater than max 0.5" in str(error)


def test_duplicate_check_names(tmp_path: Path) -> None:
    error = bad(tmp_path, VALID.replace("name: macro_f1", "name: accuracy"))
    assert error.json_path == "$.checks[1].name" and error.line == 13
    assert "duplicate check name 'accuracy' (also at $.checks[0])" in str(error)


def test_stage_naming_a_missing_check(tmp_path: Path) -> None:
    error = bad(tmp_path, VALID.replace("merge: [accuracy]", "merge: [accuracy, acuracy_f1]"))
    assert error.json_path == "$.stages.merge[1]" and error.line == 18
    assert "stage 'merge' names check 'acuracy_f1', which does not exist" in str(error)
    assert "checks in this file: accuracy, macro_f1" in str(error)


def test_unknown_check_kind_lists_the_kinds(tmp_path: Path) -> None:
    error = bad(tmp_path, VALID.replace("    metric: accuracy\n", "    kind: latncy\n    metric: accuracy\n"))
    assert error.json_path == "$.checks[0].kind"
    expected = "'metric', 'regression', 'parity', 'latency', 'memory'"
    assert f"kind 'latncy' is not supported; expected one of {expected}" in str(error)
    assert "did you mean 'latency'?" in str(error)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GateFileError, match=r"gates/nope\.yaml: file not found"):
        load_gate(tmp_path / "nope.yaml", display_path="gates/nope.yaml")


def test_schema_is_a_valid_json_schema() -> None:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(gate_schema())


def test_every_shipped_gate_validates() -> None:
    gates = sorted((REPO / "gates").glob("**/*.yaml"))
    assert gates, "gates/ holds the reference gate"
    for path in gates:
        load_gate(path)


REGRESSION = VALID.replace(
    "stages:",
    """  - name: no_regression
    kind: regression
    baseline: ../baselines/sentiment.json
    metric: accuracy
    max_drop: 0.01
  - name: onnx_parity
    kind: parity
    against: {export: true}
    min_agreement: 0.999
stages:""",
)


def test_regression_and_parity_checks(tmp_path: Path) -> None:
    gate = load_gate(write(tmp_path, REGRESSION))
    regression = gate.check("no_regression")
    assert regression.baseline == str((tmp_path / "baselines" / "sentiment.json").resolve())
    assert (regression.test, regression.confidence, regression.on_missing) == ("paired-bootstrap", 0.95, "inconclusive")
    assert regression.threshold == {"max_drop": 0.01}
    parity = gate.check("onnx_parity")
    assert parity.export and parity.against is not None and parity.against.backend == "onnx"
    assert parity.threshold == {"min_agreement": 0.999}


DETECTION = """\
version: 1
model: {source: ../models/detr, task: object-detection}
data: {source: ../data/scenes.jsonl, input: image, label: objects}
checks:
  - {name: map, kind: regression, metric: map, baseline: ../b.json, max_drop: 0.02}
  - {name: recall, kind: regression, metric: mar_100, baseline: ../b.json, max_drop: 0.02, confidence: 0.9}
  - {name: speed, kind: latency, max_ms: 100}
"""


def test_regressions_on_coco_metrics_default_to_99_percent_confidence(tmp_path: Path) -> None:
    gate = load_gate(write(tmp_path, DETECTION))
    assert gate.check("map").confidence == 0.99  # the 95% BCa interval passed 5% at the margin (detection_fidelity)
    assert gate.check("recall").confidence == 0.9  # what the gate file says wins
    assert gate.check("speed").confidence == 0.95
    assert load_gate(write(tmp_path, REGRESSION)).check("no_regression").confidence == 0.95


def test_hub_baselines_stay_as_written(tmp_path: Path) -> None:
    gate = load_gate(write(tmp_path, REGRESSION.replace("../baselines/sentiment.json", "hub://acme/sentiment@v1")))
    assert gate.check("no_regression").baseline == "hub://acme/sentiment@v1"


def test_a_key_of_another_kind_says_which_kind_it_belongs_to(tmp_path: Path) -> None:
    error = bad(tmp_path, VALID.replace("min: 0.9\n", "min: 0.9\n    max_drop: 0.01\n"))
    assert error.json_path == "$.checks[0].max_drop"
    assert "max_drop does not apply to a metric check (it belongs to regression checks)" in str(error)


def test_regression_check_needs_its_keys(tmp_path: Path) -> None:
    error = bad(tmp_path, REGRESSION.replace("    baseline: ../baselines/sentiment.json\n", ""))
    assert error.json_path == "$.checks[2]" and "a regression check needs baseline" in str(error)


def test_mcnemar_needs_an_accuracy_like_metric(tmp_path: Path) -> None:
    text = REGRESSION.replace("    metric: accuracy\n    max_drop", "    metric: f1\n    test: mcnemar\n    max_drop")
    error = bad(tmp_path, text)
    assert error.json_path == "$.checks[2].test" and "use test: paired-bootstrap" in str(error)


def test_parity_check_needs_a_threshold(tmp_path: Path) -> None:
    error = bad(tmp_path, REGRESSION.replace("    min_agreement: 0.999\n", ""))
    assert "a parity check needs at least one threshold: max_abs_diff" in str(error)


PERFORMANCE = VALID.replace(
    "stages:",
    """  - name: latency_p95
    kind: latency
    batch_size: 1
    percentile: 95
    max_ms: 40
  - name: faster_than_main
    kind: latency
    baseline_model: ../models/main
    max_ratio: 1.1
  - name: noise_floor
    kind: latency
    baseline_model: self
    max_ratio: 1.1
    percentile: 50
  - name: peak_memory
    kind: memory
    phase: load
    isolate: true
    max_mb: 600
stages:""",
)


def test_latency_and_memory_checks(tmp_path: Path) -> None:
    gate = load_gate(write(tmp_path, PERFORMANCE))
    latency = gate.check("latency_p95")
    assert (latency.kind, latency.batch_size, latency.percentile, latency.inputs) == ("latency", 1, 95, "data")
    assert (latency.min_iterations, latency.min_time, latency.on_uncertain) == (50, 1.0, "inconclusive")
    assert latency.threshold == {"max_ms": 40}
    ratio = gate.check("faster_than_main")
    assert ratio.baseline_model is not None and not ratio.baseline_self
    assert ratio.baseline_model.source == str((tmp_path / "models" / "main").resolve())
    assert ratio.baseline_model.backend == gate.model.backend and ratio.baseline_model.id == "sentiment-baseline"
    assert ratio.threshold == {"max_ratio": 1.1}
    aa = gate.check("noise_floor")
    assert aa.baseline_self and aa.baseline_model is None and aa.percentile == 50
    memory = gate.check("peak_memory")
    assert (memory.kind, memory.phase, memory.isolate, memory.threshold) == ("memory", "load", True, {"max_mb": 600})


@pytest.mark.parametrize(
    ("old", "new", "where", "message"),
    [
        (
            "percentile: 95",
            "percentile: 0",
            "$.checks[2].percentile",
            "percentile 0 is out of range; expected a number > 0",
        ),
        (
            "percentile: 95",
            "percentile: 101",
            "$.checks[2].percentile",
            "percentile 101 is out of range; expected a number <= 100",
        ),
        ("max_ms: 40", "max_ms: 0", "$.checks[2].max_ms", "max_ms 0 is out of range; expected a number > 0"),
        ("max_mb: 600", "max_mb: -5", "$.checks[5].max_mb", "max_mb -5 is out of range; expected a number > 0"),
        (
            "max_ratio: 1.1\n    percentile: 50",
            "max_ratio: 0\n    percentile: 50",
            "$.checks[4].max_ratio",
            "max_ratio 0 is out of range; expected a number > 0",
        ),
        ("    max_ms: 40\n", "", "$.checks[2]", "a latency check needs a threshold: max_ms (absolute), max_ratio"),
        (
            "    baseline_model: ../models/main\n",
            "",
            "$.checks[3].max_ratio",
            "max_ratio compares with a baseline model: give baseline_model (a model source, or self for an A/A run)",
        ),
        (
            "    max_ms: 40\n",
            "    max_ms: 40\n    baseline_model: self\n",
            "$.checks[2].baseline_model",
            "baseline_model is compared by max_ratio: give max_ratio (e.g. 1.10: at most 10% slower)",
        ),
        (
            "    max_mb: 600",
            "    max_ratio: 1.2\n    baseline_model: self",
            "$.checks[5].baseline_model",
            "baseline_model: self is the A/A mode of latency checks",
        ),
        (
            "    max_ms: 40",
            "    max_ms: 40\n    phase: load",
            "$.checks[2].phase",
            "phase does not apply to a latency check (it belongs to memory checks)",
        ),
        (
            "    max_ms: 40",
            "    max_ms: 40\n    min_time: 5\n    max_time: 2",
            "$.checks[2].max_time",
            "max_time 2 is less than min_time 5",
        ),
        ("isolate: true", "isolate: yes please", "$.checks[5].isolate", "isolate must be of type boolean"),
    ],
)
def test_bad_latency_and_memory_keys(tmp_path: Path, old: str, new: str, where: str, message: str) -> None:
    assert old in PERFORMANCE
    error = bad(tmp_path, PERFORMANCE.replace(old, new, 1))
    assert error.json_path == where
    assert message in str(error)
