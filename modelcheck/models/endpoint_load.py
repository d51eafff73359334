"""A served model as a load test's target (:class:`~modelcheck.models.requests.LoadTarget`).

:class:`EndpointLoad` opens one client for ``concurrency`` requests in flight and sends request
``i`` as the backend builds it (``call(i)``), with the endpoint's timeout, retries and body cap. An
answer is checked as the backend checks it in ``predict`` (``read``), so an invalid or short answer
counts as a failed request of its kind. A streamed answer (``stream``: server-sent events) is read
event by event: the :class:`StreamReader` notes when the first token arrived and how many came.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from modelcheck.models.endpoint import Call, Endpoint, EndpointError
from modelcheck.models.requests import Answered, Failed, Send

__all__ = ["EndpointLoad", "StreamReader"]


class StreamReader:
    """One streamed completion (OpenAI ``chat.completion.chunk`` or ``text_completion`` events).

    The first token is the first event with text; the token count is the stream's ``usage.completion_tokens``
    where the server sends it (``stream_options.include_usage``), else the number of events with text.
    """

    def __init__(self, endpoint: Endpoint, *, chat: bool) -> None:
        self.endpoint, self.chat = endpoint, chat
        self.first_at: float | None = None
        self.pieces = 0
        self.usage: int | None = None

    def event(self, event: Any) -> None:
        """Read one event; None: a retry begins, so what the failed try streamed does not count."""
        if event is None:
            self.first_at, self.pieces, self.usage = None, 0, None
            return
        if not isinstance(event, dict):
            raise self.endpoint.invalid("invalid_body", "a streamed event is not a JSON object")
        usage = event.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            self.usage = usage["completion_tokens"]
        choices = event.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return  # e.g. the usage-only last event
        choice = choices[0]
        delta = choice.get("delta") if self.chat else None
        text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
        if isinstance(text, str) and text:
            if self.first_at is None:
                self.first_at = time.perf_counter()
            self.pieces += 1

    def answered(self) -> Answered:
        return Answered(first_token_at=self.first_at, output_tokens=self.usage if self.usage else self.pieces)


class EndpointLoad:
    """Requests ``call(i)`` to ``endpoint``, checked by ``read(answer, i)`` or read as a stream (module docstring)."""

    def __init__(
        self,
        endpoint: Endpoint,
        request: str,
        call: Callable[[int], Call],
        *,
        read: Callable[[Any, int], object] | None = None,
        stream: Callable[[], StreamReader] | None = None,
    ) -> None:
        self.endpoint, self.request, self.call, self.read, self.stream = endpoint, request, call, read, stream

    @asynccontextmanager
    async def session(self, concurrency: int) -> AsyncIterator[Send]:
        async with self.endpoint.client(concurrency) as client:

            async def send(index: int) -> Answered | Failed:
                call = self.call(index)
                reader = self.stream() if self.stream is not None else None
                answer = await self.endpoint.fetch(client, call, events=None if reader is None else reader.event)
                if isinstance(answer, Failed):
                    return answer
                if reader is not None:
                    return reader.answered()
                if self.read is not None:
                    try:
                        self.read(answer, index)
                    except EndpointError as exc:
                        return Failed(exc.kind, str(exc))
                return Answered()

            yield send
