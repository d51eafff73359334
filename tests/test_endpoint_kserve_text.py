"""kserve-v2 over texts: a text classifier and a text embedder served by a real MLServer on 127.0.0.1.

The models are scikit-learn pipelines trained here (TF-IDF + logistic regression; TF-IDF + SVD, normalised)
and served by mlserver-sklearn, which decodes the BYTES tensor the backend sends. The gate's values equal
scikit-learn's own on the same texts: accuracy of the classifier's predictions, and for the embedder the
cosine similarity and Spearman correlation of its ``transform`` (pairs sent as one tensor).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.util import find_spec

import numpy as np
import pytest
from endpoint_servers import start_mlserver

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.usefixtures("frameworks_imported_once"),
    pytest.mark.skipif(find_spec("mlserver_sklearn") is None, reason="needs mlserver and mlserver-sklearn (dev extra)"),
]

WORDS = {"pos": "good great lovely fine superb".split(), "neg": "bad awful poor dreadful sad".split()}
FILLER = "the a film plot actor scene and it was".split()


def sentences(n: int, seed: int) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        label = ("neg", "pos")[int(rng.integers(0, 2))]
        words = list(rng.choice(FILLER, 5)) + list(rng.choice(WORDS[label], int(rng.integers(1, 3))))
        if rng.random() < 0.15:  # some rows carry the other side's word too: not every answer is right
            words.append(str(rng.choice(WORDS["pos" if label == "neg" else "neg"])))
        rng.shuffle(words)
        out.append((" ".join(words), label))
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    train = sentences(300, seed=1)
    texts = [t for t, _ in train]
    classifier = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(texts, [y for _, y in train])
    embedder = make_pipeline(TfidfVectorizer(), TruncatedSVD(8, random_state=0), Normalizer()).fit(texts)
    folder = tmp_path_factory.mktemp("texts")
    with start_mlserver(folder / "server", {"sentiment": classifier, "embedder": embedder},
                        predict_fn={"embedder": "transform"}) as url:  # fmt: skip
        yield {"url": url, "classifier": classifier, "embedder": embedder}


def run_gate(pytester: pytest.Pytester, gate: str) -> dict:
    (pytester.path / "gates").mkdir(exist_ok=True)
    (pytester.path / "gates" / "g.yaml").write_text(gate, encoding="utf-8")
    pytester.runpytest_subprocess("--modelcheck", "--modelcheck-report", "out.json")
    return json.loads((pytester.path / "out.json").read_text())["gates"][0]


def test_a_served_text_classifier_equals_scikit_learn(pytester: pytest.Pytester, served: dict) -> None:
    from sklearn.metrics import accuracy_score, f1_score

    rows = sentences(120, seed=7)
    lines = ["text,label", *(f"{t},{y}" for t, y in rows)]
    (pytester.path / "gates").mkdir()
    (pytester.path / "gates" / "reviews.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    gate = run_gate(pytester, f"""\
version: 1
model: {{id: sentiment, backend: kserve-v2, url: {served['url']}, task: text-classification, labels: [neg, pos],
        batch_size: 16}}
data: {{source: reviews.csv, input: text, label: label}}
checks:
  - {{name: accuracy, metric: accuracy, min: 0.5}}
  - {{name: f1, metric: f1, average: macro, min: 0.5}}
""")
    checks = {c["name"]: c for c in gate["checks"]}
    predicted = served["classifier"].predict([t for t, _ in rows])
    truth = [y for _, y in rows]
    assert 0.6 < accuracy_score(truth, predicted) < 1.0  # a real model, right and wrong
    assert checks["accuracy"]["value"] == pytest.approx(accuracy_score(truth, predicted), abs=1e-12)
    assert checks["f1"]["value"] == pytest.approx(f1_score(truth, predicted, average="macro"), abs=1e-12)
    assert gate["model"]["endpoint"]["protocol"] == "kserve-v2"


def test_a_served_text_embedder_equals_scikit_learn(pytester: pytest.Pytester, served: dict) -> None:
    from scipy.stats import spearmanr

    rows = sentences(60, seed=9)
    pairs = [(rows[i][0], rows[(i * 7 + 3) % len(rows)][0]) for i in range(len(rows))]
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, len(pairs)).round(3)
    embedder = served["embedder"]
    reference = embedder.transform([t for t, _ in rows])[::-1].copy()  # another text's embedding per row
    (pytester.path / "gates").mkdir()
    np.save(pytester.path / "gates" / "reference.npy", reference.astype(np.float32))
    lines = ["text,a,b,score", *(f"{t},{a},{b},{s}" for (t, _), (a, b), s in zip(rows, pairs, scores, strict=True))]
    (pytester.path / "gates" / "texts.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    head = f"version: 1\nmodel: {{id: embedder, backend: kserve-v2, url: {served['url']}, task: feature-extraction, "
    head += "batch_size: 16}\n"
    single = run_gate(pytester, head + """\
data: {source: texts.csv, input: text}
checks:
  - {name: cosine, metric: cosine_similarity, reference: reference.npy, min: -1}
""")
    mine = embedder.transform([t for t, _ in rows])
    norms = np.linalg.norm(mine, axis=1) * np.linalg.norm(reference, axis=1)
    expected = float(np.mean(np.sum(mine * reference, axis=1) / norms))
    assert single["checks"][0]["status"] == "passed"
    assert single["checks"][0]["value"] == pytest.approx(expected, abs=1e-5)  # float32 on the wire

    paired = run_gate(pytester, head + """\
data: {source: texts.csv, input: [a, b], label: score}
checks:
  - {name: spearman, metric: spearman, min: -1}
""")
    first, second = embedder.transform([a for a, _ in pairs]), embedder.transform([b for _, b in pairs])
    cosine = np.sum(first * second, axis=1) / (np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1))
    assert paired["checks"][0]["value"] == pytest.approx(spearmanr(cosine, scores).statistic, abs=1e-4)
