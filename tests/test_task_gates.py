"""Language-task gates end to end through ``pytest --modelcheck`` with tiny real models trained in the session.

Each gate's values equal the reference library (seqeval, torchmetrics' SQuAD, scikit-learn) applied to the
same predictions, read back from the outputs the run saved; a regression check against a baseline made
from that run passes; the untrained model fails; bad data is an error naming the row and column.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelcheck.gatefile import load_gate
from modelcheck.models.backends import data_row
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


@pytest.fixture(scope="module", autouse=True)
def models_built_first(frameworks_imported_once: None) -> None:
    """Build every model before any in-process pytester run (which drops the modules first imported in it)."""
    for name in ("tagger", "tagger-untrained", "reader", "reader-untrained", "topics", "topics-untrained"):
        tiny_models.shared(name)


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
    _, again = gate_run(pytester, "again", gate, model=model, data=data, extra=extra)
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


# -- question-answering ---------------------------------------------------------------------------

QA_GATE = """\
version: 1
model: {{id: reader, source: {model}, task: question-answering, device: cpu, batch_size: 16}}
data: {{source: {data}, input: [question, context], label: answers}}
checks:
  - {{name: squad_em, metric: exact_match, min: 0.9}}
  - {{name: squad_f1, metric: f1, min: 0.9}}
  - {{name: no_answer_right, metric: exact_match, subset: NoAns, min: 0.8}}
  - {{name: same_in_bfloat16, kind: parity, against: {{dtype: bfloat16}}, min_agreement: 0.9}}
"""


def qa_rows(n: int, seed: int) -> list[dict[str, Any]]:
    return [
        {"question": r["question"], "context": r["context"],
         "answers": {"text": [r["answer"]] if r["answer"] else [],
                     "answer_start": [r["answer_start"]] if r["answer"] else []}}
        for r in tiny_models.qa_examples(n, seed)
    ]  # fmt: skip


def test_question_answering_gate_equals_torchmetrics_squad(pytester: pytest.Pytester) -> None:
    from torchmetrics.functional.text import squad

    rows = qa_rows(120, seed=5)
    data = write_jsonl(pytester.path / "data" / "qa.jsonl", rows)
    result, report = gate_run(pytester, "qa", QA_GATE, model="reader", data=data)
    result.assert_outcomes(passed=4)
    checks = checks_of(report)
    answers = saved_outputs(pytester, report).texts
    preds = [{"prediction_text": a, "id": str(i)} for i, a in enumerate(answers)]
    # no answer: the gold answer "" (as SQuAD v2's script reads it; torchmetrics needs one gold text per row)
    target = [{"answers": {"text": r["answers"]["text"] or [""]}, "id": str(i)} for i, r in enumerate(rows)]
    expected = {k: float(v) / 100 for k, v in squad(preds, target).items()}
    assert checks["squad_em"]["value"] == pytest.approx(expected["exact_match"], abs=1e-6)
    assert checks["squad_f1"]["value"] == pytest.approx(expected["f1"], abs=1e-6)
    no_answer = [a for a, r in zip(answers, rows, strict=True) if not r["answers"]["text"]]
    assert checks["no_answer_right"]["value"] == pytest.approx(np.mean([a == "" for a in no_answer]))
    regression_passes(pytester, report, QA_GATE, model="reader", data=data, metrics=["exact_match", "f1"])


# -- multi-label-classification -------------------------------------------------------------------

TOPIC_GATE = """\
version: 1
model: {{id: topics, source: {model}, task: multi-label-classification, device: cpu, batch_size: 16}}
data: {{source: {data}, input: text, label: {label}}}
checks:
  - {{name: f1_micro, metric: f1, min: 0.9}}
  - {{name: f1_macro, metric: f1, average: macro, min: 0.9}}
  - {{name: recall_samples, metric: recall, average: samples, threshold: {{weather: 0.3}}, min: 0.8}}
  - {{name: all_labels_right, metric: subset_accuracy, min: 0.8}}
  - {{name: few_wrong_labels, metric: hamming_loss, max: 0.1}}
  - {{name: same_in_bfloat16, kind: parity, against: {{dtype: bfloat16}}, min_agreement: 0.9}}
"""


@pytest.mark.parametrize("label", ["topics", "[sports, politics, weather]"])
def test_multi_label_gate_equals_scikit_learn(pytester: pytest.Pytester, label: str) -> None:
    from sklearn import metrics

    texts = tiny_models.topic_texts(120, seed=5)
    rows = [{"text": t, "topics": ts, **{name: int(name in ts) for name in tiny_models.TOPICS}} for t, ts in texts]
    data = write_jsonl(pytester.path / "data" / "topics.jsonl", rows)
    result, report = gate_run(pytester, "topics", TOPIC_GATE.replace("{label}", label), model="topics", data=data)
    result.assert_outcomes(passed=6)
    checks = checks_of(report)
    outputs = saved_outputs(pytester, report)
    truth = np.array([[name in ts for name in tiny_models.TOPICS] for _, ts in texts])
    guess = outputs.multi_labels
    assert checks["f1_micro"]["value"] == pytest.approx(metrics.f1_score(truth, guess, average="micro"))
    assert checks["f1_macro"]["value"] == pytest.approx(metrics.f1_score(truth, guess, average="macro"))
    weather = outputs.scores >= np.array([0.5, 0.5, 0.3])
    recall = metrics.recall_score(truth, weather, average="samples", zero_division=0)
    assert checks["recall_samples"]["value"] == pytest.approx(recall)
    assert checks["all_labels_right"]["value"] == pytest.approx(metrics.accuracy_score(truth, guess))
    assert checks["few_wrong_labels"]["value"] == pytest.approx(metrics.hamming_loss(truth, guess))
    if label == "topics":
        regression_passes(pytester, report, TOPIC_GATE.replace("{label}", label), model="topics", data=data,
                          metrics=["f1", "hamming_loss"])  # fmt: skip


# -- untrained models fail; bad data is an error naming the row and column ---------------------------


def core_run(tmp_path: Path, gate: str, model: str, data: Path) -> dict[str, Any]:
    path = tmp_path / "gate.yaml"
    path.write_text(gate.format(model=tiny_models.shared(model).as_posix(), data=data.as_posix()), encoding="utf-8")
    models = ModelCache()
    try:
        result = run_gate(load_gate(path), file="gate.yaml", models=models, stage=None)
    finally:
        models.close()
    return {check.name: (check.status, check.message) for check in result.checks}


def test_untrained_models_fail_their_gates(tmp_path: Path) -> None:
    ner = write_jsonl(tmp_path / "ner.jsonl", [{"words": w, "tags": t} for w, t in tiny_models.tagged_sentences(40, 5)])
    outcome = core_run(tmp_path, NER_GATE.split("  - {{name: words_right")[0], "tagger-untrained", ner)
    assert {status for status, _ in outcome.values()} == {"failed"}, outcome
    qa = write_jsonl(tmp_path / "qa.jsonl", qa_rows(40, seed=5))
    outcome = core_run(tmp_path, QA_GATE.split("  - {{name: no_answer")[0], "reader-untrained", qa)
    assert {status for status, _ in outcome.values()} == {"failed"}, outcome
    topics = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "topics": ts} for t, ts in tiny_models.topic_texts(40, 5)])
    gate = TOPIC_GATE.replace("{label}", "topics").split("  - {{name: all_labels")[0]
    outcome = core_run(tmp_path, gate, "topics-untrained", topics)
    assert {status for status, _ in outcome.values()} == {"failed"}, outcome


@pytest.mark.parametrize(
    ("gate", "model", "row", "message"),
    [
        (NER_GATE, "tagger", {"words": ["ann", "lives"], "tags": ["B-PER", "O", "O"]},
         f"{data_row(1)} has 3 tags in column 'tags' for 2 words in column 'words'"),
        (QA_GATE, "reader", {"question": "who ?", "context": "ann lives in rome .", "answers": ["bob"]},
         f"{data_row(1)}: answer 'bob' in column 'answers' is not found in its context"),
        (TOPIC_GATE.replace("{label}", "topics"), "topics", {"text": "rain", "topics": ["weather", "cooking"]},
         f"column 'topics' {data_row(1)} names label 'cooking', which the model does not know"),
    ],
)  # fmt: skip
def test_bad_data_errors_name_row_and_column(
    tmp_path: Path, gate: str, model: str, row: dict[str, Any], message: str
) -> None:
    good = {"words": ["ann"], "tags": ["B-PER"], "question": "who ?", "context": "ann lives in rome .",
            "answers": ["ann"], "text": "rain", "topics": ["weather"], "shape": "person"}  # fmt: skip
    data = write_jsonl(tmp_path / "bad.jsonl", [good, {**good, **row}])
    outcome = core_run(tmp_path, gate.split("  - {{name: same_in")[0], model, data)
    assert all(status == "error" and message in text for status, text in outcome.values()), outcome


def test_unknown_tag_scheme_is_refused_by_validate(tmp_path: Path) -> None:
    from modelcheck.errors import GateFileError

    data = write_jsonl(tmp_path / "ner.jsonl", [{"words": ["ann"], "tags": ["B-PER"]}])
    gate = (
        NER_GATE.split("checks:")[0] + "checks:\n  - {{name: f1, metric: f1, mode: strict, scheme: IOB9, min: 0.5}}\n"
    )
    with pytest.raises(GateFileError, match="IOB9"):
        core_run(tmp_path, gate, "tagger", data)


def test_a_context_longer_than_the_window_is_named(tmp_path: Path) -> None:
    long = {"question": "who ?", "context": " ".join(["ann lives in rome ."] * 20), "answers": ["ann"]}
    data = write_jsonl(tmp_path / "qa.jsonl", [*qa_rows(2, seed=1), long])
    outcome = core_run(tmp_path, QA_GATE.split("  - {{name: squad_f1")[0], "reader", data)
    status, message = outcome["squad_em"]
    assert status == "error" and f"the input at {data_row(2)}: question and context are" in message, message
    assert "does not split long contexts" in message


def test_fixtures_evaluate_a_token_classifier(pytester: pytest.Pytester) -> None:
    shutil.copytree(tiny_models.shared("tagger"), pytester.path / "tagger")
    sentences = tiny_models.tagged_sentences(30, seed=7)
    pytester.makepyfile(
        f"""
        import pandas as pd
        import seqeval.metrics

        SENTENCES = {sentences!r}

        def test_tagger(modelcheck_load, modelcheck_evaluate):
            model = modelcheck_load("tagger", task="token-classification", device="cpu")
            frame = pd.DataFrame({{"words": [w for w, _ in SENTENCES], "tags": [t for _, t in SENTENCES]}})
            metrics = ["f1", {{"metric": "f1", "name": "strict", "mode": "strict", "scheme": "IOB2"}}]
            result = modelcheck_evaluate(model, frame, input="words", label="tags", metrics=metrics)
            truth = [t for _, t in SENTENCES]
            assert result.metrics["f1"] == seqeval.metrics.f1_score(truth, result.outputs.tags)
            assert result.metrics["strict"] > 0.9
            result.assert_metric("token_accuracy", min=0.9)
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


# -- the backend's alignment and span search, against hand computations with the network ----------


def test_words_are_tagged_at_their_first_subword() -> None:
    import torch
    from modelcheck_transformers import TransformersBackend
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from modelcheck.gatefile import ModelSpec

    folder = tiny_models.shared("tagger-untrained")  # untrained: later subwords disagree with the first
    tokenizer = AutoTokenizer.from_pretrained(folder)
    network = AutoModelForTokenClassification.from_pretrained(folder).eval()
    sentences = [["ann", "smith", "lives", "in", "london"], ["eve", "brown", "works", "at", "initech"], ["rome"]]
    assert tokenizer.tokenize("smith") == ["smi", "##th"]  # the test needs words split into several subwords
    model = TransformersBackend().load(ModelSpec(id="t", source=str(folder), task="token-classification", device="cpu"))
    try:
        tags = model.predict(sentences, batch_size=2).tags
    finally:
        model.close()
    names = network.config.id2label
    later_differs = False
    for words, predicted in zip(sentences, tags, strict=True):
        encoded = tokenizer(words, is_split_into_words=True, return_tensors="pt")
        with torch.no_grad():
            best = network(**encoded).logits[0].argmax(-1).tolist()
        ids = encoded.word_ids(0)
        first = [names[best[ids.index(w)]] for w in range(len(words))]
        assert predicted == first
        later_differs |= any(names[best[p]] != first[w] for p, w in enumerate(ids) if w is not None)
    assert later_differs, "every subword agreed: the test cannot tell first-subword alignment from another"


def test_the_answer_is_the_best_context_span() -> None:
    import torch
    from modelcheck_transformers import TransformersBackend
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from modelcheck.gatefile import ModelSpec
    from modelcheck.models.decoding import MAX_ANSWER_TOKENS

    folder = tiny_models.shared("reader-untrained")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    network = AutoModelForQuestionAnswering.from_pretrained(folder).eval()
    rows = [(r["question"], r["context"]) for r in tiny_models.qa_examples(12, seed=3)]
    model = TransformersBackend().load(ModelSpec(id="t", source=str(folder), task="question-answering", device="cpu"))
    try:
        outputs = model.predict(rows, batch_size=5)
    finally:
        model.close()
    for (question, context), answer, span in zip(rows, outputs.texts, outputs.spans, strict=True):
        encoded = tokenizer(question, context, return_offsets_mapping=True, return_tensors="pt")
        offsets = encoded.pop("offset_mapping")[0].tolist()
        with torch.no_grad():
            out = network(**encoded)
        start, end = out.start_logits[0].tolist(), out.end_logits[0].tolist()
        inside = [p for p, s in enumerate(encoded.sequence_ids(0)) if s == 1]
        score, i, j = max((start[i] + end[j], i, j) for i in inside for j in inside if 0 <= j - i < MAX_ANSWER_TOKENS)
        if start[0] + end[0] > score:
            assert (answer, span.tolist()) == ("", [-1, -1])
        else:
            assert answer == context[offsets[i][0] : offsets[j][1]] and span.tolist() == [offsets[i][0], offsets[j][1]]
