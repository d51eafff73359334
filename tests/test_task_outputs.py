"""The language tasks' outputs: saved with the report and read back as baselines; compared by parity checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelcheck.errors import CheckError
from modelcheck.measure.comparison import compare_outputs
from modelcheck.models.backends import Outputs
from modelcheck.report.baselines import load_outputs, save_outputs


def test_tags_multi_labels_and_spans_round_trip(tmp_path: Path) -> None:
    outputs = Outputs(
        tags=[["B-PER", "O"], [], ["O", "B-LOC", "I-LOC"]],
        multi_labels=np.array([[True, False], [False, False], [True, True]]),
        scores=np.array([[0.9, 0.1], [0.2, 0.3], [0.8, 0.7]], dtype=np.float32),
        spans=np.array([[0, 5], [-1, -1], [3, 9]]),
        texts=["Paris", "", "in Rome"],
    )
    save_outputs(outputs, tmp_path / "o.npz", data_sha256="ab" * 32)
    loaded, sha = load_outputs(tmp_path / "o.npz")
    assert sha == "ab" * 32
    assert loaded.tags == outputs.tags
    np.testing.assert_array_equal(loaded.multi_labels, outputs.multi_labels)
    np.testing.assert_array_equal(loaded.spans, outputs.spans)
    assert loaded.texts == outputs.texts and len(loaded) == 3
    part = loaded.take([2, 0])
    assert part.tags == [["O", "B-LOC", "I-LOC"], ["B-PER", "O"]] and part.spans.tolist() == [[3, 9], [0, 5]]


def test_tag_parity_counts_words_and_names_the_worst_sentences() -> None:
    reference = Outputs(tags=[["B-PER", "O", "O"], ["O"], ["B-LOC", "I-LOC", "O", "O"]])
    candidate = Outputs(tags=[["B-PER", "O", "O"], ["B-ORG"], ["O", "O", "O", "B-PER"]])
    result = compare_outputs(reference, candidate)
    assert result.compared == "tags"
    assert result.agreement == pytest.approx(4 / 8)
    assert result.row_agreement == pytest.approx(1 / 3)
    assert [row["row"] for row in result.worst] == [2, 1]
    assert result.worst[0]["tags"][0] == [0, "B-LOC", "O"]
    with pytest.raises(CheckError, match="row 0: the reference tagged 3 words, the candidate 2"):
        compare_outputs(reference, Outputs(tags=[["O", "O"], ["O"], ["O"] * 4]))


def test_multi_label_parity_agrees_on_label_sets() -> None:
    scores = np.array([[0.9, 0.2], [0.6, 0.7], [0.1, 0.1]])
    reference = Outputs(scores=scores, multi_labels=scores >= 0.5)
    moved = scores + np.array([[0.0, 0.0], [-0.2, 0.0], [0.0, 0.0]])
    result = compare_outputs(reference, Outputs(scores=moved, multi_labels=moved >= 0.5))
    assert result.compared == "scores"
    assert result.agreement == pytest.approx(2 / 3)
    assert result.max_abs_diff == pytest.approx(0.2)
    assert result.worst[0]["row"] == 1 and result.worst[0]["labels"] == ["0,1", "1"]


def test_model_card_names_the_hubs_metric_types() -> None:
    pytest.importorskip("huggingface_hub")
    from modelcheck.hub.card import eval_results

    def gate(task: str, metric: str) -> dict[str, object]:
        check = {"name": "c", "kind": "metric", "metric": metric, "value": 0.9}
        return {"model": {"task": task}, "data": {"source": "d.jsonl", "split": "test"}, "checks": [check]}

    assert eval_results(gate("token-classification", "f1"))[0].metric_type == "seqeval"
    assert eval_results(gate("question-answering", "exact_match"))[0].metric_type == "squad"
    assert eval_results(gate("multi-label-classification", "hamming_loss"))[0].metric_type == "hamming_loss"
    assert eval_results(gate("text-classification", "f1"))[0].metric_type == "f1"


@pytest.mark.parametrize(
    ("config", "rows", "expected"),
    [
        ({"architectures": ["BertForTokenClassification"]}, [{"words": ["a"], "tags": ["O"]}],
         ("token-classification", "words", "tags", ["f1", "token_accuracy"])),
        ({"architectures": ["BertForQuestionAnswering"]},
         [{"question": "who", "context": "ann", "answers": ["ann"]}],
         ("question-answering", ("question", "context"), "answers", ["exact_match", "f1"])),
        ({"architectures": ["BertForSequenceClassification"], "problem_type": "multi_label_classification"},
         [{"text": "rain", "labels": ["weather"]}],
         ("multi-label-classification", "text", "labels", ["f1", "subset_accuracy"])),
    ],
)  # fmt: skip
def test_init_reads_the_language_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: dict[str, object], rows: list[dict[str, object]],
    expected: tuple[object, ...],
) -> None:  # fmt: skip
    import json

    from modelcheck.gatefile import load_gate
    from modelcheck.gatefile.scaffold import Answers, write_gate

    monkeypatch.chdir(tmp_path)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path, _ = write_gate(Answers(model="model", data="data.jsonl"), "gates/m.yaml")
    gate = load_gate(path)
    assert (gate.model.task, gate.data.input, gate.data.label, [c.metric for c in gate.checks][:2]) == expected


@pytest.mark.parametrize(
    ("task", "extra", "message"),
    [
        ("token-classification", "threshold: 0.3", "threshold does not apply to task 'token-classification'"),
        ("multi-label-classification", "scheme: IOB2", "scheme does not apply to task 'multi-label-classification'"),
        ("multi-label-classification", "average: binary", "averages micro, macro, weighted, samples, not 'binary'"),
        ("token-classification", "pos_label: PER", "pos_label is for binary classification"),
        ("text-classification", "average: samples", "average samples is for multi-label-classification"),
    ],
)
def test_validate_refuses_options_of_other_tasks(tmp_path: Path, task: str, extra: str, message: str) -> None:
    from modelcheck.errors import GateFileError
    from modelcheck.gatefile import load_gate

    gate = tmp_path / "gate.yaml"
    gate.write_text(
        f"version: 1\nmodel: {{source: ./m, task: {task}}}\ndata: {{source: d.jsonl, input: x, label: y}}\n"
        f"checks:\n  - name: c\n    metric: f1\n    {extra}\n    min: 0.5\n",
        encoding="utf-8",
    )
    with pytest.raises(GateFileError, match=message):
        load_gate(gate)


def test_validate_takes_label_columns_for_multi_label_only(tmp_path: Path) -> None:
    from modelcheck.errors import GateFileError
    from modelcheck.gatefile import load_gate

    gate = tmp_path / "gate.yaml"
    text = "version: 1\nmodel: {{source: ./m, task: {task}}}\ndata: {{source: d.jsonl, input: x, label: [a, b]}}\n"
    text += "checks:\n  - {{name: c, metric: f1, min: 0.5}}\n"
    gate.write_text(text.format(task="multi-label-classification"), encoding="utf-8")
    assert load_gate(gate).data.label == ("a", "b")
    gate.write_text(text.format(task="text-classification"), encoding="utf-8")
    with pytest.raises(GateFileError, match="takes one label column"):
        load_gate(gate)
