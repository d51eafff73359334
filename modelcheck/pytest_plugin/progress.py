"""How far a gate's prediction got: a live line on a terminal, a few lines in a log."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from modelcheck.report.text import COLUMN_CHARS, plain


class GateProgress:
    """Shows how far a gate's prediction got.

    On an interactive terminal: one line rewritten in place (examples done, rate, ETA) once the gate
    takes longer than ``live_after_s``, left as "N examples in T s" at the end. In a log (``-v`` without
    a terminal): that final line per gate, plus a line per ~10% for gates slower than ``log_every_s``.
    Without ``-v``, ``resume()`` runs after the final line, so pytest's progress dots start a fresh line.
    """

    live_after_s = 0.5
    log_every_s = 5.0

    def __init__(
        self,
        reporter: Any,
        name: str,
        *,
        live: bool,
        verbose: bool,
        suspended: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
        resume: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reporter = reporter
        self.name = plain(name, COLUMN_CHARS)  # a gate file's name: the pull request's text
        self.live = live
        self.verbose = verbose
        self.suspended = suspended
        self.resume = resume
        self.clock = clock
        self.started = clock()
        self.last_line = self.started
        self.last_tenth = 0
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        elapsed = now - self.started
        if done == 0:
            self.started = self.last_line = now
            return
        if done >= total:
            if self.shown or self.verbose:
                speed = f" ({done / elapsed:.0f} ex/s)" if elapsed > 0 else ""
                self._show(f"{self.name}: {total} examples in {elapsed:.1f} s{speed}")
                if not self.verbose and self.resume is not None:
                    with self.suspended():
                        self.resume()
            return
        tenth = done * 10 // total
        if self.live:
            due = self.shown or elapsed >= self.live_after_s
        else:
            due = tenth > self.last_tenth and now - self.last_line >= self.log_every_s
        if due:
            rate = done / elapsed if elapsed > 0 else 0.0
            eta = f", ETA {(total - done) / rate:.0f} s" if rate > 0 else ""
            self._show(f"{self.name}: {done}/{total} examples ({100 * done // total}%), {rate:.0f} ex/s{eta}")
            self.last_tenth, self.last_line = tenth, now

    def _show(self, text: str) -> None:
        # Each line is left open: pytest's next result starts a new line, as after its own live output.
        with self.suspended():
            if not self.shown:
                self.reporter.ensure_newline()
            if self.live:
                self.reporter.rewrite(text, erase=True)
            else:
                self.reporter.write(("\n" if self.shown else "") + text, flush=True)
        self.shown = True
