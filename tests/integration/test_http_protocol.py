"""The coalescing protocol: a response head goes out with the body after it, and is never held back.

A real uvicorn (uvloop + httptools) on 127.0.0.1 serves a small ASGI app through
`CoalescingHttpToolsProtocol`; its transports are wrapped once more to record every write, and a raw
socket reads what arrives.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from gateway.http_protocol import CoalescingHttpToolsProtocol, CoalescingTransport
from tests.servers import free_port

WRITES: list[bytes] = []
HEAD_SEEN = threading.Event()


class _Recording:
    """The real transport, with each write recorded (what one `send()` system call gets)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        WRITES.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _RecordingProtocol(CoalescingHttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Recording(transport))  # type: ignore[arg-type]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/json":
        body = b'{"ok":true}'
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"11")]})
        await send({"type": "http.response.body", "body": body})
    elif path == "/slow-body":  # the head alone first: it must not wait for the body
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]})
        for _ in range(500):  # the body only once the client has the head (or after 5 s)
            if HEAD_SEEN.is_set():
                break
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"late"})
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for part in (b"one ", b"two ", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, loop="uvloop", http=_RecordingProtocol, lifespan="off", log_level="error"
    )
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert instance.started
    yield port
    instance.should_exit = True
    thread.join(10)


def _get(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def _read_until(sock: socket.socket, marker: bytes, seconds: float) -> bytes:
    data = b""
    sock.settimeout(seconds)
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_a_json_response_is_one_write(server: int) -> None:
    WRITES.clear()
    with _get(server, "/json") as sock:
        data = _read_until(sock, b'{"ok":true}', 5)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b'\r\n\r\n{"ok":true}')
    assert len(WRITES) == 1 and WRITES[0] == data


def test_a_stream_sends_its_head_with_the_first_chunk_and_each_chunk_as_it_comes(server: int) -> None:
    WRITES.clear()
    with _get(server, "/stream") as sock:
        data = _read_until(sock, b"0\r\n\r\n", 5)
    assert data.endswith(b"4\r\none \r\n4\r\ntwo \r\n5\r\nthree\r\n0\r\n\r\n")
    assert len(WRITES) == 4  # head + "one ", "two ", "three", the terminating chunk
    assert WRITES[0].startswith(b"HTTP/1.1 200 OK\r\n") and WRITES[0].endswith(b"\r\n\r\n4\r\none \r\n")


def test_a_head_is_not_held_back_until_a_late_body(server: int) -> None:
    WRITES.clear()
    HEAD_SEEN.clear()
    with _get(server, "/slow-body") as sock:
        head = _read_until(sock, b"\r\n\r\n", 3)  # a held head would time out here
        HEAD_SEEN.set()
        rest = _read_until(sock, b"late", 5)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"late" not in head
    assert rest.endswith(b"late")
    assert len(WRITES) == 2


def test_close_sends_a_held_head_first() -> None:
    async def main() -> list[bytes]:
        written: list[bytes] = []

        class Sink:
            def write(self, data: bytes) -> None:
                written.append(data)

            def close(self) -> None:
                written.append(b"<closed>")

        transport = CoalescingTransport(Sink(), asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        transport.close()
        await asyncio.sleep(0)  # the scheduled flush finds nothing left to send
        return written

    assert asyncio.run(main()) == [b"HTTP/1.1 204 No Content\r\n\r\n", b"<closed>"]
