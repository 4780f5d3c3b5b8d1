"""Raw ASGI helpers for the hot path: headers, bounded body reads, byte responses, disconnects."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from gateway.asgi_headers import header as header  # re-exported: the hot path's helpers are here
from providers.errors import GatewayError, InvalidRequest, PayloadTooLarge, error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON = b"application/json"


class ClientGone(Exception):
    """The client disconnected before the request was read: nothing to answer."""


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
