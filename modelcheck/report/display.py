"""Small two-column tables for notebooks: ``_repr_html_`` and ``_repr_markdown_`` of result objects.

A class mixes in :class:`Tabular` and says what its rows are (``_table_rows()``: label, value); Jupyter
shows the HTML, Markdown renderers the Markdown. Values are formatted here, so every object reads alike.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable

Row = tuple[str, object]


def format_value(value: object) -> str:
    """Numbers to 4 significant digits, intervals as ``low–high``, None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    if isinstance(value, tuple) and len(value) == 2:
        return f"{format_value(value[0])}–{format_value(value[1])}"
    return str(value)


def html_table(title: str, rows: Iterable[Row]) -> str:
    """A two-column HTML table with a caption; every value is escaped."""
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(label)}</th>"
        f"<td style='text-align:right'>{html.escape(format_value(value))}</td></tr>"
        for label, value in rows
    )
    return f"<table><caption style='text-align:left'>{html.escape(title)}</caption>{body}</table>"


def markdown_table(title: str, rows: Iterable[Row]) -> str:
    """A two-column Markdown table under a bold title; ``|`` in values is escaped."""
    lines = [f"**{title}**", "", "| | |", "|---|---:|"]
    lines += [f"| {label} | {_cell(format_value(value))} |" for label, value in rows]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


class Tabular:
    """Mixin: render ``self._table_rows()`` as a table in Jupyter (HTML) and Markdown."""

    def _table_title(self) -> str:
        return type(self).__name__

    def _table_rows(self) -> list[Row]:
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return html_table(self._table_title(), self._table_rows())

    def _repr_markdown_(self) -> str:
        return markdown_table(self._table_title(), self._table_rows())
