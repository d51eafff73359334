"""Requests that failed for good, while an endpoint tolerates them (a check's ``max_error_rate``), and
what a load test sends (:class:`LoadTarget`, :class:`Answered`).

:class:`RequestTally` counts the requests sent and those that failed by kind; :class:`Failed` stands
in for the answer of a failed request; :func:`join_answered` makes the outputs of a prediction whose
failed batches become placeholder rows marked in ``Outputs.failed``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from modelcheck.models.backends import Outputs

__all__ = ["Answered", "Failed", "LoadTarget", "RequestTally", "Send", "join_answered", "run_coroutine"]

T = TypeVar("T")


@dataclass(frozen=True)
class Failed:
    """In place of the answer of a request that failed for good, while tolerating failures."""

    kind: str
    message: str


@dataclass(frozen=True)
class Answered:
    """A request of a load test that was answered: for streamed generation, when its first token arrived
    (``time.perf_counter()`` seconds) and how many tokens it generated (None where not known)."""

    first_token_at: float | None = None
    output_tokens: int | None = None


#: ``send(i)``: send the load test's request ``i`` (its inputs: the ``i``-th batch) and say how it went.
Send = Callable[[int], Awaitable["Answered | Failed"]]


class LoadTarget(Protocol):
    """What a served model gives a load test (``model.load_target(batch, batch_size)``)."""

    #: What one request is: ``chat completions, streamed`` (for the report).
    request: str

    def session(self, concurrency: int) -> AbstractAsyncContextManager[Send]:
        """An HTTP client for ``concurrency`` requests in flight, open while the test runs; yields ``send``."""
        ...


@dataclass
class RequestTally:
    """Requests sent while tolerating failures, and those that failed for good (after retries), by kind.

    ``first``: the first failure's message (URL, request, tries, counts; never a header value).
    """

    sent: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    first: str | None = None

    @property
    def failures(self) -> int:
        return sum(self.failed.values())

    @property
    def rate(self) -> float:
        """Failed requests over requests sent (0 when none were sent)."""
        return self.failures / self.sent if self.sent else 0.0

    def add(self, kind: str, message: str) -> Failed:
        """Count one request that failed for good; the Failed that stands for its answer."""
        self.failed[kind] += 1
        if self.first is None:
            self.first = message
        return Failed(kind, message)

    def counts(self) -> str:
        """``3 of 40 requests failed (http_5xx 2, timeout 1)``."""
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(self.failed.items()))
        return f"{self.failures} of {self.sent} requests failed" + (f" ({kinds})" if kinds else "")

    def to_dict(self) -> dict[str, object]:
        return {"sent": self.sent, "failed": self.failures, "failed_by_kind": dict(sorted(self.failed.items())),
                "error_rate": self.rate, "first_failure": self.first}  # fmt: skip


def join_answered(
    parts: Sequence[Outputs | Failed], sizes: Sequence[int], *, tolerating: bool, fallback: Callable[[int], Outputs]
) -> Outputs:
    """The outputs of consecutive batches in order; a failed batch as placeholder rows shaped like an answered
    one (``fallback(rows)`` when none was answered), marked in ``Outputs.failed`` (set only while tolerating)."""
    from dataclasses import fields, replace

    import numpy as np

    from modelcheck.models.backends import Outputs
    from modelcheck.models.predict import concat_outputs

    template = next((part for part in parts if not isinstance(part, Failed)), None)

    def placeholder(rows: int) -> Outputs:
        if template is None:
            return fallback(rows)
        made: dict[str, Any] = {}
        for item in fields(Outputs):
            value = getattr(template, item.name)
            if isinstance(value, np.ndarray):
                made[item.name] = np.zeros((rows, *value.shape[1:]), dtype=value.dtype)
            elif isinstance(value, list):
                made[item.name] = [[] if item.name == "tags" else ""] * rows
            else:
                made[item.name] = value
        return Outputs(**made)

    filled = []
    for part, rows in zip(parts, sizes, strict=True):
        if isinstance(part, Failed):
            filled.append(replace(placeholder(rows), failed=np.ones(rows, dtype=bool)))
        else:
            filled.append(replace(part, failed=np.zeros(rows, dtype=bool)) if tolerating else part)
    return concat_outputs(filled)


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion: in this thread, or in a fresh one when a loop already runs here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
