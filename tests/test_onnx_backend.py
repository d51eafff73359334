"""The onnx backend against real ONNX graphs: the tiny sentiment BERT exported from torch, and tabular models.

The BERT comes from the session fixtures in conftest.py and is exported here with
``torch.onnx.export(dynamo=False)`` (under a second); the tabular MLP trains on iris in a fraction of
a second. Tiny graphs written with ``onnx.helper`` cover the edge cases without torch. All sessions
run on ONNX Runtime's CPU provider with one thread (two shared cores).
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelcheck.errors import BackendError, DataError, DeviceUnavailableError, ModelLoadError
from modelcheck.gatefile import ModelSpec
from modelcheck.models.backends import LoadedModel, get_backend
from modelcheck.report.document import read_report

pytestmark = pytest.mark.usefixtures("frameworks_imported_once", "one_torch_thread")

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from modelcheck_onnx import OnnxBackend, OnnxModel, select_providers  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

EXAMPLE_DATA = Path(__file__).resolve().parents[1] / "examples" / "sentiment" / "test.csv"
IRIS_LABELS = ("setosa", "versicolor", "virginica")
IRIS_COLUMNS = ("sepal_length", "sepal_width", "petal_length", "petal_width")
HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


def spec(source: str | Path, **kwargs: Any) -> ModelSpec:
    kwargs.setdefault("threads", 1)
    kwargs.setdefault("device", "cpu")
    return ModelSpec(id="m", source=str(source), backend="onnx", **kwargs)


def load(source: str | Path, **kwargs: Any) -> OnnxModel:
    return OnnxBackend().load(spec(source, **kwargs))


# -- graphs ---------------------------------------------------------------------------------------


def export(module: Any, args: tuple[Any, ...], path: Path, inputs: list[str], outputs: list[str], axes: dict) -> Path:
    """``torch.onnx.export`` (TorchScript exporter, opset 17) without its deprecation and tracer warnings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),  # an exporter restores the wrapper's mode, and a new wrapper is in training mode
            args,
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
        )
    return path


def export_bert(folder: Path, path: Path, *, hidden: bool = False) -> Path:
    """The sentiment BERT as ONNX: inputs input_ids/attention_mask, output logits (or the last hidden state)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    network = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            if hidden:
                return self.network.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return self.network(input_ids=input_ids, attention_mask=attention_mask).logits

    sample = tokenizer(["good movie", "bad"], padding=True, return_tensors="pt")
    output = "last_hidden_state" if hidden else "logits"
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}, output: {0: "batch"}}
    if hidden:
        axes[output][1] = "seq"
    args = (sample["input_ids"], sample["attention_mask"])
    return export(Wrapper(), args, path, ["input_ids", "attention_mask"], [output], axes)


def save_graph(path: Path, nodes: list[Any], inputs: list[Any], outputs: list[Any], initializers: list[Any]) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path


def linear_graph(path: Path, weights: np.ndarray, bias: float, *, features: int | str = 3) -> Path:
    """``y = x @ weights + bias`` with x (batch, features) float32 and y (batch, 1)."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [len(weights), 1], weights.astype(np.float32).tolist())
    b = helper.make_tensor("b", TensorProto.FLOAT, [1], [bias])
    return save_graph(
        path,
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])],
        [w, b],
    )


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("graphs")


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    with EXAMPLE_DATA.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def bert_onnx(sentiment_model: Path, graphs: Path) -> Path:
    return export_bert(sentiment_model, graphs / "bert" / "model.onnx")


@pytest.fixture(scope="module")
def bert(bert_onnx: Path, sentiment_model: Path) -> Iterator[OnnxModel]:
    loaded = load(bert_onnx, tokenizer=str(sentiment_model))
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def torch_probabilities(sentiment_model: Path, rows: list[dict[str, str]]) -> np.ndarray:
    """The torch model's class probabilities on the example data, one text at a time (no padding)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    network = AutoModelForSequenceClassification.from_pretrained(sentiment_model).eval()
    tokenizer = AutoTokenizer.from_pretrained(sentiment_model)
    with torch.inference_mode():
        logits = [network(**tokenizer(r["text"], return_tensors="pt")).logits[0] for r in rows]
    return torch.stack(logits).softmax(dim=-1).numpy()


@pytest.fixture(scope="module")
def iris() -> dict[str, Any]:
    """A 4-16-3 MLP trained on iris (~0.2 s), exported to ONNX twice: logits, and softmax probabilities."""
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    features, targets = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    optimiser = torch.optim.Adam(network.parameters(), lr=0.05)
    for _ in range(200):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(network(features), targets).backward()
        optimiser.step()
    return {"x": x.astype(np.float32), "y": y, "network": network.eval()}


@pytest.fixture(scope="module")
def iris_onnx(iris: dict[str, Any], graphs: Path) -> Path:
    sample = torch.zeros(2, 4)
    return export(iris["network"], (sample,), graphs / "iris.onnx", ["features"], ["logits"], {"features": {0: "n"}})


# -- import cost, providers (no model needed) -------------------------------------------------------


def test_import_loads_no_framework(tmp_path: Path) -> None:
    code = (
        "import sys, modelcheck_onnx\n"
        "heavy = [m for m in ('onnxruntime', 'onnx', 'torch', 'transformers', 'datasets') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_backend_is_registered() -> None:
    assert isinstance(get_backend("onnx"), OnnxBackend)


CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"


@pytest.mark.parametrize(
    ("device", "available", "expected"),
    [
        ("auto", [CPU], [CPU]),
        ("auto", [CUDA, CPU], [(CUDA, {"device_id": 0}), CPU]),
        ("cpu", [CUDA, CPU], [CPU]),
        ("cuda", [CUDA, CPU], [(CUDA, {"device_id": 0}), CPU]),
        ("cuda:1", ["AzureExecutionProvider", CUDA, CPU], [(CUDA, {"device_id": 1}), CPU]),
    ],
)
def test_providers_follow_the_device(device: str, available: list[str], expected: list[Any]) -> None:
    assert select_providers(spec("m.onnx", device=device), available) == expected


def test_explicit_providers_win_and_gpu_ones_get_the_device_id() -> None:
    chosen = select_providers(spec("m.onnx", device="cuda:2", providers=(CUDA, CPU)), [CUDA, CPU])
    assert chosen == [(CUDA, {"device_id": 2}), CPU]
    assert select_providers(spec("m.onnx", device="auto", providers=(CPU,)), [CUDA, CPU]) == [CPU]


def test_cuda_without_the_cuda_provider_is_unavailable() -> None:
    with pytest.raises(DeviceUnavailableError, match=r"device 'cuda:1' needs onnxruntime's CUDAExecutionProvider"):
        select_providers(spec("m.onnx", device="cuda:1"), ["AzureExecutionProvider", CPU])
    with pytest.raises(DeviceUnavailableError, match="does not run on device 'mps'"):
        select_providers(spec("m.onnx", device="mps"), [CPU])


def test_unknown_provider_lists_the_available_ones() -> None:
    with pytest.raises(ModelLoadError) as info:
        select_providers(spec("m.onnx", providers=("CPUExecutionProvidr",)), ["AzureExecutionProvider", CPU])
    message = str(info.value)
    assert "'CPUExecutionProvidr' (model.providers) is not available" in message
    assert "did you mean 'CPUExecutionProvider'?" in message
    assert "available: AzureExecutionProvider, CPUExecutionProvider" in message


# -- load errors ------------------------------------------------------------------------------------


def test_missing_file_folder_and_hub_id_are_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"ONNX model file not found: .*nope\.onnx \(model\.source\)"):
        load(tmp_path / "nope.onnx")
    (tmp_path / "a.onnx").write_bytes(b"")
    with pytest.raises(ModelLoadError, match=r"is a folder; .* It holds a\.onnx: name one of them"):
        load(tmp_path)
    with pytest.raises(ModelLoadError, match="is not a local file"):
        load("org/model")


def test_not_an_onnx_file(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_text("this is not a model\n", encoding="utf-8")
    with pytest.raises(ModelLoadError) as info:
        load(bad, task="tabular-regression")
    assert str(bad) in str(info.value) and "is not an ONNX model" in str(info.value)
    assert len(str(info.value)) < 500


def test_truncated_onnx_file(tmp_path: Path) -> None:
    good = linear_graph(tmp_path / "good.onnx", np.ones(3), 0.0)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(ModelLoadError, match=r"truncated\.onnx.*(not an ONNX model|cannot load)"):
        load(truncated, task="tabular-regression")


def test_unsupported_task(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=r"does not support task 'text-generation'.*supported tasks: text-class"):
        load(tmp_path / "m.onnx", task="text-generation")


# -- tabular graphs written with onnx.helper ---------------------------------------------------------


def test_regression_values_and_batching(tmp_path: Path) -> None:
    weights = np.array([1.0, -2.0, 0.5])
    model = load(linear_graph(tmp_path / "lin.onnx", weights, 0.25), task="tabular-regression")
    x = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32)
    for batch_size in (1, 3, 32):
        values = model.predict(list(x), batch_size=batch_size).values
        assert values is not None and values.shape == (10,)
        np.testing.assert_allclose(values, x @ weights + 0.25, rtol=1e-5, atol=1e-5)
    assert model.label_names == () and model.device == "cpu"
    assert model.artifact_files() == [(tmp_path / "lin.onnx").resolve()]
    empty = model.predict([], batch_size=4).values
    assert empty is not None and empty.shape == (0,)


def test_one_logit_is_a_binary_classifier(tmp_path: Path) -> None:
    model = load(linear_graph(tmp_path / "lin.onnx", np.array([1.0, 0.0, 0.0]), 0.0), task="tabular-classification")
    assert model.label_names == ("0", "1")
    out = model.predict([np.array([2.0, 0, 0]), np.array([-1.0, 0, 0])], batch_size=2)
    assert out.labels is not None and out.scores is not None
    assert out.labels.tolist() == [1, 0]
    np.testing.assert_allclose(out.scores[:, 1], 1 / (1 + np.exp([-2.0, 1.0])), rtol=1e-5)


def test_feature_count_mismatch_names_expected_and_given(tmp_path: Path) -> None:
    model = load(linear_graph(tmp_path / "lin.onnx", np.ones(3), 0.0), task="tabular-regression")
    with pytest.raises(BackendError) as info:
        model.predict([np.zeros(5, dtype=np.float32)], batch_size=1)
    message = str(info.value)
    assert "graph input 'x' of lin.onnx expects 3 features (shape ['batch', 3]); the data gives 5" in message


def test_runtime_failure_names_expected_and_given_inputs(tmp_path: Path) -> None:
    model = load(linear_graph(tmp_path / "dyn.onnx", np.ones(3), 0.0, features="f"), task="tabular-regression")
    with pytest.raises(BackendError) as info:
        model.predict([np.zeros(5, dtype=np.float32)], batch_size=1)
    message = str(info.value)
    assert message.startswith("ONNX Runtime cannot run dyn.onnx: ")
    assert "The graph expects x ['batch', 'f'] tensor(float); it was given x [1, 5] float32" in message
    assert "Traceback" not in message and len(message) < 700


def test_tabular_graph_with_two_inputs_is_refused(tmp_path: Path) -> None:
    path = save_graph(
        tmp_path / "two.onnx",
        [helper.make_node("Add", ["a", "b"], ["y"])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 2]) for n in ("a", "b")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        [],
    )
    with pytest.raises(BackendError, match=r"two\.onnx has 2 inputs \(a \['batch', 2\] tensor\(float\), b .*one input"):
        load(path, task="tabular-classification")


def test_double_inputs_are_cast_and_classes_come_from_a_probe(tmp_path: Path) -> None:
    """A float64 graph with a dynamic class count: inputs are cast, the width is found by one run."""
    path = save_graph(
        tmp_path / "probs.onnx",
        [helper.make_node("Softmax", ["x"], ["p"], axis=1)],
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["batch", 3])],
        [helper.make_tensor_value_info("p", TensorProto.DOUBLE, ["batch", "classes"])],
        [],
    )
    model = load(path, task="tabular-classification", labels=("a", "b", "c"))
    out = model.predict([np.array([0.0, 3.0, 1.0], dtype=np.float32)], batch_size=1)
    assert out.labels is not None and out.scores is not None
    assert out.labels.tolist() == [1]
    expected = np.exp([0.0, 3.0, 1.0]) / np.exp([0.0, 3.0, 1.0]).sum()
    np.testing.assert_allclose(out.scores[0], expected, rtol=1e-5)  # probabilities: not softmaxed twice
    with pytest.raises(BackendError, match=r"model.labels names 2 classes \(a, b\), but graph output 'p'.*gives 3"):
        load(path, task="tabular-classification", labels=("a", "b"))


def test_static_batch_graph_is_padded(tmp_path: Path) -> None:
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 1], [1.0, 1.0])
    path = save_graph(
        tmp_path / "fixed.onnx",
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 1])],
        [w],
    )
    model = load(path, task="tabular-regression")
    x = np.arange(14, dtype=np.float32).reshape(7, 2)
    values = model.predict(list(x), batch_size=3).values
    assert values is not None
    np.testing.assert_allclose(values, x.sum(axis=1))


def test_session_options_and_providers_are_applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = linear_graph(tmp_path / "lin.onnx", np.ones(3), 0.0)
    model = load(path, task="tabular-regression", threads=1, graph_optimization="disabled", providers=(CPU,))
    options = model.session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    assert model.session.get_providers() == [CPU] and model.device == "cpu"
    for level, member in (
        ("basic", "ORT_ENABLE_BASIC"),
        ("extended", "ORT_ENABLE_EXTENDED"),
        ("all", "ORT_ENABLE_ALL"),
    ):
        options = load(path, task="tabular-regression", graph_optimization=level).session.get_session_options()
        assert options.graph_optimization_level == getattr(ort.GraphOptimizationLevel, member)
    import modelcheck_onnx._session

    monkeypatch.setattr(modelcheck_onnx._session, "idle_cores", lambda: 1)  # one core free when the session is made
    default = load(path, task="tabular-regression", threads=None, device="auto")
    assert default.session.get_session_options().intra_op_num_threads == 1  # not ORT's one thread per core
    assert default.device == ("cuda:0" if HAS_CUDA else "cpu")


@pytest.mark.skipif(HAS_CUDA, reason="this onnxruntime has CUDA")
def test_explicit_cuda_without_cuda_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(DeviceUnavailableError, match="install onnxruntime-gpu, or use device: auto or cpu"):
        load(linear_graph(tmp_path / "lin.onnx", np.ones(3), 0.0), task="tabular-regression", device="cuda")


def test_silent_fallback_from_cuda_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ONNX Runtime falls back to the CPU when CUDA cannot start; an explicit cuda device must not pass for it."""
    import modelcheck_onnx

    path = linear_graph(tmp_path / "lin.onnx", np.ones(3), 0.0)
    forced = [(CUDA, {"device_id": 0}), CPU]
    monkeypatch.setattr(modelcheck_onnx, "select_providers", lambda model, available: forced)
    if not HAS_CUDA:
        with pytest.raises(
            DeviceUnavailableError, match=r"device 'cuda' was asked for, but .* on CPUExecutionProvider"
        ):
            load(path, task="tabular-regression", device="cuda")
    assert load(path, task="tabular-regression", device="auto").device == ("cuda:0" if HAS_CUDA else "cpu")


def test_closed_model_refuses_to_predict(tmp_path: Path) -> None:
    model = load(linear_graph(tmp_path / "lin.onnx", np.ones(3), 0.0), task="tabular-regression")
    model.close()
    assert model.session is None
    with pytest.raises(BackendError, match="was closed"):
        model.predict([np.zeros(3)], batch_size=1)


# -- the iris MLP ---------------------------------------------------------------------------------


@pytest.mark.e2e
def test_iris_mlp_matches_torch(iris: dict[str, Any], iris_onnx: Path) -> None:
    model = load(iris_onnx, task="tabular-classification")
    assert isinstance(model, LoadedModel)
    assert model.label_names == ("0", "1", "2")
    out = model.predict(list(iris["x"]), batch_size=16)
    with torch.inference_mode():
        expected = iris["network"](torch.from_numpy(iris["x"])).softmax(dim=1).numpy()
    assert out.labels is not None and out.scores is not None
    assert out.labels.tolist() == expected.argmax(axis=1).tolist()
    np.testing.assert_allclose(out.scores, expected, atol=1e-5)
    assert (out.labels == iris["y"]).mean() >= 0.95


@pytest.mark.e2e
def test_softmax_output_is_not_softmaxed_again(iris: dict[str, Any], graphs: Path) -> None:
    network = torch.nn.Sequential(iris["network"], torch.nn.Softmax(dim=1))
    path = export(network, (torch.zeros(2, 4),), graphs / "iris-probs.onnx", ["x"], ["probs"], {"x": {0: "n"}})
    out = load(path, task="tabular-classification", labels=IRIS_LABELS).predict(list(iris["x"][:20]), batch_size=8)
    with torch.inference_mode():
        expected = network(torch.from_numpy(iris["x"][:20])).numpy()
    assert out.scores is not None
    np.testing.assert_allclose(out.scores, expected, atol=1e-6)


@pytest.mark.e2e
def test_iris_graph_fed_wine_data_says_what_it_expects(iris_onnx: Path) -> None:
    from sklearn.datasets import load_wine

    wine = load_wine().data.astype(np.float32)
    model = load(iris_onnx, task="tabular-classification", labels=IRIS_LABELS)
    with pytest.raises(BackendError, match=r"expects 4 features \(shape \['n', 4\]\); the data gives 13"):
        model.predict(list(wine[:3]), batch_size=2)


# -- the sentiment BERT ----------------------------------------------------------------------------


@pytest.mark.e2e
def test_onnx_labels_equal_torch_labels(
    bert: OnnxModel, torch_probabilities: np.ndarray, rows: list[dict[str, str]]
) -> None:
    out = bert.predict([r["text"] for r in rows], batch_size=32)
    assert out.labels is not None and out.scores is not None
    assert out.labels.tolist() == torch_probabilities.argmax(axis=1).tolist()
    assert np.abs(out.scores - torch_probabilities).max() < 1e-5
    assert bert.label_names == ("negative", "positive")  # config.json of the tokenizer folder
    accuracy = np.mean([bert.label_names[p] == r["label"] for p, r in zip(out.labels, rows, strict=True)])
    assert accuracy >= 0.97


@pytest.mark.e2e
def test_text_outputs_come_back_in_input_order(bert: OnnxModel, rows: list[dict[str, str]]) -> None:
    texts = [r["text"] for r in rows[:40]]
    one_by_one = bert.predict(texts, batch_size=1).scores
    assert one_by_one is not None
    for batch_size in (7, 64):
        scores = bert.predict(texts, batch_size=batch_size).scores
        assert scores is not None
        np.testing.assert_allclose(scores, one_by_one, atol=1e-5)
    reversed_scores = bert.predict(texts[::-1], batch_size=8).scores
    assert reversed_scores is not None
    np.testing.assert_allclose(reversed_scores[::-1], one_by_one, atol=1e-5)
    long = bert.predict([" ".join(["wonderful"] * 500)], batch_size=1)  # truncated to the 64 positions
    assert long.labels is not None and bert.label_names[int(long.labels[0])] == "positive"
    with pytest.raises(DataError, match=r"input at data row 2 \(counting from 1.*?\) is missing \(None/NaN\)"):
        bert.predict(["good", None], batch_size=2)


@pytest.mark.e2e
def test_labels_from_the_gate_and_their_count(bert_onnx: Path, sentiment_model: Path) -> None:
    assert load(bert_onnx, tokenizer=str(sentiment_model), labels=("neg", "pos")).label_names == ("neg", "pos")
    with pytest.raises(BackendError, match=r"model.labels names 3 classes \(a, b, c\).*gives 2 scores per row"):
        load(bert_onnx, tokenizer=str(sentiment_model), labels=("a", "b", "c"))


@pytest.mark.e2e
def test_artifacts_are_the_graph_and_the_tokenizer_files(bert: OnnxModel, bert_onnx: Path) -> None:
    names = [p.name for p in bert.artifact_files()]
    assert names[0] == "model.onnx" and bert.artifact_files()[0] == bert_onnx.resolve()
    assert {"tokenizer.json", "tokenizer_config.json", "config.json"} <= set(names)
    assert "model.safetensors" not in names  # the tokenizer folder's weights are not part of this model


@pytest.mark.e2e
def test_external_data(bert_onnx: Path, sentiment_model: Path, tmp_path: Path, rows: list[dict[str, str]]) -> None:
    texts = [r["text"] for r in rows[:50]]
    expected = load(bert_onnx, tokenizer=str(sentiment_model)).predict(texts, batch_size=16).scores
    for location in ("model.onnx.data", "weights.bin"):
        folder = tmp_path / location
        folder.mkdir()
        proto = onnx.load(str(bert_onnx))  # saving with external data rewrites the proto in place
        onnx.save_model(proto, str(folder / "model.onnx"), save_as_external_data=True, location=location)
        assert (folder / "model.onnx").stat().st_size < (folder / location).stat().st_size
        model = load(folder / "model.onnx", tokenizer=str(sentiment_model))
        assert model.artifact_files()[:2] == [folder / "model.onnx", folder / location]
        scores = model.predict(texts, batch_size=16).scores
        assert scores is not None and expected is not None
        np.testing.assert_allclose(scores, expected, atol=1e-6)
    (tmp_path / "weights.bin" / "weights.bin").unlink()
    with pytest.raises(ModelLoadError, match=r"external data files, and .*weights\.bin is missing"):
        load(tmp_path / "weights.bin" / "model.onnx", tokenizer=str(sentiment_model))


@pytest.mark.e2e
def test_text_model_needs_a_tokenizer(bert_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"text-classification model: set model\.tokenizer"):
        load(bert_onnx)
    with pytest.raises(ModelLoadError, match=r"tokenizer folder .*nope \(model.tokenizer\) does not exist"):
        load(bert_onnx, tokenizer=str(tmp_path / "nope"))


@pytest.mark.e2e
def test_text_graph_with_an_input_the_tokenizer_lacks(bert_onnx: Path, sentiment_model: Path, tmp_path: Path) -> None:
    proto = onnx.load(str(bert_onnx))
    proto.graph.input.append(helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "seq"]))
    path = tmp_path / "extra.onnx"
    onnx.save_model(proto, str(path))
    with pytest.raises(BackendError) as info:
        load(path, tokenizer=str(sentiment_model))
    message = str(info.value)
    assert "graph extra.onnx expects inputs input_ids, attention_mask, position_ids" in message
    assert "gives input_ids, attention_mask; nothing feeds position_ids" in message


@pytest.mark.e2e
def test_feature_extraction_mean_pools_like_sentence_transformers(
    sentiment_model: Path, graphs: Path, rows: list[dict[str, str]]
) -> None:
    from transformers import AutoModel, AutoTokenizer

    path = export_bert(sentiment_model, graphs / "bert-hidden" / "model.onnx", hidden=True)
    with pytest.raises(
        BackendError, match=r"output 'last_hidden_state' of model.onnx has shape \['batch', 'seq', 32\]"
    ):
        load(path, tokenizer=str(sentiment_model))  # token vectors are no classifier output
    model = load(path, task="feature-extraction", tokenizer=str(sentiment_model))
    assert model.label_names == ()
    texts = [r["text"] for r in rows[:30]]
    out = model.predict(texts, batch_size=8)
    encoder, tokenizer = (
        AutoModel.from_pretrained(sentiment_model).eval(),
        AutoTokenizer.from_pretrained(sentiment_model),
    )
    with torch.inference_mode():
        pooled = torch.stack([encoder(**tokenizer(t, return_tensors="pt")).last_hidden_state[0].mean(0) for t in texts])
    expected = torch.nn.functional.normalize(pooled, dim=1).numpy()
    assert out.embeddings is not None and out.embeddings.shape == (30, 32)
    np.testing.assert_allclose(out.embeddings, expected, atol=1e-5)

    pairs = model.predict(list(zip(texts[:10], texts[10:20], strict=True)), batch_size=4)
    assert pairs.embeddings is not None and pairs.pair_embeddings is not None
    np.testing.assert_allclose(pairs.embeddings, expected[:10], atol=1e-5)
    np.testing.assert_allclose(pairs.pair_embeddings, expected[10:20], atol=1e-5)


# -- gates end to end through pytest --modelcheck -------------------------------------------------

TEXT_GATE = """\
version: 1
model:
  id: {id}
  backend: onnx
  source: {source}
  tokenizer: ../models/sentiment
  threads: 1
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
"""

IRIS_GATE = """\
version: 1
model:
  backend: onnx
  source: ../models/iris.onnx
  task: tabular-classification
  labels: [setosa, versicolor, virginica]
  device: {device}
  threads: 1
data:
  source: ../data/iris.csv
  input: [sepal_length, sepal_width, petal_length, petal_width]
  label: species
checks:
  - name: accuracy
    metric: accuracy
    min: 0.9
"""


@pytest.mark.e2e
def test_gates_pass_end_to_end(
    pytester: pytest.Pytester,
    bert_onnx: Path,
    sentiment_model: Path,
    untrained_model: Path,
    iris: dict[str, Any],
    iris_onnx: Path,
) -> None:
    gates, models, data = (pytester.path / name for name in ("gates", "models", "data"))
    for folder in (gates, models, data):
        folder.mkdir()
    shutil.copy(bert_onnx, gates / "model.onnx")
    export_bert(untrained_model, models / "untrained.onnx")
    shutil.copytree(sentiment_model, models / "sentiment")
    shutil.copy(iris_onnx, models / "iris.onnx")
    shutil.copy(EXAMPLE_DATA, data / "test.csv")
    with (data / "iris.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*IRIS_COLUMNS, "species"])
        for features, label in zip(iris["x"].tolist(), iris["y"].tolist(), strict=True):
            writer.writerow([*features, IRIS_LABELS[label]])
    (gates / "sentiment.yaml").write_text(TEXT_GATE.format(id="sentiment", source="model.onnx"), encoding="utf-8")
    (gates / "untrained.yaml").write_text(TEXT_GATE.format(id="untrained", source="../models/untrained.onnx"))
    (gates / "iris.yaml").write_text(IRIS_GATE.format(device="cpu"), encoding="utf-8")
    (gates / "iris_gpu.yaml").write_text(IRIS_GATE.format(device="cuda"), encoding="utf-8")

    texts = pytester.runpytest(
        "--modelcheck", "-v", "gates/sentiment.yaml", "gates/untrained.yaml", "--modelcheck-report", "out.json"
    )
    texts.stdout.fnmatch_lines_random(
        [
            "*gates/sentiment.yaml::accuracy PASSED*",
            "*gates/sentiment.yaml::macro_f1 PASSED*",
            "*gates/untrained.yaml::accuracy FAILED*",
            "accuracy 0.5 < min 0.9 (n=400)",
        ]
    )
    texts.stdout.no_fnmatch_line("*Traceback*")
    texts.assert_outcomes(passed=2, failed=2)
    report = read_report(pytester.path / "out.json")
    by_file = {g["file"]: g for g in report["gates"]}
    sentiment = by_file["gates/sentiment.yaml"]
    assert sentiment["model"]["device"] == "cpu" and sentiment["model"]["backend"] == "onnx"
    files = {f["path"] for f in sentiment["model"]["files"]}
    assert {"gates/model.onnx", "models/sentiment/tokenizer.json"} <= files
    assert sentiment["checks"][0]["value"] >= 0.97
    assert by_file["gates/untrained.yaml"]["checks"][0]["value"] < 0.9

    tabular = pytester.runpytest("--modelcheck", "-v", "-rs", "gates/iris.yaml", "gates/iris_gpu.yaml")
    tabular.stdout.fnmatch_lines_random(["*gates/iris.yaml::accuracy PASSED*", "gates/iris.yaml::accuracy *0.98*"])
    if HAS_CUDA:
        tabular.assert_outcomes(passed=2)
    else:
        tabular.assert_outcomes(passed=1, skipped=1)
        tabular.stdout.fnmatch_lines(["*device 'cuda' needs onnxruntime's CUDAExecutionProvider*"])
