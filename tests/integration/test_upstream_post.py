"""`upstream_post`: the gateway's POST through aiohttp's connector and response, without
`ClientSession._request` (and for a `bytes` body without `ClientRequest`) — the same request on the
wire, pooled connections, aiohttp's errors, and `session.post` for a session that uses what only
`_request` handles.

A real aiohttp server on 127.0.0.1 echoes what it received; the client is the gateway's session.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from yarl import URL

from providers.aiohttp_connector import LeanResponse, upstream_session
from providers.upstream_post import _DirectPost, _RawPost, upstream_post
from tests.servers import serve_app

TIMEOUT = aiohttp.ClientTimeout(total=None, connect=5, sock_connect=5)


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    peer = request.transport.get_extra_info("peername") if request.transport else None
    answer = {
        "method": request.method,
        "path": request.path_qs,
        "headers": {k.lower(): v for k, v in request.headers.items()},
        "body": body.decode(),
        "client_port": peer[1] if peer else None,
    }
    return web.Response(body=orjson.dumps(answer), content_type="application/json")


async def _moved(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=307, headers={"Location": "/echo"})


async def _hangs_up(request: web.Request) -> web.Response:
    await request.read()
    assert request.transport is not None
    request.transport.close()
    await asyncio.sleep(1)
    return web.Response()


@asynccontextmanager
async def server() -> AsyncIterator[URL]:
    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/echo", _echo)
    app.router.add_post("/moved", _moved)
    app.router.add_post("/hangs-up", _hangs_up)
    async with serve_app(app) as base:
        yield base


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        parsed: dict[str, Any] = orjson.loads(await response.read())
        return parsed
    finally:
        response.release()


def test_the_gateway_session_posts_directly_and_the_upstream_gets_the_same_request() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"a":'
        yield b"1}"

    async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any]], type]:
        async with server() as base, upstream_session(limit=0) as session:
            post = upstream_post(session)
            assert isinstance(post, _RawPost)
            headers = {"Authorization": "Bearer sk-up", "Content-Type": "application/json", "X-Extra": "1"}
            direct, kind = [], type(None)
            for body in (b'{"model":"m"}', b'{"model":"n"}'):
                response = await post(base / "echo", body, headers, TIMEOUT)
                kind = type(response)
                direct.append(await _json(response))
            streamed = await post(
                base / "echo", chunks(), {**headers, "Content-Length": "7"}, TIMEOUT
            )  # an async body, as the raw pass-through sends
            direct.append(await _json(streamed))
            reference = []
            for body in (b'{"model":"m"}', b'{"model":"n"}'):
                async with session.post(base / "echo", data=body, headers=headers, timeout=TIMEOUT) as response:
                    reference.append(orjson.loads(await response.read()))
            # The same request through ClientRequest (what a non-bytes body takes).
            through_request = await _json(await _DirectPost(session)(base / "echo", b'{"model":"m"}', headers, TIMEOUT))
            reference.append(through_request)
            return direct, reference, kind

    direct, reference, kind = asyncio.run(asyncio.wait_for(main(), 20))
    assert kind is LeanResponse
    first, second, streamed = direct
    assert first["method"] == "POST" and first["path"] == "/echo"
    assert first["body"] == '{"model":"m"}' and second["body"] == '{"model":"n"}'
    assert streamed["body"] == '{"a":1}'
    assert first["headers"]["authorization"] == "Bearer sk-up"
    assert first["headers"]["x-extra"] == "1"
    # The same headers as ClientSession.post and ClientRequest write for this session (no User-Agent,
    # no Accept-Encoding), Content-Length included.
    assert first["headers"] == reference[0]["headers"] == reference[2]["headers"]
    assert second["headers"] == reference[1]["headers"]
    assert first["headers"]["content-length"] == "13"
    assert "user-agent" not in first["headers"] and "accept-encoding" not in first["headers"]
    # The connection went back to the pool and was reused.
    assert first["client_port"] == second["client_port"] == streamed["client_port"]


def test_a_redirect_is_the_upstreams_answer_not_followed() -> None:
    async def main() -> tuple[int, str | None]:
        async with server() as base, upstream_session(limit=0) as session:
            response = await upstream_post(session)(base / "moved", b"{}", {}, TIMEOUT)
            try:
                return response.status, response.headers.get("Location")
            finally:
                response.close()

    assert asyncio.run(asyncio.wait_for(main(), 10)) == (307, "/echo")


def test_connection_failures_raise_aiohttps_errors() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    async def main() -> tuple[BaseException, BaseException, BaseException]:
        async with server() as base:
            session = upstream_session(limit=0)
            post = upstream_post(session)
            errors = []
            for url in (URL(f"http://127.0.0.1:{closed_port}/echo"), base / "hangs-up"):
                try:
                    await post(url, b"{}", {}, TIMEOUT)
                except BaseException as exc:
                    errors.append(exc)
            await session.close()
            try:
                await post(base / "echo", b"{}", {}, TIMEOUT)
            except BaseException as exc:
                errors.append(exc)
            return errors[0], errors[1], errors[2]

    refused, hung_up, closed = asyncio.run(asyncio.wait_for(main(), 10))
    assert isinstance(refused, aiohttp.ClientConnectorError)
    assert isinstance(hung_up, aiohttp.ServerDisconnectedError)
    assert isinstance(closed, RuntimeError) and "closed" in str(closed)


def _options(name: str) -> dict[str, Any]:
    """Session options (built inside the loop: a cookie jar needs one) that only ClientSession handles."""
    return {
        "default-headers": lambda: {"headers": {"X-Default": "yes"}},
        "trace": lambda: {"trace_configs": [aiohttp.TraceConfig()]},
        "cookies": lambda: {"cookie_jar": aiohttp.CookieJar()},
        "trust-env": lambda: {"trust_env": True},
        "total-timeout": lambda: {"timeout": aiohttp.ClientTimeout(total=30)},
        "raise-for-status": lambda: {"raise_for_status": True},
    }[name]()


@pytest.mark.parametrize(
    "name", ["default-headers", "trace", "cookies", "trust-env", "total-timeout", "raise-for-status"]
)
def test_a_session_using_what_only_client_session_handles_posts_through_it(name: str) -> None:
    async def main() -> tuple[bool, dict[str, Any]]:
        settings: dict[str, Any] = {"auto_decompress": False, "cookie_jar": aiohttp.DummyCookieJar(), **_options(name)}
        async with server() as base, aiohttp.ClientSession(**settings) as session:
            post = upstream_post(session)
            response = await post(base / "echo", b'{"x":1}', {"Content-Type": "application/json"}, TIMEOUT)
            return isinstance(post, (_DirectPost, _RawPost)), await _json(response)

    direct, echoed = asyncio.run(asyncio.wait_for(main(), 10))
    assert not direct
    assert echoed["body"] == '{"x":1}'
    if name == "default-headers":
        assert echoed["headers"]["x-default"] == "yes"


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent() -> None:
    async def main() -> tuple[list[BaseException], int]:
        async with server() as base, upstream_session(limit=0) as session:
            post = upstream_post(session)
            errors = []
            for headers in ({"Authorization": "Bearer x\r\nX-Injected: 1"}, {"X-Bad\nName": "1"}):
                try:
                    await post(base / "echo", b"{}", headers, TIMEOUT)
                except BaseException as exc:
                    errors.append(exc)
            assert session.connector is not None
            return errors, len(session.connector._conns)  # no connection was taken for them

    errors, pooled = asyncio.run(asyncio.wait_for(main(), 10))
    assert len(errors) == 2 and all(isinstance(e, ValueError) for e in errors)
    assert pooled == 0


def test_a_body_larger_than_the_socket_buffers_and_many_urls_arrive_whole() -> None:
    big = b'{"input":"' + b"x" * (8 << 20) + b'"}'

    async def main() -> tuple[dict[str, Any], list[str], int]:
        async with server() as base, upstream_session(limit=0) as session:
            assert isinstance(upstream_post(session), _RawPost)
            post = _RawPost(session, max_targets=3)  # the per-URL cache is bounded
            echoed = await _json(await post(base / "echo", big, {}, TIMEOUT))
            paths = []
            for n in range(5):
                answer = await _json(await post((base / "echo").with_query(model=str(n)), b"{}", {}, TIMEOUT))
                paths.append(answer["path"])
            return echoed, paths, len(post._targets)

    echoed, paths, cached = asyncio.run(asyncio.wait_for(main(), 30))
    assert len(echoed["body"]) == len(big) and echoed["headers"]["content-length"] == str(len(big))
    assert echoed["headers"]["content-type"] == "application/octet-stream"  # as aiohttp, for bytes
    assert paths == [f"/echo?model={n}" for n in range(5)]
    assert cached <= 3
