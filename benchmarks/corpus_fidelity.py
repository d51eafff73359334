"""Does the paired bootstrap hold its promise for corpus metrics? False-pass rate at the margin, per metric.

A corpus metric (entity F1, BLEU, chrF, micro F1) is a function of sums of per-row statistics, not a
mean of per-row scores, and its bootstrap resamples those statistics (:mod:`modelcheck.tasks.base`);
the interval is the BCa interval (the percentile interval corrected for bias and skew, its
acceleration from the rows left out in turn). This script checks what a `kind: regression` gate
promises: a candidate whose *true* drop is exactly ``max_drop`` passes at most 5% of the time. The
column "percentile" is the same simulation judged by the plain percentile interval, for comparison.

For each metric a population of 20,000 rows is generated (synthetic sentences, tags, label sets and
answers) and scored by the task family's own code (seqeval, sacrebleu, rouge-score, scikit-learn
formulas through ``row_statistics``) for a good and a worse model. The candidate is the good model on
every row but the first k of a fixed random order, where it is the worse one: k is the smallest
number whose population metric drops by at least ``max_drop`` (the "true" drop is the metric on the
whole population). Each simulation draws n rows from the population and runs the gate's test
(``modelcheck.measure.stats.paired_bootstrap`` over the rows' statistics, 2,000 resamples, seed 0,
confidence 0.95: the code path of ``checks.regression``; :func:`same_as_the_gate` checks that the
interval is identical to the one the check computes from the models' outputs). Power: the pass rate
when the true drop is half the margin, and when there is none.

Also times the bootstrap (2,000 resamples) of each metric at 10,000 rows, with the time the
library takes to compute the per-row statistics for both models.

    python benchmarks/corpus_fidelity.py --quick   # n 500, 400 simulations per cell: a few minutes
    python benchmarks/corpus_fidelity.py           # n 500 and 2,000, 1,000 simulations per cell
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelcheck.gatefile import CheckSpec
from modelcheck.models.backends import Outputs
from modelcheck.tasks import family
from modelcheck.tasks.base import RowStatistics, row_counts

POPULATION = 20_000
RESAMPLES = 2000
ENTITY_TYPES = ("PER", "LOC", "ORG")
VOCABULARY = np.array([f"w{i}" for i in range(1500)])
ZIPF = 1.0 / np.arange(1, len(VOCABULARY) + 1)
ZIPF /= ZIPF.sum()


@dataclass
class Case:
    """One metric's gate: its check, task, targets and the two models' outputs on the population."""

    name: str
    task: str
    check: CheckSpec
    targets: object
    good: Outputs
    worse: Outputs
    labels: tuple[str, ...] = ()
    #: An error rate (WER): simulated as its negation, which the bootstrap (percentile and BCa) judges alike.
    lower_is_better: bool = False


def _check(metric: str, max_drop: float, **options: object) -> CheckSpec:
    return CheckSpec(name=metric, kind="regression", metric=metric, max_drop=max_drop, baseline="", options=options)


# -- populations -----------------------------------------------------------------------------------


def _sentence_tags(rng: np.random.Generator) -> list[str]:
    tags: list[str] = []
    length = int(rng.integers(6, 21))
    while len(tags) < length:
        if rng.random() < 0.15:
            kind = ENTITY_TYPES[int(rng.integers(0, 3))]
            span = int(rng.integers(1, 4))
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (span - 1)
        else:
            tags.append("O")
    return tags[:length]


def _tagger(truth: list[str], quality: float, rng: np.random.Generator) -> list[str]:
    """A model's tags: each true entity kept with probability ``quality``, else dropped, retyped or cut."""
    guess = ["O"] * len(truth)
    i = 0
    while i < len(truth):
        if truth[i].startswith("B-"):
            end = i + 1
            while end < len(truth) and truth[end].startswith("I-"):
                end += 1
            kind = truth[i][2:]
            fate = rng.random()
            if fate < quality:
                guess[i:end] = truth[i:end]
            elif fate < quality + (1 - quality) / 3:
                other = ENTITY_TYPES[(ENTITY_TYPES.index(kind) + 1) % 3]
                guess[i:end] = [f"B-{other}"] + [f"I-{other}"] * (end - i - 1)
            elif fate < quality + 2 * (1 - quality) / 3 and end - i > 1:
                guess[i : end - 1] = [f"B-{kind}"] + [f"I-{kind}"] * (end - i - 2)
            i = end
        else:
            if rng.random() < (1 - quality) * 0.05:
                guess[i] = f"B-{ENTITY_TYPES[int(rng.integers(0, 3))]}"
            i += 1
    return guess


def _entity_f1(rng: np.random.Generator) -> Case:
    truth = [_sentence_tags(rng) for _ in range(POPULATION)]
    good = [_tagger(t, 0.9, rng) for t in truth]
    worse = [_tagger(t, 0.75, rng) for t in truth]
    return Case("entity f1 (micro)", "token-classification", _check("f1", 0.02), truth,
                Outputs(tags=good), Outputs(tags=worse))  # fmt: skip


def _words(rng: np.random.Generator, count: int) -> list[str]:
    return list(rng.choice(VOCABULARY, size=count, p=ZIPF))


def _paraphrase(reference: list[str], keep: float, rng: np.random.Generator) -> str:
    out = [word if rng.random() < keep else str(rng.choice(VOCABULARY, p=ZIPF)) for word in reference]
    if rng.random() < 0.3:
        del out[int(rng.integers(0, len(out)))]
    return " ".join(out)


def _text_cases(rng: np.random.Generator) -> list[Case]:
    references = [_words(rng, int(rng.integers(5, 31))) for _ in range(POPULATION)]
    good = Outputs(texts=[_paraphrase(r, 0.8, rng) for r in references])
    worse = Outputs(texts=[_paraphrase(r, 0.65, rng) for r in references])
    targets = [[" ".join(r)] for r in references]
    task = "translation"
    return [
        Case("bleu", task, _check("bleu", 1.0), targets, good, worse),
        Case("chrf", task, _check("chrf", 1.0), targets, good, worse),
        Case("rougeL", "summarization", _check("rougeL", 0.01), targets, good, worse),
    ]


def _multilabel(rng: np.random.Generator) -> Case:
    labels = tuple(f"l{i}" for i in range(8))
    truth = rng.random((POPULATION, len(labels))) < np.linspace(0.05, 0.4, len(labels))

    def model(flip: float) -> Outputs:
        return Outputs(multi_labels=truth ^ (rng.random(truth.shape) < flip))

    return Case("multi-label f1 (micro)", "multi-label-classification", _check("f1", 0.02), truth,
                model(0.08), model(0.13), labels)  # fmt: skip


def _squad(rng: np.random.Generator) -> Case:
    gold = [" ".join(_words(rng, int(rng.integers(1, 6)))) for _ in range(POPULATION)]

    def answer(text: str, right: float) -> str:
        words = text.split()
        fate = rng.random()
        if fate < right:
            return text
        if fate < right + (1 - right) / 2:  # partly right: one word missing or one extra
            return " ".join(words[1:] or _words(rng, 1)) if rng.random() < 0.5 else " ".join([*words, *_words(rng, 1)])
        return " ".join(_words(rng, len(words)))

    return Case("squad f1", "question-answering", _check("f1", 0.02), [[g] for g in gold],
                Outputs(texts=[answer(g, 0.7) for g in gold]), Outputs(texts=[answer(g, 0.55) for g in gold]))  # fmt: skip


def _transcribe(words: list[str], error: float, rng: np.random.Generator) -> str:
    """A transcript with substitutions (rate ``error``), deletions and insertions (a third of it each)."""
    out = []
    for word in words:
        fate = rng.random()
        if fate < error:
            out.append(str(rng.choice(VOCABULARY, p=ZIPF)))
        elif fate >= error + error / 3:
            out.append(word)
        if rng.random() < error / 3:
            out.append(str(rng.choice(VOCABULARY, p=ZIPF)))
    return " ".join(out)


def _wer(rng: np.random.Generator) -> Case:
    spoken = [_words(rng, int(rng.integers(4, 21))) for _ in range(POPULATION)]
    good = Outputs(texts=[_transcribe(w, 0.08, rng) for w in spoken])
    worse = Outputs(texts=[_transcribe(w, 0.16, rng) for w in spoken])
    return Case("wer (jiwer)", "automatic-speech-recognition", _check("wer", 0.01), [" ".join(w) for w in spoken],
                good, worse, lower_is_better=True)  # fmt: skip


def cases(names: tuple[str, ...] | None = None) -> list[Case]:
    rng = np.random.default_rng(2026)
    made = [_entity_f1(rng), *_text_cases(rng), _multilabel(rng), _squad(rng), _wer(rng)]
    return [c for c in made if names is None or c.name.split()[0] in names]


# -- the simulation --------------------------------------------------------------------------------


def statistics(case: Case, outputs: Outputs) -> RowStatistics:
    module = family(case.task)
    assert module is not None
    stats: RowStatistics = module.row_statistics(case.check, case.targets, outputs, case.labels)
    if case.lower_is_better:
        finalise = stats.finalise
        return RowStatistics(stats.stats, lambda sums: -finalise(sums), stats.details)
    return stats


def candidate_rows(good: RowStatistics, worse: RowStatistics, drop: float, order: np.ndarray) -> int:
    """The smallest k such that the worse model on the first k rows of ``order`` drops the metric by >= ``drop``."""
    base = good.stats.sum(axis=0)
    path = base + np.cumsum(worse.stats[order] - good.stats[order], axis=0)
    change = good.finalise(base[None, :]) - good.finalise(path)
    reached = np.flatnonzero(change >= drop - 1e-12)
    if not len(reached):
        raise SystemExit(f"the worse model drops the metric by only {change[-1]:.4g}, less than {drop}")
    return int(reached[0]) + 1


def mixed(
    good: RowStatistics, worse: RowStatistics, order: np.ndarray, k: int
) -> Callable[[np.ndarray], RowStatistics]:
    """The candidate's statistics on given rows: the worse model's on the first ``k`` rows of ``order``."""
    stats = good.stats.copy()
    stats[order[:k]] = worse.stats[order[:k]]
    return lambda rows: RowStatistics(stats[rows], good.finalise)


def gate_test(base: RowStatistics, cand: RowStatistics, max_drop: float, *, percentile: bool = False) -> Any:
    """The regression check's bootstrap on two models' row statistics (as ``checks.regression._compare``)."""
    from modelcheck.measure import stats

    def batch(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        counts = row_counts(chunk, len(base))
        return base.weighted(counts), cand.weighted(counts)

    return stats.paired_bootstrap(
        lambda rows: (base.value(rows), cand.value(rows)), len(base), max_drop=max_drop, resamples=RESAMPLES,
        batch=batch, jackknife=None if percentile else lambda: (base.left_out(), cand.left_out()),
    )  # fmt: skip


def pass_rates(
    good: RowStatistics, cand: RowStatistics, n: int, sims: int, max_drop: float, seed: int
) -> tuple[float, float]:
    """How often the gate passes a sample of ``n`` population rows (BCa interval), and the percentile interval alone."""
    rng = np.random.default_rng(seed)
    gate = percentile = 0
    for _ in range(sims):
        rows = rng.integers(0, len(good), n)
        result = gate_test(RowStatistics(good.stats[rows], good.finalise), RowStatistics(cand.stats[rows], cand.finalise),
                           max_drop)  # fmt: skip
        gate += bool(result.passed)
        percentile += bool(np.quantile(result.differences, 0.025) > -max_drop)
    return gate / sims, percentile / sims


def band(rate: float, sims: int) -> float:
    """Two Monte Carlo standard errors of a pass rate (of 5% where the rate is lower)."""
    return float(2 * (max(rate, 0.05) * (1 - max(rate, 0.05)) / sims) ** 0.5)


def same_as_the_gate(case: Case, good: RowStatistics, mixed: Callable[[np.ndarray], RowStatistics], k: int,
                     order: np.ndarray) -> None:  # fmt: skip
    """The interval computed here equals the regression check's own on the models' outputs (500 rows)."""
    from modelcheck.checks.regression import _compare

    rows = np.random.default_rng(7).integers(0, POPULATION, 500)
    worse_rows = np.zeros(POPULATION, dtype=bool)
    worse_rows[order[:k]] = True
    chosen = worse_rows[rows]
    base_out = case.good.take(rows)
    worse_out = case.worse.take(rows)
    cand_out = _mix(base_out, worse_out, chosen)
    targets = case.targets[rows] if isinstance(case.targets, np.ndarray) else [case.targets[i] for i in rows]  # type: ignore[index]
    expected = _compare(case.check, targets, base_out, cand_out, case.labels, case.task)
    mine = gate_test(RowStatistics(good.stats[rows], good.finalise), mixed(rows), case.check.max_drop or 0.0)
    ci = (-mine.ci[1], -mine.ci[0]) if case.lower_is_better else mine.ci  # the gate judges the error rate itself
    assert expected.ci is not None and np.allclose(expected.ci, ci, rtol=0, atol=1e-9), (expected.ci, ci)


def _mix(good: Outputs, worse: Outputs, chosen: np.ndarray) -> Outputs:
    if good.multi_labels is not None and worse.multi_labels is not None:
        return Outputs(multi_labels=np.where(chosen[:, None], worse.multi_labels, good.multi_labels))
    if good.tags is not None and worse.tags is not None:
        return Outputs(tags=[w if c else g for g, w, c in zip(good.tags, worse.tags, chosen, strict=True)])
    assert good.texts is not None and worse.texts is not None
    return Outputs(texts=[w if c else g for g, w, c in zip(good.texts, worse.texts, chosen, strict=True)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n 500 only, 400 simulations per cell")
    parser.add_argument("--sims", type=int, default=None, help="simulations per cell")
    parser.add_argument(
        "--metric", action="append", help="only these (entity, bleu, chrf, rougeL, multi-label, squad, wer)"
    )
    args = parser.parse_args()
    sizes = (500,) if args.quick else (500, 2000)
    sims = args.sims or (400 if args.quick else 1000)
    print(f"paired bootstrap, {RESAMPLES} resamples, confidence 0.95; population {POPULATION} rows; {sims} simulations")
    print("false pass: true drop = max_drop (target <= 0.05; +- 2 standard errors), the gate's BCa interval and the")
    print("percentile interval alone; power: the gate's pass rate at a true drop of max_drop/2 and of 0")
    print(f"({max(sims // 4, 50)} simulations each)\n")
    print(f"{'metric':24s} {'max_drop':>8s} {'n':>6s} {'false pass':>14s} {'percentile':>11s} {'pass, drop/2':>13s} "
          f"{'pass, no drop':>14s}")  # fmt: skip
    timing_rows = []
    for case in cases(tuple(args.metric) if args.metric else None):
        start = time.perf_counter()
        good, worse = statistics(case, case.good), statistics(case, case.worse)
        library = time.perf_counter() - start
        order = np.random.default_rng(11).permutation(POPULATION)
        margin = case.check.max_drop or 0.0

        everything = np.arange(POPULATION)
        k_margin, k_half = (candidate_rows(good, worse, d, order) for d in (margin, margin / 2))
        same_as_the_gate(case, good, mixed(good, worse, order, k_margin), k_margin, order)
        for n in sizes:
            at_margin, percentile = pass_rates(
                good, mixed(good, worse, order, k_margin)(everything), n, sims, margin, n
            )
            power = [pass_rates(good, mixed(good, worse, order, k)(everything), n, max(sims // 4, 50), margin, n)[0]
                     for k in (k_half, 0)]  # fmt: skip
            print(f"{case.name:24s} {margin:8g} {n:6d} {at_margin:8.3f} ±{band(at_margin, sims):.3f} {percentile:11.3f} "
                  f"{power[0]:13.3f} {power[1]:14.3f}", flush=True)  # fmt: skip
        timing_rows.append((case.name, library, _bootstrap_time(good, worse)))
    print("\nat 10,000 rows: the library's per-row statistics for both models, and 2,000 resamples of them (s)")
    for name, library, boot in timing_rows:
        print(f"{name:24s} statistics {library * 10_000 / POPULATION:7.2f}   bootstrap {boot:6.2f}")


def _bootstrap_time(good: RowStatistics, worse: RowStatistics) -> float:
    rows = np.arange(10_000)
    base, cand = RowStatistics(good.stats[rows], good.finalise), RowStatistics(worse.stats[rows], worse.finalise)
    start = time.perf_counter()
    gate_test(base, cand, 0.01)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
