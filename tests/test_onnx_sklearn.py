"""Real scikit-learn classifiers exported with skl2onnx, judged through a gate against sklearn.metrics.

The models are trained in the test (milliseconds) on scikit-learn's bundled datasets; the gate's values
must equal scikit-learn's metrics on the same predictions, whatever the labels look like: integer class
ids named by ``model.labels``, the class names a model was trained on, or integer classes that are not
``0 .. n-1``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from modelcheck.gatefile import load_gate
from modelcheck.models.backends import get_backend
from modelcheck.models.cache import ModelCache
from modelcheck.models.labels import _Tables
from modelcheck.run.gate import run_gate
from modelcheck.run.inputs import label_ids

pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")


def convert(model: Any, features: int, path: Path, *, zipmap: bool = False) -> Path:
    """``model`` as ONNX through skl2onnx (``zipmap=False``: probabilities as one float tensor)."""
    from skl2onnx.common.data_types import FloatTensorType

    with warnings.catch_warnings():  # skl2onnx reads attributes scikit-learn has deprecated
        warnings.simplefilter("ignore", FutureWarning)
        graph = skl2onnx.convert_sklearn(
            model,
            initial_types=[("X", FloatTensorType([None, features]))],
            options={id(model): {"zipmap": zipmap}},
        )
    path.write_bytes(graph.SerializeToString())
    return path


def gate_file(folder: Path, model: Path, frame: pd.DataFrame, features: list[str], label: str, **extra: Any) -> Path:
    """A gate judging ``model`` on ``frame`` with accuracy, macro F1 and (binary) F1 of the second class."""
    frame.to_csv(folder / "test.csv", index=False)
    checks: list[dict[str, Any]] = [
        {"name": "accuracy", "metric": "accuracy", "min": 0.5},
        {"name": "macro_f1", "metric": "f1", "average": "macro", "min": 0.5},
    ]
    checks += extra.pop("checks", [])
    gate = {
        "version": 1,
        "model": {
            "id": "clf",
            "source": str(model),
            "backend": "onnx",
            "task": "tabular-classification",
            "device": "cpu",
            **extra,
        },
        "data": {"source": "test.csv", "input": features, "label": label},
        "checks": checks,
    }
    path = folder / "gate.yaml"
    path.write_text(json.dumps(gate), encoding="utf-8")  # JSON is YAML
    return path


def judged(path: Path) -> dict[str, Any]:
    result = run_gate(load_gate(path), file=str(path), models=ModelCache(), stage=None)
    assert result.error is None, result.error
    for check in result.checks:
        assert check.status == "passed", (check.name, check.message)
        assert "np." not in check.message
    return {check.name: check.value for check in result.checks}


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    test = np.arange(len(frame)) % 3 == 0
    return frame[~test].reset_index(drop=True), frame[test].reset_index(drop=True)


@pytest.fixture(scope="module")
def breast_cancer() -> tuple[pd.DataFrame, list[str]]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    return frame, [c for c in frame.columns if c != "target"]


@pytest.mark.parametrize("zipmap", [False, True], ids=["probability-tensor", "zipmap-default"])
def test_logistic_regression_with_integer_labels_named_by_model_labels(
    tmp_path: Path, breast_cancer: tuple[pd.DataFrame, list[str]], zipmap: bool
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame, features = breast_cancer
    train, test = split(frame)
    clf = make_pipeline(StandardScaler(), LogisticRegression()).fit(train[features].to_numpy(np.float32), train.target)
    model = convert(clf, len(features), tmp_path / "lr.onnx", zipmap=zipmap)
    predicted = clf.predict(test[features].to_numpy(np.float32))
    benign_f1 = {"name": "benign_f1", "metric": "f1", "pos_label": "benign", "min": 0.5}
    values = judged(
        gate_file(tmp_path, model, test, features, "target", labels=["malignant", "benign"], checks=[benign_f1])
    )
    assert values["accuracy"] == pytest.approx(metrics.accuracy_score(test.target, predicted), abs=1e-12)
    assert values["macro_f1"] == pytest.approx(metrics.f1_score(test.target, predicted, average="macro"), abs=1e-12)
    assert values["benign_f1"] == pytest.approx(metrics.f1_score(test.target, predicted, pos_label=1), abs=1e-12)
    # the data may name the classes too
    named = test.assign(target=np.array(["malignant", "benign"])[test.target])
    assert judged(gate_file(tmp_path, model, named, features, "target", labels=["malignant", "benign"])) == {
        "accuracy": values["accuracy"],
        "macro_f1": values["macro_f1"],
    }
    loaded = get_backend("onnx").load(load_gate(tmp_path / "gate.yaml").model)
    outputs = loaded.predict(test[features].to_numpy(np.float32), batch_size=64)
    probabilities = clf.predict_proba(test[features].to_numpy(np.float32))
    assert outputs.scores is not None and np.allclose(outputs.scores, probabilities, atol=1e-5)


def test_random_forest_on_string_targets_needs_no_labels(tmp_path: Path) -> None:
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    data = load_iris(as_frame=True)
    features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    frame = data.frame.set_axis([*features, "target"], axis=1)
    frame["species"] = np.asarray(data.target_names)[frame.pop("target")]
    train, test = split(frame)
    forest = RandomForestClassifier(n_estimators=5, max_depth=2, random_state=0)
    forest.fit(train[features].to_numpy(np.float32), train.species)
    model = convert(forest, 4, tmp_path / "forest.onnx")
    predicted = forest.predict(test[features].to_numpy(np.float32))
    assert (predicted != test.species).any()  # a model that errs: the comparison means something
    values = judged(gate_file(tmp_path, model, test, features, "species"))
    assert values["accuracy"] == pytest.approx(metrics.accuracy_score(test.species, predicted), abs=1e-12)
    assert values["macro_f1"] == pytest.approx(metrics.f1_score(test.species, predicted, average="macro"), abs=1e-12)


def test_integer_classes_that_are_not_ids_map_through_the_graph(tmp_path: Path) -> None:
    from sklearn.datasets import load_wine
    from sklearn.tree import DecisionTreeClassifier

    data = load_wine(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace("/", "_"))
    features = [c for c in frame.columns if c != "target"]
    frame["target"] += 1  # classes 1, 2, 3: "1" is class id 0
    train, test = split(frame)
    clf = DecisionTreeClassifier(max_depth=1, random_state=0).fit(train[features].to_numpy(np.float32), train.target)
    model = convert(clf, len(features), tmp_path / "wine.onnx")
    predicted = clf.predict(test[features].to_numpy(np.float32))
    assert (predicted != test.target).any()
    expected = {
        "accuracy": metrics.accuracy_score(test.target, predicted),
        "macro_f1": metrics.f1_score(test.target, predicted, average="macro"),
    }
    for extra in ({}, {"labels": ["one", "two", "three"]}):
        values = judged(gate_file(tmp_path, model, test, features, "target", **extra))
        assert values == pytest.approx(expected, abs=1e-12), extra


def test_string_labels_are_looked_up_once_per_distinct_value(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    original = _Tables.class_id

    def counting(self: _Tables, value: Any) -> int:
        calls.append(value)
        return original(self, value)

    monkeypatch.setattr(_Tables, "class_id", counting)
    column = pd.Series(np.array(["benign", "malignant", "Benign"] * 333_334, dtype=object))
    ids = label_ids(column, ("malignant", "benign"), column="target")
    assert len(ids) == 1_000_002 and ids[:3].tolist() == [1, 0, 1]
    assert sorted(calls) == ["Benign", "benign", "malignant"]


def test_an_unknown_label_names_plain_values_and_the_data_row() -> None:
    from modelcheck.errors import DataError

    with pytest.raises(DataError) as caught:
        label_ids(pd.Series([0, 1, 5, 1]), ("malignant", "benign"), column="target")
    message = str(caught.value)
    assert "5 (first at data row 3 (counting from 1, header not counted))" in message
    assert "np." not in message


def test_a_slice_by_column_that_does_not_exist_is_one_error_naming_file_check_key_and_columns(
    tmp_path: Path, breast_cancer: tuple[pd.DataFrame, list[str]]
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame, features = breast_cancer
    train, test = split(frame)
    test = test[[*features[:3], "target"]].assign(group=np.arange(len(test)) % 2)
    clf = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        train[features[:3]].to_numpy(np.float32), train.target
    )
    model = convert(clf, 3, tmp_path / "lr.onnx")
    sliced = [
        {"name": "by_group", "metric": "accuracy", "slice_by": "group", "min": 0.5},
        {"name": "by_site", "metric": "accuracy", "slice_by": "site", "min": 0.5},
    ]
    path = gate_file(tmp_path, model, test, features[:3], "target", checks=sliced)
    result = run_gate(load_gate(path), file="gates/clf.yaml", models=ModelCache(), stage=None)
    statuses = {check.name: check.status for check in result.checks}
    assert statuses == {"accuracy": "passed", "macro_f1": "passed", "by_group": "passed", "by_site": "error"}
    (broken,) = [check for check in result.checks if check.status == "error"]
    assert broken.message.startswith("gates/clf.yaml, line 1: check 'by_site' has slice_by 'site', which is not")
    assert f"its columns are: {', '.join(test.columns)}. Set slice_by to one of them" in broken.message
    assert result.error is None


@pytest.mark.parametrize("threads", [None, 1])
def test_the_report_records_the_threads_the_evaluation_ran_on(
    tmp_path: Path, breast_cancer: tuple[pd.DataFrame, list[str]], threads: int | None
) -> None:
    from sklearn.linear_model import LogisticRegression

    from modelcheck.models.threads import usable_cores
    from modelcheck.report.document import build_report

    frame, features = breast_cancer
    train, test = split(frame[[*features[:3], "target"]])
    clf = LogisticRegression().fit(train[features[:3]].to_numpy(np.float32), train.target)
    model = convert(clf, 3, tmp_path / "lr.onnx")
    extra = {} if threads is None else {"threads": threads}
    path = gate_file(tmp_path, model, test, features[:3], "target", **extra)
    result = run_gate(load_gate(path), file="gates/clf.yaml", models=ModelCache(), stage=None)
    used = result.model["threads"]
    assert used == threads if threads is not None else 1 <= used <= usable_cores()
    (gate,) = build_report([result], stage=None, env={})["gates"]
    assert gate.get("error") is None and gate["model"]["threads"] == used


def test_torch_to_onnx_takes_no_option_that_does_nothing() -> None:
    import inspect

    from modelcheck.models.export import torch_to_onnx

    assert "strict_trace" not in inspect.signature(torch_to_onnx).parameters
