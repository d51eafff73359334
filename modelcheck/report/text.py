"""Text from untrusted hands, made safe for where it is shown: a log, a terminal, Markdown.

A report (an artifact a pull request uploaded), a gate file and its data are written by whoever opened
the pull request, and the privileged ``workflow_run`` job prints them. So every value that reaches a job
log, a terminal, a job summary or a comment goes through one of these:

- :func:`plain`: one line, no ANSI escapes or other control characters, cut to a length with ``…``;
- :func:`log_text`: text for a log, each line of which (split at CR, LF and CRLF, as GitHub's runner reads
  lines) cannot start a workflow command: a line whose first non-blank characters are ``::`` gets its
  first ``:`` written ``%3A``, and ``##[`` (the runner's legacy command prefix, matched anywhere in a line)
  is written ``##%5B``. :class:`GuardedStream` applies it to every line a command prints;
- :func:`md_text`, :func:`md_code`: inline Markdown/HTML that renders as the text it holds: no blank lines,
  headings, tables, HTML or live ``@``-mentions.

Intended workflow commands (``modelcheck github annotate``) are written with :func:`emit_command`, past the
guard.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import stat
import sys
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = [
    "COLUMN_CHARS",
    "MESSAGE_CHARS",
    "GuardedStream",
    "cut",
    "emit_command",
    "guarded_output",
    "log_line",
    "log_text",
    "md_code",
    "md_paragraph",
    "md_text",
    "plain",
    "redact",
    "scrub",
    "secret",
    "text_table",
    "write_text_file",
]

#: The widest a column of a printed table gets; longer cells are cut with ``…``.
COLUMN_CHARS = 80
#: The longest message printed for one check or gate (the report holds all of it).
MESSAGE_CHARS = 2000

#: ANSI escape sequences: CSI (``ESC [`` or the 8-bit CSI), OSC up to BEL or ST, and two-character escapes.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
#: Control characters other than TAB, LF and CR; DEL and C1; Unicode line/paragraph separators and the
#: bidirectional overrides that reorder what a terminal shows.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_LINE_END = re.compile(r"(\r\n|\r|\n)")
_LEGACY = "##["
#: A Markdown character that could start markup, escaped with a backslash in :func:`md_text`.
_MD_SPECIAL = re.compile(r"([\\`*\[\]#!|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
#: A run of backticks, to size a code span's fence.
_TICKS = re.compile(r"`+")


def scrub(text: str) -> str:
    """``text`` without ANSI escapes and control characters (TAB, LF and CR kept)."""
    return _CONTROL.sub("", _ANSI.sub("", text))


def cut(text: str, limit: int | None) -> str:
    """``text`` cut to ``limit`` characters, the last one ``…`` when it was longer."""
    if limit is not None and len(text) > limit:
        return text[: max(limit - 1, 0)] + "…"
    return text


def plain(value: Any, limit: int | None = None) -> str:
    """``value`` as one line: escapes and control characters removed, every run of white space one space,
    the runner's legacy command prefix neutralised, cut to ``limit`` characters."""
    text = str(value)
    if limit is not None and len(text) > 4 * limit + 64:  # a 2 MB value: do not scan all of it
        text = text[: 4 * limit + 64]
    text = " ".join(scrub(text).split())
    return cut(text.replace(_LEGACY, "##%5B"), limit)


def log_line(line: str) -> str:
    """One line (no line ends in it) that cannot be read as a workflow command."""
    line = line.replace(_LEGACY, "##%5B")
    stripped = line.lstrip()
    if stripped.startswith("::"):
        return line[: len(line) - len(stripped)] + "%3A" + stripped[1:]
    return line


def log_text(text: str) -> str:
    """``text`` for a log: escapes and control characters removed, and no line a workflow command."""
    return "\n".join(log_line(line) for line in _LINE_END.split(scrub(text))[::2])


def md_text(value: Any, limit: int | None = None) -> str:
    """``value`` as inline Markdown text, also safe inside HTML (``<summary>``) and a table cell: one line,
    Markdown syntax backslash-escaped, ``&`` and ``<`` as entities, ``@`` joined (U+200D) so it mentions no one."""
    text = plain(value, limit)
    text = _MD_SPECIAL.sub(r"\\\1", text.replace("&", "&amp;").replace("<", "&lt;"))
    return text.replace("@", "@\u200d")


def md_paragraph(value: Any, limit: int | None = None) -> str:
    """:func:`md_text` that starts a line: also no block quote, list item or heading underline."""
    text = md_text(value, limit)
    if text.startswith((">", "+", "-", "=")):
        text = "\\" + text
    return re.sub(r"^(\d+)([.)])", r"\1\\\2", text)


def md_code(value: Any, limit: int | None = None, *, in_table: bool = False) -> str:
    """``value`` as an inline code span: one line, a fence longer than any run of backticks in it, and
    (``in_table``) ``|`` escaped for a GFM table. Mentions and HTML are not live inside code."""
    # an HTML comment's opener or closer (a copied marker) is broken with a word joiner (U+2060)
    text = plain(value, limit).replace("<!--", "<!-\u2060-").replace("-->", "-\u2060->")
    longest = max((len(run) for run in _TICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    span = f"{fence}{pad}{text}{pad}{fence}"
    return span.replace("|", "\\|") if in_table else span


def text_table(rows: list[tuple[str, ...]], *, right: tuple[int, ...] = (), limit: int = COLUMN_CHARS) -> list[str]:
    """Rows as aligned plain-text lines; every cell through :func:`plain`, no column wider than ``limit``
    (the last column is not padded); columns in ``right`` are right-aligned."""
    cells = [[plain(cell, limit) for cell in row] for row in rows]
    columns = max((len(row) for row in cells), default=0)
    widths = [max((len(row[c]) for row in cells if c < len(row)), default=0) for c in range(columns)]
    lines = []
    for row in cells:
        shown = [
            cell
            if c == len(row) - 1 and c not in right
            else cell.rjust(widths[c])
            if c in right
            else cell.ljust(widths[c])
            for c, cell in enumerate(row)
        ]
        lines.append("  ".join(shown).rstrip())
    return lines


def write_text_file(path: str | os.PathLike[str], text: str, *, append: bool) -> None:
    """Write (or append) ``text`` to a regular file, created if missing; never blocks on a FIFO or device.

    OSError naming the path for a FIFO, socket or device (an ``ENXIO`` FIFO without a reader included).
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else 0)
    flags |= getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a FIFO nobody reads
            raise OSError(errno.EINVAL, "is not a regular file (a FIFO, socket or device)", os.fspath(path)) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "is not a regular file (a FIFO, socket or device)", os.fspath(path))
        if not append:
            os.ftruncate(fd, 0)
        with os.fdopen(fd, "w", encoding="utf-8", closefd=False) as handle:
            handle.write(text)
    finally:
        os.close(fd)


# -- secrets ------------------------------------------------------------------------------------------


def secret(value: str, name: str) -> str:
    """A token from the environment, surrounding white space (a pasted trailing newline) stripped.

    ValueError, naming ``name`` but never the value, when what is left holds white space or a control
    character (an HTTP header cannot carry it, and the HTTP library's error would print it).
    """
    token = value.strip()
    bad = next((c for c in token if c.isspace() or not c.isprintable()), None)
    if bad is not None:
        raise ValueError(
            f"{name} holds {'white space' if bad.isspace() else 'a control character'} ({bad!a}) inside the "
            f"token; set {name} to the token alone (check the secret for a line break or a second line)"
        )
    return token


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every form of each secret written ``***``: raw, stripped, escaped (repr, JSON, URL,
    ``unicode_escape``, bytes repr), and each white-space-separated piece of 8 or more characters (a token
    split by a pasted line break)."""
    import json
    from urllib.parse import quote

    forms: set[str] = set()
    for raw in secrets:
        if not raw:
            continue
        forms |= {part for part in re.split(r"\s+", raw) if len(part) >= 8}
        for value in {raw, raw.strip()}:
            if len(value) >= 4:
                escaped = value.encode("unicode_escape").decode("ascii")
                forms |= {value, repr(value)[1:-1], json.dumps(value)[1:-1], quote(value, safe=""), ascii(value)[1:-1]}
                forms |= {repr(value.encode("utf-8", "replace"))[2:-1], escaped, escaped.replace("\\", "\\\\")}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text


# -- a stream no line of which starts a workflow command ---------------------------------------------


class GuardedStream(io.TextIOBase):
    """A text stream over ``raw`` that writes every line through :func:`log_line` and :func:`scrub`.

    Lines are held until they end, or until their start decides them (a flush sends a decided partial line).
    """

    def __init__(self, raw: TextIO) -> None:
        super().__init__()
        self.raw = raw
        self._pending = ""  # the start of the current line, not yet written
        self._decided = False  # the current line's start was written: the rest of it passes as is

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.raw, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.raw, "errors", None)

    def isatty(self) -> bool:
        return bool(getattr(self.raw, "isatty", lambda: False)())

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.raw.fileno()

    def write(self, text: str) -> int:
        parts = _LINE_END.split(scrub(text))
        out: list[str] = []
        for index in range(0, len(parts), 2):
            piece = parts[index]
            ending = parts[index + 1] if index + 1 < len(parts) else None
            if self._decided:
                out.append(piece.replace(_LEGACY, "##%5B"))
            else:
                self._pending += piece
            if ending is not None:
                if not self._decided:
                    out.append(log_line(self._pending))
                out.append(ending)
                self._pending, self._decided = "", False
        if not self._decided and _decidable(self._pending):
            out.append(log_line(self._pending))
            self._pending, self._decided = "", True
        if out:
            self.raw.write("".join(out))
        return len(text)

    def command(self, line: str) -> None:
        """Write an intended workflow command line, past the guard."""
        self.flush()
        if self._pending or self._decided:
            self.raw.write("\n")
            self._pending, self._decided = "", False
        self.raw.write(line + "\n")

    def flush(self) -> None:
        self.raw.flush()

    def finish(self) -> None:
        """Write what is held (a line that never ended) and flush."""
        if self._pending:
            self.raw.write(log_line(self._pending))
            self._pending = ""
        self.flush()


def _decidable(start: str) -> bool:
    stripped = start.lstrip()
    return len(stripped) >= 2 or (stripped[:1] not in ("", ":"))


@contextlib.contextmanager
def guarded_output() -> Iterator[None]:
    """Within the block, ``sys.stdout`` and ``sys.stderr`` are :class:`GuardedStream` s."""
    if isinstance(sys.stdout, GuardedStream):  # nested: already guarded
        yield
        return
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = GuardedStream(out), GuardedStream(err)
    try:
        yield
    finally:
        guarded = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = out, err
        for stream in guarded:
            if isinstance(stream, GuardedStream):
                stream.finish()


def emit_command(line: str) -> None:
    """Print an intended workflow command (its data already escaped) on stdout, past :class:`GuardedStream`."""
    if isinstance(sys.stdout, GuardedStream):
        sys.stdout.command(line)
    else:
        print(line)
