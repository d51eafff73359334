"""Output parity (``modelcheck.measure.comparison``) and ONNX export of loaded models (``modelcheck.models.export``).

The unit tests compare hand-made Outputs; the end-to-end tests export the tiny sentiment BERT (session
fixture) and a tabular MLP to ONNX, load them back through the onnx backend and compare.
"""

from __future__ import annotations

import csv
import json
import math
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelcheck.errors import BackendError, CheckError
from modelcheck.gatefile import ModelSpec
from modelcheck.measure.comparison import ParityResult, compare_outputs
from modelcheck.models.backends import Outputs
from modelcheck.models.export import cache_key, cached_export, export_onnx

EXAMPLE_DATA = Path(__file__).resolve().parents[1] / "examples" / "sentiment" / "test.csv"


# -- compare_outputs ------------------------------------------------------------------------------


def classification(scores: np.ndarray) -> Outputs:
    return Outputs(labels=scores.argmax(axis=1).astype(np.int64), scores=scores)


def test_scores_agreement_and_worst_rows_in_order() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(10, 3))
    reference = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    candidate = reference.copy()
    candidate[3] = np.roll(reference[3], 1)  # a changed label
    candidate[7] += [0.01, -0.01, 0.0]  # same label, a small difference
    candidate[2] += [0.001, -0.001, 0.0]
    result = compare_outputs(classification(reference), classification(candidate))
    assert result.compared == "scores" and result.n == 10
    assert result.agreement == pytest.approx(0.9)
    assert result.min_cosine is None and result.mean_cosine is None
    assert result.max_abs_diff == pytest.approx(np.abs(candidate - reference).max())
    assert result.max_rel_diff == pytest.approx((np.abs(candidate - reference) / np.abs(reference)).max())
    worst = result.worst
    assert [w["row"] for w in worst[:3]] == [3, 7, 2]
    assert len(worst) == 5
    assert worst[0]["labels"] == [int(reference[3].argmax()), int(candidate[3].argmax())]
    assert worst[1] == {"row": 7, "abs_diff": pytest.approx(0.01), "labels": [int(reference[7].argmax())] * 2}
    assert worst[3]["abs_diff"] == 0.0
    assert json.loads(json.dumps(result.to_dict()))["worst"][0]["row"] == 3


def test_labels_only_and_worst_limit() -> None:
    reference = Outputs(labels=np.array([0, 1, 1, 0, 2]))
    candidate = Outputs(labels=np.array([0, 0, 1, 1, 2]))
    result = compare_outputs(reference, candidate, worst=1)
    assert result.compared == "labels" and result.agreement == pytest.approx(0.6)
    assert result.worst == [{"row": 1, "labels": [1, 0]}]


def test_embeddings_cosine_and_pairs() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 4))
    b = a.copy()
    b[4] = -a[4]  # opposite direction: cosine -1
    b[1] = a[1] * 2  # same direction, cosine 1 but a large abs diff
    pairs = rng.normal(size=(6, 4))
    pairs_b = pairs.copy()
    pairs_b[2, 0] += 1.0  # the second text of pair 2 drifts
    result = compare_outputs(
        Outputs(embeddings=a, pair_embeddings=pairs), Outputs(embeddings=b, pair_embeddings=pairs_b)
    )
    assert result.compared == "embeddings" and result.agreement is None
    assert result.min_cosine == pytest.approx(-1.0)
    cos2 = pairs[2] @ pairs_b[2] / np.linalg.norm(pairs[2]) / np.linalg.norm(pairs_b[2])
    assert result.mean_cosine == pytest.approx((4 - 1 + cos2) / 6)
    assert [w["row"] for w in result.worst[:2]] == [4, 2]
    assert result.worst[0]["cosine"] == pytest.approx(-1.0)
    assert result.worst[1]["cosine"] == pytest.approx(cos2)
    assert result.worst[2]["row"] == 1  # cosine 1: the largest difference comes next
    assert result.max_abs_diff == pytest.approx(max(np.abs(a[4]).max() * 2, np.abs(a[1]).max(), 1.0))


def test_values_relative_difference_has_a_floor() -> None:
    reference = Outputs(values=np.array([1.0, 0.0, -200.0, 5.0]))
    candidate = Outputs(values=np.array([1.5, 1e-9, -201.0, 5.0]))
    result = compare_outputs(reference, candidate)
    assert result.compared == "values" and result.agreement is None and result.min_cosine is None
    assert result.max_abs_diff == pytest.approx(1.0)
    assert result.max_rel_diff == pytest.approx(0.5)  # 1e-9 / max(0, 1e-6) = 1e-3, not infinite
    assert [w["row"] for w in result.worst] == [2, 0, 1, 3]


def test_nan_on_one_side_is_an_infinite_difference() -> None:
    result = compare_outputs(
        Outputs(values=np.array([1.0, np.nan, np.nan])), Outputs(values=np.array([1.0, np.nan, 2.0]))
    )
    assert result.max_abs_diff == math.inf
    assert result.worst[0]["row"] == 2


def test_texts_agreement() -> None:
    result = compare_outputs(Outputs(texts=["a", "b", "c", "d"]), Outputs(texts=["a", "x", "c", "y"]))
    assert result.compared == "texts" and result.agreement == 0.5 and result.max_abs_diff is None
    assert result.worst == [{"row": 1, "texts": ["b", "x"], "similarity": 0.0},
                            {"row": 3, "texts": ["d", "y"], "similarity": 0.0}]  # fmt: skip
    assert (result.similarity, result.min_similarity) == (0.5, 0.0)


def test_text_similarity_is_difflibs_ratio_and_orders_the_worst_rows() -> None:
    import difflib

    from modelcheck.measure.comparison import text_similarity

    reference = ["the cat sat on the mat", "a b c", "", "same", "x" * 300 + "y"]
    candidate = ["the cat sat on a mat", "c b a", "", "same", "x" * 300 + "z"]
    result = compare_outputs(Outputs(texts=reference), Outputs(texts=candidate))
    expected = [
        difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() for a, b in zip(reference, candidate, strict=True)
    ]
    assert result.similarity == pytest.approx(np.mean(expected)) and result.min_similarity == min(expected)
    assert [row["row"] for row in result.worst] == [1, 0, 4]  # least alike first; equal rows are not listed
    assert text_similarity("", "") == 1.0 and text_similarity("x" * 300 + "y", "x" * 300 + "z") > 0.99  # no autojunk


def test_empty_outputs() -> None:
    result = compare_outputs(Outputs(values=np.zeros(0)), Outputs(values=np.zeros(0)))
    assert result == ParityResult(0, None, None, None, None, None, "values", [])


def test_what_cannot_be_compared() -> None:
    with pytest.raises(CheckError, match=r"different lengths: the reference has 3 rows, the candidate 2"):
        compare_outputs(Outputs(values=np.zeros(3)), Outputs(values=np.zeros(2)))
    with pytest.raises(
        CheckError, match=r"nothing in common to compare: the reference produced values, the candidate texts"
    ):
        compare_outputs(Outputs(values=np.zeros(2)), Outputs(texts=["a", "b"]))
    with pytest.raises(
        CheckError, match=r"scores of different shapes: the reference's are \(2, 3\), the candidate's \(2, 2\)"
    ):
        compare_outputs(classification(np.eye(2, 3)), classification(np.eye(2)))
    with pytest.raises(CheckError, match=r"pair_embeddings of different shapes"):
        compare_outputs(
            Outputs(embeddings=np.ones((2, 3)), pair_embeddings=np.ones((2, 3))),
            Outputs(embeddings=np.ones((2, 3)), pair_embeddings=np.ones((2, 4))),
        )


# -- export helpers without a framework -----------------------------------------------------------


class FakeModel:
    """A LoadedModel whose export writes a small file (or fails), counting the calls."""

    device = "cpu"
    label_names: tuple[str, ...] = ()

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def export_onnx(self, path: Path) -> Path:
        self.calls += 1
        path.write_bytes(b"onnx")
        (path.parent / "tokenizer.json").write_text("{}")
        if self.fail:
            raise BackendError("export failed half way")
        return path


def test_cached_export_exports_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = FakeModel()
    hashes = ["b" * 64, "a" * 64]
    first = cached_export(model, hashes, tmp_path)  # type: ignore[arg-type]
    assert first == tmp_path / "onnx" / cache_key(hashes) / "model.onnx"
    assert cache_key(hashes) == cache_key(list(reversed(hashes)))
    assert (first.parent / "tokenizer.json").is_file()
    assert cached_export(model, list(reversed(hashes)), tmp_path) == first  # type: ignore[arg-type]
    assert model.calls == 1
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == [cache_key(hashes)]  # no temp folders

    monkeypatch.setenv("MODELCHECK_CACHE", str(tmp_path / "env"))
    assert cached_export(model, hashes).is_relative_to(tmp_path / "env" / "onnx")  # type: ignore[arg-type]
    assert model.calls == 2


def test_failed_export_leaves_nothing(tmp_path: Path) -> None:
    model = FakeModel(fail=True)
    with pytest.raises(BackendError, match="half way"):
        cached_export(model, ["c" * 64], tmp_path)  # type: ignore[arg-type]
    assert list((tmp_path / "onnx").iterdir()) == []


def test_a_backend_without_export() -> None:
    model = types.SimpleNamespace(device="cpu", label_names=(), source="m.pkl")
    with pytest.raises(BackendError, match=r"SimpleNamespace \('m.pkl'\) cannot be exported to ONNX"):
        export_onnx(model, Path("unused"))  # type: ignore[arg-type]


# -- end to end -----------------------------------------------------------------------------------


def texts() -> list[str]:
    with EXAMPLE_DATA.open(encoding="utf-8", newline="") as f:
        return [row["text"] for row in csv.DictReader(f)]


def load(backend: str, source: str | Path, task: str, **kwargs: Any) -> Any:
    from modelcheck.models.backends import get_backend

    spec = ModelSpec(id="m", source=str(source), backend=backend, task=task, device="cpu", threads=1, **kwargs)
    return get_backend(backend).load(spec)


@pytest.mark.e2e
@pytest.mark.parametrize("task", ["text-classification", "feature-extraction"])
def test_exported_text_model_agrees(sentiment_model: Path, tmp_path: Path, task: str) -> None:
    pytest.importorskip("onnxruntime")
    reference = load("transformers", sentiment_model, task)
    path = export_onnx(reference, tmp_path / "export")
    assert path == tmp_path / "export" / "model.onnx"
    assert {"model.onnx", "config.json", "tokenizer.json"} <= {p.name for p in path.parent.iterdir()}
    assert not [p for p in path.parent.iterdir() if p.suffix in (".data", ".onnx_data")]  # one self-contained file
    candidate = load("onnx", path, task, tokenizer=str(path.parent))
    assert candidate.label_names == reference.label_names
    inputs = texts()
    result = compare_outputs(reference.predict(inputs, batch_size=32), candidate.predict(inputs, batch_size=7))
    assert result.n == 400
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-4
    if task == "text-classification":
        assert result.compared == "scores" and result.agreement == 1.0
    else:
        assert result.compared == "embeddings" and result.min_cosine is not None and result.min_cosine > 0.9999


@pytest.mark.e2e
def test_perturbed_export_is_caught(sentiment_model: Path, tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    reference = load("transformers", sentiment_model, "text-classification")
    path = export_onnx(reference, tmp_path / "export")
    proto = onnx.load(str(path))
    (classifier,) = [t for t in proto.graph.initializer if t.name.endswith("classifier.weight")]
    classifier.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(classifier), classifier.name))
    onnx.save_model(proto, str(path))
    candidate = load("onnx", path, "text-classification", tokenizer=str(path.parent))
    result = compare_outputs(reference.predict(texts(), batch_size=32), candidate.predict(texts(), batch_size=32))
    assert result.agreement is not None and result.agreement < 0.5
    assert result.max_abs_diff is not None and result.max_abs_diff > 0.5
    assert len(result.worst) == 5
    for row in result.worst:
        assert row["labels"][0] != row["labels"][1]
    assert [row["abs_diff"] for row in result.worst] == sorted((row["abs_diff"] for row in result.worst), reverse=True)


@pytest.mark.e2e
def test_cached_export_of_a_real_model(sentiment_model: Path, tmp_path: Path) -> None:
    model = load("transformers", sentiment_model, "text-classification")
    first = cached_export(model, ["d" * 64], tmp_path)
    stamp = first.stat().st_mtime_ns
    assert cached_export(model, ["d" * 64], tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "onnx").iterdir()] == [first.parent.name]


@pytest.mark.e2e
def test_task_without_export_support() -> None:
    from modelcheck_transformers._vision import ImageClassificationModel

    model = ImageClassificationModel(types.SimpleNamespace(dtype=None), None, device="cpu", source="vit", revision=None)
    with pytest.raises(BackendError, match=r"ONNX export of task 'image-classification' is not supported"):
        export_onnx(model, Path("unused"))


@pytest.mark.e2e
def test_exported_tabular_model_agrees(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    import tabular_models as tm
    from safetensors.torch import save_file

    table = tm.load_table("wine")
    network = tm.train(tm.build_wine(), table.x(table.train), table.y(table.train), classification=True)
    save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(tmp_path / "wine.safetensors"))
    reference = load(
        "torch", "tabular_models:build_wine", "tabular-classification", weights=str(tmp_path / "wine.safetensors")
    )
    path = export_onnx(reference, tmp_path / "export")
    candidate = load("onnx", path, "tabular-classification")
    rows = list(table.x(table.test))
    result = compare_outputs(reference.predict(rows, batch_size=16), candidate.predict(rows, batch_size=5))
    assert result.agreement == 1.0 and result.max_abs_diff is not None and result.max_abs_diff < 1e-5


def torch_model(forward: Any) -> Any:
    torch = pytest.importorskip("torch")
    from modelcheck_torch import TorchModel

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(3, 3)

        def forward(self, x: Any) -> Any:
            return forward(self, x)

    return TorchModel(
        Net().eval(), task="tabular-classification", device="cpu", dtype=torch.float32, files=[], source="net"
    )


@pytest.mark.e2e
def test_torch_models_that_cannot_be_exported(tmp_path: Path) -> None:
    import torch

    svd = torch_model(lambda self, x: self.layer(x) @ torch.linalg.svd(self.layer.weight)[0])
    with pytest.raises(BackendError) as info:
        export_onnx(svd, tmp_path / "svd")
    message = str(info.value)
    assert message.startswith("torch cannot export the tabular-classification model net to ONNX (")
    assert "linalg_svd" in message and "\n" not in message and len(message) < 400  # the operator ONNX lacks
    assert not (tmp_path / "svd" / "model.onnx").exists()

    branching = torch_model(lambda self, x: self.layer(x) if x.sum() > 0 else -self.layer(x))
    with pytest.raises(BackendError, match=r"cannot export .* faithfully \(Could not guard on data-dependent"):
        export_onnx(branching, tmp_path / "branch")
    assert not (tmp_path / "branch" / "model.onnx").exists()


@pytest.mark.e2e
def test_numpy_in_forward_is_exported_faithfully(tmp_path: Path) -> None:
    """torch.export (the exporter's strict capture) follows numpy calls as torch operations: no frozen graph."""
    import torch

    through_numpy = torch_model(lambda self, x: self.layer(torch.from_numpy(np.tanh(x.numpy()))))
    path = export_onnx(through_numpy, tmp_path / "numpy")
    candidate = load("onnx", path, "tabular-classification")
    rows = list(np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32))
    result = compare_outputs(through_numpy.predict(rows, batch_size=8), candidate.predict(rows, batch_size=5))
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-5 and result.agreement == 1.0
