"""uvicorn's httptools protocol, with a response's head and its first body bytes sent in one write.

uvicorn writes the status line and headers as soon as the app sends `http.response.start`, and each
body message as a write of its own. On uvloop every write is a `send()` system call at once, and on
loopback a send also runs the receiver's TCP processing: one more write per message cost the writer
1-10 µs of CPU on the 2-core development machine (`python -m benchmarks.write_cost`, 5 rounds), about
what routing costs. A JSON response paid for two writes, a stream for one more than it has chunks.

`CoalescingTransport` holds a write that looks like a response head (`HTTP/` ... blank line) and sends
it together with the next write, or on its own at the next turn of the event loop if none comes in this
one: a head is never delayed past the loop turn it was written in, and bytes keep their order. Writes
that are not heads pass straight through.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """A transport that sends a response head with the write after it (see the module's docstring)."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif data.startswith(b"HTTP/") and data.endswith(b"\r\n\r\n"):
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def __getattr__(self, name: str) -> Any:  # the rest of the transport API, used rarely
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a `CoalescingTransport` (pass it as `http=`)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
