"""Incremental Server-Sent Events decoder: bytes in, (event, data) out.

Follows the WHATWG event-stream rules that matter for LLM APIs: `\\n`, `\\r\\n` or `\\r` line ends,
`event:` and multi-line `data:` fields, comments (`:`), a blank line dispatching the event, and
events without data ignored. Feed it any byte split; it keeps what is incomplete.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SSEvent:
    event: str
    """The `event:` field, or "message" when absent."""
    data: str


class SSEDecoder:
    __slots__ = ("_buffer", "_data", "_event", "_pending_cr")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event = ""
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[SSEvent]:
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the \n of a \r\n split across two chunks
        self._pending_cr = chunk.endswith(b"\r")
        data = self._buffer + chunk
        if data.find(b"\r") >= 0:  # not `in`: see OpenAIStreamScanner.feed
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = data.split(b"\n")
        self._buffer = lines.pop()  # incomplete last line (empty when data ended with a newline)
        events: list[SSEvent] = []
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            if not line:
                if self._data:
                    events.append(SSEvent(self._event or "message", "\n".join(self._data)))
                self._data, self._event = [], ""
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "data":
                self._data.append(value)
            elif field == "event":
                self._event = value
        return events

    def flush(self) -> list[SSEvent]:
        """Events left when the stream ends without a final blank line (a truncated stream)."""
        events = self.feed(b"\n\n") if (self._buffer or self._data) else []
        self._buffer = b""
        return events
