"""The language tasks on the onnx backend: real tiny BERTs (tagger, reader, topics) exported by transformers.

Each model is trained in the session (``tests/tiny_models.py``), exported with ``export_onnx`` (what
``against: {export: true}`` does) and loaded with ``backend: onnx``; its outputs equal the transformers
backend's on the same rows (the same decoding, :mod:`modelcheck.models.decoding`), and a gate's
``kind: parity`` against the export agrees on every row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelcheck.errors import BackendError, DataError
from modelcheck.gatefile import ModelSpec
from modelcheck.models.backends import get_backend

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("frameworks_imported_once", "one_torch_thread")]
pytest.importorskip("onnxruntime")
pytest.importorskip("transformers")
import tiny_models  # noqa: E402

TASKS = {"token-classification": "tagger", "question-answering": "reader", "multi-label-classification": "topics"}


def inputs_of(task: str, n: int) -> list[Any]:
    if task == "token-classification":
        return [words for words, _ in tiny_models.tagged_sentences(n, seed=9)]
    if task == "question-answering":
        return [(r["question"], r["context"]) for r in tiny_models.qa_examples(n, seed=9)]
    return [text for text, _ in tiny_models.topic_texts(n, seed=9)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Any]]:
    """Per task: (the transformers model, the onnx model of its export)."""
    out = {}
    for task, name in TASKS.items():
        reference = get_backend("transformers").load(
            ModelSpec(id=name, source=str(tiny_models.shared(name)), task=task, device="cpu", threads=1)
        )
        folder = tmp_path_factory.mktemp(f"onnx-{name}")
        path = reference.export_onnx(folder / "model.onnx")
        onnx = get_backend("onnx").load(
            ModelSpec(
                id=name, source=str(path), backend="onnx", tokenizer=str(folder), task=task, device="cpu", threads=1
            )
        )
        out[task] = (reference, onnx)
    yield out
    for reference, onnx in out.values():
        reference.close()
        onnx.close()


@pytest.mark.parametrize("task", sorted(TASKS))
def test_export_gives_the_transformers_outputs(exported: dict[str, tuple[Any, Any]], task: str) -> None:
    reference, onnx = exported[task]
    rows = inputs_of(task, 64)
    want, got = reference.predict(rows, batch_size=8), onnx.predict(rows, batch_size=8)
    if task == "token-classification":
        assert got.tags == want.tags
        assert onnx.label_names == reference.label_names
    elif task == "question-answering":
        assert got.texts == want.texts and any(got.texts) and not all(got.texts)  # answers and no-answers
        np.testing.assert_array_equal(got.spans, want.spans)
    else:
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)
        np.testing.assert_array_equal(got.multi_labels, want.multi_labels)
        assert got.multi_labels.any() and onnx.label_names == reference.label_names
    assert len(onnx.predict([], batch_size=4)) == 0 if task != "question-answering" else True


def test_bad_inputs_name_the_row(exported: dict[str, tuple[Any, Any]]) -> None:
    _, tagger = exported["token-classification"]
    with pytest.raises(DataError, match=r"data row 2 \(.*?\) is of type str .*lists of words"):
        tagger.predict([["Ada", "lives"], "Ada lives"], batch_size=2)
    with pytest.raises(DataError, match=r"data row 1 \(.*?\) is \d+ tokens; the model takes at most \d+"):
        tagger.predict([["word"] * 5000], batch_size=1)
    _, reader = exported["question-answering"]
    with pytest.raises(DataError, match=r"data row 1 \(.*?\) .*\(question, context\) pairs of strings"):
        reader.predict(["who ?"], batch_size=1)


def test_a_tagger_graph_without_its_labels_is_refused(exported: dict[str, tuple[Any, Any]], tmp_path: Path) -> None:
    _, tagger = exported["token-classification"]
    folder = tagger.path.parent
    bare = tmp_path / "bare"
    bare.mkdir()
    for item in folder.iterdir():
        if item.name != "config.json":
            (bare / item.name).write_bytes(item.read_bytes())
    spec = ModelSpec(id="t", source=str(bare / "model.onnx"), backend="onnx", tokenizer=str(bare),
                     task="token-classification", device="cpu")  # fmt: skip
    with pytest.raises(BackendError, match=r"needs its label names: put config.json \(with id2label\)"):
        get_backend("onnx").load(spec)
    labels = json.loads((folder / "config.json").read_text())["id2label"]
    named = get_backend("onnx").load(
        ModelSpec(id="t", source=str(bare / "model.onnx"), backend="onnx", tokenizer=str(bare),
                  task="token-classification", device="cpu", labels=tuple(labels[str(i)] for i in range(len(labels))))
    )  # fmt: skip
    try:
        assert named.predict([["Ada", "lives", "in", "Paris"]], batch_size=1).tags is not None
    finally:
        named.close()


GATE = """\
version: 1
model: {{id: {name}, source: {model}, task: {task}, device: cpu, batch_size: 16}}
data: {{source: {data}, {columns}}}
checks:
  - {{name: same_as_onnx, kind: parity, against: {{export: true}}, {bound}}}
"""


@pytest.mark.parametrize("task", sorted(TASKS))
def test_parity_against_the_onnx_export_agrees_on_every_row(
    pytester: pytest.Pytester, task: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELCHECK_CACHE", str(pytester.path / "cache"))
    name = TASKS[task]
    rows: list[dict[str, Any]]
    if task == "token-classification":
        rows = [{"words": w, "tags": t} for w, t in tiny_models.tagged_sentences(60, seed=3)]
        columns, bound = "input: words, label: tags", "min_agreement: 1.0"
    elif task == "question-answering":
        rows = [{"question": r["question"], "context": r["context"], "answers": [r["answer"]] if r["answer"] else []}
                for r in tiny_models.qa_examples(60, seed=3)]  # fmt: skip
        columns, bound = "input: [question, context], label: answers", "min_agreement: 1.0"
    else:
        rows = [{"text": t, "topics": ts} for t, ts in tiny_models.topic_texts(60, seed=3)]
        columns, bound = "input: text, label: topics", "max_abs_diff: 1.0e-4"
    data = pytester.path / "data.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    gate = GATE.format(name=name, model=tiny_models.shared(name).as_posix(), task=task, data=data.as_posix(),
                       columns=columns, bound=bound)  # fmt: skip
    (pytester.path / "gate.yaml").write_text(gate, encoding="utf-8")
    result = pytester.runpytest("--modelcheck", "--modelcheck-report", "out.json", "gate.yaml")
    result.assert_outcomes(passed=1)
    check = json.loads((pytester.path / "out.json").read_text())["gates"][0]["checks"][0]
    assert check["details"]["against"]["export"] is True
    if task == "multi-label-classification":
        assert check["value"] <= 1e-4 and check["details"]["compared"] == "scores"
    else:
        assert check["value"] == 1.0 and check["details"]["compared"] == ("tags" if name == "tagger" else "texts")
