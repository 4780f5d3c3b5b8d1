"""The wire format a client speaks to the gateway: OpenAI's chat, completions and embeddings, OpenAI's
Responses API, or Anthropic's Messages API.

The hot-path pipeline (auth, routing, attempts, accounting) works on OpenAI-format requests and
responses; a `ClientWire` converts at the edges only: the client's body into an OpenAI request,
the OpenAI completion and stream back into the client's format, and errors into the client's error JSON.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from gateway.asgi_io import Scope, header
from providers.anthropic_front import (
    OpenAIToAnthropicStream,
    anthropic_error_body,
    error_event,
    messages_request_to_openai,
    openai_to_messages_response,
)
from providers.errors import GatewayError, UpstreamProtocolError, error_body
from providers.responses_front import ChatToResponsesStream, chat_completion_to_response, responses_request_to_openai
from providers.sse import SSEDecoder
from providers.wire import validate_request


class StreamFormat(Protocol):
    """Renders a relayed OpenAI event stream in another wire format."""

    def chunk(self, data: bytes) -> bytes:
        """Complete OpenAI SSE events in, the client's format out (may be empty)."""
        ...

    def end(self) -> bytes:
        """What closes a complete stream."""
        ...

    def error(self, error: GatewayError) -> bytes:
        """The event that ends a broken stream with an error the client's SDK raises."""
        ...


class ClientWire(Protocol):
    def credentials(self, scope: Scope) -> bytes | None:
        """The API key header the client's SDK sends."""
        ...

    def to_openai(self, body: Any) -> dict[str, Any]:
        """Validate the client's body and return the OpenAI request to route; raises `InvalidRequest`."""
        ...

    def render(self, completion: bytes, model: str, request: Any) -> bytes:
        """An OpenAI response body in the client's format; `request` is the client's own body."""
        ...

    def stream_format(self, model: str, request: Any) -> StreamFormat | None:
        """None relays the upstream's OpenAI bytes untouched."""
        ...

    def error_body(self, error: GatewayError) -> bytes: ...


class OpenAIWire:
    def __init__(self, schema: str) -> None:
        self.schema = schema

    def credentials(self, scope: Scope) -> bytes | None:
        return header(scope, b"authorization") or header(scope, b"api-key")

    def to_openai(self, body: Any) -> dict[str, Any]:
        validate_request(self.schema, body)
        assert isinstance(body, dict)
        return body

    def render(self, completion: bytes, model: str, request: Any) -> bytes:
        return completion

    def stream_format(self, model: str, request: Any) -> StreamFormat | None:
        return None

    def error_body(self, error: GatewayError) -> bytes:
        return error_body(error)


class AnthropicWire:
    """`POST /v1/messages`: the `anthropic` SDK sends its key as `x-api-key` (or a bearer token)."""

    def credentials(self, scope: Scope) -> bytes | None:
        return header(scope, b"x-api-key") or header(scope, b"authorization")

    def to_openai(self, body: Any) -> dict[str, Any]:
        request = messages_request_to_openai(body)
        validate_request("chat", request)
        return request

    def render(self, completion: bytes, model: str, request: Any) -> bytes:
        return orjson.dumps(openai_to_messages_response(_completion(completion), model=model))

    def stream_format(self, model: str, request: Any) -> StreamFormat:
        return AnthropicStreamFormat(model)

    def error_body(self, error: GatewayError) -> bytes:
        return anthropic_error_body(error)


class ResponsesWire:
    """`POST /v1/responses`: OpenAI's Responses API, served by the chat pipeline (`providers.responses_front`);
    its errors are OpenAI's usual error JSON."""

    def credentials(self, scope: Scope) -> bytes | None:
        return header(scope, b"authorization") or header(scope, b"api-key")

    def to_openai(self, body: Any) -> dict[str, Any]:
        request = responses_request_to_openai(body)
        validate_request("chat", request)
        return request

    def render(self, completion: bytes, model: str, request: Any) -> bytes:
        return orjson.dumps(chat_completion_to_response(_completion(completion), request, model=model))

    def stream_format(self, model: str, request: Any) -> StreamFormat:
        return ResponsesStreamFormat(model, request)

    def error_body(self, error: GatewayError) -> bytes:
        return error_body(error)


def _completion(completion: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(completion)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError("upstream sent a completion that is not JSON") from None
    if not isinstance(parsed, dict):
        raise UpstreamProtocolError("upstream sent a completion that is not a JSON object")
    return parsed


def _chunks(decoder: SSEDecoder, data: bytes) -> list[dict[str, Any]]:
    """The OpenAI chunks in complete SSE events (`[DONE]` left out)."""
    chunks = []
    for event in decoder.feed(data):
        if event.data == "[DONE]":
            continue
        try:
            parsed = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError("upstream sent an event that is not JSON") from None
        if isinstance(parsed, dict):
            chunks.append(parsed)
    return chunks


class ResponsesStreamFormat:
    """OpenAI chat SSE bytes → Responses API events, one translator per stream."""

    def __init__(self, model: str, request: Any) -> None:
        self._decoder = SSEDecoder()
        self._translator = ChatToResponsesStream(request, model=model)

    def chunk(self, data: bytes) -> bytes:
        return b"".join([self._translator.feed(chunk) for chunk in _chunks(self._decoder, data)])

    def end(self) -> bytes:
        return self._translator.finish()

    def error(self, error: GatewayError) -> bytes:
        return self._translator.error_event(error)


class AnthropicStreamFormat:
    """OpenAI SSE bytes → Anthropic Messages events, one translator per stream."""

    def __init__(self, model: str) -> None:
        self._decoder = SSEDecoder()
        self._translator = OpenAIToAnthropicStream(model=model)

    def chunk(self, data: bytes) -> bytes:
        return b"".join([self._translator.feed(chunk) for chunk in _chunks(self._decoder, data)])

    def end(self) -> bytes:
        return self._translator.finish()

    def error(self, error: GatewayError) -> bytes:
        return error_event(error)
