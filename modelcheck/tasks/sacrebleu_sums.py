"""sacrebleu's BLEU and chrF scores from summed statistics, for many sums at once.

The statistics are sacrebleu's own (``_extract_corpus_statistics``, one row per segment); turning a
sum of them into a score is ``_compute_score_from_stats``, a Python function of one list. The
bootstrap needs that score for thousands of resampled sums, so this module writes the same
arithmetic over a (..., k) array: sacrebleu's formulas as of 2.x, for the settings listed below,
and tested equal to ``_compute_score_from_stats`` on random and edge-case sums
(tests/test_task_text2text.py). Other settings (BLEU ``add-k`` smoothing or ``effective_order``,
chrF ``eps_smoothing``) and TER keep sacrebleu's own function, called once per sum
(:func:`modelcheck.tasks.text2text.library_finaliser`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelcheck.tasks.base import Finaliser

__all__ = ["vectorised_finaliser"]

#: sacrebleu's ``my_log(0)``: the floor of log for a zero precision.
_LOG_ZERO = -9999999999.0


def vectorised_finaliser(scorer: Any) -> Finaliser | None:
    """The score of ``scorer`` (a sacrebleu BLEU or CHRF) on a (..., k) array of sums, or None for other settings."""
    kind = type(scorer).__name__
    if kind == "BLEU" and scorer.smooth_method in ("exp", "none", "floor") and not scorer.effective_order:
        return _bleu(int(scorer.max_ngram_order), str(scorer.smooth_method), scorer.smooth_value)
    if kind == "CHRF" and not scorer.eps_smoothing:
        return _chrf(int(scorer.char_order) + int(scorer.word_order), float(scorer.beta))
    return None


def _bleu(orders: int, smooth: str, smooth_value: float | None) -> Finaliser:
    floor = 0.1 if smooth_value is None else float(smooth_value)  # sacrebleu's SMOOTH_DEFAULTS["floor"]

    def finalise(sums: np.ndarray) -> np.ndarray:
        sums = np.asarray(sums, dtype=np.float64)
        sys_len, ref_len = sums[..., 0], sums[..., 1]
        correct, total = sums[..., 2 : 2 + orders], sums[..., 2 + orders : 2 + 2 * orders]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            penalty = np.where(sys_len < ref_len, np.where(sys_len > 0, np.exp(1 - ref_len / sys_len), 0.0), 1.0)
            # sacrebleu stops at the first order with no n-grams: that order and the later ones count as 0
            counted = np.cumprod(total > 0, axis=-1).astype(bool)
            zero = correct == 0
            if smooth == "exp":  # each order without a match halves the next smoothed precision
                halvings = np.cumsum(zero & counted, axis=-1)
                smoothed = 100.0 / (2.0**halvings * total)
            elif smooth == "floor":
                smoothed = 100.0 * floor / total
            else:
                smoothed = np.zeros_like(total)
            precision = np.where(zero, smoothed, 100.0 * correct / total)
            precision = np.where(counted, precision, 0.0)
            logs = np.where(precision > 0, np.log(np.where(precision > 0, precision, 1.0)), _LOG_ZERO)
            score = penalty * np.exp(logs.sum(axis=-1) / orders)
        return np.asarray(np.where(correct.any(axis=-1), score, 0.0))  # no match at all: 0 (sacrebleu #141)

    return finalise


def _chrf(orders: int, beta: float) -> Finaliser:
    factor = beta**2

    def finalise(sums: np.ndarray) -> np.ndarray:
        sums = np.asarray(sums, dtype=np.float64)
        n_hyp, n_ref, n_match = (sums[..., i : 3 * orders : 3] for i in range(3))
        both = (n_hyp > 0) & (n_ref > 0)  # sacreBLEU < 2.0 style effective order
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(both, n_match / np.where(n_hyp > 0, n_hyp, 1.0), 0.0)
            recall = np.where(both, n_match / np.where(n_ref > 0, n_ref, 1.0), 0.0)
            effective = both.sum(axis=-1)
            avg_prec = np.where(effective > 0, precision.sum(axis=-1) / np.maximum(effective, 1), 0.0)
            avg_rec = np.where(effective > 0, recall.sum(axis=-1) / np.maximum(effective, 1), 0.0)
            denominator = factor * avg_prec + avg_rec
            score = (1 + factor) * avg_prec * avg_rec / np.where(denominator > 0, denominator, 1.0)
        return np.asarray(np.where(avg_prec + avg_rec > 0, 100.0 * score, 0.0))

    return finalise
