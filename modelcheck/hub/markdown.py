"""Values from a report written into Markdown as text, never as markup: what the model card uses for every
check name, slice value, message, path and version it prints.

``text`` puts a value on one line (control characters, CR/LF and Unicode line breaks become spaces), bounds
its length, escapes HTML (``&`` ``<`` ``>``: no tags, no comments, so no second ``<!-- modelcheck:end -->``)
and backslash-escapes the Markdown characters that start inline markup or end a table cell. ``code`` keeps
simple values (digests, versions, plain paths) in a code span and writes anything else as ``text``.
"""

from __future__ import annotations

import re
from typing import Any

from modelcheck.report.text import plain

#: Longest value written, in characters; longer ones are cut and end in "…".
MAX_CHARS = 300

_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MARKUP = set("\\`*_~[]|!#")
_PLAIN = re.compile(r"[A-Za-z0-9_.+=,:@/ -]*[A-Za-z0-9_.+=,:@/-]")


def one_line(value: Any, limit: int = MAX_CHARS) -> str:
    """``value`` as one line of at most ``limit`` characters (:func:`modelcheck.report.text.plain`)."""
    return plain(value, limit)


def text(value: Any, limit: int = MAX_CHARS) -> str:
    """``value`` as Markdown text: one line, HTML escaped, inline markup and ``|`` backslash-escaped."""
    out = []
    for char in one_line(value, limit):
        if char in _HTML:
            out.append(_HTML[char])
        elif char in _MARKUP:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def code(value: Any, limit: int = MAX_CHARS) -> str:
    """A code span for a plain value (letters, digits, spaces and ``_ . + = , : @ / -``), else :func:`text`."""
    flat = one_line(value, limit)
    return f"`{flat}`" if _PLAIN.fullmatch(flat) else text(flat, limit)
