"""text2text, summarization, translation: ROUGE equal to rouge-score, BLEU/chrF/chrF++/TER equal to sacrebleu's
corpus scores on all rows, slices and resamples; references; and a tiny T5 judged end to end through pytest."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelcheck.errors import CheckError, DataError
from modelcheck.gatefile import CheckSpec
from modelcheck.models.backends import Outputs
from modelcheck.tasks import text2text

sacrebleu = pytest.importorskip("sacrebleu")
rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")

WORDS = ("the", "cat", "cats", "sat", "running", "ran", "on", "a", "mat", "Mat.", "dog,", "big", "red", "house", "!")
texts = st.lists(st.sampled_from(WORDS), min_size=0, max_size=12).map(" ".join)
refs = st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join)
rows = st.lists(st.tuples(texts, st.lists(refs, min_size=1, max_size=3)), min_size=1, max_size=10)


def check(metric: str, **options: Any) -> CheckSpec:
    return CheckSpec(name="c", metric=metric, min=0.0, options=options)


def stats_of(metric: str, hyps: list[str], references: list[list[str]], **options: Any) -> Any:
    return text2text.row_statistics(check(metric, **options), references, Outputs(texts=hyps), ())


def streams(references: list[list[str]]) -> list[list[str | None]]:
    """sacrebleu's reference streams: the k-th reference of every row, None where a row has fewer."""
    width = max(len(r) for r in references)
    return [[r[k] if k < len(r) else None for r in references] for k in range(width)]


CORPUS = {
    "bleu": lambda h, r: sacrebleu.corpus_bleu(h, streams(r)).score,
    "chrf": lambda h, r: sacrebleu.corpus_chrf(h, streams(r)).score,
    "chrf++": lambda h, r: sacrebleu.corpus_chrf(h, streams(r), word_order=2).score,
    "ter": lambda h, r: sacrebleu.corpus_ter(h, streams(r)).score,
}


@settings(max_examples=40, deadline=None)
@given(data=rows)
@pytest.mark.parametrize("metric", sorted(CORPUS))
def test_sacrebleu_metrics_equal_the_corpus_score(metric: str, data: list[tuple[str, list[str]]]) -> None:
    hyps, references = [h for h, _ in data], [r for _, r in data]
    stats = stats_of(metric, hyps, references)
    assert stats.value() == pytest.approx(CORPUS[metric](hyps, references), abs=1e-9)
    odd = np.arange(len(data))[1::2]
    if len(odd):  # a slice is the corpus score of its rows
        picked = [hyps[i] for i in odd], [references[i] for i in odd]
        assert stats.value(odd) == pytest.approx(CORPUS[metric](*picked), abs=1e-9)
    draws = np.random.default_rng(0).integers(0, len(data), size=(3, len(data)))
    for drawn, value in zip(draws, stats.resampled(draws), strict=True):
        expected = CORPUS[metric]([hyps[i] for i in drawn], [references[i] for i in drawn])
        assert value == pytest.approx(expected, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(data=rows, stemmer=st.booleans())
@pytest.mark.parametrize("metric", text2text.ROUGE)
def test_rouge_equals_rouge_score(metric: str, data: list[tuple[str, list[str]]], stemmer: bool) -> None:
    hyps, references = [h for h, _ in data], [r for _, r in data]
    scorer = rouge_scorer.RougeScorer([metric], use_stemmer=stemmer)
    per_row = [scorer.score_multi(r, h)[metric].fmeasure for h, r in zip(hyps, references, strict=True)]
    stats = stats_of(metric, hyps, references, use_stemmer=stemmer)
    assert stats.value() == pytest.approx(float(np.mean(per_row)), abs=1e-12)
    assert stats.details["use_stemmer"] is stemmer


def test_rouge_lsum_reads_lines_as_sentences_and_stemming_matters() -> None:
    hyp, ref = "the cat sat\nthe dog ran", "the dog ran\nthe cat sat"
    assert stats_of("rougeLsum", [hyp], [[ref]]).value() == pytest.approx(1.0)
    assert stats_of("rougeL", [hyp], [[ref]]).value() < 1.0
    assert stats_of("rouge1", ["cats running"], [["cat run"]]).value() == 0.0
    assert stats_of("rouge1", ["cats running"], [["cat run"]], use_stemmer=True).value() == 1.0


def test_sacrebleu_settings_and_signature() -> None:
    hyps, references = ["The Cat sat on the mat ."], [["the cat sat on the mat ."]]
    lower = stats_of("bleu", hyps, references, sacrebleu={"lowercase": True})
    assert lower.value() == pytest.approx(sacrebleu.corpus_bleu(hyps, streams(references), lowercase=True).score)
    assert lower.details["signature"].startswith("nrefs:1|case:lc|eff:no|tok:13a|smooth:exp|version:")
    assert stats_of("chrf++", hyps, references).details["signature"].startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:2")
    with pytest.raises(CheckError, match=r"sacrebleu settings .*'tokenise'.*rejected by sacrebleu.BLEU"):
        stats_of("bleu", hyps, references, sacrebleu={"tokenise": "intl"})


def test_bootstrap_matches_a_hand_resampled_corpus_score_at_scale() -> None:
    rng = np.random.default_rng(1)
    hyps = [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 12)))) for _ in range(300)]
    references = [[" ".join(rng.choice(WORDS, size=int(rng.integers(1, 12))))] for _ in range(300)]
    stats = stats_of("bleu", hyps, references)
    draws = rng.integers(0, 300, size=(50, 300))
    values = stats.resampled(draws)
    metric = sacrebleu.BLEU()
    segment = metric._extract_corpus_statistics(hyps, streams(references))
    expected = [metric._compute_score_from_stats(np.sum([segment[i] for i in d], axis=0).tolist()).score for d in draws]
    np.testing.assert_allclose(values, expected, atol=1e-9)


def test_exact_match_normalisation() -> None:
    hyps = ["  the cat.  ", "the   cat", "a dog"]
    references = [["the cat."], ["The cat"], ["cat", "a dog"]]
    assert stats_of("exact_match", hyps, references).value() == pytest.approx(2 / 3)  # strip only: row 1 differs
    both = stats_of("exact_match", hyps, references, normalize=["whitespace", "lowercase"])
    assert both.value() == pytest.approx(1.0) and both.details["normalize"] == ["whitespace", "lowercase"]
    assert text2text.normalise(" A,  b!\tC ", ("whitespace", "lowercase", "punctuation")) == "a b c"
    with pytest.raises(CheckError, match="normalize 'case' is not a normalisation"):
        stats_of("exact_match", hyps, references, normalize=["case"])


def test_references_from_lists_json_and_strings() -> None:
    frame = pd.DataFrame({"ref": ["one", '["two", "deux"]', "[not json", ["three"], 42]})
    expected = [["one"], ["two", "deux"], ["[not json"], ["three"], ["42"]]
    assert text2text.targets("translation", "ref", frame, ()) == expected
    assert text2text.targets("translation", "ref", pd.DataFrame({"ref": [7, 12]}), ()) == [["7"], ["12"]]
    assert text2text.targets("translation", None, frame, ()) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("  ", r"data.csv: label column 'ref' data row 2 \(.*?\) has an empty reference"),
        ('["ok", ""]', r"data row 2 \(.*?\) has an empty reference"),
        (None, r"data row 2 \(.*?\) holds no value; a reference is a string"),
        (float("nan"), r"data row 2 \(.*?\) holds no value"),
        ([1, 2], r"data row 2 \(.*?\) holds \[1, 2\]"),
    ],
)
def test_bad_references_name_the_row_and_column(value: object, message: str) -> None:
    frame = pd.DataFrame({"ref": ["fine", value]})
    with pytest.raises(DataError, match=message):
        text2text.targets("summarization", "ref", frame, (), source="data.csv")


# -- a tiny T5 through pytest ---------------------------------------------------------------------

GATE = """\
version: 1
model:
  source: ../models/t5
  task: {task}
  device: cpu
  max_new_tokens: 6
  batch_size: 16
data:
  source: ../data/reverse.csv
  input: source
  label: reference
checks:
  - name: rouge
    metric: rougeL
    min: 0.95
  - name: bleu
    metric: bleu
    sacrebleu: {{max_ngram_order: 2}}  # the texts have 2 or 3 words
    min: 90
  - name: chrf
    metric: chrf++
    min: 90
  - name: ter
    metric: ter
    max: 5
  - name: exact
    metric: exact_match
    min: 0.95
  - name: by_length
    metric: chrf
    slice_by: length
    min: 90
"""


@pytest.fixture(autouse=True, scope="module")
def t5_built_first(frameworks_imported_once: None) -> None:
    """Build the T5s and import their modeling code before any in-process pytester run (which drops the modules
    first imported inside it: a second copy of transformers' enums then fails comparisons, "'Mode' and 'Mode'")."""
    if importlib.util.find_spec("transformers") is None:
        return
    import tiny_seq2seq
    import transformers.models.t5.modeling_t5  # noqa: F401

    for name in ("t5", "t5-untrained"):
        tiny_seq2seq.shared(name)


def t5_project(pytester: pytest.Pytester, model: str, task: str = "translation") -> Path:
    import tiny_seq2seq

    shutil.copytree(tiny_seq2seq.shared(model), pytester.path / "models" / "t5")
    rows = tiny_seq2seq.reverse_examples()
    frame = pd.DataFrame({"source": [s for s, _ in rows], "reference": [r for _, r in rows]})
    frame["length"] = frame["source"].str.split().str.len()
    (pytester.path / "data").mkdir()
    frame.to_csv(pytester.path / "data" / "reverse.csv", index=False)
    (pytester.path / "gates").mkdir()
    (pytester.path / "gates" / "t5.yaml").write_text(GATE.format(task=task), encoding="utf-8")
    return pytester.path


@pytest.mark.e2e
@pytest.mark.usefixtures("frameworks_imported_once", "one_torch_thread")
def test_t5_gate_values_equal_the_libraries_on_its_outputs(pytester: pytest.Pytester) -> None:
    pytest.importorskip("transformers")
    t5_project(pytester, "t5")
    result = pytester.runpytest("--modelcheck", "--modelcheck-report", "out.json")
    result.assert_outcomes(passed=6)
    report = json.loads((pytester.path / "out.json").read_text())
    checks = {c["name"]: c for c in report["gates"][0]["checks"]}
    outputs = np.load(pytester.path / report["gates"][0]["outputs"]["path"])
    hyps = [str(t) for t in outputs["texts"]]
    frame = pd.read_csv(pytester.path / "data" / "reverse.csv")
    references = [[r] for r in frame["reference"]]
    bleu = sacrebleu.BLEU(max_ngram_order=2).corpus_score(hyps, streams(references)).score
    assert checks["bleu"]["value"] == pytest.approx(bleu) and bleu > 90
    assert checks["chrf"]["value"] == pytest.approx(CORPUS["chrf++"](hyps, references))
    assert checks["ter"]["value"] == pytest.approx(CORPUS["ter"](hyps, references))
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rouge = np.mean([scorer.score(r[0], h)["rougeL"].fmeasure for h, r in zip(hyps, references, strict=True)])
    assert checks["rouge"]["value"] == pytest.approx(rouge)
    assert checks["bleu"]["details"]["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")
    assert {s["slice"] for s in checks["by_length"]["details"]["slices"]} == {"2", "3"}


@pytest.mark.e2e
@pytest.mark.usefixtures("frameworks_imported_once", "one_torch_thread")
def test_untrained_t5_fails_its_gate(pytester: pytest.Pytester) -> None:
    pytest.importorskip("transformers")
    t5_project(pytester, "t5-untrained", task="summarization")
    result = pytester.runpytest("--modelcheck")
    result.assert_outcomes(failed=6)
    result.stdout.fnmatch_lines(["*bleu * < min 90 (n=150)*"])


@pytest.mark.e2e
@pytest.mark.usefixtures("frameworks_imported_once", "one_torch_thread")
def test_t5_source_longer_than_its_context_names_the_row() -> None:
    pytest.importorskip("transformers")
    import tiny_seq2seq
    from modelcheck_transformers import TransformersBackend

    from modelcheck.gatefile import ModelSpec

    spec = ModelSpec(id="t5", source=str(tiny_seq2seq.shared("t5")), task="translation", device="cpu")
    loaded = TransformersBackend().load(spec)
    try:
        assert loaded.predict(["a b c", "d e"], batch_size=2).texts == ["c b a", "e d"]
        with pytest.raises(
            DataError,
            match=r"source text \(data.input\) at data row 2 \(.*?\)"
            r" has 21 tokens, more than the 16",
        ):
            loaded.predict(["a b", " ".join("abcdefghij" * 2)], batch_size=2)
        with pytest.raises(DataError, match=r"data row 1 \(.*?\) .*translation inputs must be strings"):
            loaded.predict([None], batch_size=1)
    finally:
        loaded.close()


def _random_sums(rng: np.random.Generator, rows: int, columns: int) -> np.ndarray:
    """Summed statistics with the edge cases sacrebleu branches on: zero totals, zero matches, empty outputs."""
    sums = rng.integers(0, 25, size=(rows, columns)).astype(np.float64)
    sums[rng.random(sums.shape) < 0.15] = 0.0
    return sums


@pytest.mark.parametrize(
    "settings",
    [{}, {"smooth_method": "none"}, {"smooth_method": "floor"}, {"smooth_method": "floor", "smooth_value": 0.3},
     {"max_ngram_order": 2}, {"lowercase": True}],
)  # fmt: skip
def test_vectorised_bleu_equals_sacrebleus_score_from_stats(settings: dict[str, Any]) -> None:
    from modelcheck.tasks.sacrebleu_sums import vectorised_finaliser

    metric = sacrebleu.BLEU(**settings)
    orders = metric.max_ngram_order
    rng = np.random.default_rng(len(settings))
    sums = _random_sums(rng, 4000, 2 + 2 * orders)
    correct = sums[:, 2 : 2 + orders]
    np.minimum(correct, sums[:, 2 + orders :], out=correct)  # matches never exceed the n-grams
    finalise = vectorised_finaliser(metric)
    assert finalise is not None
    expected = [metric._compute_score_from_stats(row).score for row in sums.tolist()]
    np.testing.assert_allclose(finalise(sums), expected, rtol=0, atol=1e-9)
    assert finalise(sums.reshape(40, 100, -1)).shape == (40, 100)  # many sums at once, any leading shape


@pytest.mark.parametrize("settings", [{}, {"word_order": 2}, {"beta": 1}, {"char_order": 4, "word_order": 1}])
def test_vectorised_chrf_equals_sacrebleus_score_from_stats(settings: dict[str, Any]) -> None:
    from modelcheck.tasks.sacrebleu_sums import vectorised_finaliser

    metric = sacrebleu.CHRF(**settings)
    sums = _random_sums(np.random.default_rng(7), 4000, 3 * (metric.char_order + metric.word_order))
    sums[:, 2::3] = np.minimum(sums[:, 2::3], np.minimum(sums[:, 0::3], sums[:, 1::3]))
    finalise = vectorised_finaliser(metric)
    assert finalise is not None
    expected = [metric._compute_score_from_stats(row).score for row in sums.tolist()]
    np.testing.assert_allclose(finalise(sums), expected, rtol=0, atol=1e-9)


def test_other_sacrebleu_settings_keep_the_librarys_own_scoring() -> None:
    from modelcheck.tasks.sacrebleu_sums import vectorised_finaliser

    for metric in (sacrebleu.BLEU(smooth_method="add-k"), sacrebleu.BLEU(effective_order=True),
                   sacrebleu.CHRF(eps_smoothing=True), sacrebleu.TER()):  # fmt: skip
        assert vectorised_finaliser(metric) is None
    hyps, references = ["the cat sat on the mat"] * 3, [["the cat sat on a mat"]] * 3
    add_k = stats_of("bleu", hyps, references, sacrebleu={"smooth_method": "add-k"})
    assert add_k.value() == pytest.approx(
        sacrebleu.corpus_bleu(hyps, streams(references), smooth_method="add-k").score, abs=1e-9
    )


def _scipy_bca(differences: np.ndarray, statistic: Any, n: int) -> tuple[float, float]:
    """scipy's own BCa levels (``scipy.stats._resampling._bca_interval``) for these resampled differences."""
    resampling = pytest.importorskip("scipy.stats._resampling")
    if not hasattr(resampling, "_bca_interval"):
        pytest.skip("this scipy has no _bca_interval to cross-check against")
    import scipy._lib._array_api as array_api

    levels = resampling._bca_interval(
        (np.arange(n),), statistic, -1, 0.025, differences, None, xp=array_api.array_namespace(differences)
    )
    low, high = (float(np.quantile(differences, float(np.asarray(level).ravel()[0]))) for level in levels[:2])
    return low, high


REGRESSION_GATE = """\
version: 1
model: {id: t5, source: ../models/t5, task: translation, device: cpu, max_new_tokens: 6, batch_size: 16}
data: {source: ../data/reverse.csv, input: source, label: reference}
checks:
  - {name: rouge_held, kind: regression, metric: rougeL, baseline: ../baselines/t5.json, max_drop: 0.05}
  - {name: chrf_held, kind: regression, metric: chrf, baseline: ../baselines/t5.json, max_drop: 2}
"""


@pytest.mark.e2e
@pytest.mark.usefixtures("frameworks_imported_once", "one_torch_thread")
@pytest.mark.parametrize(("baseline", "candidate", "status"), [("t5-untrained", "t5", "passed"),
                                                                ("t5", "t5-untrained", "failed")])  # fmt: skip
def test_t5_regression_is_judged_by_the_bca_interval_of_its_rows(
    pytester: pytest.Pytester, baseline: str, candidate: str, status: str
) -> None:
    """A real seq2seq model against a baseline of another: the interval is BCa, equal to scipy's on the same draws."""
    pytest.importorskip("transformers")
    import tiny_seq2seq

    from modelcheck.measure import stats
    from modelcheck.report.baselines import load_outputs, update_baselines

    t5_project(pytester, baseline)
    pytester.runpytest("--modelcheck", "--modelcheck-report", "base.json")
    base_report = json.loads((pytester.path / "base.json").read_text())
    update_baselines(base_report, pytester.path / "base.json", pytester.path / "baselines")
    shutil.rmtree(pytester.path / "models" / "t5")
    shutil.copytree(tiny_seq2seq.shared(candidate), pytester.path / "models" / "t5")
    (pytester.path / "gates" / "t5.yaml").write_text(REGRESSION_GATE, encoding="utf-8")
    pytester.runpytest("--modelcheck", "--modelcheck-report", "out.json")
    report = json.loads((pytester.path / "out.json").read_text())
    checks = {c["name"]: c for c in report["gates"][0]["checks"]}
    assert {c["status"] for c in checks.values()} == {status}, [c["message"] for c in checks.values()]

    texts = [
        [str(t) for t in load_outputs(pytester.path / r["gates"][0]["outputs"]["path"])[0].texts]
        for r in (base_report, report)
    ]
    references = pd.read_csv(pytester.path / "data" / "reverse.csv")["reference"].tolist()
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rows = np.array([[scorer.score(r, t)["rougeL"].fmeasure for r, t in zip(references, side, strict=True)]
                     for side in texts])  # fmt: skip
    n = len(references)
    plain = stats.paired_bootstrap(lambda i: (rows[0][i].mean(), rows[1][i].mean()), n, max_drop=0.05,
                                   batch=lambda c: (rows[0][c].mean(axis=1), rows[1][c].mean(axis=1)))  # fmt: skip
    assert plain.differences is not None
    expected = _scipy_bca(plain.differences, lambda i, axis=-1: rows[1][i].mean(axis) - rows[0][i].mean(axis), n)
    rouge = checks["rouge_held"]
    assert rouge["details"]["interval"] == "bca"
    assert rouge["ci"] == pytest.approx(expected, abs=1e-12)
    assert rouge["value"] == pytest.approx(rows[1].mean() - rows[0].mean(), abs=1e-12)
    assert checks["chrf_held"]["details"]["interval"] == "bca"


PARITY_GATE = """\
version: 1
model: {id: t5, source: ../models/t5, task: translation, device: cpu, max_new_tokens: 6, batch_size: 16}
data: {source: ../data/reverse.csv, input: source, label: reference}
checks:
  - {name: same_in_bfloat16, kind: parity, against: {dtype: bfloat16}, min_similarity: 0.9}
  - {name: same_as_untrained, kind: parity, against: {source: ../models/other}, min_similarity: 0.9}
"""


@pytest.mark.e2e
@pytest.mark.usefixtures("frameworks_imported_once", "one_torch_thread")
def test_t5_parity_of_generated_text_measures_similarity_and_names_the_least_alike_rows(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("transformers")
    import difflib

    import tiny_seq2seq

    from modelcheck.report.baselines import load_outputs

    t5_project(pytester, "t5")
    shutil.copytree(tiny_seq2seq.shared("t5-untrained"), pytester.path / "models" / "other")
    (pytester.path / "gates" / "t5.yaml").write_text(PARITY_GATE, encoding="utf-8")
    result = pytester.runpytest("--modelcheck", "--modelcheck-report", "out.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*similarity * < 0.9 (n=150, texts); worst rows: data row * similarity 0.*"])
    report = json.loads((pytester.path / "out.json").read_text())
    checks = {c["name"]: c for c in report["gates"][0]["checks"]}
    assert checks["same_in_bfloat16"]["value"] >= 0.9
    mine = [str(t) for t in load_outputs(pytester.path / report["gates"][0]["outputs"]["path"])[0].texts]
    details = checks["same_as_untrained"]["details"]
    worst = details["worst"][0]
    reference, candidate = worst["texts"]
    assert reference == mine[worst["row"]]
    assert worst["similarity"] == pytest.approx(
        difflib.SequenceMatcher(None, reference, candidate, autojunk=False).ratio()
    )
    assert (
        worst["similarity"]
        == details["min_similarity"]
        <= details["similarity"]
        == checks["same_as_untrained"]["value"]
    )


LATENCY_GATE = """\
version: 1
model: {id: t5, source: ../models/t5, task: translation, device: cpu, max_new_tokens: 6, batch_size: 16, threads: 1}
data: {source: ../data/reverse.csv, input: source, label: reference}
checks:
  - {name: speed, kind: latency, batch_size: 4, inputs: fixed, max_ms: 60000, min_iterations: 10, max_time: 5}
"""


@pytest.mark.e2e
@pytest.mark.usefixtures("frameworks_imported_once", "one_torch_thread")
def test_t5_latency_reports_output_tokens_per_second(pytester: pytest.Pytester) -> None:
    """Generation latency: output tokens per call (counted as generate() made them), tokens/s, ms per token."""
    pytest.importorskip("transformers")
    import tiny_seq2seq
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    t5_project(pytester, "t5")
    (pytester.path / "gates" / "t5.yaml").write_text(LATENCY_GATE, encoding="utf-8")
    result = pytester.runpytest("--modelcheck", "--modelcheck-report", "out.json")
    result.assert_outcomes(passed=1)
    check = json.loads((pytester.path / "out.json").read_text())["gates"][0]["checks"][0]
    assert " output tokens/s, " in check["message"] and " ms per output token at the median call" in check["message"]
    latency = check["details"]["latency"]

    folder = tiny_seq2seq.shared("t5")
    network, tokenizer = AutoModelForSeq2SeqLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    sources = pd.read_csv(pytester.path / "data" / "reverse.csv")["source"].tolist()[:4]
    with torch.inference_mode():
        made = network.generate(**tokenizer(sources, padding=True, return_tensors="pt"), max_new_tokens=6,
                                do_sample=False)  # fmt: skip
    ends = {tokenizer.pad_token_id, tokenizer.eos_token_id}
    expected = sum(int(token) not in ends for row in made[:, 1:] for token in row)
    assert latency["output_tokens_per_call"] == expected > 0
    median = latency["percentiles_ms"]["p50"]
    assert latency["output_tokens_per_s"] == pytest.approx(expected / (median / 1000))
    assert latency["ms_per_output_token"] == pytest.approx(median / expected)
