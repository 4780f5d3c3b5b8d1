"""The upstream connector: aiohttp's `TCPConnector`, with a response protocol that resumes only when paused.

aiohttp 3.14's `StreamReader` calls its protocol's `resume_reading()` after every read that leaves the
buffer under its low-water mark, whether reading was paused or not. Each call feeds the HTTP parser an
empty `data_received(b"")` (to resume a parser that flow control stopped) and resumes the transport: four
Python calls and a parser call per chunk of a streamed body, for nothing when nothing was paused. A
40-chunk stream made 81 `data_received` calls; it makes 40 with this (call counts under cProfile).

`QuietResumeHandler` passes a resume on only when the protocol is paused, by flow control
(`_reading_paused`, which a paused parser always comes with: the parser is paused only through the
protocol) or by its buffer bound (`_buffer_paused`). A body larger than the buffer still pauses and
resumes as before (tested with a slow reader).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler

log = logging.getLogger("switchyard.upstream")


class QuietResumeHandler(ResponseHandler):
    """aiohttp's response protocol, skipping the resumes of a protocol that is not paused."""

    def resume_reading(self, resume_parser: bool = True) -> None:
        if self._reading_paused or self._buffer_paused:
            super().resume_reading(resume_parser)


def upstream_connector(**kwargs: Any) -> aiohttp.TCPConnector:
    """`aiohttp.TCPConnector(**kwargs)` whose connections use `QuietResumeHandler`.

    Falls back to aiohttp's own protocol (and says so) if a future aiohttp no longer builds its protocols
    the way this expects, or its protocol lost the flags read here."""
    connector = aiohttp.TCPConnector(**kwargs)
    factory = getattr(connector, "_factory", None)
    flags = all(hasattr(ResponseHandler, name) for name in ("_reading_paused", "_buffer_paused"))
    if isinstance(factory, functools.partial) and factory.func is ResponseHandler and flags:
        connector._factory = functools.partial(QuietResumeHandler, *factory.args, **factory.keywords)  # type: ignore[assignment]
    else:
        log.info("aiohttp %s: upstream connections use its own response protocol", aiohttp.__version__)
    return connector
