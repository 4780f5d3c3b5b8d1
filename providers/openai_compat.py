"""Generic OpenAI-compatible upstream: OpenAI, Mistral, Groq, Together, DeepSeek, llama.cpp,
Ollama. Bytes pass through untouched; only the usage is read, and only the stream's first event is
checked before the gateway commits to this deployment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp
import orjson
from pydantic import BaseModel, ConfigDict, Field
from yarl import URL

from providers.base import Completion, Endpoint, EnvFlag, RawBody, UpstreamCall, Usage, call_headers
from providers.errors import UpstreamError, UpstreamProtocolError, UpstreamStatusError, message_from_upstream_body
from providers.http_transport import HTTPTransport, UpstreamBody, require_event_stream, retry_after_seconds
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
        self._transport = HTTPTransport(session, _status_error)
        self._urls = {endpoint: URL(f"{base}/{endpoint.value}") for endpoint in Endpoint}
        headers = {"Content-Type": "application/json", **config.headers}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        self._headers = headers
        force = config.force_stream_usage
        self._force_usage = force if force is not None else config.kind not in _NO_STREAM_OPTIONS

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

    async def send_raw(self, call: UpstreamCall, body: RawBody) -> _RawRelay:
        headers = {k: v for k, v in call_headers(self._headers, call).items() if k.lower() != "content-type"}
        headers["Content-Type"] = body.content_type
        headers["Content-Length"] = str(body.length)
        response = await self._transport.post_within_first_byte(self._url(call), body.chunks(), headers, call.deadlines)
        return _RawRelay(response)

    async def complete(self, call: UpstreamCall) -> Completion:
        body, data = await self._transport.request_json(
            self._url(call), self._payload(call), call_headers(self._headers, call), call.deadlines
        )
        return Completion(body=body, usage=Usage.from_openai(data.get("usage")))

    async def open_stream(self, call: UpstreamCall) -> _PassThroughStream:
        strip_usage = self._force_usage and not call.client_wants_usage
        return await self._transport.open_stream(
            self._url(call),
            self._payload(call),
            call_headers(self._headers, call),
            call.deadlines,
            lambda response: _PassThroughStream(response, strip_usage=strip_usage),
        )


class _RawRelay(UpstreamBody):
    __slots__ = ("content_type", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        super().__init__(response)
        self.status = response.status
        self.content_type = response.headers.get("Content-Type", "application/octet-stream")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except aiohttp.ClientError as exc:
            raise UpstreamProtocolError(f"upstream response broken: {type(exc).__name__}") from None
        self._complete = True


class _PassThroughStream(UpstreamBody):
    __slots__ = ("_first", "_scanner", "done", "usage")

    def __init__(self, response: aiohttp.ClientResponse, *, strip_usage: bool) -> None:
        super().__init__(response)
        self._scanner = OpenAIStreamScanner(strip_usage=strip_usage)
        self._first = b""
        self.usage: Usage | None = None
        self.done = False

    async def prime(self) -> None:
        require_event_stream(self._response)
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
        content = self._response.content
        if self._first:
            first, self._first = self._first, b""
            self._at_done()
            yield first
        readany = content.readany  # not `iter_any()`: one coroutine frame less per chunk
        try:
            while chunk := await readany():
                out = scanner.feed(chunk)
                if out:
                    if scanner.done:
                        self._at_done()
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
            self.done = True
            yield DONE_EVENT
            return
        raise UpstreamProtocolError("upstream stream ended before completion (no finish_reason or [DONE])")

    def _at_done(self) -> None:
        """What was just read holds `[DONE]`: the usage is known (its chunk comes before)."""
        scanner = self._scanner
        if scanner.done:
            self.done = True
            self.usage = scanner.usage


def _status_error(status: int, body: bytes, retry_after_header: str | None) -> UpstreamStatusError:
    message, code, param = message_from_upstream_body(body, f"upstream returned HTTP {status}")
    return UpstreamStatusError(
        status, message, code=code, param=param, retry_after=retry_after_seconds(retry_after_header)
    )


def build(name: str, config: Any, session: aiohttp.ClientSession) -> OpenAICompatProvider:
    return OpenAICompatProvider(name, config, session)
