"""`HTTPTransport`: how the HTTP provider adapters POST to their upstream, with aiohttp's errors translated.

Every adapter keeps its URLs, headers and wire formats; this module owns what they share: the POST on
the gateway's shared session (through `upstream_post`: aiohttp without `ClientSession._request`; only
the connect timeout is aiohttp's; the first-byte and total deadlines are the gateway's `DeadlineWheel`,
passed in `Deadlines`), the mapping of aiohttp and timeout errors into the error tree, and reading a
bounded error body on a status >= 300 (a 3xx included: redirects are not followed), handed to the
adapter's own `StatusErrorFactory`.

    UpstreamConnectError    cannot connect, connection failed before the response headers
    UpstreamTimeout         connect timeout; first-byte or total deadline passed
    UpstreamProtocolError   the body broke off, is not JSON, or a stream is not `text/event-stream`
    (the factory's error)   the upstream answered with a status >= 300

`UpstreamBody` is the base of the objects that hand an open response on to the gateway: whoever holds
one calls `aclose()`, which gives the connection back to the pool only if the body was read to its end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import aiohttp
import orjson
from yarl import URL

from providers.base import Deadlines
from providers.errors import UpstreamConnectError, UpstreamError, UpstreamProtocolError, UpstreamTimeout
from providers.upstream_post import upstream_post

MAX_ERROR_BODY = 64 * 1024

StatusErrorFactory = Callable[[int, bytes, str | None], UpstreamError]
"""(status, error body (at most `MAX_ERROR_BODY` bytes, empty if unreadable), Retry-After header) → the
error to raise, keeping the upstream's own message."""


class _Primed(Protocol):
    async def prime(self) -> None: ...


S = TypeVar("S", bound=_Primed)


class HTTPTransport:
    """POSTs for one provider on the gateway's shared session (which it never closes)."""

    __slots__ = ("_post", "_session", "_status_error", "_timeouts")

    def __init__(self, session: aiohttp.ClientSession, status_error: StatusErrorFactory) -> None:
        self._session = session
        self._post = upstream_post(session)
        self._status_error = status_error
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    async def post(self, url: URL, data: Any, headers: dict[str, str], deadlines: Deadlines) -> aiohttp.ClientResponse:
        """POST and wait for the response headers. The caller owns the response and must close or release it.

        Raises `UpstreamConnectError`, `UpstreamTimeout` (connect only: the caller sets the first-byte
        deadline), or the status error for a status >= 300, after closing the response."""
        try:
            response = await self._post(url, data, headers, self._timeout(deadlines))
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamConnectError(f"cannot connect to upstream: {exc.os_error or exc}") from None
        except (aiohttp.ServerTimeoutError, aiohttp.ConnectionTimeoutError):
            raise UpstreamTimeout("upstream connect timeout") from None
        except aiohttp.ClientError as exc:
            raise UpstreamConnectError(f"upstream connection failed: {type(exc).__name__}") from None
        if response.status >= 300:
            try:
                body = await response.content.read(MAX_ERROR_BODY)
            except aiohttp.ClientError:
                body = b""
            finally:
                response.close()
            raise self._status_error(response.status, body, response.headers.get("Retry-After"))
        return response

    async def post_within_first_byte(
        self, url: URL, data: Any, headers: dict[str, str], deadlines: Deadlines
    ) -> aiohttp.ClientResponse:
        """`post`, with the response headers due by the first-byte deadline (else `UpstreamTimeout`)."""
        try:
            with deadlines.timer.at(deadlines.first_byte_at):
                return await self.post(url, data, headers, deadlines)
        except TimeoutError:
            raise _first_byte_timeout() from None

    async def request_json(
        self, url: URL, data: Any, headers: dict[str, str], deadlines: Deadlines
    ) -> tuple[bytes, dict[str, Any]]:
        """POST and read the whole answer: the headers by the first-byte deadline, the body by the total one.

        Returns the body and its JSON object; reading the body to its end releases the connection. Raises
        what `post` raises, `UpstreamTimeout` for either deadline and `UpstreamProtocolError` for a body
        that broke off or is not a JSON object."""
        phase = "first_byte"
        try:
            with deadlines.timer.at(deadlines.first_byte_at) as deadline:
                response = await self.post(url, data, headers, deadlines)
                phase = "total"
                deadline.reschedule(deadlines.total_at)
                body = await response.read()
        except TimeoutError:
            raise UpstreamTimeout(
                f"upstream {phase.replace('_', ' ')} timeout", code=f"upstream_{phase}_timeout"
            ) from None
        except aiohttp.ClientError as exc:
            raise UpstreamProtocolError(f"upstream response broken: {type(exc).__name__}") from None
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError("upstream returned a body that is not JSON") from None
        if not isinstance(parsed, dict):
            raise UpstreamProtocolError("upstream returned JSON that is not an object")
        return body, parsed

    async def open_stream(
        self,
        url: URL,
        data: Any,
        headers: dict[str, str],
        deadlines: Deadlines,
        stream: Callable[[aiohttp.ClientResponse], S],
    ) -> S:
        """POST, wrap the response in `stream(response)` and `prime()` it, all by the first-byte deadline.

        Returns the primed stream, which then owns the response (`aclose()` it). On any failure the
        response is closed and nothing is left to close; raises what `post` and `prime` raise, or
        `UpstreamTimeout` for the first-byte deadline."""
        try:
            with deadlines.timer.at(deadlines.first_byte_at):
                response = await self.post(url, data, headers, deadlines)
                opened = stream(response)
                try:
                    await opened.prime()
                except BaseException:
                    response.close()
                    raise
        except TimeoutError:
            raise _first_byte_timeout() from None
        return opened

    def _timeout(self, deadlines: Deadlines) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(deadlines.connect_timeout)
        if timeout is None:
            connect = deadlines.connect_timeout
            timeout = aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect)
            self._timeouts[connect] = timeout
        return timeout


class UpstreamBody:
    """An open upstream response whose body a subclass relays; the subclass sets `_complete` once it has
    read the body to its end."""

    __slots__ = ("_complete", "_response")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self._complete = False

    async def aclose(self) -> None:
        """Release the connection to the pool after a complete body; close it otherwise (a connection
        left mid-body cannot be reused). Never raises."""
        if self._complete:
            self._response.release()
        else:
            self._response.close()


def require_event_stream(response: aiohttp.ClientResponse) -> None:
    """Raise `UpstreamProtocolError` unless the upstream answered a stream request with an SSE stream."""
    content_type = response.headers.get("Content-Type", "")
    if not content_type.startswith("text/event-stream"):
        raise UpstreamProtocolError(f"upstream answered a stream request with {content_type or 'no content type'!r}")


def retry_after_seconds(value: str | None) -> float | None:
    """A `Retry-After` header in delay-seconds (never negative); None when absent or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _first_byte_timeout() -> UpstreamTimeout:
    return UpstreamTimeout("upstream first byte timeout", code="upstream_first_byte_timeout")
