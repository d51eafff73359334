"""The plot that explains each check's verdict, drawn from what the report records (matplotlib, SVG).

One function per check kind returns ``(caption, svg)`` pairs; a kind or a record that holds nothing
to draw returns none (its numbers are in the checks table). Samples are drawn as recorded (at most
:data:`~modelcheck.report.samples.SAMPLE_LIMIT` values each, thinned by rank when the check ran);
a longer list in a hand-made report is thinned the same way here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from modelcheck.report.samples import thin
from modelcheck.view.svg import figure, rc, short, to_svg

__all__ = ["MAX_SLICES", "plots_for", "records", "samples"]

#: Most slices (and confusion-matrix classes) drawn; the worst come first.
MAX_SLICES = 30
CANDIDATE = "#4e79a7"
BASELINE = "#a0a0a0"
PASS = "#59a14f"
FAIL = "#e15759"
BOUND = "#f28e2b"
MUTED = "#c9c9c9"

Plot = tuple[str, str]


def plots_for(check: Mapping[str, Any], prefix: str) -> list[Plot]:
    """The plots of one check (a report record); ``prefix`` makes the SVG ids unique in the page."""
    if check.get("status") in ("not run",):
        return []
    drawer = _KINDS.get(str(check.get("kind")), _metric)
    drawn: list[Plot] = []
    with rc():
        for number, (caption, fig) in enumerate(drawer(check)):
            drawn.append((caption, to_svg(fig, f"{prefix}-{number}")))
    return drawn


# -- metric ---------------------------------------------------------------------------------------


def _metric(check: Mapping[str, Any]) -> list[tuple[str, Any]]:
    details = _mapping(check.get("details"))
    threshold = _numbers(check.get("threshold"))
    out: list[tuple[str, Any]] = []
    slices = [s for s in records(details.get("slices")) if _number(s.get("value")) is not None]
    if slices:
        out.append(("value per slice against the bound; hatched slices are under min_samples (reported, not judged)",
                    _slices(slices, threshold)))  # fmt: skip
    elif _number(check.get("value")) is not None:
        caption = "value with its confidence interval" if _interval(check.get("ci")) else "value"
        out.append((caption + " against the bound",
                    _value_line(_number(check.get("value")), check.get("ci"), threshold)))  # fmt: skip
    matrix = _mapping(details.get("confusion_matrix"))
    if matrix.get("counts") and matrix.get("labels"):
        out.append(("confusion matrix (rows: true label, columns: predicted)", _confusion(matrix)))
    per_class = _mapping(details.get("per_class"))
    if per_class:
        out.append(("value per label", _bars(per_class, threshold)))
    return out


def _value_line(value: float | None, ci: Any, threshold: Mapping[str, float]) -> Any:
    fig = figure(5.2, 1.15)
    ax = fig.add_subplot()
    points = [v for v in (value, *(_interval(ci) or ()), *threshold.values()) if v is not None]
    low, high = _span(points)
    _shade_bounds(ax, threshold, low, high, vertical=True)
    interval = _interval(ci)
    assert value is not None
    if interval:
        ax.errorbar([value], [0], xerr=[[value - interval[0]], [interval[1] - value]], fmt="o", color=CANDIDATE,
                    capsize=4, label=f"value {value:.4g}, CI {interval[0]:.4g}–{interval[1]:.4g}")  # fmt: skip
    else:
        ax.plot([value], [0], "o", color=CANDIDATE, label=f"value {value:.4g}")
    ax.set_xlim(low, high)
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.grid(True, axis="x")
    ax.legend(loc="upper left", bbox_to_anchor=(0, 1.35), ncols=3)
    return fig


def _slices(slices: Sequence[Mapping[str, Any]], threshold: Mapping[str, float]) -> Any:
    judged_first = sorted(slices, key=lambda s: (not s.get("judged", True), _worst_key(s, threshold)))
    shown = judged_first[:MAX_SLICES]
    fig = figure(5.2, 0.7 + 0.22 * len(shown))
    ax = fig.add_subplot()
    names = [f"{short(s.get('slice'))} (n={s.get('n')})" for s in shown]
    values = [float(s["value"]) for s in shown]
    colours = [MUTED if not s.get("judged", True) else (FAIL if s.get("status") == "failed" else PASS) for s in shown]
    bars = ax.barh(range(len(shown)), values, color=colours)
    for bar, s in zip(bars, shown, strict=True):
        if not s.get("judged", True):
            bar.set_hatch("///")
            bar.set_edgecolor(BASELINE)
    ax.set_yticks(range(len(shown)), names)
    ax.invert_yaxis()
    low, high = _span([*values, *threshold.values(), 0.0])
    _bound_lines(ax, threshold, vertical=True)
    ax.set_xlim(min(low, 0.0), high)
    ax.grid(True, axis="x")
    if len(slices) > len(shown):
        ax.set_title(f"{len(shown)} of {len(slices)} slices: the worst judged ones first", loc="left")
    return fig


def _worst_key(item: Mapping[str, Any], threshold: Mapping[str, float]) -> float:
    value = float(item["value"])
    return -value if "max" in threshold and "min" not in threshold else value


def _confusion(matrix: Mapping[str, Any]) -> Any:
    labels = [short(label, 14) for label in list(matrix["labels"])[:MAX_SLICES]]
    size = len(labels)
    counts = [[_number(cell) or 0.0 for cell in list(row)[:size]] for row in list(matrix["counts"])[:size]]
    fig = figure(1.6 + 0.32 * size, 1.2 + 0.3 * size)
    ax = fig.add_subplot()
    image = ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(size), labels, rotation=45, ha="right")
    ax.set_yticks(range(size), labels)
    top = max((max(row, default=0) for row in counts), default=0) or 1
    if size <= 12:
        for i, row in enumerate(counts):
            for j, cell in enumerate(row):
                ax.text(j, i, f"{cell:g}", ha="center", va="center", color="white" if cell > top / 2 else "black")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def _bars(values: Mapping[str, Any], threshold: Mapping[str, float]) -> Any:
    items = [(short(k), v) for k, v in values.items() if _number(v) is not None][:MAX_SLICES]
    fig = figure(5.2, 0.7 + 0.22 * len(items))
    ax = fig.add_subplot()
    ax.barh(range(len(items)), [float(v) for _, v in items], color=CANDIDATE)
    ax.set_yticks(range(len(items)), [k for k, _ in items])
    ax.invert_yaxis()
    _bound_lines(ax, threshold, vertical=True)
    ax.grid(True, axis="x")
    return fig


# -- regression -----------------------------------------------------------------------------------


def _regression(check: Mapping[str, Any]) -> list[tuple[str, Any]]:
    details = _mapping(check.get("details"))
    base, cand = _number(details.get("baseline")), _number(details.get("candidate"))
    margin = _number(details.get("max_drop"))
    if base is None or cand is None or margin is None:
        return []
    higher = details.get("higher_is_better", True) is not False
    limit = -margin if higher else margin
    differences = samples(details.get("bootstrap_differences"))
    interval = _interval(details.get("ci"))
    fig = figure(6.4, 1.9)
    left, right = fig.subplots(1, 2, width_ratios=[3, 1])
    if differences:
        left.hist(differences, bins=min(40, max(10, len(set(differences)))), color=CANDIDATE, alpha=0.85)
        left.set_ylabel("resamples")
    else:
        left.set_yticks([])
    if interval:
        for edge in interval:
            left.axvline(edge, color=CANDIDATE, linestyle=":", linewidth=1)
    left.axvline(limit, color=FAIL, linestyle="--", label=f"margin {limit:+.4g}")
    left.axvline(cand - base, color=PASS if check.get("status") == "passed" else FAIL,
                 label=f"observed {cand - base:+.4g}")  # fmt: skip
    p_value = _number(details.get("p_value"))
    if interval:
        left.plot([], [], color=CANDIDATE, linestyle=":", label=f"CI {interval[0]:+.4g}…{interval[1]:+.4g}")
    if p_value is not None:
        left.plot([], [], " ", label=f"p = {p_value:.3g}")
    left.set_title("candidate − baseline", loc="left")
    left.legend(loc="best", fontsize=7)
    left.grid(True, axis="x")
    right.bar([0, 1], [base, cand], color=[BASELINE, CANDIDATE])
    right.set_xticks([0, 1], ["baseline", "candidate"])
    low = min(base, cand)
    right.set_ylim(max(0.0, low - 2 * abs(base - cand) - 0.05 * abs(low)) if low >= 0 else None)
    right.set_title(short(check.get("metric") or "metric"), loc="left")
    caption = "bootstrap distribution of the difference, with the margin (max_drop)" if differences else (
        "the difference and its interval against the margin (max_drop)")  # fmt: skip
    return [(caption + "; baseline and candidate side by side", fig)]


# -- latency --------------------------------------------------------------------------------------


def _latency(check: Mapping[str, Any]) -> list[tuple[str, Any]]:
    details = _mapping(check.get("details"))
    comparison = _mapping(details.get("comparison"))
    candidate = _mapping(comparison.get("candidate")) or _mapping(details.get("latency"))
    baseline = _mapping(comparison.get("baseline"))
    threshold = _numbers(check.get("threshold"))
    if not candidate:
        return []
    fig = figure(6.4 if comparison else 5.2, 2.0)
    axes = fig.subplots(1, 2, width_ratios=[3, 1]) if comparison else [fig.add_subplot()]
    ax = axes[0]
    for name, record, colour in (("candidate", candidate, CANDIDATE), ("baseline", baseline, BASELINE)):
        if record:
            xs, ys = _ecdf(record)
            ax.step(xs, ys, where="post", color=colour, label=name if baseline else f"{len(xs)} calls")
    if "max_ms" in threshold:
        ax.axvline(threshold["max_ms"], color=FAIL, linestyle="--", label=f"max_ms {threshold['max_ms']:g}")
    percentile = _number(candidate.get("percentile"))
    if percentile is not None:
        ax.axhline(percentile / 100, color=BOUND, linestyle=":", linewidth=1)
        value, interval = _number(candidate.get("value_ms")), _interval(candidate.get("ci_ms"))
        if value is not None:
            errors = [[value - interval[0]], [interval[1] - value]] if interval else None
            ax.errorbar([value], [percentile / 100], xerr=errors, fmt="o", color=BOUND, capsize=3, markersize=4,
                        label=f"p{percentile:g} {value:.3g} ms" + (" with CI" if interval else ""))  # fmt: skip
    ax.set_xlabel("ms per call")
    ax.set_ylabel("share of calls")
    ax.grid(True)
    ax.legend(loc="lower right")
    if comparison:
        ratio, interval = _number(comparison.get("ratio")), _interval(comparison.get("ratio_ci"))
        right = axes[1]
        if ratio is not None:
            errors = [[ratio - interval[0]], [interval[1] - ratio]] if interval else None
            right.errorbar([0], [ratio], yerr=errors, fmt="o", color=CANDIDATE, capsize=4)
        if "max_ratio" in threshold:
            right.axhline(threshold["max_ratio"], color=FAIL, linestyle="--")
        right.axhline(1.0, color=BASELINE, linewidth=0.8)
        right.set_xticks([])
        right.set_title("ratio vs max_ratio", loc="left")
        right.grid(True, axis="y")
    caption = "ECDF of the timed calls" + (", candidate against baseline; the ratio's interval" if comparison else "")
    return [(caption, fig)]


def _ecdf(record: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    """The recorded timings' ECDF, or (in reports without them) the recorded percentiles as its points."""
    timings = samples(record.get("timings_ms"))
    if timings:
        return timings, [(i + 1) / len(timings) for i in range(len(timings))]
    points = sorted(
        (float(name[1:]) / 100, float(value))
        for name, value in _mapping(record.get("percentiles_ms")).items()
        if _number(value) is not None and name[1:].replace(".", "", 1).isdigit()
    )
    low = _number(record.get("min_ms"))
    xs = ([low] if low is not None else []) + [v for _, v in points]
    ys = ([0.0] if low is not None else []) + [q for q, _ in points]
    return xs, ys


# -- memory ---------------------------------------------------------------------------------------


def _memory(check: Mapping[str, Any]) -> list[tuple[str, Any]]:
    details = _mapping(check.get("details"))
    peak = _number(_mapping(details.get("memory")).get("peak_mb"))
    if peak is None:
        return []
    base = _number(_mapping(details.get("baseline")).get("peak_mb"))
    threshold = _numbers(check.get("threshold"))
    rows = [("candidate", peak, CANDIDATE)] + ([("baseline", base, BASELINE)] if base is not None else [])
    fig = figure(5.2, 0.6 + 0.3 * len(rows))
    ax = fig.add_subplot()
    ax.barh(range(len(rows)), [v for _, v, _ in rows], color=[c for *_, c in rows])
    ax.set_yticks(range(len(rows)), [f"{n} {v:.1f} MiB" for n, v, _ in rows])
    ax.invert_yaxis()
    if "max_mb" in threshold:
        ax.axvline(threshold["max_mb"], color=FAIL, linestyle="--", label=f"max_mb {threshold['max_mb']:g}")
    if base is not None and "max_ratio" in threshold:
        ax.axvline(base * threshold["max_ratio"], color=BOUND, linestyle=":",
                   label=f"baseline × max_ratio {threshold['max_ratio']:g}")  # fmt: skip
    ax.set_xlim(0, max(v for v in [peak, base or 0, *threshold.values(), 1.0]) * 1.1)
    ax.set_xlabel("MiB")
    ax.grid(True, axis="x")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right")
    return [("peak memory against the bound" + (", baseline beside it" if base is not None else ""), fig)]


# -- parity ---------------------------------------------------------------------------------------


def _parity(check: Mapping[str, Any]) -> list[tuple[str, Any]]:
    details = _mapping(check.get("details"))
    threshold = _numbers(check.get("threshold"))
    differences = samples(details.get("row_differences"))
    worst = records(details.get("worst"))
    worst_diffs = [
        (f"row {row.get('row')}", value) for row in worst if (value := _number(row.get("abs_diff"))) is not None
    ]
    if not differences and not worst_diffs:
        return []
    fig = figure(6.4 if differences and worst_diffs else 4.4, 1.9)
    axes = list(fig.subplots(1, 2, width_ratios=[3, 2])) if differences and worst_diffs else [fig.add_subplot()]
    bound = threshold.get("max_abs_diff")
    if differences:
        ax = axes.pop(0)
        positive = [d for d in differences if d > 0]
        bins: Any = 30
        if positive and max(positive) / min(positive) > 100:  # spread over decades: log bins
            _log_axis(ax.xaxis, ax.set_xscale)
            low, high = math.log10(min(positive)), math.log10(max(positive))
            bins = [10 ** (low + (high - low) * i / 30) for i in range(31)]
        ax.hist(positive or differences, bins=bins, color=CANDIDATE)
        ax.set_title(f"per-row max |difference| ({len(differences)} rows drawn)", loc="left")
        ax.set_ylabel("rows")
        if bound is not None:
            ax.axvline(bound, color=FAIL, linestyle="--", label=f"max_abs_diff {bound:g}")
            ax.legend(loc="upper right")
    if worst_diffs:
        ax = axes.pop(0)
        ax.barh(range(len(worst_diffs)), [max(v, 1e-12) for _, v in worst_diffs], color=FAIL)
        ax.set_yticks(range(len(worst_diffs)), [n for n, _ in worst_diffs])
        ax.invert_yaxis()
        _log_axis(ax.xaxis, ax.set_xscale)
        if bound is not None:
            ax.axvline(bound, color=FAIL, linestyle="--", label=f"max_abs_diff {bound:g}")
            ax.legend(loc="lower right")
        ax.set_title("worst rows: max |difference|", loc="left")
        ax.grid(True, axis="x")
    return [("per-row difference between the two backends and the worst rows", fig)]


_KINDS: dict[str, Callable[[Mapping[str, Any]], list[tuple[str, Any]]]] = {
    "metric": _metric,
    "regression": _regression,
    "latency": _latency,
    "memory": _memory,
    "parity": _parity,
}


# -- helpers --------------------------------------------------------------------------------------


def records(value: Any) -> list[Mapping[str, Any]]:
    """The mappings in ``value`` where it is a list (a report's ``slices``, ``worst``), else none."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def samples(value: Any) -> list[float]:
    """The finite numbers in ``value`` where it is a list, thinned (:func:`modelcheck.report.samples.thin`)."""
    return thin(v for v in value if _number(v) is not None) if isinstance(value, list) else []


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _numbers(value: Any) -> dict[str, float]:
    return {str(k): float(v) for k, v in _mapping(value).items() if _number(v) is not None}


def _interval(value: Any) -> tuple[float, float] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        low, high = _number(value[0]), _number(value[1])
        if low is not None and high is not None:
            return low, high
    return None


def _span(points: Sequence[float]) -> tuple[float, float]:
    low, high = min(points), max(points)
    pad = (high - low) * 0.15 or abs(high) * 0.05 or 0.05
    return low - pad, high + pad


def _log_axis(axis: Any, set_scale: Callable[..., Any]) -> None:
    """A log scale whose tick labels are plain text (``1e-06``), not mathtext."""
    from matplotlib.ticker import FuncFormatter, NullLocator

    set_scale("log")
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_locator(NullLocator())


def _bound_lines(ax: Any, threshold: Mapping[str, float], *, vertical: bool) -> None:
    for name, bound in threshold.items():
        if name in ("min", "max"):
            (ax.axvline if vertical else ax.axhline)(bound, color=FAIL, linestyle="--", linewidth=1.2)


def _shade_bounds(ax: Any, threshold: Mapping[str, float], low: float, high: float, *, vertical: bool) -> None:
    """The failing side of ``min``/``max`` shaded, the bound drawn."""
    if "min" in threshold:
        ax.axvspan(low, threshold["min"], color=FAIL, alpha=0.12, linewidth=0)
    if "max" in threshold:
        ax.axvspan(threshold["max"], high, color=FAIL, alpha=0.12, linewidth=0)
    _bound_lines(ax, threshold, vertical=vertical)
