"""The transformers backend's tasks beyond text-classification, each with a tiny real model (tests/tiny_models.py).

feature-extraction (an untrained tiny BERT), image-classification (a ViT trained on red vs blue images),
text-generation (a GPT-2 trained to count), plus dtype, labels and load errors. Gates run through the
core (``load_gate`` + ``run_gate``) and, for the image folder, through pytest itself (pytester).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelcheck.errors import BackendError, DataError, ModelLoadError
from modelcheck.gatefile import ModelSpec, load_gate
from modelcheck.models.backends import LoadedModel, Outputs
from modelcheck.models.cache import ModelCache
from modelcheck.report.results import GateResult
from modelcheck.run.gate import run_gate

pytestmark = pytest.mark.usefixtures("frameworks_imported_once", "one_torch_thread")

torch = pytest.importorskip("torch")
if importlib.util.find_spec("transformers") is None:  # not imported here: it freezes huggingface_hub's env
    pytest.skip("transformers is not installed", allow_module_level=True)

import tiny_models  # noqa: E402
from modelcheck_transformers import SUPPORTED_TASKS, TransformersBackend  # noqa: E402

EXAMPLE_DATA = Path(__file__).resolve().parents[1] / "examples" / "sentiment" / "test.csv"


def load(source: Path | str, task: str, **kwargs: Any) -> LoadedModel:
    return TransformersBackend().load(ModelSpec(id="tiny", source=str(source), task=task, device="cpu", **kwargs))


def run(gate_text: str, folder: Path, **paths: Path) -> GateResult:
    """Write a gate file into ``folder`` (``{name}`` placeholders become absolute paths) and run it."""
    gate = folder / "gate.yaml"
    gate.write_text(gate_text.format(**{k: v.as_posix() for k, v in paths.items()}), encoding="utf-8")
    models = ModelCache()
    try:
        return run_gate(load_gate(gate), file="gate.yaml", models=models, stage=None)
    finally:
        models.close()


def statuses(result: GateResult) -> dict[str, str]:
    return {check.name: check.status for check in result.checks}


def get(outputs: Outputs, name: str) -> np.ndarray:
    """One array field of ``outputs``, which must be set."""
    value = getattr(outputs, name)
    assert value is not None, f"predict returned no {name}"
    return np.asarray(value)


def texts_of(outputs: Outputs) -> list[str]:
    assert outputs.texts is not None, "predict returned no texts"
    return outputs.texts


# -- feature-extraction ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedder() -> Iterator[LoadedModel]:
    loaded = load(tiny_models.shared("embedder"), "feature-extraction")
    yield loaded
    loaded.close()


def hand_pooled(folder: Path, texts: list[str]) -> np.ndarray:
    """Mean of the last hidden states over each text's tokens, L2-normalised: one text at a time, no padding."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    rows = []
    with torch.no_grad():
        for text in texts:
            hidden = model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0]
            rows.append(torch.nn.functional.normalize(hidden.mean(dim=0), dim=0).numpy())
    return np.stack(rows)


def test_embeddings_are_mean_pooled_unit_vectors_in_input_order(embedder: LoadedModel) -> None:
    texts = tiny_models.sentences(40, seed=3)  # 3 to 12 words: batches sorted by length must be un-sorted
    expected = hand_pooled(tiny_models.shared("embedder"), texts)
    assert embedder.label_names == ()
    for batch_size in (1, 7, 64):
        outputs = embedder.predict(texts, batch_size=batch_size)
        assert outputs.embeddings is not None and outputs.pair_embeddings is None
        assert outputs.embeddings.shape == (40, 32) and outputs.embeddings.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(outputs.embeddings, axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(outputs.embeddings, expected, atol=1e-5)
    assert get(embedder.predict([], batch_size=4), "embeddings").shape == (0, 32)


def test_pairs_embed_both_sides(embedder: LoadedModel) -> None:
    first, second = tiny_models.sentences(12, seed=4), tiny_models.sentences(12, seed=5)
    pairs = [(a, a) for a in first[:6]] + list(zip(first[6:], second[6:], strict=True))
    outputs = embedder.predict(pairs, batch_size=5)
    first_side, second_side = get(outputs, "embeddings"), get(outputs, "pair_embeddings")
    np.testing.assert_allclose(first_side, get(embedder.predict(first, batch_size=5), "embeddings"), atol=1e-5)
    alone = get(embedder.predict([b for _, b in pairs], batch_size=5), "embeddings")
    np.testing.assert_allclose(second_side, alone, atol=1e-5)
    cosine = np.sum(first_side * second_side, axis=1)
    np.testing.assert_allclose(cosine[:6], 1.0, atol=1e-5)  # identical texts
    assert np.all(cosine[6:] < 0.9999)


@pytest.mark.parametrize("bad", [("only one",), ("a", None), "not a pair"])
def test_malformed_pairs_name_the_row(embedder: LoadedModel, bad: object) -> None:
    with pytest.raises(DataError, match=r"data row 2 .*feature-extraction inputs must be"):
        embedder.predict([("a cat", "a dog"), bad], batch_size=2)


def test_sentence_transformers_pooling_and_length_are_honoured(tmp_path: Path) -> None:
    folder = shutil.copytree(tiny_models.shared("embedder"), tmp_path / "st")
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]
    modules.append({"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"})
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    )
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 4}))
    loaded = load(folder, "feature-extraction")
    try:
        assert getattr(loaded, "pooling", None) == "cls" and getattr(loaded, "max_length", None) == 4
        from transformers import AutoModel, AutoTokenizer

        tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
        texts = ["the cat sat on the mat", "a dog"]
        with torch.no_grad():
            encoded = tokenizer(texts, padding=True, truncation=True, max_length=4, return_tensors="pt")
            cls = torch.nn.functional.normalize(model(**encoded).last_hidden_state[:, 0], dim=-1).numpy()
        np.testing.assert_allclose(get(loaded.predict(texts, batch_size=2), "embeddings"), cls, atol=1e-5)
        # truncated to 4 tokens ([CLS] the cat [SEP]... cut): a longer tail changes nothing
        longer = get(loaded.predict(["the cat sat", "the cat sat under the tree"], batch_size=1), "embeddings")
        np.testing.assert_allclose(longer[0], longer[1], atol=1e-6)
    finally:
        loaded.close()


SIMILARITY_GATE = """\
version: 1
model:
  source: {model}
  task: feature-extraction
  device: cpu
  batch_size: 8
data:
  source: {data}
  input: [a, b]
  label: similar
checks:
  - name: same_as_reference
    metric: cosine_similarity
    reference: {reference}
    min: 0.999
  - name: ranks_similar_pairs_first
    metric: spearman
    min: 0.8
"""


@pytest.mark.e2e
def test_similarity_gate(tmp_path: Path, embedder: LoadedModel) -> None:
    """cosine_similarity against reference embeddings of the same model, spearman of pair cosine vs labels.

    The model is untrained, so the only pairs it surely ranks right are identical ones (cosine 1.0):
    labels 1 for identical and 0 for unrelated pairs give at least the spearman of a perfect ranking
    (more where the identical pairs' cosines tie at 1.0); the reversed labels at most its negative.
    """
    first, second = tiny_models.sentences(10, seed=6), tiny_models.sentences(10, seed=7)
    rows = [(a, a, 1) for a in first[:5]] + [(a, b, 0) for a, b in zip(first[5:], second[5:], strict=True)]
    data = tmp_path / "pairs.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("a", "b", "similar"), *rows])
    reference = tmp_path / "reference.npy"
    np.save(reference, get(embedder.predict([a for a, _, _ in rows], batch_size=3), "embeddings"))

    result = run(SIMILARITY_GATE, tmp_path, model=tiny_models.shared("embedder"), data=data, reference=reference)
    assert statuses(result) == {"same_as_reference": "passed", "ranks_similar_pairs_first": "passed"}, result
    values = {check.name: float(check.value or 0.0) for check in result.checks}
    assert values["same_as_reference"] == pytest.approx(1.0, abs=1e-6)
    from scipy import stats

    labels = [s for _, _, s in rows]
    best = stats.spearmanr(np.asarray(labels) + np.arange(10) * 1e-3, labels).statistic  # a perfect ranking
    assert best - 1e-9 <= values["ranks_similar_pairs_first"] < 1

    other = run(SIMILARITY_GATE, tmp_path, model=tiny_models.shared("embedder-other"), data=data, reference=reference)
    assert statuses(other)["same_as_reference"] == "failed"  # another model's embeddings are not the reference's

    with data.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("a", "b", "similar"), *((a, b, 1 - s) for a, b, s in rows)])
    reversed_labels = run(
        SIMILARITY_GATE, tmp_path, model=tiny_models.shared("embedder"), data=data, reference=reference
    )
    check = reversed_labels.checks[1]
    assert check.status == "failed" and check.value is not None and check.value <= -best + 1e-9, check.message


# -- image-classification -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vit() -> Iterator[LoadedModel]:
    loaded = load(tiny_models.shared("vit"), "image-classification")
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_models.write_image_folder(tmp_path_factory.mktemp("images") / "images", n_per_class=12, seed=1)


IMAGE_GATE = """\
version: 1
model:
  source: {model}
  task: image-classification
  device: cpu
  batch_size: 10
data:
  source: {images}
  input: image
  label: label
checks:
  - name: accuracy
    metric: accuracy
    min: 0.9
  - name: red_recall
    metric: recall
    pos_label: red
    min: 0.9
"""


@pytest.mark.e2e
def test_image_gate_passes_trained_and_fails_untrained(tmp_path: Path, images: Path) -> None:
    trained = run(IMAGE_GATE, tmp_path, model=tiny_models.shared("vit"), images=images)
    assert statuses(trained) == {"accuracy": "passed", "red_recall": "passed"}, trained
    assert trained.data["rows"] == 24 and trained.model["device"] == "cpu"
    untrained = run(IMAGE_GATE, tmp_path, model=tiny_models.shared("vit-untrained"), images=images)
    assert statuses(untrained)["accuracy"] == "failed", untrained
    assert untrained.checks[0].value is not None and untrained.checks[0].value < 0.9


@pytest.mark.e2e
def test_image_predictions_do_not_depend_on_batching(vit: LoadedModel) -> None:
    from PIL import Image

    pixels, labels = tiny_models.color_images(10, seed=2)
    pictures = [Image.fromarray(p) for p in pixels]
    pictures[3] = pictures[3].convert("L").convert("RGB")  # grey: a hard one, still a valid input
    pictures[4] = pictures[4].resize((48, 40))  # the processor resizes
    outputs = vit.predict(pictures, batch_size=20)
    assert vit.label_names == ("blue", "red")
    scores, predicted = get(outputs, "scores"), get(outputs, "labels")
    assert scores.shape == (20, 2)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-5)
    assert predicted.tolist() == scores.argmax(axis=1).tolist()
    keep = [i for i in range(20) if i != 3]
    assert np.array_equal(predicted[keep], labels[keep])
    for batch_size in (1, 3):
        np.testing.assert_allclose(get(vit.predict(pictures, batch_size=batch_size), "scores"), scores, atol=1e-5)


def test_image_inputs_must_be_images(vit: LoadedModel) -> None:
    with pytest.raises(DataError, match=r"data row 1 .*image-classification inputs must be images"):
        vit.predict(["red.png"], batch_size=1)


@pytest.mark.e2e
def test_corrupt_image_errors_the_gate_naming_the_file(pytester: pytest.Pytester, images: Path) -> None:
    shutil.copytree(tiny_models.shared("vit"), pytester.path / "models" / "vit")
    shutil.copytree(images, pytester.path / "data" / "images")
    broken = pytester.path / "data" / "images" / "red" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    (pytester.path / "gates").mkdir()
    gate = IMAGE_GATE.replace("{model}", "../models/vit").replace("{images}", "../data/images")
    (pytester.path / "gates" / "vit.yaml").write_text(gate, encoding="utf-8")
    result = pytester.runpytest("--modelcheck", "--modelcheck-report", "out.json")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*cannot decode image */data/images/red/broken.png*"])
    report = json.loads((pytester.path / "out.json").read_text())
    checks = report["gates"][0]["checks"]
    assert [c["status"] for c in checks] == ["error", "error"]
    assert all("broken.png" in c["message"] for c in checks)


# -- text-generation ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def counter() -> Iterator[LoadedModel]:
    loaded = load(tiny_models.shared("gpt2"), "text-generation", max_new_tokens=4)
    yield loaded
    loaded.close()


GENERATION_GATE = """\
version: 1
model:
  source: {model}
  task: text-generation
  device: cpu
  max_new_tokens: 4
data:
  source: {data}
  input: prompt
  label: answer
checks:
  - name: exact
    metric: exact_match
    min: 0.95
  - name: contains
    metric: contains
    min: 0.95
"""


@pytest.mark.e2e
def test_generation_gate_passes_trained_and_fails_untrained(tmp_path: Path) -> None:
    data = tiny_models.write_count_data(tmp_path / "count.csv")
    trained = run(GENERATION_GATE, tmp_path, model=tiny_models.shared("gpt2"), data=data)
    assert statuses(trained) == {"exact": "passed", "contains": "passed"}, trained
    assert [c.value for c in trained.checks] == [1.0, 1.0]
    untrained = run(GENERATION_GATE, tmp_path, model=tiny_models.shared("gpt2-untrained"), data=data)
    assert statuses(untrained) == {"exact": "failed", "contains": "failed"}, untrained


@pytest.mark.e2e
def test_generation_returns_only_the_greedy_continuation(counter: LoadedModel) -> None:
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(tiny_models.shared("gpt2")).pad_token is None  # falls back to eos
    examples = tiny_models.count_examples()
    prompts = [p for p, _ in examples]  # 2 to 4 numbers: left padding within a batch
    outputs = counter.predict(prompts, batch_size=16)
    assert outputs.texts == [a for _, a in examples]  # no prompt, no <eos>, stopped at <eos>
    assert counter.label_names == ()
    one_by_one = [texts_of(counter.predict([p], batch_size=1))[0] for p in prompts[:9]]
    assert one_by_one == outputs.texts[:9]
    assert counter.predict(prompts[::-1], batch_size=7).texts == outputs.texts[::-1]
    assert counter.predict([], batch_size=2).texts == []


@pytest.mark.e2e
def test_max_new_tokens_bounds_the_continuation() -> None:
    loaded = load(tiny_models.shared("gpt2"), "text-generation", max_new_tokens=1)
    try:
        assert loaded.predict(["count 3 4 5 ->", "count 10 11 ->"], batch_size=2).texts == ["6", "12"]
    finally:
        loaded.close()
    with pytest.raises(BackendError, match=r"max_new_tokens 32 .*32 positions"):
        load(tiny_models.shared("gpt2"), "text-generation", max_new_tokens=32)


def test_generation_inputs_must_be_texts() -> None:
    loaded = load(tiny_models.shared("gpt2-untrained"), "text-generation", max_new_tokens=2)
    with pytest.raises(DataError, match=r"data row 2 .*text-generation inputs must be strings"):
        loaded.predict(["count 1 2 ->", None], batch_size=2)


# -- dtype, labels, errors ------------------------------------------------------------------------


@pytest.mark.e2e
def test_bfloat16_gives_the_labels_of_float32(sentiment_model: Path) -> None:
    with EXAMPLE_DATA.open(newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)][:200]
    full: Any = load(sentiment_model, "text-classification", dtype="float32")
    half: Any = load(sentiment_model, "text-classification", dtype="bfloat16")
    try:
        assert next(half._network.parameters()).dtype == torch.bfloat16
        assert next(full._network.parameters()).dtype == torch.float32
        expected, got = full.predict(texts, batch_size=32), half.predict(texts, batch_size=32)
        assert get(got, "labels").tolist() == get(expected, "labels").tolist()
        np.testing.assert_allclose(get(got, "scores"), get(expected, "scores"), atol=0.05)
    finally:
        full.close()
        half.close()


def test_labels_from_the_gate_replace_id2label(untrained_model: Path) -> None:
    loaded = load(untrained_model, "text-classification", labels=("neg", "pos"))
    assert loaded.label_names == ("neg", "pos")
    loaded.close()
    with pytest.raises(BackendError, match=r"model\.labels lists 3 labels \(a, b, c\) but .* has 2 classes"):
        load(untrained_model, "text-classification", labels=("a", "b", "c"))
    with pytest.raises(BackendError, match=r"model\.labels is for classification tasks"):
        load(tiny_models.shared("embedder"), "feature-extraction", labels=("a", "b"))


def test_threads_apply_while_predicting(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = torch.set_num_threads

    def recording(n: int) -> None:
        calls.append(n)
        real(n)

    monkeypatch.setattr(torch, "set_num_threads", recording)
    loaded = load(tiny_models.shared("embedder"), "feature-extraction", threads=2)
    before = torch.get_num_threads()
    loaded.predict(["a cat sat"], batch_size=1)
    assert calls == [2, before] and torch.get_num_threads() == before
    loaded.close()


def test_unsupported_task_lists_the_supported_ones(untrained_model: Path) -> None:
    first = ("text-classification", "feature-extraction", "image-classification", "text-generation")
    assert SUPPORTED_TASKS[:4] == first
    assert {"text2text-generation", "summarization", "translation"} <= set(SUPPORTED_TASKS)
    assert {"multi-label-classification", "token-classification", "question-answering"} <= set(SUPPORTED_TASKS)
    with pytest.raises(
        BackendError, match=r"task 'tabular-regression'.*supported tasks: " + ", ".join(SUPPORTED_TASKS)
    ):
        load(untrained_model, "tabular-regression")


@pytest.mark.parametrize(
    ("model", "task", "message"),
    [
        (
            "gpt2-untrained",
            "image-classification",
            r"AutoModelForImageClassification failed with ValueError: Unrecognized configuration class GPT2Config"
            r".*another architecture than task 'image-classification' needs",
        ),
        ("vit-untrained", "text-generation", r"AutoModelForCausalLM failed with ValueError: .*ViTConfig"),
        (
            "embedder",
            "text-classification",
            r"has no weights for classifier\.bias, classifier\.weight, which AutoModelForSequenceClassification "
            r"needs .*would be random",
        ),
        ("vit-untrained", "feature-extraction", r"has no tokenizer files"),
    ],
)
def test_wrong_architecture_for_the_task(model: str, task: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message) as raised:
        load(tiny_models.shared(model), task)
    assert len(str(raised.value)) < 600  # shortened, not transformers' list of every architecture
