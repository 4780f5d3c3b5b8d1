"""`upstream_post(session)`: the gateway's POST to its upstreams, on the session of `aiohttp_connector`.

It uses aiohttp's own connector, connection pool, response class and parser, without `ClientSession._request`,
whose ~600 Python bytecodes per call handle what the upstream session never uses (redirects, cookies, auth
from URLs or netrc, proxies from the environment, trace hooks, middlewares, a total timeout, retrying an
idempotent request on a stale connection). A `bytes` body (every JSON call) also skips `ClientRequest`: its
head is serialized by aiohttp's header writer and written with the body in one transport write, where
`ClientRequest.send` spent ~700 more bytecodes on payload objects and a stream writer, and on Python 3.11 a
task of its own for every body. Instructions per non-streaming gateway request (`python -m
benchmarks.instructions --no-relay`): 886,717 through `session.post`, 828,406 without `_request`, 705,661
without `ClientRequest` (20% fewer). A 3xx answer is not followed: it is the upstream's answer, a status error
like any other >= 300. A session configured with any of those features, or an aiohttp whose internals differ,
gets `session.post` instead.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.connector import Connection
from aiohttp.helpers import TimerNoop
from aiohttp.http_writer import _serialize_headers
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from providers.idle_work import idle_work

log = logging.getLogger("switchyard.upstream")


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


def _client_os_error(exc: OSError) -> OSError:
    """As aiohttp: an OS error connecting, writing or reading is a `ClientOSError`, except a bare timeout."""
    if exc.errno is None and isinstance(exc, TimeoutError):
        return exc
    return aiohttp.ClientOSError(*exc.args)


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
            connection = await self._connect(request, timeout)
            try:
                response = await request.send(connection)
            except BaseException:
                connection.close()
                raise
            return await _started(response, connection)
        except aiohttp.ClientError:
            raise
        except OSError as exc:
            raise _client_os_error(exc) from exc
        finally:
            body = request._body
            if body is not None and not body.autoclose:
                await body.close()

    async def _connect(self, request: aiohttp.ClientRequest, timeout: aiohttp.ClientTimeout) -> Connection:
        """A pooled or new connection for `request`'s origin, its protocol set to read this response."""
        try:
            connection = await self._connector.connect(request, traces=[], timeout=timeout)
        except TimeoutError as exc:
            raise aiohttp.ConnectionTimeoutError(f"Connection timeout to host {request.url}") from exc
        connection.protocol.set_response_params(read_timeout=timeout.sock_read, **self._response_params)  # type: ignore[union-attr]
        return connection


async def _started(response: aiohttp.ClientResponse, connection: Connection) -> aiohttp.ClientResponse:
    """`response` with its status and headers read; on any failure both it and `connection` are closed."""
    try:
        await response.start(connection)
    except BaseException:
        response.close()
        connection.close()
        raise
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
        host = url.host_port_subcomponent
        if host is None:
            raise aiohttp.InvalidURL(url)
        self.request_line = f"POST {url.raw_path_qs} HTTP/{post._version.major}.{post._version.minor}"
        self.host = host
        # The connector reads only the URL's origin and the TLS settings of the request it connects for;
        # one body-less request per URL stands for every POST to it.
        self.connect_as = aiohttp.ClientRequest(
            "POST", url, loop=post._loop, session=post._session, response_class=post._response_class
        )


class _RawPost(_DirectPost):
    """`_DirectPost` for a `bytes` body, without `ClientRequest`: the request's head is serialized by
    aiohttp's own header writer (which refuses CR and LF in names and values), written with the body in
    one call onto the pooled connection's transport, and read back by the session's response class and
    the connection's protocol, as aiohttp does. `ClientRequest.send` on Python 3.11 writes every body
    from a task of its own; here nothing waits: the transport buffers what the socket does not take at
    once. Any other body (a multipart upload's chunks), or a `Transfer-Encoding` header, goes through
    `_DirectPost`."""

    __slots__ = ("_max_targets", "_targets")

    def __init__(self, session: aiohttp.ClientSession, *, max_targets: int = 1024) -> None:
        super().__init__(session)
        self._targets: dict[URL, _Target] = {}
        self._max_targets = max_targets  # URLs with a model in the path (Gemini's) vary

    async def __call__(
        self, url: URL, data: Any, headers: dict[str, str], timeout: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        if type(data) is not bytes or type(url) is not URL:
            return await super().__call__(url, data, headers, timeout)
        head = CIMultiDict(headers)
        if "Transfer-Encoding" in head:
            return await super().__call__(url, data, headers, timeout)
        if self._session.closed:
            raise RuntimeError("Session is closed")
        target = self._targets.get(url)
        if target is None:
            target = self._target(url)
        head["Host"] = target.host
        head.setdefault("Accept", "*/*")
        head.setdefault("Content-Type", "application/octet-stream")
        head["Content-Length"] = str(len(data))
        request = _serialize_headers(target.request_line, head) + data
        # Made before connecting: between the connection and `_started` only the write can fail.
        response = self._response_class(
            "POST",
            url,
            writer=None,
            continue100=None,
            timer=self._timer,
            request_info=aiohttp.RequestInfo(url, "POST", CIMultiDictProxy(head), url),
            traces=[],
            loop=self._loop,
            session=self._session,
            stream_writer=_Sent(len(request)),  # type: ignore[arg-type]
        )
        try:
            connection = await self._connect(target.connect_as, timeout)
            try:
                transport = connection.transport
                if transport is None or transport.is_closing():
                    raise aiohttp.ClientConnectionResetError("Cannot write to closing transport")
                transport.write(request)
                connection.protocol.start_timeout()  # type: ignore[union-attr]
            except BaseException:
                connection.close()
                raise
            idle_work.run()  # the upstream has the request: until it answers, the loop has time to spare
            return await _started(response, connection)
        except aiohttp.ClientError:
            raise
        except OSError as exc:
            raise _client_os_error(exc) from exc

    def _target(self, url: URL) -> _Target:
        if len(self._targets) >= self._max_targets:
            self._targets.clear()
        target = self._targets[url] = _Target(url, self)
        return target
