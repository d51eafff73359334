"""An ONNX classifier that exports its own predicted ``label`` is judged on it, not on the argmax of a float output."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from modelcheck.errors import BackendError
from modelcheck.gatefile import ModelSpec
from modelcheck.models.backends import get_backend

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def spec(path: Path, **kwargs: object) -> ModelSpec:
    return ModelSpec(id="svc", source=str(path), backend="onnx", task="tabular-classification", device="cpu", **kwargs)


def planted_graph(folder: Path, predicted: int = 2) -> Path:
    """Scores say class 0 for every row; the graph's own label says class ``predicted``: the label must win."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])
    label = helper.make_tensor_value_info("label", TensorProto.INT64, [None])
    scores = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 3])
    nodes = [
        helper.make_node("ReduceSum", ["X", "axes"], ["rowsum"], keepdims=1),  # (N, 1)
        helper.make_node("Mul", ["rowsum", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "one_hot0"], ["probabilities"]),  # [1, 0, 0] per row
        helper.make_node("Cast", ["zeros"], ["zeros_int"], to=TensorProto.INT64),
        helper.make_node("Add", ["zeros_int", "two"], ["label2d"]),
        helper.make_node("Squeeze", ["label2d", "axes"], ["label"]),
    ]
    inits = [
        helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("one_hot0", TensorProto.FLOAT, [3], [1.0, 0.0, 0.0]),
        helper.make_tensor("two", TensorProto.INT64, [], [predicted]),
    ]
    graph = helper.make_graph(nodes, "planted", [x], [label, scores], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / f"planted{predicted}.onnx"
    onnx.save(model, str(path))
    return path


def test_the_graphs_label_output_wins_over_the_argmax_of_its_scores(tmp_path: Path) -> None:
    model = get_backend("onnx").load(spec(planted_graph(tmp_path)))
    outputs = model.predict([np.ones(4, dtype=np.float32)] * 5, batch_size=2)
    assert outputs.labels is not None and outputs.labels.tolist() == [2] * 5
    assert outputs.scores is not None and outputs.scores.argmax(axis=1).tolist() == [0] * 5


def test_an_integer_label_in_range_is_a_class_id_named_by_model_labels(tmp_path: Path) -> None:
    model = get_backend("onnx").load(spec(planted_graph(tmp_path), labels=("a", "b", "c")))
    outputs = model.predict([np.ones(4, dtype=np.float32)] * 3, batch_size=2)
    assert outputs.labels is not None and outputs.labels.tolist() == [2] * 3
    assert model.label_names == ("a", "b", "c")


def test_a_label_the_model_does_not_know_is_an_error_printing_the_plain_value(tmp_path: Path) -> None:
    model = get_backend("onnx").load(spec(planted_graph(tmp_path, predicted=7), labels=("a", "b", "c")))
    with pytest.raises(BackendError) as caught:
        model.predict([np.ones(4, dtype=np.float32)], batch_size=1)
    message = str(caught.value)
    assert "predicts label 7, which is none of the class ids 0 to 2 and the model's labels (a, b, c)" in message
    assert "np." not in message


def test_a_converted_scikit_learn_svc_agrees_with_the_svc(tmp_path: Path) -> None:
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_wine
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    x, y = load_wine(return_X_y=True)
    x = x.astype(np.float32)
    svc = make_pipeline(StandardScaler(), SVC(C=0.05)).fit(x[::2], y[::2])  # weak: many close votes
    with warnings.catch_warnings():  # skl2onnx reads attributes scikit-learn has deprecated
        warnings.simplefilter("ignore", FutureWarning)
        graph = skl2onnx.convert_sklearn(
            svc, initial_types=[("X", FloatTensorType([None, x.shape[1]]))], options={SVC: {"zipmap": False}}
        )
    path = tmp_path / "svc.onnx"
    path.write_bytes(graph.SerializeToString())
    model = get_backend("onnx").load(spec(path))
    outputs = model.predict(list(x), batch_size=32)
    assert outputs.labels is not None
    np.testing.assert_array_equal(outputs.labels, svc.predict(x))
