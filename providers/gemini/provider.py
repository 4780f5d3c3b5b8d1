"""`GeminiProvider`: the Gemini API (generativelanguage v1beta) on the gateway's shared aiohttp session.

Chat completions go to `models/{model}:generateContent`, streamed ones to
`models/{model}:streamGenerateContent?alt=sse`; embeddings to `:embedContent` (one input) or
`:batchEmbedContents` (a list, several calls at once past 100 inputs). The key travels in the
`x-goog-api-key` header. Legacy completions and every other endpoint raise `InvalidRequest` before any
I/O. Upstream errors keep Google's message and status (`providers.gemini.errors`); 429
RESOURCE_EXHAUSTED and 5xx (503 UNAVAILABLE...) are retryable on another deployment.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson
from yarl import URL

from providers.base import Completion, Endpoint, UpstreamCall, call_headers
from providers.errors import InvalidRequest
from providers.gemini.config import GeminiConfig
from providers.gemini.embeddings import embed_requests, embedding_vectors, embeddings_to_openai
from providers.gemini.errors import status_error
from providers.gemini.request import request_to_gemini
from providers.gemini.response import gemini_to_openai, usage_from_gemini
from providers.gemini.stream import GeminiStreamTranslator, parse_event
from providers.http_transport import HTTPTransport
from providers.sse import SSEvent
from providers.translated_stream import Chunk, TranslatedStream


class GeminiProvider:
    def __init__(self, name: str, config: GeminiConfig, session: aiohttp.ClientSession) -> None:
        self.kind = "gemini"
        self.name = name
        self._transport = HTTPTransport(session, status_error)
        self._base = config.base_url.rstrip("/")
        headers = {"content-type": "application/json", **config.headers}
        if config.api_key:
            headers["x-goog-api-key"] = config.api_key
        self._headers = headers
        self._urls: dict[tuple[str, str], URL] = {}

    async def aclose(self) -> None:
        return None

    async def complete(self, call: UpstreamCall) -> Completion:
        if call.endpoint is Endpoint.EMBEDDINGS:
            return await self._embed(call)
        payload = orjson.dumps(request_to_gemini(self._chat_body(call)))
        data = await self._request_json(call, self._url(call.model, "generateContent"), payload)
        chat = gemini_to_openai(data, model=call.model, request_id=call.request_id, created=int(time.time()))
        return Completion(body=orjson.dumps(chat), usage=usage_from_gemini(data.get("usageMetadata")))

    async def open_stream(self, call: UpstreamCall) -> GeminiStream:
        payload = orjson.dumps(request_to_gemini(self._chat_body(call)))
        translator = GeminiStreamTranslator(
            model=call.model,
            request_id=call.request_id,
            created=int(time.time()),
            include_usage=call.client_wants_usage,
        )
        url = self._url(call.model, "streamGenerateContent")
        return await self._transport.open_stream(
            url,
            payload,
            call_headers(self._headers, call),
            call.deadlines,
            lambda response: GeminiStream(response, translator),
        )

    def _chat_body(self, call: UpstreamCall) -> dict[str, Any]:
        if call.endpoint is not Endpoint.CHAT:
            raise InvalidRequest(
                f"Provider {self.name!r} (gemini) does not support {call.endpoint.value}.", param="model"
            )
        return call.body

    async def _embed(self, call: UpstreamCall) -> Completion:
        method, payloads = embed_requests(call.body, call.model)
        url = self._url(call.model, method)
        tasks = [asyncio.ensure_future(self._request_json(call, url, orjson.dumps(p))) for p in payloads]
        try:
            responses = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        body, usage = embeddings_to_openai(call.body, embedding_vectors(method, responses), model=call.model)
        return Completion(body=orjson.dumps(body), usage=usage)

    def _url(self, model: str, method: str) -> URL:
        url = self._urls.get((model, method))
        if url is None:
            query = "?alt=sse" if method == "streamGenerateContent" else ""
            url = URL(f"{self._base}/models/{model.removeprefix('models/')}:{method}{query}")
            self._urls[(model, method)] = url
        return url

    async def _request_json(self, call: UpstreamCall, url: URL, payload: bytes) -> dict[str, Any]:
        _, data = await self._transport.request_json(url, payload, call_headers(self._headers, call), call.deadlines)
        return data


class GeminiStream(TranslatedStream[GeminiStreamTranslator]):
    """An opened `streamGenerateContent` SSE stream, translated to OpenAI chunks as it is relayed."""

    __slots__ = ()

    def _translate(self, event: SSEvent) -> list[Chunk]:
        return self._translator.feed(parse_event(event))

    def _end(self) -> list[Chunk]:
        return self._translator.end()

    def _events_at_eof(self) -> list[SSEvent]:
        # Google may end the last event without its blank line: dispatch what is left.
        return self._decoder.flush()
