"""Incremental scanner for OpenAI-format SSE relayed as raw bytes.

The gateway never re-encodes a pass-through stream. The scanner cuts the byte flow at event
boundaries (so the client only ever receives whole events), and looks at each batch with a few
C-speed byte searches: `[DONE]`, a non-null `finish_reason`, and the usage chunk, which is the
only event parsed as JSON.
"""

from __future__ import annotations

import re

import orjson

from providers.base import Usage

_DONE = re.compile(rb"(?m)^data: ?\[DONE\][ \t]*$")
_USAGE = re.compile(rb'"usage" ?: ?\{')
_FINISH = re.compile(rb'"finish_reason" ?: ?"')
_USAGE_NULL = b',"usage":null'
DONE_EVENT = b"data: [DONE]\n\n"


class OpenAIStreamScanner:
    """Feed upstream bytes in, get complete events out.

    `strip_usage`: the client did not ask for usage, so the usage-only chunk (empty `choices`) is
    removed and the `"usage":null` the upstream adds to every other chunk is dropped too.
    """

    __slots__ = ("_pending", "_strip_usage", "done", "finished", "usage")

    def __init__(self, *, strip_usage: bool) -> None:
        self._pending = b""
        self._strip_usage = strip_usage
        self.done = False
        self.finished = False
        self.usage: Usage | None = None

    def feed(self, data: bytes) -> bytes:
        # `bytes.find` rather than `in`: CPython's `in` on bytes first tries the operand as an integer and
        # formats, then clears, a TypeError every time (~130 ns each). The regexes start with a literal,
        # which `re` looks for as fast as `find` does.
        pending = self._pending
        if pending:
            data = pending + data
            self._pending = b""
        if data.find(b"\r") >= 0:
            data = data.replace(b"\r\n", b"\n")
        if not data.endswith(b"\n\n"):  # the usual read ends at an event boundary
            end = data.rfind(b"\n\n")
            if end < 0:
                self._pending = data
                return b""
            end += 2
            self._pending = data[end:]
            data = data[:end]
        if not self.done and data.find(b"[DONE]") >= 0 and _DONE.search(data):
            self.done = True
        if not self.finished and _FINISH.search(data):
            self.finished = True
        if _USAGE.search(data):
            data = self._take_usage(data)
        if self._strip_usage:
            data = data.replace(_USAGE_NULL, b"")  # the same object when there is none
        return data

    def leftover(self) -> bytes:
        """Bytes after the last complete event (non-empty only for a truncated stream)."""
        return self._pending.strip()

    def _take_usage(self, out: bytes) -> bytes:
        pieces = []
        pos = 0
        for match in _USAGE.finditer(out):
            start = out.rfind(b"\n\n", 0, match.start())
            start = 0 if start < 0 else start + 2
            if start < pos:
                continue  # a second "usage" key inside an event already handled
            stop = out.find(b"\n\n", match.end()) + 2
            event = out[start:stop]
            payload = _event_json(event)
            if isinstance(payload, dict):
                usage = Usage.from_openai(payload.get("usage"))
                if usage is not None:
                    self.usage = usage
                if self._strip_usage and not payload.get("choices"):
                    pieces.append(out[pos:start])
                    pos = stop
        if not pieces:
            return out
        pieces.append(out[pos:])
        return b"".join(pieces)


def _event_json(event: bytes) -> object:
    """The JSON of an event's `data:` lines, or None."""
    lines = [line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
    if not lines:
        return None
    try:
        return orjson.loads(b"\n".join(lines))
    except orjson.JSONDecodeError:
        return None


def has_data_event(events: bytes) -> bool:
    return events.startswith(b"data:") or b"\ndata:" in events


def first_event_json(events: bytes) -> object:
    """The JSON of the first data event in `events` (comments such as `: keep-alive` skipped);
    None when it is not valid JSON."""
    for event in events.split(b"\n\n"):
        if any(line.startswith(b"data:") for line in event.split(b"\n")):
            return _event_json(event)
    return None
