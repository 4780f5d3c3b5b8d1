"""`TranslatedStream`: an upstream SSE stream translated to OpenAI chunks as it is relayed.

The base of what a translating adapter (Anthropic, Gemini) returns from `open_stream`; the subclass
says how one decoded upstream event becomes chunks (`_translate`) and how the stream ends (`_end`).

- `prime()` reads until the first translated chunk, so that a failure can still fail over. It raises
  `UpstreamProtocolError` for a body that is not `text/event-stream`, ends or breaks off first, and
  whatever the translator raises (`UpstreamError` for an upstream error event).
- Iterating sends that chunk, the rest as they come, then `_end()`'s chunks and `data: [DONE]`. `_end()`
  raises `UpstreamProtocolError` when the upstream closed a stream that was not complete, so a stream cut
  short never ends with `[DONE]`; an aiohttp error is `UpstreamProtocolError` too.
- `usage` is set when the iteration ends, however it ends: the translator's once it started, else None.
- The holder always calls `aclose()`: the connection is released after `[DONE]`, closed otherwise.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any, Generic, Protocol, TypeVar

import aiohttp
import orjson

from providers.base import Usage
from providers.errors import UpstreamProtocolError
from providers.http_transport import UpstreamBody, require_event_stream
from providers.openai_sse import DONE_EVENT
from providers.sse import SSEDecoder, SSEvent

Chunk = dict[str, Any]


class StreamTranslator(Protocol):
    @property
    def started(self) -> bool:
        """The upstream's message began: there is usage to report."""

    @property
    def usage(self) -> Usage: ...


T = TypeVar("T", bound=StreamTranslator)


class TranslatedStream(UpstreamBody, ABC, Generic[T]):
    __slots__ = ("_decoder", "_first", "_translator", "done", "usage")

    def __init__(self, response: aiohttp.ClientResponse, translator: T) -> None:
        super().__init__(response)
        self._translator = translator
        self._decoder = SSEDecoder()
        self._first = b""
        self.usage: Usage | None = None
        self.done = False

    @abstractmethod
    def _translate(self, event: SSEvent) -> list[Chunk]:
        """The chunks for one decoded upstream event."""

    @abstractmethod
    def _end(self) -> list[Chunk]:
        """The upstream closed the stream: the closing chunks; raise `UpstreamProtocolError` if it was cut short."""

    def _events_at_eof(self) -> list[SSEvent]:
        """Events to dispatch when the upstream closes: none, a last event without its blank line is dropped."""
        return []

    def _feed(self, raw: bytes) -> bytes:
        events = self._decoder.feed(raw) if raw else self._events_at_eof()
        chunks = [chunk for event in events for chunk in self._translate(event)]
        return _encode(chunks) if chunks else b""

    async def prime(self) -> None:
        """Read until the first translated chunk, so that a failure can still fail over."""
        require_event_stream(self._response)
        first = b""
        try:
            while not first:
                raw = await self._response.content.readany()
                first = self._feed(raw)
                if not raw and not first:
                    raise UpstreamProtocolError("upstream stream ended before its first event")
        except aiohttp.ClientError as exc:
            raise UpstreamProtocolError(f"upstream stream broken before first event: {type(exc).__name__}") from None
        self._first = first

    async def __aiter__(self) -> AsyncIterator[bytes]:
        translator = self._translator
        if self._first:
            first, self._first = self._first, b""
            yield first
        try:
            async for raw in self._response.content.iter_any():
                out = self._feed(raw)
                if out:
                    yield out
            last = self._feed(b"")
        except aiohttp.ClientError as exc:
            raise UpstreamProtocolError(f"upstream stream broken: {type(exc).__name__}") from None
        finally:
            self.usage = translator.usage if translator.started else None
        closing = _encode(self._end())
        self._complete = True
        self.done = True
        yield last + closing + DONE_EVENT


def _encode(chunks: list[Chunk]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks)
