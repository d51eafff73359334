"""Do the regression tests hold their confidence? False-pass rate at the margin and power, per `test:`.

For every cell of a grid of n (examples), max_drop (the margin) and discordance (how many examples
change between baseline and candidate), a candidate is drawn whose *true* accuracy drop is exactly
the margin: a gate at confidence 0.95 may pass it at most 5% of the time (false pass). Then the
power: the pass rate of candidates whose true drop is 1 and 2 points under the margin.

Each example is one of: regressed with probability p10, improved with p01, unchanged otherwise;
p10 - p01 is the true drop. Discordance levels: "one-way" (p01 = 0: every change is a regression),
"sparse" (p01 = 0.002) and "dense" (p01 = 0.05).

- mcnemar and none: exact rates, summed over the trinomial distribution of (regressed, improved);
  mcnemar rejects exactly when Tango's statistic is at most one critical value (computed here
  from modelcheck.measure.noninferiority.largest_tail, the function the test itself uses).
- paired-bootstrap: Monte Carlo, `--sims` candidates per cell (the column "+-" is 2 standard
  errors). The bootstrap of accuracy only sees the counts of regressed / improved rows a resample
  draws, which are multinomial, so it is simulated from those counts (same distribution as the
  index resampling of modelcheck.stats, 2,000 resamples, seed 0). "boot-pct" is the percentile
  interval alone (the verdict before this change), "paired-bootstrap" the verdict now (interval
  and the exact test).

Also times the bootstrap interval of f1 (macro), rmse and accuracy at n = 10,000 (2,000
resamples) against scikit-learn called once per resample.

    python benchmarks/stat_fidelity.py --quick   # n 200 and 1,000, 1,000 sims: about a minute
    python benchmarks/stat_fidelity.py           # n 200, 1,000, 2,000, 10,000, 4,000 sims: 1-2 minutes
    python benchmarks/stat_fidelity.py --corpus  # then the corpus metrics (benchmarks/corpus_fidelity.py)
    python benchmarks/stat_fidelity.py --detection  # then COCO mAP (benchmarks/detection_fidelity.py)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from scipy import stats

from modelcheck.measure.noninferiority import largest_tail, score_statistic

CONFIDENCE = 0.95
ALPHA = 1.0 - CONFIDENCE
RESAMPLES = 2000
DISCORDANCE = {"one-way": 0.0, "sparse": 0.002, "dense": 0.05}


def cells_of(n: int, p10: float, p01: float, eps: float = 1e-13) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (regressed, improved) pair with probability above ``eps``, and its probability."""
    discordant = p10 + p01
    if discordant == 0:
        return np.array([0]), np.array([0]), np.array([1.0])
    lo, hi = (int(x) for x in stats.binom.ppf([eps, 1 - eps], n, discordant))
    bs, cs, ps = [], [], []
    share = p10 / discordant
    for m in range(max(lo - 1, 0), min(hi + 1, n) + 1):
        b = np.arange(m + 1)
        p = stats.binom.pmf(m, n, discordant) * stats.binom.pmf(b, m, share)
        keep = p > eps * 1e-3
        bs.append(b[keep])
        cs.append(m - b[keep])
        ps.append(p[keep])
    return np.concatenate(bs), np.concatenate(cs), np.concatenate(ps)


def mcnemar_rule(n: int, margin: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Whether `test: mcnemar` passes, as a vectorised function of (regressed, improved)."""
    if margin == 0:
        m = np.arange(n + 1)
        # exact McNemar: the largest b per m with P(Binomial(m, 1/2) <= b) < alpha
        limit = np.array([stats.binom.ppf(ALPHA, k, 0.5) if k else -1 for k in m]).astype(int)
        limit = np.where(stats.binom.cdf(limit, m, 0.5) < ALPHA, limit, limit - 1)
        return lambda b, c: b <= limit[b + c]
    low, high = -40.0, 0.0  # bisection for the critical value of the statistic
    for _ in range(45):
        middle = (low + high) / 2
        low, high = (middle, high) if largest_tail(middle, n, margin) < ALPHA else (low, middle)
    critical = low
    return lambda b, c: score_statistic(b, c, n, margin) <= critical


def bootstrap_pass(b: int, c: int, n: int, margin: float, rng: np.random.Generator) -> bool:
    """The percentile interval's verdict (two-sided interval at CONFIDENCE, lower bound > -margin)."""
    counts = rng.multinomial(n, [b / n, c / n, 1 - (b + c) / n], size=RESAMPLES)
    low = np.quantile((counts[:, 1] - counts[:, 0]) / n, ALPHA / 2)
    return bool(low > -margin)


def cell(n: int, margin: float, p01: float, room: float, sims: int, rule: Callable) -> dict[str, float]:
    drop = margin - room
    p10 = p01 + drop
    if p10 < 0:
        p10, p01 = 0.0, -drop
    b, c, p = cells_of(n, p10, p01)
    out = {
        "none": float(np.sum(p * (b - c <= n * margin + 1e-9))),
        "mcnemar": float(np.sum(p * rule(b, c))),
    }
    rng = np.random.default_rng(12345)
    draws = rng.multinomial(n, [p10, p01, 1 - p10 - p01], size=sims)[:, :2]
    pairs, counts = np.unique(draws, axis=0, return_counts=True)
    boot_rng = np.random.default_rng(0)
    pct = both = 0
    for (bb, cc), k in zip(pairs, counts, strict=True):
        passed = bootstrap_pass(int(bb), int(cc), n, margin, boot_rng)
        pct += k * passed
        both += k * (passed and bool(rule(np.array([bb]), np.array([cc]))[0]))
    out["boot-pct"], out["paired-bootstrap"] = pct / sims, both / sims
    return out


def timings() -> None:
    from modelcheck.checks.regression import _compare
    from modelcheck.gatefile import CheckSpec
    from modelcheck.models.backends import Outputs

    rng = np.random.default_rng(0)
    print("\nbootstrap interval, 2,000 resamples (seconds)")
    print(f"{'metric':14s} {'n':>6s} {'numpy':>8s} {'sklearn per resample':>22s}")
    for metric, n in (("f1 (macro)", 400), ("f1 (macro)", 10000), ("rmse", 10000), ("accuracy", 10000)):
        if metric == "rmse":
            targets: np.ndarray = rng.normal(size=n)
            base, cand = Outputs(values=targets + rng.normal(size=n)), Outputs(values=targets + rng.normal(size=n))
            labels: tuple[str, ...] = ("value",)
        else:
            targets = rng.integers(0, 3, n)
            noisy = [np.where(rng.random(n) < 0.9, targets, rng.integers(0, 3, n)) for _ in range(2)]
            base, cand, labels = Outputs(labels=noisy[0]), Outputs(labels=noisy[1]), ("a", "b", "c")
        name = metric.split()[0]
        check = CheckSpec(name="x", kind="regression", metric=name, average="macro" if name == "f1" else None,
                          max_drop=0.01, baseline="")  # fmt: skip
        _compare(check, targets, base, cand, labels)  # warm-up: imports
        start = time.perf_counter()
        _compare(check, targets, base, cand, labels)
        fast = time.perf_counter() - start
        slow = "-"
        if name == "f1" and n == 400:
            import modelcheck.checks.resampled as resampled

            original = resampled.batch_scorer
            resampled.batch_scorer = lambda *args: None  # type: ignore[assignment]
            try:
                start = time.perf_counter()
                _compare(check, targets, base, cand, labels)
                slow = f"{time.perf_counter() - start:.2f}"
            finally:
                resampled.batch_scorer = original
        print(f"{metric:14s} {n:6d} {fast:8.3f} {slow:>22s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n 200 and 1,000, 1,000 sims per cell")
    parser.add_argument("--sims", type=int, default=None, help="Monte Carlo candidates per bootstrap cell")
    parser.add_argument("--corpus", action="store_true", help="also the corpus metrics (corpus_fidelity.py)")
    parser.add_argument("--detection", action="store_true", help="also COCO mAP (detection_fidelity.py)")
    args = parser.parse_args()
    sizes = (200, 1000) if args.quick else (200, 1000, 2000, 10000)
    sims = args.sims or (1000 if args.quick else 4000)
    tests = ("mcnemar", "paired-bootstrap", "boot-pct", "none")
    print(f"confidence {CONFIDENCE}; false pass: true drop = max_drop (target <= {ALPHA:.0%});")
    print("power: true drop 1 / 2 points under max_drop. mcnemar, none exact; bootstraps Monte Carlo")
    print(f"({sims} candidates per cell, +- = 2 standard errors of a 5% rate: {2 * (0.05 * 0.95 / sims) ** 0.5:.3f})\n")
    head = " ".join(f"{t:>24s}" for t in tests)
    print(f"{'n':>6s} {'max_drop':>8s} {'changes':>8s} {head}")
    print(f"{'':>24s} " + " ".join(f"{'false pass / +1 / +2':>24s}" for _ in tests))
    start = time.perf_counter()
    worst = dict.fromkeys(tests, 0.0)
    for n in sizes:
        for margin in (0.0, 0.005, 0.01, 0.03):
            rule = mcnemar_rule(n, margin)
            for label, p01 in DISCORDANCE.items():
                if margin == 0 and p01 == 0:
                    continue  # no change at all: nothing to judge
                rows = [cell(n, margin, p01, room, sims, rule) for room in (0.0, 0.01, 0.02)]
                for t in tests:
                    worst[t] = max(worst[t], rows[0][t])
                shown = " ".join(f"{rows[0][t]:>10.3f} /{rows[1][t]:5.2f} /{rows[2][t]:5.2f}" for t in tests)
                print(f"{n:6d} {margin:8.3f} {label:>8s} {shown}", flush=True)
    print("\nlargest false-pass rate: " + ", ".join(f"{t} {worst[t]:.3f}" for t in tests))
    print(f"grid took {time.perf_counter() - start:.0f} s")
    timings()
    if args.corpus:  # entity F1, BLEU, chrF, ROUGE-L, multi-label F1, SQuAD F1: their own populations
        import sys

        import corpus_fidelity

        print()
        sys.argv = [sys.argv[0], *(["--quick"] if args.quick else [])]
        corpus_fidelity.main()
    if args.detection:  # COCO mAP: pycocotools' matching, resamples re-accumulated with images weighted
        import sys

        import detection_fidelity

        print()
        sys.argv = [sys.argv[0], *(["--quick"] if args.quick else [])]
        detection_fidelity.main()


if __name__ == "__main__":
    main()
