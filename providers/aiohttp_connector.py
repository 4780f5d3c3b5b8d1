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

`upstream_post(session)` is how the gateway POSTs: aiohttp's own connector, connection pool, response
class and parser, without `ClientSession._request`, whose ~600 Python bytecodes per call handle what the
upstream session never uses (redirects, cookies, auth from URLs or netrc, proxies from the environment,
trace hooks, middlewares, a total timeout, retrying an idempotent request on a stale connection). A
`bytes` body (every JSON call) also skips `ClientRequest`: its head is serialized by aiohttp's header
writer and written with the body in one transport write, where `ClientRequest.send` spent ~700 more
bytecodes on payload objects and a stream writer, and on Python 3.11 a task of its own for every body.
Instructions per non-streaming gateway request (`python -m benchmarks.instructions --no-relay`):
886,717 through `session.post`, 828,406 without `_request`, 705,661 without `ClientRequest` (20% fewer).
A 3xx answer is not followed: it is the upstream's answer, a status error like any other >= 300. A
session configured with any of those features, or an aiohttp whose internals differ, gets
`session.post` instead.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.helpers import TimerNoop
from aiohttp.http_writer import _serialize_headers
from aiohttp.streams import StreamReader
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

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


UpstreamPost = Callable[[URL, Any, dict[str, str], aiohttp.ClientTimeout], Awaitable[aiohttp.ClientResponse]]
"""(url, body, headers, timeout) → the response, its headers read; raises aiohttp's errors, as `session.post`."""

_SESSION_FIELDS = (
    "_loop _response_class _skip_auto_headers _read_bufsize _max_line_size _max_field_size _max_headers"
    " _trace_configs _middlewares _default_headers _raise_for_status _cookie_jar _base_url _default_auth"
    " _default_proxy _version".split()
)
_RESPONSE_PARAMS = frozenset(
    "timer skip_payload read_until_eof auto_decompress read_timeout read_bufsize timeout_ceil_threshold"
    " max_line_size max_field_size max_headers".split()
)


def upstream_post(session: aiohttp.ClientSession) -> UpstreamPost:
    """The session's POST: `_RawPost` when the session uses nothing `ClientSession._request` adds
    (see the module's docstring), else `session.post` (and it says why)."""
    why = _direct_unfit(session)
    if why is None:
        return _RawPost(session)
    log.info("aiohttp %s: upstream requests go through ClientSession.post (%s)", aiohttp.__version__, why)

    async def post(
        url: URL, data: Any, headers: dict[str, str], timeout: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        return await session.post(url, data=data, headers=headers, timeout=timeout)

    return post


def _direct_unfit(session: aiohttp.ClientSession) -> str | None:
    """Why `_DirectPost` would not do what `session.post` does for this session; None when it would."""
    missing = [name for name in _SESSION_FIELDS if not hasattr(session, name)]
    connector = session.connector
    if missing or connector is None or not hasattr(connector, "_timeout_ceil_threshold"):
        return f"this aiohttp's session lacks {', '.join(missing) or 'a connector'}"
    params = inspect.signature(ResponseHandler.set_response_params).parameters
    if not _RESPONSE_PARAMS <= set(params):
        return "this aiohttp's protocol takes other response parameters"
    if session.trust_env or session._trace_configs or session._middlewares or session._default_headers:
        return "the session reads the environment, or has trace hooks, middlewares or default headers"
    if session._raise_for_status or session._base_url is not None or session._default_auth is not None:
        return "the session raises for status, or has a base URL or default auth"
    if session._default_proxy is not None or not isinstance(session._cookie_jar, aiohttp.DummyCookieJar):
        return "the session has a proxy or keeps cookies"
    if session.timeout.total is not None or session.auto_decompress:
        return "the session has a total timeout or decompresses"
    return None


class _DirectPost:
    """POST through aiohttp's `ClientRequest`, connector and response class, as `ClientSession._request`
    does for a session `_direct_unfit` accepts and a POST (never retried, redirects not followed)."""

    __slots__ = (
        "_connector",
        "_loop",
        "_response_class",
        "_response_params",
        "_session",
        "_skip",
        "_timer",
        "_version",
    )

    def __init__(self, session: aiohttp.ClientSession) -> None:
        connector = session.connector
        assert connector is not None
        self._session = session
        self._connector = connector
        self._loop = session._loop
        self._response_class = session._response_class
        self._skip = session._skip_auto_headers or None
        self._version = session._version
        self._timer = TimerNoop()
        self._response_params: dict[str, Any] = {
            "timer": self._timer,
            "skip_payload": False,
            "read_until_eof": True,
            "auto_decompress": False,
            "read_bufsize": session._read_bufsize,
            "timeout_ceil_threshold": connector._timeout_ceil_threshold,
            "max_line_size": session._max_line_size,
            "max_field_size": session._max_field_size,
            "max_headers": session._max_headers,
        }

    async def __call__(
        self, url: URL, data: Any, headers: dict[str, str], timeout: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        if self._session.closed:
            raise RuntimeError("Session is closed")
        request = aiohttp.ClientRequest(
            "POST",
            url if type(url) is URL else URL(url),
            headers=headers,
            skip_auto_headers=self._skip,
            data=data,
            version=self._version,
            loop=self._loop,
            response_class=self._response_class,
            timer=self._timer,
            session=self._session,
        )
        try:
            try:
                connection = await self._connector.connect(request, traces=[], timeout=timeout)
            except TimeoutError as exc:
                raise aiohttp.ConnectionTimeoutError(f"Connection timeout to host {request.url}") from exc
            connection.protocol.set_response_params(read_timeout=timeout.sock_read, **self._response_params)  # type: ignore[union-attr]
            try:
                response = await request.send(connection)
                try:
                    await response.start(connection)
                except BaseException:
                    response.close()
                    raise
            except BaseException:
                connection.close()
                raise
        except aiohttp.ClientError:
            raise
        except OSError as exc:  # as aiohttp: an OS error writing or reading is a ClientOSError
            if exc.errno is None and isinstance(exc, TimeoutError):
                raise
            raise aiohttp.ClientOSError(*exc.args) from exc
        finally:
            body = request._body
            if body is not None and not body.autoclose:
                await body.close()
        return response


class _Sent:
    """What a `ClientResponse` reads of its request's writer once the request is sent: its size."""

    __slots__ = ("output_size",)

    def __init__(self, output_size: int) -> None:
        self.output_size = output_size


class _Target:
    """One upstream URL as `_RawPost` writes to it: its request line, Host header and connection key."""

    __slots__ = ("connect_as", "host", "request_line")

    def __init__(self, url: URL, post: _DirectPost) -> None:
        if url.host_port_subcomponent is None:
            raise aiohttp.InvalidURL(url)
        self.request_line = f"POST {url.raw_path_qs} HTTP/{post._version.major}.{post._version.minor}"
        self.host = url.host_port_subcomponent
        # The connector reads only the URL's origin and the TLS settings of the request it connects for;
        # one body-less request per URL stands for every POST to it.
        self.connect_as = aiohttp.ClientRequest(
            "POST", url, loop=post._loop, session=post._session, response_class=post._response_class
        )


class _RawPost:
    """`_DirectPost` for a `bytes` body, without `ClientRequest`: the request's head is serialized by
    aiohttp's own header writer (which refuses CR and LF in names and values), written with the body in
    one call onto the pooled connection's transport, and read back by the session's response class and
    the connection's protocol, as aiohttp does. `ClientRequest.send` on Python 3.11 writes every body
    from a task of its own; here nothing waits: the transport buffers what the socket does not take at
    once. Any other body (a multipart upload's chunks), or a `Transfer-Encoding` header, goes through
    `_DirectPost`."""

    __slots__ = ("_direct", "_max_targets", "_targets")

    def __init__(self, session: aiohttp.ClientSession, *, max_targets: int = 1024) -> None:
        self._direct = _DirectPost(session)
        self._targets: dict[URL, _Target] = {}
        self._max_targets = max_targets  # URLs with a model in the path (Gemini's) vary

    async def __call__(
        self, url: URL, data: Any, headers: dict[str, str], timeout: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        direct = self._direct
        if type(data) is not bytes or type(url) is not URL:
            return await direct(url, data, headers, timeout)
        head = CIMultiDict(headers)
        if "Transfer-Encoding" in head:
            return await direct(url, data, headers, timeout)
        if direct._session.closed:
            raise RuntimeError("Session is closed")
        target = self._targets.get(url)
        if target is None:
            target = self._target(url)
        head["Host"] = target.host
        head.setdefault("Accept", "*/*")
        head.setdefault("Content-Type", "application/octet-stream")
        head["Content-Length"] = str(len(data))
        wire = _serialize_headers(target.request_line, head)
        try:
            return await self._send(direct, url, target, head, wire + data, timeout)
        except aiohttp.ClientError:
            raise
        except OSError as exc:  # as aiohttp: an OS error connecting, writing or reading is a ClientOSError
            if exc.errno is None and isinstance(exc, TimeoutError):
                raise
            raise aiohttp.ClientOSError(*exc.args) from exc

    @staticmethod
    async def _send(
        direct: _DirectPost,
        url: URL,
        target: _Target,
        head: CIMultiDict[str],
        request: bytes,
        timeout: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        try:
            connection = await direct._connector.connect(target.connect_as, traces=[], timeout=timeout)
        except TimeoutError as exc:
            raise aiohttp.ConnectionTimeoutError(f"Connection timeout to host {url}") from exc
        try:
            protocol = connection.protocol
            transport = None if protocol is None else protocol.transport
            if protocol is None or transport is None or transport.is_closing():
                raise aiohttp.ClientConnectionResetError("Cannot write to closing transport")
            protocol.set_response_params(read_timeout=timeout.sock_read, **direct._response_params)
            transport.write(request)
            protocol.start_timeout()
            response = direct._response_class(
                "POST",
                url,
                writer=None,
                continue100=None,
                timer=direct._timer,
                request_info=aiohttp.RequestInfo(url, "POST", CIMultiDictProxy(head), url),
                traces=[],
                loop=direct._loop,
                session=direct._session,
                stream_writer=_Sent(len(request)),  # type: ignore[arg-type]
            )
            try:
                await response.start(connection)
            except BaseException:
                response.close()
                raise
        except BaseException:
            connection.close()
            raise
        return response

    def _target(self, url: URL) -> _Target:
        if len(self._targets) >= self._max_targets:
            self._targets.clear()
        target = self._targets[url] = _Target(url, self._direct)
        return target
