"""Generic OpenAI-compatible upstream: OpenAI, Mistral, Groq, Together, DeepSeek, llama.cpp,
Ollama. Bytes pass through untouched; only the usage is read, and only the stream's first event is
checked before the gateway commits to this deployment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp
import orjson
from pydantic import BaseModel, ConfigDict, Field
from yarl import URL

from providers.base import Completion, Deadlines, Endpoint, EnvFlag, RawBody, UpstreamCall, Usage
from providers.errors import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
    message_from_upstream_body,
)
from providers.openai_sse import DONE_EVENT, OpenAIStreamScanner, first_event_json, has_data_event

OpenAICompatKind = Literal["openai", "mistral", "groq", "together", "deepseek", "llamacpp", "ollama"]

DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "mistral": "https://api.mistral.ai/v1",
    "groq": "https://api.groq.com/openai/v1",
    "together": "https://api.together.xyz/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "ollama": "http://127.0.0.1:11434/v1",
}
# Mistral rejects `stream_options`; it reports usage in its last chunk unasked.
_NO_STREAM_OPTIONS = frozenset({"mistral"})
_MAX_ERROR_BODY = 64 * 1024


class OpenAICompatConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: OpenAICompatKind
    base_url: str | None = Field(default=None, description="Defaults per kind; required for llamacpp.")
    api_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    enabled: EnvFlag = True
    force_stream_usage: bool | None = Field(
        default=None,
        description="Send stream_options.include_usage upstream (default: all kinds but mistral).",
    )

    def resolved_base_url(self) -> str | None:
        return (self.base_url or DEFAULT_BASE_URLS.get(self.kind) or "").rstrip("/") or None


class OpenAICompatProvider:
    """One configured OpenAI-compatible upstream, sending on the gateway's shared aiohttp session."""

    def __init__(self, name: str, config: OpenAICompatConfig, session: aiohttp.ClientSession) -> None:
        base = config.resolved_base_url()
        if base is None:
            raise ValueError(f"provider {name!r} of kind {config.kind!r} needs a base_url")
        self.kind = config.kind
        self.name = name
        self._session = session
        self._urls = {endpoint: URL(f"{base}/{endpoint.value}") for endpoint in Endpoint}
        headers = {"Content-Type": "application/json", **config.headers}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        self._headers = headers
        force = config.force_stream_usage
        self._force_usage = force if force is not None else config.kind not in _NO_STREAM_OPTIONS
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    async def aclose(self) -> None:
        return None

    def _url(self, call: UpstreamCall) -> URL:
        return self._urls[call.endpoint]

    def _payload(self, call: UpstreamCall) -> bytes:
        body = dict(call.body)
        body["model"] = call.model
        if call.stream and self._force_usage and not call.client_wants_usage:
            options = body.get("stream_options")
            body["stream_options"] = (
                {**options, "include_usage": True} if isinstance(options, dict) else {"include_usage": True}
            )
        return orjson.dumps(body)

    def _timeout(self, deadlines: Deadlines) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(deadlines.connect_timeout)
        if timeout is None:
            connect = deadlines.connect_timeout
            timeout = aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect)
            self._timeouts[connect] = timeout
        return timeout

    async def _send(self, call: UpstreamCall) -> aiohttp.ClientResponse:
        return await self._post(call, self._payload(call), self._headers)

    async def _post(self, call: UpstreamCall, data: Any, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """POST and wait for the response headers; raise mapped errors for failures and non-2xx."""
        try:
            response = await self._session.post(
                self._url(call), data=data, headers=headers, timeout=self._timeout(call.deadlines)
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

    async def send_raw(self, call: UpstreamCall, body: RawBody) -> _RawRelay:
        headers = {k: v for k, v in self._headers.items() if k.lower() != "content-type"}
        headers["Content-Type"] = body.content_type
        headers["Content-Length"] = str(body.length)
        try:
            async with asyncio.timeout_at(call.deadlines.first_byte_at):
                response = await self._post(call, body.chunks(), headers)
        except TimeoutError:
            raise UpstreamTimeout("upstream first byte timeout", code="upstream_first_byte_timeout") from None
        return _RawRelay(response)

    async def complete(self, call: UpstreamCall) -> Completion:
        phase = "first_byte"
        try:
            async with asyncio.timeout_at(call.deadlines.first_byte_at) as timer:
                response = await self._send(call)
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
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError("upstream returned a body that is not JSON") from None
        if not isinstance(data, dict):
            raise UpstreamProtocolError("upstream returned JSON that is not an object")
        return Completion(body=body, usage=Usage.from_openai(data.get("usage")))

    async def open_stream(self, call: UpstreamCall) -> _PassThroughStream:
        try:
            async with asyncio.timeout_at(call.deadlines.first_byte_at):
                response = await self._send(call)
                stream = _PassThroughStream(response, strip_usage=self._force_usage and not call.client_wants_usage)
                try:
                    await stream.prime()
                except BaseException:
                    response.close()
                    raise
        except TimeoutError:
            raise UpstreamTimeout("upstream first byte timeout", code="upstream_first_byte_timeout") from None
        return stream


class _RawRelay:
    __slots__ = ("_complete", "_response", "content_type", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.content_type = response.headers.get("Content-Type", "application/octet-stream")
        self._complete = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except aiohttp.ClientError as exc:
            raise UpstreamProtocolError(f"upstream response broken: {type(exc).__name__}") from None
        self._complete = True

    async def aclose(self) -> None:
        if self._complete:
            self._response.release()
        else:
            self._response.close()


class _PassThroughStream:
    __slots__ = ("_complete", "_first", "_response", "_scanner", "usage")

    def __init__(self, response: aiohttp.ClientResponse, *, strip_usage: bool) -> None:
        self._response = response
        self._scanner = OpenAIStreamScanner(strip_usage=strip_usage)
        self._first = b""
        self._complete = False
        self.usage: Usage | None = None

    async def prime(self) -> None:
        content_type = self._response.headers.get("Content-Type", "")
        if not content_type.startswith("text/event-stream"):
            raise UpstreamProtocolError(
                f"upstream answered a stream request with {content_type or 'no content type'!r}"
            )
        first = b""
        content = self._response.content
        try:
            while not has_data_event(first):
                chunk = await content.readany()
                if not chunk:
                    raise UpstreamProtocolError("upstream stream ended before its first event")
                first += self._scanner.feed(chunk)
        except aiohttp.ClientError as exc:
            raise UpstreamProtocolError(f"upstream stream broken before first event: {type(exc).__name__}") from None
        payload = first_event_json(first)
        if not isinstance(payload, dict):
            raise UpstreamProtocolError("upstream stream's first event is not a JSON object")
        error = payload.get("error")
        if error:
            message, code, _ = message_from_upstream_body(orjson.dumps(payload), "upstream stream error")
            raise UpstreamError(f"upstream stream error: {message}", code=code)
        self._first = first

    async def __aiter__(self) -> AsyncIterator[bytes]:
        scanner = self._scanner
        if self._first:
            first, self._first = self._first, b""
            yield first
        try:
            async for chunk in self._response.content.iter_any():
                out = scanner.feed(chunk)
                if out:
                    yield out
        except aiohttp.ClientError as exc:
            self.usage = scanner.usage
            raise UpstreamProtocolError(f"upstream stream broken: {type(exc).__name__}") from None
        self.usage = scanner.usage
        if scanner.done:
            self._complete = True
            return
        if scanner.finished and not scanner.leftover():
            # Some servers end after the finish chunk without `[DONE]`: complete all the same.
            self._complete = True
            yield DONE_EVENT
            return
        raise UpstreamProtocolError("upstream stream ended before completion (no finish_reason or [DONE])")

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
    message, code, param = message_from_upstream_body(body, f"upstream returned HTTP {response.status}")
    raise UpstreamStatusError(
        response.status,
        message,
        code=code,
        param=param,
        retry_after=_retry_after(response.headers.get("Retry-After")),
    )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def build(name: str, config: Any, session: aiohttp.ClientSession) -> OpenAICompatProvider:
    return OpenAICompatProvider(name, config, session)
