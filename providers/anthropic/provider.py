"""`AnthropicProvider`: POST /v1/messages on the gateway's shared aiohttp session.

Chat completions and legacy completions (the prompt becomes one user message; the reply comes back as
a `text_completion`) are translated both ways; embeddings and every other endpoint raise
`InvalidRequest`. Upstream errors keep Anthropic's message and error type (`{"type": "error", "error":
{"type", "message"}}`); 429, 5xx and Anthropic's 529 `overloaded_error` are retryable on another
deployment (`UpstreamStatusError` retries any status >= 500).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from yarl import URL

from providers.anthropic.config import AnthropicConfig
from providers.anthropic.request import completion_request_to_chat, request_to_anthropic
from providers.anthropic.response import anthropic_to_openai, chat_to_text_completion, usage_from_anthropic
from providers.anthropic.stream import AnthropicStreamTranslator, encode_chunks
from providers.base import Completion, Deadlines, Endpoint, UpstreamCall, Usage
from providers.errors import (
    InvalidRequest,
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from providers.openai_sse import DONE_EVENT
from providers.sse import SSEDecoder

_MAX_ERROR_BODY = 64 * 1024
_TRANSLATED = frozenset({Endpoint.CHAT, Endpoint.COMPLETIONS})


class AnthropicProvider:
    def __init__(self, name: str, config: AnthropicConfig, session: aiohttp.ClientSession) -> None:
        self.kind = "anthropic"
        self.name = name
        self._session = session
        self._url = URL(f"{config.base_url.rstrip('/')}/messages")
        headers = {"content-type": "application/json", "anthropic-version": config.anthropic_version, **config.headers}
        if config.api_key:
            headers["x-api-key"] = config.api_key
        self._headers = headers
        self._default_max_tokens = config.default_max_tokens
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    async def aclose(self) -> None:
        return None

    async def complete(self, call: UpstreamCall) -> Completion:
        payload = self._payload(call)
        phase = "first_byte"
        try:
            async with asyncio.timeout_at(call.deadlines.first_byte_at) as timer:
                response = await self._send(call, payload)
                phase = "total"
                timer.reschedule(call.deadlines.total_at)
                body = await response.read()
        except TimeoutError:
            raise UpstreamTimeout(
                f"upstream {phase.replace('_', ' ')} timeout", code=f"upstream_{phase}_timeout"
            ) from None
        except aiohttp.ClientError as exc:
            raise UpstreamProtocolError(f"upstream response broken: {type(exc).__name__}") from None
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError("upstream returned a body that is not JSON") from None
        if not isinstance(message, dict):
            raise UpstreamProtocolError("upstream returned JSON that is not an object")
        chat = anthropic_to_openai(message, model=call.model, created=int(time.time()))
        out = chat_to_text_completion(chat) if call.endpoint is Endpoint.COMPLETIONS else chat
        return Completion(body=orjson.dumps(out), usage=usage_from_anthropic(message.get("usage")))

    async def open_stream(self, call: UpstreamCall) -> AnthropicStream:
        payload = self._payload(call)
        translator = AnthropicStreamTranslator(
            model=call.model,
            created=int(time.time()),
            include_usage=call.client_wants_usage,
            text_completion=call.endpoint is Endpoint.COMPLETIONS,
        )
        try:
            async with asyncio.timeout_at(call.deadlines.first_byte_at):
                response = await self._send(call, payload)
                stream = AnthropicStream(response, translator)
                try:
                    await stream.prime()
                except BaseException:
                    response.close()
                    raise
        except TimeoutError:
            raise UpstreamTimeout("upstream first byte timeout", code="upstream_first_byte_timeout") from None
        return stream

    def _payload(self, call: UpstreamCall) -> bytes:
        """The Messages request body; raises `InvalidRequest` (before any I/O) for what Anthropic cannot do."""
        if call.endpoint not in _TRANSLATED:
            raise InvalidRequest(
                f"Provider {self.name!r} (anthropic) does not support {call.endpoint.value}.", param="model"
            )
        body = completion_request_to_chat(call.body) if call.endpoint is Endpoint.COMPLETIONS else call.body
        request = request_to_anthropic(body, call.model, default_max_tokens=self._default_max_tokens)
        request.pop("stream", None)
        if call.stream:
            request["stream"] = True
        return orjson.dumps(request)

    def _timeout(self, deadlines: Deadlines) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(deadlines.connect_timeout)
        if timeout is None:
            connect = deadlines.connect_timeout
            timeout = aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect)
            self._timeouts[connect] = timeout
        return timeout

    async def _send(self, call: UpstreamCall, payload: bytes) -> aiohttp.ClientResponse:
        try:
            response = await self._session.post(
                self._url, data=payload, headers=self._headers, timeout=self._timeout(call.deadlines)
            )
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamConnectError(f"cannot connect to upstream: {exc.os_error or exc}") from None
        except (aiohttp.ServerTimeoutError, aiohttp.ConnectionTimeoutError):
            raise UpstreamTimeout("upstream connect timeout") from None
        except aiohttp.ClientError as exc:
            raise UpstreamConnectError(f"upstream connection failed: {type(exc).__name__}") from None
        if response.status >= 300:
            await _raise_status(response)
        return response


class AnthropicStream:
    """An opened Messages stream, translated to OpenAI chunks as it is relayed."""

    __slots__ = ("_complete", "_decoder", "_first", "_response", "_translator", "usage")

    def __init__(self, response: aiohttp.ClientResponse, translator: AnthropicStreamTranslator) -> None:
        self._response = response
        self._translator = translator
        self._decoder = SSEDecoder()
        self._first = b""
        self._complete = False
        self.usage: Usage | None = None

    def _feed(self, raw: bytes) -> bytes:
        chunks = []
        for event in self._decoder.feed(raw):
            chunks.extend(self._translator.feed(event))
        return encode_chunks(chunks) if chunks else b""

    async def prime(self) -> None:
        """Read until the first translated chunk (after `message_start`), so a failure can still fail over."""
        content_type = self._response.headers.get("Content-Type", "")
        if not content_type.startswith("text/event-stream"):
            raise UpstreamProtocolError(
                f"upstream answered a stream request with {content_type or 'no content type'!r}"
            )
        first = b""
        try:
            while not first:
                raw = await self._response.content.readany()
                if not raw:
                    raise UpstreamProtocolError("upstream stream ended before its first event")
                first = self._feed(raw)
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
        except aiohttp.ClientError as exc:
            raise UpstreamProtocolError(f"upstream stream broken: {type(exc).__name__}") from None
        finally:
            self.usage = translator.usage if translator.started else None
        translator.end()
        self._complete = True
        yield DONE_EVENT

    async def aclose(self) -> None:
        if self._complete:
            self._response.release()
        else:
            self._response.close()


async def _raise_status(response: aiohttp.ClientResponse) -> None:
    try:
        body = await response.content.read(_MAX_ERROR_BODY)
    except aiohttp.ClientError:
        body = b""
    finally:
        response.close()
    message, code = _error_message(body, f"upstream returned HTTP {response.status}")
    raise UpstreamStatusError(
        response.status, message, code=code, retry_after=_retry_after(response.headers.get("Retry-After"))
    )


def _error_message(body: bytes, fallback: str) -> tuple[str, str | None]:
    """Anthropic's `{"type": "error", "error": {"type": ..., "message": ...}}` → (message, error type)."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return (body.decode("utf-8", "replace").strip()[:500] or fallback), None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return fallback, None
    kind = error.get("type")
    return str(error.get("message") or fallback)[:2000], (str(kind) if kind else None)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
