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
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from yarl import URL

from providers.base import Completion, Deadlines, Endpoint, UpstreamCall, Usage
from providers.errors import InvalidRequest, UpstreamConnectError, UpstreamProtocolError, UpstreamTimeout
from providers.gemini.config import GeminiConfig
from providers.gemini.embeddings import embed_requests, embedding_vectors, embeddings_to_openai
from providers.gemini.errors import status_error
from providers.gemini.request import request_to_gemini
from providers.gemini.response import gemini_to_openai, usage_from_gemini
from providers.gemini.stream import GeminiStreamTranslator, encode_chunks, parse_event
from providers.openai_sse import DONE_EVENT
from providers.sse import SSEDecoder

_MAX_ERROR_BODY = 64 * 1024


class GeminiProvider:
    def __init__(self, name: str, config: GeminiConfig, session: aiohttp.ClientSession) -> None:
        self.kind = "gemini"
        self.name = name
        self._session = session
        self._base = config.base_url.rstrip("/")
        headers = {"content-type": "application/json", **config.headers}
        if config.api_key:
            headers["x-goog-api-key"] = config.api_key
        self._headers = headers
        self._urls: dict[tuple[str, str], URL] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

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
        try:
            async with asyncio.timeout_at(call.deadlines.first_byte_at):
                response = await self._post(call, self._url(call.model, "streamGenerateContent"), payload)
                stream = GeminiStream(response, translator)
                try:
                    await stream.prime()
                except BaseException:
                    response.close()
                    raise
        except TimeoutError:
            raise UpstreamTimeout("upstream first byte timeout", code="upstream_first_byte_timeout") from None
        return stream

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

    def _timeout(self, deadlines: Deadlines) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(deadlines.connect_timeout)
        if timeout is None:
            connect = deadlines.connect_timeout
            timeout = aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect)
            self._timeouts[connect] = timeout
        return timeout

    async def _request_json(self, call: UpstreamCall, url: URL, payload: bytes) -> dict[str, Any]:
        """POST, read the whole answer within the first-byte then total deadlines, parse the JSON object."""
        phase = "first_byte"
        try:
            async with asyncio.timeout_at(call.deadlines.first_byte_at) as timer:
                response = await self._post(call, url, payload)
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
        return data

    async def _post(self, call: UpstreamCall, url: URL, payload: bytes) -> aiohttp.ClientResponse:
        try:
            response = await self._session.post(
                url, data=payload, headers=self._headers, timeout=self._timeout(call.deadlines)
            )
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamConnectError(f"cannot connect to upstream: {exc.os_error or exc}") from None
        except (aiohttp.ServerTimeoutError, aiohttp.ConnectionTimeoutError):
            raise UpstreamTimeout("upstream connect timeout") from None
        except aiohttp.ClientError as exc:
            raise UpstreamConnectError(f"upstream connection failed: {type(exc).__name__}") from None
        if response.status >= 300:
            try:
                body = await response.content.read(_MAX_ERROR_BODY)
            except aiohttp.ClientError:
                body = b""
            finally:
                response.close()
            raise status_error(response.status, body, response.headers.get("Retry-After"))
        return response


class GeminiStream:
    """An opened `streamGenerateContent` SSE stream, translated to OpenAI chunks as it is relayed."""

    __slots__ = ("_complete", "_decoder", "_first", "_response", "_translator", "usage")

    def __init__(self, response: aiohttp.ClientResponse, translator: GeminiStreamTranslator) -> None:
        self._response = response
        self._translator = translator
        self._decoder = SSEDecoder()
        self._first = b""
        self._complete = False
        self.usage: Usage | None = None

    def _feed(self, raw: bytes) -> bytes:
        events = self._decoder.feed(raw) if raw else self._decoder.flush()
        chunks = [chunk for event in events for chunk in self._translator.feed(parse_event(event))]
        return encode_chunks(chunks) if chunks else b""

    async def prime(self) -> None:
        """Read until the first translated chunk, so that a failure can still fail over."""
        content_type = self._response.headers.get("Content-Type", "")
        if not content_type.startswith("text/event-stream"):
            raise UpstreamProtocolError(
                f"upstream answered a stream request with {content_type or 'no content type'!r}"
            )
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
            # Google may end the last event without its blank line: dispatch what is left.
            last = self._feed(b"")
        except aiohttp.ClientError as exc:
            raise UpstreamProtocolError(f"upstream stream broken: {type(exc).__name__}") from None
        finally:
            self.usage = translator.usage if translator.started else None
        closing = encode_chunks(translator.end())
        self._complete = True
        yield last + closing + DONE_EVENT

    async def aclose(self) -> None:
        if self._complete:
            self._response.release()
        else:
            self._response.close()
