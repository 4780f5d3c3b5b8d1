"""`AnthropicProvider`: POST /v1/messages on the gateway's shared aiohttp session.

Chat completions and legacy completions (the prompt becomes one user message; the reply comes back as
a `text_completion`) are translated both ways; embeddings and every other endpoint raise
`InvalidRequest`. Upstream errors keep Anthropic's message and error type (`providers.anthropic.errors`);
429, 5xx and Anthropic's 529 `overloaded_error` are retryable on another
deployment (`UpstreamStatusError` retries any status >= 500).
"""

from __future__ import annotations

import time

import aiohttp
import orjson
from yarl import URL

from providers.anthropic.config import AnthropicConfig
from providers.anthropic.errors import status_error
from providers.anthropic.request import completion_request_to_chat, request_to_anthropic
from providers.anthropic.response import anthropic_to_openai, chat_to_text_completion, usage_from_anthropic
from providers.anthropic.stream import AnthropicStreamTranslator
from providers.base import Completion, Endpoint, UpstreamCall, call_headers
from providers.errors import InvalidRequest
from providers.http_transport import HTTPTransport
from providers.sse import SSEvent
from providers.translated_stream import Chunk, TranslatedStream

_TRANSLATED = frozenset({Endpoint.CHAT, Endpoint.COMPLETIONS})


class AnthropicProvider:
    def __init__(self, name: str, config: AnthropicConfig, session: aiohttp.ClientSession) -> None:
        self.kind = "anthropic"
        self.name = name
        self._transport = HTTPTransport(session, status_error)
        self._url = URL(f"{config.base_url.rstrip('/')}/messages")
        headers = {"content-type": "application/json", "anthropic-version": config.anthropic_version, **config.headers}
        if config.api_key:
            headers["x-api-key"] = config.api_key
        self._headers = headers
        self._default_max_tokens = config.default_max_tokens

    async def aclose(self) -> None:
        return None

    async def complete(self, call: UpstreamCall) -> Completion:
        payload = self._payload(call)
        _, message = await self._transport.request_json(
            self._url, payload, call_headers(self._headers, call), call.deadlines
        )
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
        return await self._transport.open_stream(
            self._url,
            payload,
            call_headers(self._headers, call),
            call.deadlines,
            lambda response: AnthropicStream(response, translator),
        )

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


class AnthropicStream(TranslatedStream[AnthropicStreamTranslator]):
    """An opened Messages stream, translated to OpenAI chunks as it is relayed; the first chunk follows
    `message_start`."""

    __slots__ = ()

    def _translate(self, event: SSEvent) -> list[Chunk]:
        return self._translator.feed(event)

    def _end(self) -> list[Chunk]:
        self._translator.end()
        return []
