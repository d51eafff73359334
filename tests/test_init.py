"""``modelcheck init``: a gate file that validates and runs, checks chosen from the task, never overwriting."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from modelcheck.cli import main
from modelcheck.errors import ScaffoldError
from modelcheck.gatefile import gate_schema, load_gate
from modelcheck.gatefile.scaffold import Answers, write_gate

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DATA = REPO / "examples" / "sentiment" / "test.csv"


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder as the working directory, with the example data in data/."""
    (tmp_path / "data").mkdir()
    shutil.copy(EXAMPLE_DATA, tmp_path / "data" / "test.csv")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture()
def classifier(project: Path) -> Path:
    """A folder that reads like a saved text classifier (its config only: init never loads the model)."""
    folder = project / "classifier"
    folder.mkdir()
    config = {"architectures": ["BertForSequenceClassification"], "id2label": {"0": "negative", "1": "positive"}}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.mark.e2e
@pytest.mark.usefixtures("one_torch_thread")
def test_scaffolded_gate_validates_and_runs_on_the_example_model(
    project: Path, sentiment_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    shutil.copytree(sentiment_model, project / "models" / "sentiment")
    assert main(["init", "--model", "models/sentiment", "--data", "data/test.csv"]) == 0
    assert "wrote gates/sentiment.yaml" in capsys.readouterr().out
    path = project / "gates" / "sentiment.yaml"
    text = path.read_text("utf-8")
    assert text.splitlines()[0] == f"# yaml-language-server: $schema={gate_schema()['$id']}"
    document = yaml.safe_load(text)
    assert document["model"] == {"id": "sentiment", "source": "../models/sentiment", "backend": "transformers",
                                 "task": "text-classification"}  # fmt: skip
    assert document["data"] == {"source": "../data/test.csv", "input": "text", "label": "label"}
    assert [c["name"] for c in document["checks"]] == ["accuracy", "macro_f1", "latency_p95", "peak_memory"]
    assert document["stages"] == {"merge": ["accuracy", "macro_f1"], "deploy": "all"}
    assert main(["validate", str(path)]) == 0

    gate = load_gate(path)
    cache = ModelCache()
    try:
        result = run_gate(gate, file="gates/sentiment.yaml", models=cache, stage=None)
    finally:
        cache.close()
    assert {check.name: check.status for check in result.checks} == dict.fromkeys(
        ["accuracy", "macro_f1", "latency_p95", "peak_memory"], "passed"
    ), [check.message for check in result.checks]


def test_never_overwrites(project: Path, classifier: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "gates" / "mine.yaml"
    path.parent.mkdir()
    path.write_text("# mine\n", encoding="utf-8")
    status = main(["init", str(path), "--model", str(classifier), "--data", "data/test.csv"])
    assert status == 2
    assert f"{path} already exists; modelcheck init never overwrites" in capsys.readouterr().err
    assert path.read_text("utf-8") == "# mine\n"


def test_missing_answers_name_the_flag(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "--data", "data/test.csv"]) == 2
    assert "no model given: pass --model" in capsys.readouterr().err
    assert main(["init", "--model", "org/name", "--data", "data/test.csv"]) == 2
    assert "cannot tell the task of org/name; pass --task, one of: text-classification" in capsys.readouterr().err
    assert main(["init", "--model", "org/name", "--data", "data/test.csv", "--label", "nope"]) == 2
    assert "label column 'nope' is not in data/test.csv; its columns: text, label, language" in capsys.readouterr().err
    assert not (project / "gates").exists()


def test_prompts_ask_for_what_flags_do_not_give(project: Path, classifier: Path) -> None:
    asked: list[str] = []
    replies = iter(["classifier", "data/test.csv", ""])  # the label: take the guess

    def ask(question: str, default: str | None) -> str | None:
        asked.append(question)
        return next(replies) or default

    path, summary = write_gate(Answers(), "gates/g.yaml", ask=ask)
    assert [q.split(" (")[0] for q in asked] == ["Model", "Data file", "Label column"]
    assert "task text-classification" in summary
    assert load_gate(path).data.label == "label"


def test_tasks_are_read_from_the_model_and_the_data(project: Path) -> None:
    encoder = project / "encoder"
    encoder.mkdir()
    (encoder / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}), encoding="utf-8")
    (project / "data" / "pairs.csv").write_text("a,b,score\nx y,y z,0.5\nq,r,0.1\n", encoding="utf-8")
    path, _ = write_gate(Answers(model="encoder", data="data/pairs.csv"), "gates/encoder.yaml")
    gate = load_gate(path)
    assert (gate.model.task, gate.data.input, gate.data.label) == ("feature-extraction", ("a", "b"), "score")
    assert [c.metric for c in gate.checks][:1] == ["spearman"]

    (project / "data" / "houses.csv").write_text("rooms,area,price\n3,70.5,1.5\n4,90.0,2.25\n", encoding="utf-8")
    with pytest.raises(ScaffoldError, match=r"column of data/houses\.csv holds the expected outputs; pass --label"):
        write_gate(Answers(model="models:build", data="data/houses.csv"), "gates/houses.yaml")
    path, _ = write_gate(Answers(model="models:build", data="data/houses.csv", label="price"), "gates/houses.yaml")
    gate = load_gate(path)
    assert (gate.model.backend, gate.model.task, gate.data.input) == ("torch", "tabular-regression", ("rooms", "area"))
    assert gate.checks[0].metric == "r2"

    with pytest.raises(ScaffoldError, match=r"model folder empty has no config\.json"):
        (project / "empty").mkdir()
        write_gate(Answers(model="empty", data="data/houses.csv"), "gates/x.yaml")


def test_scaffolded_gate_runs_a_converted_scikit_learn_classifier_on_string_labels(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """skl2onnx's defaults (ZipMap probabilities) and a CSV of class names: init finds the label column in
    the graph's own class labels, writes no ``labels:``, and the gate agrees with scikit-learn."""
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    import warnings

    import numpy as np
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import accuracy_score

    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    data = load_iris(as_frame=True)
    frame = data.frame.set_axis(["f1", "f2", "f3", "f4", "kind"], axis=1)
    frame["kind"] = np.asarray(data.target_names)[frame["kind"]]
    x = frame[["f1", "f2", "f3", "f4"]].to_numpy(np.float32)
    forest = RandomForestClassifier(n_estimators=3, max_depth=2, random_state=0).fit(x[::2], frame["kind"][::2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        graph = skl2onnx.convert_sklearn(forest, initial_types=[("X", FloatTensorType([None, 4]))])
    (project / "iris.onnx").write_bytes(graph.SerializeToString())
    frame.to_csv(project / "data" / "iris.csv", index=False)

    assert main(["init", "--model", "iris.onnx", "--data", "data/iris.csv"]) == 0, capsys.readouterr().err
    path = project / "gates" / "iris.yaml"
    document = yaml.safe_load(path.read_text("utf-8"))
    assert document["data"] == {"source": "../data/iris.csv", "input": ["f1", "f2", "f3", "f4"], "label": "kind"}
    assert "labels" not in document["model"]
    assert main(["validate", str(path)]) == 0
    cache = ModelCache()
    try:
        result = run_gate(load_gate(path), file="gates/iris.yaml", models=cache, stage=None)
    finally:
        cache.close()
    statuses = {check.name: check.status for check in result.checks}
    assert statuses == dict.fromkeys(["accuracy", "macro_f1", "latency_p95", "peak_memory"], "passed"), [
        check.message for check in result.checks
    ]
    accuracy = next(check.value for check in result.checks if check.name == "accuracy")
    assert accuracy == pytest.approx(accuracy_score(frame["kind"], forest.predict(x)), abs=1e-12)


def test_seq2seq_translators_and_causal_models_get_generation_tasks(project: Path) -> None:
    configs = {
        "t5": ({"architectures": ["T5ForConditionalGeneration"], "is_encoder_decoder": True}, "text2text-generation",
               ["rougeL", "bleu"]),
        "marian": ({"architectures": ["MarianMTModel"], "is_encoder_decoder": True}, "translation", ["bleu", "chrf"]),
        "gpt2": ({"architectures": ["GPT2LMHeadModel"]}, "text-generation", ["exact_match"]),
        "llava": ({"architectures": ["LlavaForConditionalGeneration"]}, "text-generation", ["exact_match"]),
    }  # fmt: skip
    (project / "data" / "pairs.csv").write_text("id,source,reference\n1,a b c,c b a\n2,d e,e d\n", encoding="utf-8")
    for name, (config, task, metrics) in configs.items():
        (project / name).mkdir()
        (project / name / "config.json").write_text(json.dumps(config), encoding="utf-8")
        path, _ = write_gate(Answers(model=name, data="data/pairs.csv"), f"gates/{name}.yaml")
        gate = load_gate(path)
        assert (gate.model.task, gate.data.input, gate.data.label) == (task, "source", "reference"), name
        assert [c.metric for c in gate.checks if c.kind == "metric"] == metrics, name
        assert main(["validate", str(path)]) == 0
    path, _ = write_gate(Answers(model="t5", data="data/pairs.csv", task="summarization"), "gates/summary.yaml")
    assert [c.metric for c in load_gate(path).checks if c.kind == "metric"] == ["rouge1", "rougeL"]


@pytest.mark.e2e
@pytest.mark.usefixtures("frameworks_imported_once", "one_torch_thread")
@pytest.mark.parametrize(("model", "rouge_status"), [("t5", "passed"), ("t5-untrained", "failed")])
def test_scaffolded_gate_judges_a_real_t5(project: Path, model: str, rouge_status: str) -> None:
    """init on a real (tiny) T5 folder and its data: the gate it writes runs and its ROUGE-L tells trained from not."""
    import pandas as pd
    import tiny_seq2seq

    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    shutil.copytree(tiny_seq2seq.shared(model), project / "t5")
    rows = tiny_seq2seq.reverse_examples()
    pd.DataFrame({"source": [s for s, _ in rows], "reference": [r for _, r in rows]}).to_csv(
        project / "data" / "reverse.csv", index=False
    )
    path, _ = write_gate(Answers(model="t5", data="data/reverse.csv"), "gates/t5.yaml")
    gate = load_gate(path)
    assert gate.model.task == "text2text-generation"
    cache = ModelCache()
    try:
        result = run_gate(gate, file="gates/t5.yaml", models=cache, stage=None)
    finally:
        cache.close()
    checks = {check.name: check for check in result.checks}
    assert checks["rougeL"].status == rouge_status, checks["rougeL"].message
    assert checks["bleu"].status in ("passed", "failed"), checks["bleu"].message  # judged, not an error
    assert checks["bleu"].details["signature"].startswith("nrefs:1|")  # computed by sacrebleu
