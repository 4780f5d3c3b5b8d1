"""The upstream connector's response protocol: no resume per read, and flow control still pauses and resumes.

A real aiohttp server on 127.0.0.1 streams a chunked body; the client reads it with the gateway's connector.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web

from providers.aiohttp_connector import QuietResumeHandler, upstream_connector

CHUNK = b"data: " + b"x" * 200 + b"\n\n"


@asynccontextmanager
async def server(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=upstream_connector(limit=0), auto_decompress=False)


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

    async def main() -> tuple[int, bool]:
        async with server(big) as url, session() as client, client.get(url) as response:
            protocol: Any = response.connection.protocol  # type: ignore[union-attr]
            size, paused = 0, False
            while data := await response.content.readany():
                size += len(data)
                if size < total // 2:  # a slow reader: the buffer fills past its high-water mark
                    await asyncio.sleep(0.02)
                    paused = paused or protocol._reading_paused
            return size, paused

    size, paused = asyncio.run(asyncio.wait_for(main(), 30))
    assert paused  # flow control did stop the transport, so the resume path ran
    assert size == total
