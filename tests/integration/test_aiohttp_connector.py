"""The upstream session: its response protocol (no resume per read, flow control still pauses and resumes)
and its lean body reader (the same bytes for every way the gateway reads, errors included).

A real aiohttp server on 127.0.0.1 sends the bodies; the client reads them with the gateway's session.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.streams import StreamReader

from providers.aiohttp_connector import LeanStreamReader, QuietResumeHandler, upstream_connector, upstream_session
from tests.servers import serve_app

CHUNK = b"data: " + b"x" * 200 + b"\n\n"


@asynccontextmanager
async def server(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/", handler)
    async with serve_app(app) as base:
        yield f"{base}/"


def session() -> aiohttp.ClientSession:
    return upstream_session(limit=0)


def test_connections_use_the_quiet_protocol() -> None:
    async def main() -> None:
        connector = upstream_connector(limit=0)
        try:
            assert connector._factory().__class__ is QuietResumeHandler  # type: ignore[attr-defined]
        finally:
            await connector.close()

    asyncio.run(main())


def test_reading_a_stream_chunk_by_chunk_does_not_resume_the_parser_each_time() -> None:
    chunks = 20

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(chunks):
            await response.write(CHUNK)
            await asyncio.sleep(0.005)  # one read per chunk on the client
        await response.write_eof()
        return response

    async def main() -> tuple[int, int, int]:
        async with server(events) as url, session() as client, client.get(url) as response:
            protocol: Any = response.connection.protocol  # type: ignore[union-attr]
            resumes = 0
            original = protocol.data_received

            def counting(data: bytes) -> None:  # the protocol's own calls: data_received(b"") to resume
                nonlocal resumes
                resumes += not data
                original(data)

            protocol.data_received = counting
            reads, size = 0, 0
            while data := await response.content.readany():
                reads += 1
                size += len(data)
            return reads, size, resumes

    reads, size, resumes = asyncio.run(main())
    assert size == chunks * len(CHUNK) and reads >= chunks // 2
    assert resumes == 0


def test_a_body_larger_than_the_buffer_pauses_and_resumes_for_a_slow_reader() -> None:
    total = 4 * 1024 * 1024

    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        block = bytes(range(256)) * 256  # 64 KiB
        for _ in range(total // len(block)):
            await response.write(block)
        await response.write_eof()
        return response

    async def main() -> tuple[int, bool, bytes]:
        async with server(big) as url, session() as client, client.get(url) as response:
            protocol: Any = response.connection.protocol  # type: ignore[union-attr]
            size, paused, digest = 0, False, hashlib.sha256()
            while data := await response.content.readany():
                size += len(data)
                digest.update(data)
                if size < total // 2:  # a slow reader: the buffer fills past its high-water mark
                    await asyncio.sleep(0.02)
                    paused = paused or protocol._reading_paused
            return size, paused, digest.digest()

    size, paused, digest = asyncio.run(asyncio.wait_for(main(), 30))
    assert paused  # flow control did stop the transport, so the resume path ran
    assert size == total
    assert digest == hashlib.sha256((bytes(range(256)) * 256) * (total // 65536)).digest()


def _pieces(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.choice((1, 7, 300, 5000, 70_000))) for _ in range(60)]


async def _pieces_handler(request: web.Request) -> web.StreamResponse:
    """The pieces of `?seed=`, each an HTTP chunk of its own, some sent together, some apart."""
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await response.prepare(request)
    for index, piece in enumerate(_pieces(int(request.query["seed"]))):
        await response.write(piece)
        if index % 3 == 0:
            await asyncio.sleep(0.001)
    await response.write_eof()
    return response


def test_every_way_of_reading_a_chunked_body_gives_its_bytes() -> None:
    async def read_all(client: aiohttp.ClientSession, url: str, how: str) -> tuple[bytes, type]:
        async with client.get(url) as response:
            kind = type(response.content)
            if how == "read":
                return await response.read(), kind
            if how == "iter_any":
                return b"".join([chunk async for chunk in response.content.iter_any()]), kind
            parts = []
            if how == "read_n_then_readany":  # a partial read leaves an offset in the first buffered piece
                while part := await response.content.read(4096):
                    parts.append(part)
                    if len(parts) == 5:
                        break
            while part := await response.content.readany():
                parts.append(part)
            return b"".join(parts), kind

    async def main() -> None:
        async with server(_pieces_handler) as url, session() as client:
            for seed in range(4):
                expected = b"".join(_pieces(seed))
                for how in ("readany", "read", "iter_any", "read_n_then_readany"):
                    data, kind = await read_all(client, f"{url}?seed={seed}", how)
                    assert kind is LeanStreamReader
                    assert data == expected, (seed, how)

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_body_that_breaks_off_raises_on_the_lean_reader() -> None:
    async def broken(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(CHUNK)
        await asyncio.sleep(0.01)
        assert request.transport is not None
        request.transport.close()  # mid-body: no terminating chunk
        return response

    async def main() -> tuple[bytes, BaseException | None]:
        async with server(broken) as url, session() as client, client.get(url) as response:
            got = b""
            try:
                while data := await response.content.readany():
                    got += data
            except aiohttp.ClientPayloadError as exc:
                return got, exc
            return got, None

    got, error = asyncio.run(asyncio.wait_for(main(), 10))
    assert got == CHUNK
    assert isinstance(error, aiohttp.ClientPayloadError)


def test_an_empty_body_keeps_aiohttps_empty_reader() -> None:
    async def no_content(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def main() -> tuple[type, bytes]:
        async with server(no_content) as url, session() as client, client.get(url) as response:
            return type(response.content), await response.read()

    kind, body = asyncio.run(asyncio.wait_for(main(), 10))
    assert kind is not LeanStreamReader and issubclass(kind, StreamReader)
    assert body == b""


def read_until_timeout(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]], timeout: aiohttp.ClientTimeout
) -> tuple[bytes, BaseException | None]:
    """The bytes read with `readany()` from `handler`'s body under `timeout`, and the TimeoutError that
    ended the reads (None if the body ended first)."""

    async def main() -> tuple[bytes, BaseException | None]:
        async with server(handler) as url, session() as client:
            async with client.get(url, timeout=timeout) as response:
                got = b""
                try:
                    while data := await response.content.readany():
                        got += data
                except TimeoutError as exc:
                    return got, exc
                return got, None

    return asyncio.run(asyncio.wait_for(main(), 10))


def test_a_request_timeout_still_ends_a_stalled_read() -> None:
    """With a total timeout the reader waits under aiohttp's timer (not `TimerNoop`), which must fire."""

    async def stalls(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(CHUNK)
        await asyncio.sleep(5)
        return response

    got, error = read_until_timeout(stalls, aiohttp.ClientTimeout(total=0.5))
    assert got == CHUNK
    assert isinstance(error, TimeoutError)


def test_a_sock_read_timeout_still_ends_a_stalled_read() -> None:
    """The quiet protocol skips rescheduling only a read timeout that is not set: a set one still moves
    with each read, and fires once reads stop."""

    async def stalls(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(4):  # 0.75 s in all, longer than the read timeout: met only if each read moves it
            await response.write(CHUNK)
            await asyncio.sleep(0.25)
        await asyncio.sleep(2)  # the timeout fires at ~1.35 s
        return response

    got, error = read_until_timeout(stalls, aiohttp.ClientTimeout(sock_read=0.6))
    assert got == CHUNK * 4
    assert isinstance(error, TimeoutError)
