"""Talking to an inference server, for the endpoint backends (``modelcheck_openai``, ``modelcheck_kserve``).

One :class:`Endpoint` per loaded model: an async httpx client (imported when requests are sent;
``pip install 'modelcheck[endpoints]'``) with at most ``concurrency`` requests in flight, retries of
429/5xx/refused connections/timeouts with exponential backoff honouring ``Retry-After``, a cap on
response bodies (:data:`MAX_BODY_BYTES`, streamed), no redirects followed (credentials never travel
to another host), and every failed try counted by kind (:meth:`Endpoint.record`).

Under :meth:`Endpoint.tolerating` a request that fails for good does not end the run: ``send``
gives a :class:`Failed` in its place, and the :class:`RequestTally` counts the requests sent and
the ones that failed by kind (what a check's ``max_error_rate`` judges). Backends decode answers
through :meth:`Endpoint.decode`, so an answer that arrived but cannot be used (invalid body, missing
rows) counts as a failed request too.

Header values are written as ``${VAR}`` in gate files and read from the environment here; they are
sent and never shown: messages name the header and the variable, and any text from the server or
from httpx is scrubbed of them before it reaches an error.

Errors: :class:`EndpointError` (a BackendError), which the gate reports as the check's error.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar

from modelcheck.errors import BackendError
from modelcheck.gatefile.paths import public_url
from modelcheck.models.requests import Failed, RequestTally, run_coroutine

if TYPE_CHECKING:
    import ssl

    import httpx

    from modelcheck.gatefile import ModelSpec
    from modelcheck.gatefile.spec import EndpointSpec

__all__ = ["MAX_BODY_BYTES", "MAX_RETRY_AFTER_S", "Call", "Endpoint", "EndpointError"]

#: Largest response body read (bytes); a longer one fails as ``body_too_large``.
MAX_BODY_BYTES = 16 * 2**20
#: Longest wait a ``Retry-After`` can ask for (seconds); longer asks are waited this long.
MAX_RETRY_AFTER_S = 60.0
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
#: Response headers kept in the report's ``endpoint.server`` (what the server says it is).
_SERVER_HEADERS = ("server", "x-server-version", "openai-version", "x-litserve-version", "ce-source")

T = TypeVar("T")


class EndpointError(BackendError):
    """A request to an inference server failed for good; the message names the URL and the counts.

    ``kind`` is the failure's kind as the report counts it (``timeout``, ``http_5xx``, ``invalid_body``, ...).
    """

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Call:
    """One request: method, path below the endpoint's URL, and the JSON body (None for none)."""

    method: str
    path: str
    body: Any = None


class _Failure(Exception):
    def __init__(self, kind: str, message: str, *, retry: bool, wait: float | None = None) -> None:
        super().__init__(message)
        self.kind, self.retry, self.wait = kind, retry, wait


class Endpoint:
    """The server of one model spec, with its request counts (see the module docstring)."""

    def __init__(self, spec: ModelSpec, protocol: str) -> None:
        if spec.endpoint is None:
            raise BackendError(f"model {spec.id!r} has no url; the {protocol} backend judges a model behind a server")
        from importlib.util import find_spec

        if find_spec("httpx") is None:
            raise BackendError(f"the {protocol} backend sends its requests with httpx, which is not installed: "
                               "pip install 'modelcheck[endpoints]'")  # fmt: skip
        self.settings: EndpointSpec = spec.endpoint
        self.protocol = protocol
        self.url = public_url(self.settings.url)
        self.headers, self._sources, self._secrets = _read_headers(self.settings.headers)
        self.server: dict[str, str] = {}
        self.requests = 0
        self.retries = 0
        self.failures: Counter[str] = Counter()
        self.tally: RequestTally | None = None
        self._context: ssl.SSLContext | None = None

    # -- what the report records ----------------------------------------------------------------

    def record(self) -> dict[str, Any]:
        """The report's ``model.endpoint``: where, what, and the requests since the last record (then reset)."""
        record = {
            "protocol": self.protocol,
            "url": self.url,
            "model": self.settings.model,
            "version": self.settings.version,
            "server": dict(self.server),
            "requests": self.requests,
            "retries": self.retries,
            "failures": dict(sorted(self.failures.items())),
        }
        self.requests, self.retries, self.failures = 0, 0, Counter()
        return record

    def invalid(self, kind: str, problem: str) -> EndpointError:
        """Count an answer that arrived but cannot be used (``kind``: missing_rows, invalid_body) and say why."""
        self.failures[kind] += 1
        where = f"{self.protocol} endpoint {self.url} (model {self.settings.model!r})"
        return EndpointError(f"{where}: {self._scrub(problem)} {self._counts()}", kind)

    @contextmanager
    def tolerating(self) -> Iterator[RequestTally]:
        """Within: failed requests become :class:`Failed` answers, counted in the tally yielded."""
        self.tally = tally = RequestTally()
        try:
            yield tally
        finally:
            self.tally = None

    def decode(self, answers: Sequence[Any], read: Callable[[Any, int], T]) -> list[T | Failed]:
        """``read(answer, i)`` each answer; while tolerating, a Failed one stays one and an unusable one becomes one."""
        decoded: list[T | Failed] = []
        for i, answer in enumerate(answers):
            if isinstance(answer, Failed):
                decoded.append(answer)
                continue
            try:
                decoded.append(read(answer, i))
            except EndpointError as exc:
                if self.tally is None:
                    raise
                decoded.append(self.tally.add(exc.kind, str(exc)))
        return decoded

    def _counts(self) -> str:
        """``(tries so far: 9 sent, 7 failed: connect 7; the other 2 answered or were cut short)``: this endpoint's
        tries since its last record, requests sent side by side included (cut short when one failed for good)."""
        failed = sum(self.failures.values())
        counts = ", ".join(f"{kind} {n}" for kind, n in sorted(self.failures.items()))
        rest = self.requests - failed
        others = f"; the other {rest} answered or were cut short" if rest > 0 else ""
        return f"(tries so far: {self.requests} sent, {failed} failed: {counts}{others})"

    # -- sending --------------------------------------------------------------------------------

    def send(self, calls: Sequence[Call]) -> list[Any]:
        """The decoded JSON bodies of ``calls``, in order; EndpointError once one fails for good."""
        return run_coroutine(self._send_all(calls))

    def client(self, limit: int | None = None) -> httpx.AsyncClient:
        """An async client for this server: at most ``limit`` (default ``concurrency``) connections, no redirects."""
        import httpx

        limit = limit or self.settings.concurrency
        base, _, query = self.settings.url.partition("?")
        return httpx.AsyncClient(
            base_url=base.split("#")[0],
            params=httpx.QueryParams(query.split("#")[0]),
            headers=self.headers,
            timeout=httpx.Timeout(self.settings.timeout),
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
            verify=self._tls(),
            follow_redirects=False,
            trust_env=False,
        )

    def _tls(self) -> ssl.SSLContext:
        """The TLS settings, made once per endpoint: loading the CA bundle costs ~75 ms, which a client per call
        (``predict``, latency without ``concurrency``) would otherwise pay on every call, plain http included."""
        if self._context is None:
            import ssl

            import httpx

            verify = self.settings.verify_tls
            self._context = (ssl.create_default_context(cafile=verify) if isinstance(verify, str)
                             else httpx.create_ssl_context(verify=verify, trust_env=False))  # fmt: skip
        return self._context

    async def fetch(self, client: httpx.AsyncClient, call: Call, *, events: Callable[[Any], None] | None = None) -> Any:
        """One request with its retries: the decoded answer, or a :class:`Failed` (counted by the caller).

        With ``events``, the answer is read as server-sent events (``data: {...}`` lines, ending at
        ``data: [DONE]``): each event's JSON is handed to ``events`` as it arrives, and the answer is None;
        ``events(None)`` says a retry begins (forget the events of the failed try).
        """
        try:
            return await self._request(client, call, events)
        except EndpointError as exc:
            return Failed(exc.kind, str(exc))

    async def _send_all(self, calls: Sequence[Call]) -> list[Any]:
        limit = self.settings.concurrency
        client = self.client(limit)
        gate = asyncio.Semaphore(limit)

        async def one(call: Call) -> Any:
            async with gate:
                tally = self.tally
                if tally is None:
                    return await self._request(client, call)
                tally.sent += 1
                try:
                    return await self._request(client, call)
                except EndpointError as exc:
                    return tally.add(exc.kind, str(exc))

        async with client:
            tasks = [asyncio.ensure_future(one(call)) for call in calls]
            try:
                return list(await asyncio.gather(*tasks))
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _request(self, client: httpx.AsyncClient, call: Call, events: Callable[[Any], None] | None = None) -> Any:
        tries = self.settings.retries + 1
        for attempt in range(tries):
            self.requests += 1
            if attempt and events is not None:
                events(None)
            try:
                return await self._attempt(client, call, events)
            except _Failure as failure:
                self.failures[failure.kind] += 1
                if not failure.retry or attempt == tries - 1:
                    raise self._error(call, failure, attempt + 1) from None
                delay = failure.wait if failure.wait is not None else min(0.2 * 2**attempt, 5.0)
            self.retries += 1
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, client: httpx.AsyncClient, call: Call, events: Callable[[Any], None] | None) -> Any:
        """One try, bounded by ``timeout`` as a whole (a server that drips its answer included)."""
        try:
            return await asyncio.wait_for(self._try(client, call, events), self.settings.timeout)
        except asyncio.TimeoutError:
            raise _Failure(
                "timeout", f"no complete answer within timeout {self.settings.timeout:g} s", retry=True
            ) from None

    async def _try(self, client: httpx.AsyncClient, call: Call, events: Callable[[Any], None] | None) -> Any:
        import httpx

        try:
            async with client.stream(call.method, call.path, json=call.body) as response:
                self._check_status(response)
                if events is not None:
                    return await _read_events(response, events)
                body = await _read_capped(response)
                if not self.server:
                    self.server = {k: response.headers[k][:200] for k in _SERVER_HEADERS if k in response.headers}
        except httpx.TimeoutException:
            raise _Failure("timeout", f"no answer within timeout {self.settings.timeout:g} s", retry=True) from None
        except httpx.ConnectError as exc:
            raise _Failure("connect", f"cannot connect ({self._scrub(str(exc)) or 'refused'}): is the server "
                           "running and listening there?", retry=True) from None  # fmt: skip
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise _Failure(
                "protocol", f"the connection broke mid-answer ({self._scrub(str(exc))})", retry=True
            ) from None
        except httpx.HTTPError as exc:
            raise _Failure("http_error", f"{type(exc).__name__}: {self._scrub(str(exc))}", retry=False) from None
        if not body.strip():
            return None  # e.g. OIP readiness: 200 with no body
        try:
            return json.loads(body)
        except ValueError as exc:
            raise _Failure(
                "invalid_json", f"the answer is not valid JSON ({exc}; {len(body)} bytes)", retry=False
            ) from None

    def _check_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 300:
            return
        if status < 400:
            location = response.headers.get("location", "")
            shown = public_url(str(response.url.join(location))) if location else "nowhere"
            raise _Failure("redirect", f"the server redirected (HTTP {status}) to {shown}; redirects are not "
                           "followed (headers with credentials would travel there): set url to the final "
                           "address", retry=False)  # fmt: skip
        if status in (401, 403):
            raise _Failure(f"http_{status}", f"the server refused the request (HTTP {status}): {self._auth_hint()}",
                           retry=False)  # fmt: skip
        if status == 429 or status >= 500:
            kind = "http_429" if status == 429 else "http_5xx"
            wait = _retry_after(response.headers.get("retry-after"))
            raise _Failure(kind, f"HTTP {status}", retry=True, wait=wait)
        raise _Failure(f"http_{status}", f"HTTP {status} for the request", retry=False)

    def _auth_hint(self) -> str:
        if not self._sources:
            return "it needs credentials: add e.g. headers: {Authorization: 'Bearer ${API_TOKEN}'} under model"
        named = ", ".join(f"{name} (from ${var})" if var else name for name, var in self._sources)
        return f"check the credentials sent in header {named}; their values are not shown"

    def _error(self, call: Call, failure: _Failure, tries: int) -> EndpointError:
        return EndpointError(
            f"{self.protocol} endpoint {self.url}: {call.method} {call.path} failed after {tries} "
            f"{'try' if tries == 1 else 'tries'}: {self._scrub(str(failure))} {self._counts()}",
            failure.kind,
        )

    def _scrub(self, text: str) -> str:
        text = text.replace(self.settings.url, self.url)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


async def _read_events(response: httpx.Response, events: Callable[[Any], None]) -> None:
    """Hand each server-sent event's JSON (``data: {...}``) to ``events`` as it arrives, up to ``data: [DONE]``."""
    size, done = 0, False
    async for line in response.aiter_lines():
        size += len(line) + 1
        if size > MAX_BODY_BYTES:
            raise _Failure("body_too_large", f"the event stream is over the limit of {MAX_BODY_BYTES:,} bytes",
                           retry=False)  # fmt: skip
        if not line.startswith("data:"):
            continue  # blank separators, comments, event names
        payload = line[5:].strip()
        if payload == "[DONE]":
            done = True
            break
        try:
            events(json.loads(payload))
        except ValueError as exc:
            raise _Failure("invalid_json", f"an event of the stream is not valid JSON ({exc})", retry=False) from None
    if not done:
        raise _Failure("protocol", "the event stream ended without data: [DONE]", retry=False)


async def _read_capped(response: httpx.Response) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _Failure("body_too_large", f"the answer is {int(declared):,} bytes, over the limit of "
                       f"{MAX_BODY_BYTES:,}", retry=False)  # fmt: skip
    chunks, size = [], 0
    # decoded bytes (gzip, deflate, br as the server chose): the cap bounds what is held, a compression bomb too
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _Failure("body_too_large", f"the answer is over the limit of {MAX_BODY_BYTES:,} bytes",
                           retry=False)  # fmt: skip
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (a number or an HTTP date), capped; None without one."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S) if seconds == seconds else None


def _read_headers(
    templates: Sequence[tuple[str, str]],
) -> tuple[dict[str, str], list[tuple[str, str | None]], list[str]]:
    """The headers to send, (header, env var) pairs for messages, and the values read from the environment."""
    headers: dict[str, str] = {}
    sources: list[tuple[str, str | None]] = []
    secrets: list[str] = []
    for name, template in templates:
        used: list[str] = []

        def value_of(match: re.Match[str], name: str = name, used: list[str] = used) -> str:
            var, default = match.group(1), match.group(2)
            found = os.environ.get(var)
            if found:
                used.append(var)
                secrets.append(found.strip())
                return found.strip()
            if default is not None:
                return default
            raise BackendError(f"header {name} reads ${{{var}}}, which is not set in the environment; "
                               f"export {var} (its value is never written anywhere)")  # fmt: skip

        value = _VAR.sub(value_of, template)
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            where = f" (from ${used[0]})" if used else ""
            raise BackendError(f"header {name}{where} holds a control character (a line break?); "
                               "HTTP header values are one line: fix the value")  # fmt: skip
        headers[name] = value
        sources.append((name, used[0] if used else None))
    return headers, sources, [s for s in secrets if s]
