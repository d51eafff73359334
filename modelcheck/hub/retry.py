"""Retries for Hub calls: 429 (honouring Retry-After) and 5xx / network errors, with exponential backoff."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

#: Seconds before the first retry; doubled each time, capped at MAX_WAIT_S. Tests shorten BASE_WAIT_S.
BASE_WAIT_S = 1.0
MAX_WAIT_S = 30.0
#: A Retry-After longer than this is not waited for: the Hub counts as failing.
MAX_RETRY_AFTER_S = 120.0
ATTEMPTS = 4


@dataclass
class Transient(Exception):
    """The last transient failure of a call that ran out of attempts."""

    what: str
    reason: str
    attempts: int

    def __str__(self) -> str:
        return f"{self.what}: {self.reason} ({self.attempts} attempt{'s' if self.attempts != 1 else ''})"


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a huggingface_hub error, None for other errors."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def is_transient(exc: BaseException) -> bool:
    """429, 5xx, or a network failure (connection refused/reset, answer lost, timeout)."""
    status = status_of(exc)
    if status is not None:
        return status == 429 or status >= 500
    if type(exc).__name__ == "OfflineModeIsEnabled":  # HF_HUB_OFFLINE: retrying cannot help
        return False
    module = type(exc).__module__.split(".")[0]
    return isinstance(exc, (ConnectionError, TimeoutError)) or module in (
        "httpx",
        "httpx2",
        "httpcore",
        "requests",
        "urllib3",
    )


#: What HTTP libraries append to every error (httpx: "For more information check: https://developer.mozilla.org/...").
_BOILERPLATE = re.compile(r"For more information check: \S+")


def describe(exc: BaseException) -> str:
    """One line for a failure: the status and the Hub's message, or the network error's class and text."""
    status = status_of(exc)
    text = " ".join(_BOILERPLATE.sub("", str(exc)).split())
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:  # e.g. "Error while uploading X" says no why
        text += f" ({type(cause).__name__}: {' '.join(_BOILERPLATE.sub('', str(cause)).split())})"
    if status is not None:
        return f"HTTP {status}: {text[:300]}"
    return f"{type(exc).__name__}: {text[:300] or 'no details'}"


def retry_after(exc: BaseException) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def call(
    what: str,
    action: Callable[[], T],
    *,
    before_retry: Callable[[], T | None] | None = None,
    log: Callable[[str], None] = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``action()``, retried on transient failures; raises :class:`Transient` when attempts run out.

    ``before_retry()`` runs before each retry; a non-None answer is taken as the result (e.g. "the commit
    landed after all"), so a request that must not be repeated is not.
    """
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return action()
        except Exception as exc:
            if not is_transient(exc):
                raise
            last = exc
        if attempt == ATTEMPTS:
            break
        wait = retry_after(last)
        if wait is not None and wait > MAX_RETRY_AFTER_S:
            break
        wait = wait if wait is not None else min(MAX_WAIT_S, BASE_WAIT_S * 2 ** (attempt - 1))
        log(f"{what}: {describe(last)}; retrying in {wait:g} s (attempt {attempt + 1} of {ATTEMPTS})")
        sleep(wait)
        if before_retry is not None:
            found = before_retry()
            if found is not None:
                return found
    raise Transient(what, describe(last), attempt)
