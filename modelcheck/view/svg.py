"""Matplotlib figures as inline SVG for one HTML page: themeable, deterministic, small, with unique ids.

Figures are drawn with two sentinel colours, :data:`INK` (text, axes, ticks) and :data:`GRID`; the
SVG has them replaced by ``currentColor`` and ``var(--grid)`` so the page's light or dark theme
colours every plot. Text stays text (``svg.fonttype: none``) and matplotlib escapes it; mathtext
is off, so a ``$`` in a slice name is shown as written. Every id is prefixed so that many figures
share one document without clashing.
"""

from __future__ import annotations

import io
import re
from typing import Any

#: Sentinel colours replaced in the SVG text (never used for data).
INK = "#010203"
GRID = "#040506"
#: Longest text (slice names, labels) drawn inside a plot; longer ones end in "…".
LABEL_CHARS = 24

_RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "text.parse_math": False,
    "text.usetex": False,
    "font.size": 8.0,
    "font.family": "sans-serif",
    "axes.edgecolor": INK,
    "axes.labelcolor": INK,
    "axes.titlesize": 8.5,
    "axes.facecolor": "none",
    "figure.facecolor": "none",
    "savefig.facecolor": "none",
    "savefig.edgecolor": "none",
    "text.color": INK,
    "xtick.color": INK,
    "ytick.color": INK,
    "grid.color": GRID,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "legend.fontsize": 7.5,
    "path.simplify": True,
}
_SPACE = re.compile(r">\s+<")
_DROP = re.compile(r"<\?xml[^>]*>|<!DOCTYPE[^>]*>|<metadata>.*?</metadata>|<!--.*?-->|<style[^>]*>.*?</style>", re.S)
_LINES = re.compile(r"\s*\n\s*")
_IDS = re.compile(r'(\bid="|url\(#|href="#)')
_ROOT = re.compile(r"^<svg ")


def figure(width: float, height: float) -> Any:
    """A matplotlib Figure of ``width`` x ``height`` inches, with no pyplot (no global state)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=72, layout="constrained")


def to_svg(fig: Any, prefix: str) -> str:
    """``fig`` as an inline ``<svg>`` element: ids prefixed with ``prefix``, sentinel colours themed."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buffer = io.StringIO()
    settings: Any = {**_RC, "svg.hashsalt": prefix}
    with matplotlib.rc_context(settings):
        FigureCanvasSVG(fig).print_svg(buffer, metadata={"Date": None, "Creator": None})
    text = _DROP.sub("", buffer.getvalue())
    text = _LINES.sub(" ", _SPACE.sub("><", text.strip())).replace("<defs></defs>", "")
    text = _IDS.sub(lambda m: f"{m.group(1)}{prefix}-", text)
    text = _ROOT.sub('<svg role="img" ', text, count=1)
    for colour, themed in ((INK, "currentColor"), (GRID, "var(--grid)")):
        text = text.replace(colour, themed)
    return text


def rc() -> Any:
    """The rc settings every figure is drawn under (a context manager)."""
    import matplotlib

    settings: Any = _RC
    return matplotlib.rc_context(settings)


def short(text: Any, limit: int = LABEL_CHARS) -> str:
    """``text`` as one line of at most ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
