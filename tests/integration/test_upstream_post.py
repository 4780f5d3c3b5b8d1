"""`upstream_post`: the gateway's POST through aiohttp's request, connector and response, without
`ClientSession._request` — the same request on the wire, pooled connections, aiohttp's errors, and
`session.post` for a session that uses what only `_request` handles.

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

from providers.aiohttp_connector import LeanResponse, _DirectPost, upstream_post, upstream_session

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
    app = web.Application()
    app.router.add_post("/echo", _echo)
    app.router.add_post("/moved", _moved)
    app.router.add_post("/hangs-up", _hangs_up)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield URL(f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


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
            assert isinstance(post, _DirectPost)
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
            for body in (b'{"model":"m"}',):
                async with session.post(base / "echo", data=body, headers=headers, timeout=TIMEOUT) as response:
                    reference.append(orjson.loads(await response.read()))
            return direct, reference, kind

    direct, reference, kind = asyncio.run(asyncio.wait_for(main(), 20))
    assert kind is LeanResponse
    first, second, streamed = direct
    assert first["method"] == "POST" and first["path"] == "/echo"
    assert first["body"] == '{"model":"m"}' and second["body"] == '{"model":"n"}'
    assert streamed["body"] == '{"a":1}'
    assert first["headers"]["authorization"] == "Bearer sk-up"
    assert first["headers"]["x-extra"] == "1"
    # The same headers as ClientSession.post writes for this session (no User-Agent, no Accept-Encoding).
    assert first["headers"] == reference[0]["headers"]
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
            return isinstance(post, _DirectPost), await _json(response)

    direct, echoed = asyncio.run(asyncio.wait_for(main(), 10))
    assert not direct
    assert echoed["body"] == '{"x":1}'
    if name == "default-headers":
        assert echoed["headers"]["x-default"] == "yes"
