"""Does the paired bootstrap hold its promise for COCO mAP? False-pass rate at the margin, and its cost.

mAP ranks every detection of a class across images, so it is not a sum of per-image statistics; a
`kind: regression` check on it runs pycocotools' matching once per model and re-accumulates each
bootstrap resample with the images weighted (:mod:`modelcheck.tasks.coco`), with the BCa interval. This
script checks what the gate promises: a candidate whose *true* drop is exactly ``max_drop`` passes at
most 5% of the time ("percentile": the same simulations judged by the plain percentile interval).

A population of 4,000 synthetic 640x480 scenes (0 to 4 objects of 3 classes) is scored by pycocotools
for two detectors: a good one (finds 85% of objects, tight boxes, few false alarms) and a worse one
(65%, looser boxes, more false alarms). The candidate is the good detector on every image but the
first k of a fixed random order, where it is the worse one: k is the smallest number whose population
mAP drops by at least ``max_drop``. Each simulation draws n images and runs the gate's test
(``modelcheck.measure.stats.paired_bootstrap``, 2,000 resamples, seed 0, confidence 0.95) on those
images' pycocotools matching (:meth:`DetectionStatistics.take`); :func:`same_as_the_gate` checks the
interval equals the regression check's own on the detectors' outputs. Power: the pass rate when the
true drop is half the margin and when there is none. Also times a gate's bootstrap at 500 and 5,000 images.

    python benchmarks/detection_fidelity.py --quick   # n 300, 200 simulations per cell
    python benchmarks/detection_fidelity.py           # n 300 and 1,000, 600 simulations per cell
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from modelcheck.gatefile import CheckSpec
from modelcheck.models.backends import Outputs
from modelcheck.tasks import detection
from modelcheck.tasks.coco import DetectionStatistics

POPULATION = 4000
RESAMPLES = 2000
CLASSES = ("car", "person", "sign")
MAX_DROP = 0.02


def scenes(rng: np.random.Generator, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Boxes (xywh pixels) and classes of ``n`` 640x480 scenes."""
    boxes, labels = [], []
    for _ in range(n):
        m = int(rng.integers(0, 5))
        wh = rng.uniform(20, 200, (m, 2))
        xy = rng.uniform(0, 1, (m, 2)) * (np.array([640.0, 480.0]) - wh)
        boxes.append(np.hstack([xy, wh]))
        labels.append(rng.integers(0, len(CLASSES), m))
    return boxes, labels


def detector(boxes: list[np.ndarray], labels: list[np.ndarray], rng: np.random.Generator, *, found: float,
             jitter: float, false_alarms: float) -> list[np.ndarray]:  # fmt: skip
    """Detections (x1, y1, x2, y2, score, class) of a detector of the given quality on each scene."""
    out = []
    for xywh, classes in zip(boxes, labels, strict=True):
        rows = []
        for (x, y, w, h), c in zip(xywh, classes, strict=True):
            if rng.random() < found:
                dx, dy, dw, dh = rng.normal(0, jitter, 4) * np.array([w, h, w, h])
                score = float(np.clip(rng.beta(5, 2), 0.01, 0.999))
                rows.append([x + dx, y + dy, x + w + dx + dw, y + h + dy + dh, score, c])
        for _ in range(rng.poisson(false_alarms)):
            w, h = rng.uniform(20, 200, 2)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            rows.append([x, y, x + w, y + h, float(rng.beta(2, 4)), rng.integers(0, len(CLASSES))])
        out.append(np.asarray(rows, dtype=np.float64).reshape(-1, 6))
    return out


def candidate_images(good: DetectionStatistics, worse: DetectionStatistics, drop: float, order: np.ndarray) -> int:
    """The smallest k such that the worse detector on the first k images of ``order`` drops mAP by >= ``drop``."""
    base = good.value()
    low, high = 0, len(order)
    while low < high:  # the drop grows with k (up to the noise of one image), so bisect
        middle = (low + high) // 2
        if base - good.replaced(worse, np.isin(np.arange(len(order)), order[:middle])).value() >= drop - 1e-12:
            high = middle
        else:
            low = middle + 1
    return low


def gate_test(base: DetectionStatistics, cand: DetectionStatistics, max_drop: float) -> Any:
    """The regression check's bootstrap on two models' detection statistics (as ``checks.regression._compare``)."""
    from modelcheck.measure import stats
    from modelcheck.tasks.base import row_counts

    def batch(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        counts = row_counts(chunk, len(base))
        return base.weighted(counts), cand.weighted(counts)

    return stats.paired_bootstrap(
        lambda rows: (base.value(rows), cand.value(rows)), len(base), max_drop=max_drop, resamples=RESAMPLES,
        batch=batch, jackknife=lambda: (base.left_out(), cand.left_out()),
    )  # fmt: skip


def pass_rates(
    good: DetectionStatistics, cand: DetectionStatistics, n: int, sims: int, seed: int
) -> tuple[float, float]:
    """How often the gate passes a sample of ``n`` images (BCa interval), and the percentile interval alone."""
    rng = np.random.default_rng(seed)
    gate = percentile = 0
    for _ in range(sims):
        rows = rng.integers(0, POPULATION, n)
        result = gate_test(good.take(rows), cand.take(rows), MAX_DROP)
        gate += bool(result.passed)
        percentile += bool(np.quantile(result.differences, 0.025) > -MAX_DROP)
    return gate / sims, percentile / sims


def same_as_the_gate(truth: Any, good: list[np.ndarray], cand: list[np.ndarray], mine: Any, rows: np.ndarray) -> None:
    """The interval computed here equals the regression check's own on the detectors' outputs."""
    from modelcheck.checks.regression import _compare

    check = CheckSpec(name="map", kind="regression", metric="map", max_drop=MAX_DROP, baseline="")
    expected = _compare(check, truth.take(rows), Outputs(detections=[good[i] for i in rows]),
                        Outputs(detections=[cand[i] for i in rows]), CLASSES, "object-detection")  # fmt: skip
    assert expected.ci is not None and np.allclose(expected.ci, mine.ci, rtol=0, atol=1e-9), (expected.ci, mine.ci)


def band(rate: float, sims: int) -> float:
    """Two Monte Carlo standard errors of a pass rate (of 5% where the rate is lower)."""
    return float(2 * (max(rate, 0.05) * (1 - max(rate, 0.05)) / sims) ** 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n 300 only, 200 simulations per cell")
    parser.add_argument("--sims", type=int, default=None, help="simulations per cell")
    args = parser.parse_args()
    sizes = (300,) if args.quick else (300, 1000)
    sims = args.sims or (200 if args.quick else 600)
    rng = np.random.default_rng(2026)
    boxes, labels = scenes(rng, POPULATION)
    good_out = detector(boxes, labels, rng, found=0.85, jitter=0.04, false_alarms=0.5)
    worse_out = detector(boxes, labels, rng, found=0.65, jitter=0.08, false_alarms=1.0)
    check = CheckSpec(name="map", metric="map", min=0.0)
    truth = detection.GroundTruth(boxes, labels, "objects", "population", "xywh")
    start = time.perf_counter()
    good = detection.row_statistics(check, truth, Outputs(detections=good_out), CLASSES)
    worse = detection.row_statistics(check, truth, Outputs(detections=worse_out), CLASSES)
    matching = time.perf_counter() - start
    order = np.random.default_rng(11).permutation(POPULATION)

    def candidate(k: int) -> DetectionStatistics:
        return good.replaced(worse, np.isin(np.arange(POPULATION), order[:k]))

    k_margin, k_half = (candidate_images(good, worse, d, order) for d in (MAX_DROP, MAX_DROP / 2))
    print(f"population {POPULATION} images: mAP good {good.value():.4f}, worse {worse.value():.4f}; candidate at the "
          f"margin {candidate(k_margin).value():.4f} (worse on {k_margin} images); pycocotools matching of both "
          f"{matching:.1f} s")  # fmt: skip
    rows = np.random.default_rng(7).integers(0, POPULATION, 300)
    cand_out = [worse_out[i] if i in set(order[:k_margin].tolist()) else good_out[i] for i in range(POPULATION)]
    same_as_the_gate(truth, good_out, cand_out, gate_test(good.take(rows), candidate(k_margin).take(rows), MAX_DROP),
                     rows)  # fmt: skip
    print(f"paired bootstrap, {RESAMPLES} resamples, BCa, confidence 0.95, max_drop {MAX_DROP}; {sims} simulations")
    print(
        f"{'metric':10s} {'n':>6s} {'false pass':>14s} {'percentile':>11s} {'pass, drop/2':>13s} {'pass, no drop':>14s}"
    )
    for n in sizes:
        at_margin, percentile = pass_rates(good, candidate(k_margin), n, sims, n)
        power = [pass_rates(good, candidate(k), n, max(sims // 4, 50), n)[0] for k in (k_half, 0)]
        print(f"{'map':10s} {n:6d} {at_margin:8.3f} ±{band(at_margin, sims):.3f} {percentile:11.3f} {power[0]:13.3f} "
              f"{power[1]:14.3f}", flush=True)  # fmt: skip
    print("\na gate's regression check on map: pycocotools matching of both models, then 2,000 resamples + BCa (s)")
    for n in (500, 5000):
        chosen = np.arange(n) % POPULATION
        start = time.perf_counter()
        base = detection.row_statistics(check, truth.take(chosen), Outputs(detections=[good_out[i] for i in chosen]),
                                        CLASSES)  # fmt: skip
        cand = detection.row_statistics(check, truth.take(chosen), Outputs(detections=[worse_out[i] for i in chosen]),
                                        CLASSES)  # fmt: skip
        middle = time.perf_counter()
        gate_test(base, cand, MAX_DROP)
        end = time.perf_counter()
        detections = sum(len(good_out[i]) + len(worse_out[i]) for i in chosen)
        print(f"{n:6d} images, {detections} detections: matching {middle - start:6.2f}   bootstrap {end - middle:6.2f}")


if __name__ == "__main__":
    main()
