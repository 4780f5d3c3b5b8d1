"""Raw ASGI helpers for the hot path: headers, bounded body reads, byte responses, disconnects."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from providers.errors import GatewayError, InvalidRequest, PayloadTooLarge, error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON = b"application/json"


class ClientGone(Exception):
    """The client disconnected before the request was read: nothing to answer."""


_HEADER_INDEX = "switchyard.headers"
"""Where `header` keeps the scope's headers by name, built on its first call for the request."""


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header `name` (lower case, as ASGI gives names), or None."""
    index = scope.get(_HEADER_INDEX)
    if index is None:
        # Built in C from the end, so a repeated header keeps its first value. A request looks up 3-4
        # headers, most of them absent: a scan of the SDK's dozen headers each time cost 3x this.
        headers = scope["headers"]
        index = scope[_HEADER_INDEX] = dict(reversed(headers if isinstance(headers, list) else list(headers)))
    value = index.get(name)
    return None if value is None else bytes(value)


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body, refusing more than `limit` bytes (early, from Content-Length, when given)."""
    length = header(scope, b"content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise InvalidRequest("Invalid Content-Length header.") from None
        if declared > limit:
            raise PayloadTooLarge(f"Request body of {declared} bytes exceeds the limit of {limit} bytes.")
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body") and len(body) <= limit:
        return body
    parts = [body]
    size = len(body)
    while True:
        if size > limit:
            raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes.")
        if not message.get("more_body"):
            return b"".join(parts)
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone("client disconnected while sending the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        parts.append(chunk)


async def send_bytes(send: Send, status: int, body: bytes, headers: Headers, content_type: bytes = JSON) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_error(
    send: Send, error: GatewayError, headers: Headers, render: Callable[[GatewayError], bytes] = error_body
) -> None:
    """The error in the client's error JSON (OpenAI's by default) with its status and headers."""
    await send_bytes(send, error.http_status, render(error), [*headers, *error.headers()])


def sse_error_event(error: GatewayError) -> bytes:
    """An SSE event the openai SDK raises as `APIError` (it checks every event for an `error` key)."""
    return b"data: " + error_body(error) + b"\n\n"


async def watch_disconnect(receive: Receive, on_disconnect: Callable[[], None]) -> None:
    """The one pending `receive()` of a streaming response: calls back when the client goes away."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            on_disconnect()
            return
