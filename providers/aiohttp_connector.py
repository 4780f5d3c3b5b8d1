"""The upstream session: aiohttp's, with a response protocol that resumes only when paused and a lean body reader.

aiohttp 3.14's `StreamReader` calls its protocol's `resume_reading()` after every read that leaves the
buffer under its low-water mark, whether reading was paused or not. Each call feeds the HTTP parser an
empty `data_received(b"")` (to resume a parser that flow control stopped) and resumes the transport: four
Python calls and a parser call per chunk of a streamed body, for nothing when nothing was paused. A
40-chunk stream made 81 `data_received` calls; it makes 40 with this (call counts under cProfile).

`QuietResumeHandler` passes a resume on only when the protocol is paused, by flow control
(`_reading_paused`, which a paused parser always comes with: the parser is paused only through the
protocol) or by its buffer bound (`_buffer_paused`). A body larger than the buffer still pauses and
resumes as before (tested with a slow reader).

`LeanStreamReader` is aiohttp's body reader without the HTTP-chunk bookkeeping that only its
`readchunk()` / `iter_chunks()` use (the gateway reads with `readany()`, `read()` and `iter_any()`):
for every chunk of a chunked body the parser calls `begin_`/`end_http_chunk_receiving()`, which record
the chunk's end in a deque that every read then trims, and `readany()` drains through two more calls
per buffered piece. About 360 Python bytecodes of aiohttp's per streamed chunk go to this
(`python -m benchmarks.opcount --stream`); `readany()` here drains the buffer in one step. `LeanResponse`
(the session's `response_class`) gives each response body this class once its headers are read.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.helpers import TimerNoop
from aiohttp.streams import StreamReader

log = logging.getLogger("switchyard.upstream")


class QuietResumeHandler(ResponseHandler):
    """aiohttp's response protocol, skipping the resumes of a protocol that is not paused, and the
    rescheduling of a read timeout it does not have."""

    def resume_reading(self, resume_parser: bool = True) -> None:
        if self._reading_paused or self._buffer_paused:
            super().resume_reading(resume_parser)

    def _reschedule_timeout(self) -> None:
        # Called for every piece of a body that arrives. The gateway times its upstream reads with its
        # own deadline wheel and sets no `sock_read`: then there is no timer to cancel and make again.
        if self._read_timeout is not None or self._read_timeout_handle is not None:
            super()._reschedule_timeout()


_TIMEOUT_NAMES = frozenset({"_read_timeout", "_read_timeout_handle"})
"""What `QuietResumeHandler._reschedule_timeout` reads: instance attributes, checked as aiohttp's own method's names."""


def upstream_connector(**kwargs: Any) -> aiohttp.TCPConnector:
    """`aiohttp.TCPConnector(**kwargs)` whose connections use `QuietResumeHandler`.

    Falls back to aiohttp's own protocol (and says so) if a future aiohttp no longer builds its protocols
    the way this expects, or its protocol lost the flags and timeout attributes read here."""
    connector = aiohttp.TCPConnector(**kwargs)
    factory = getattr(connector, "_factory", None)
    reschedule = getattr(getattr(ResponseHandler, "_reschedule_timeout", None), "__code__", None)
    flags = all(hasattr(ResponseHandler, name) for name in ("_reading_paused", "_buffer_paused")) and (
        _TIMEOUT_NAMES <= set(getattr(reschedule, "co_names", ()))
    )
    if isinstance(factory, functools.partial) and factory.func is ResponseHandler and flags:
        connector._factory = functools.partial(QuietResumeHandler, *factory.args, **factory.keywords)  # type: ignore[assignment]
    else:
        log.info("aiohttp %s: upstream connections use its own response protocol", aiohttp.__version__)
    return connector


class LeanStreamReader(StreamReader):
    """aiohttp's `StreamReader` without HTTP-chunk boundaries (see the module's docstring).

    Same slots, so a reader can change to this class in place; `readchunk()` then reports no chunk ends."""

    __slots__ = ()

    def begin_http_chunk_receiving(self) -> None:
        return None

    def end_http_chunk_receiving(self) -> None:
        return None

    def feed_data(self, data: bytes, size: int = 0) -> bool:
        if data:
            length = len(data)
            self._size += length
            self._buffer.append(data)
            self.total_bytes += length
            waiter = self._waiter
            if waiter is not None:
                self._waiter = None
                if not waiter.done():
                    waiter.set_result(None)
            if self._size > self._high_water:
                self._protocol.pause_reading()
        return False

    async def readany(self) -> bytes:
        if self._exception is not None:
            raise self._exception
        buffer = self._buffer
        while not buffer and not self._eof:  # aiohttp's `_wait()`, inline: one coroutine less per chunk
            if self._protocol.transport is None:
                raise RuntimeError("Connection closed.")
            if self._waiter is not None:
                raise RuntimeError("readany() called while another coroutine is already waiting for incoming data")
            waiter = self._waiter = self._loop.create_future()
            timer = self._timer
            try:
                if type(timer) is TimerNoop:
                    await waiter
                else:
                    with timer:
                        await waiter
            finally:
                self._waiter = None
        if self._buffer_offset or not buffer:  # a partial read(n) left an offset; or the end
            return self._read_nowait(-1)
        self._timer.assert_timeout()
        if len(buffer) == 1:
            data = buffer.popleft()
        else:
            data = b"".join(buffer)
            buffer.clear()
        length = len(data)
        self._size -= length
        self._cursor += length
        self._protocol.resume_reading()  # the buffer is empty, below its low-water mark
        return data

    async def read(self, n: int = -1) -> bytes:
        if n >= 0:
            return await super().read(n)
        if self._exception is not None:
            raise self._exception
        self.set_read_chunk_size(sys.maxsize)  # as aiohttp: reading everything lifts the buffer bound
        blocks = []
        while block := await self.readany():
            blocks.append(block)
        return blocks[0] if len(blocks) == 1 else b"".join(blocks)


_READER_SLOTS = frozenset(
    "_buffer _buffer_offset _cursor _eof _exception _http_chunk_splits _high_water _protocol _size _timer"
    " _waiter total_bytes".split()
)
LEAN_READER_FITS = _READER_SLOTS <= set(getattr(StreamReader, "__slots__", ()))
"""False if a future aiohttp's reader lost the attributes `LeanStreamReader` uses: bodies then keep aiohttp's."""
if not LEAN_READER_FITS:
    log.info("aiohttp %s: upstream bodies use its own reader", aiohttp.__version__)


class LeanResponse(aiohttp.ClientResponse):
    """aiohttp's response, whose body is read through a `LeanStreamReader`."""

    async def start(self, connection: Any) -> LeanResponse:
        await super().start(connection)
        content = self.content
        if LEAN_READER_FITS and type(content) is StreamReader:  # not the empty body of a 204 or a HEAD
            content._http_chunk_splits = None  # what was fed so far no longer needs its chunk ends
            content.__class__ = LeanStreamReader
        return self


def upstream_session(**connector: Any) -> aiohttp.ClientSession:
    """The gateway's upstream session: `upstream_connector(**connector)`, `LeanResponse`, no cookies, no
    automatic decompression or headers, and no aiohttp timeout (the gateway keeps its own deadlines)."""
    return aiohttp.ClientSession(
        connector=upstream_connector(**connector),
        response_class=LeanResponse,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
        timeout=aiohttp.ClientTimeout(total=None),
    )
