"""Streaming load with one aiohttp session: closed-loop workers, or N streams held open at once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from benchmarks.common import LoadResult, percentile

_DONE = b"data: [DONE]"


class _Tally:
    def __init__(self) -> None:
        self.totals: list[float] = []
        self.ttfts: list[float] = []
        self.errors: Counter[str] = Counter()

    def result(self, seconds: float) -> LoadResult:
        totals, ttfts = sorted(self.totals), sorted(self.ttfts)
        return LoadResult(
            requests=len(self.totals) + self.errors.total(),
            seconds=seconds,
            p50_ms=percentile(totals, 50) * 1000,
            p99_ms=percentile(totals, 99) * 1000,
            errors=self.errors.total(),
            ttft_p50_ms=percentile(ttfts, 50) * 1000,
            ttft_p99_ms=percentile(ttfts, 99) * 1000,
            error_kinds=dict(self.errors),
        )


def _session(request_timeout: float) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=None),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
        timeout=aiohttp.ClientTimeout(total=request_timeout),
    )


async def _one_stream(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    body: bytes,
    tally: _Tally,
    on_first_data: Callable[[], None] | None = None,
) -> None:
    start = time.perf_counter()
    ttft: float | None = None
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            if resp.status != 200:
                await resp.read()
                tally.errors[f"status_{resp.status}"] += 1
                return
            tail = b""
            async for data in resp.content.iter_any():
                if ttft is None and b"data:" in data:
                    ttft = time.perf_counter() - start
                    if on_first_data is not None:
                        on_first_data()
                tail = (tail + data)[-64:]
        total = time.perf_counter() - start
    except Exception as exc:
        tally.errors[f"exception_{type(exc).__name__}"] += 1
        return
    if ttft is None or _DONE not in tail:
        tally.errors["missing_done"] += 1
        return
    tally.totals.append(total)
    tally.ttfts.append(ttft)


async def run_streams(
    url: str,
    headers: dict[str, str],
    body: bytes,
    concurrency: int,
    seconds: float,
    request_timeout: float = 60.0,
) -> LoadResult:
    """`concurrency` workers each run streams back to back, starting new ones for `seconds`."""
    tally = _Tally()
    async with _session(request_timeout) as session:
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                await _one_stream(session, url, headers, body, tally)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return tally.result(time.perf_counter() - start)


async def open_streams(
    url: str,
    headers: dict[str, str],
    body: bytes,
    count: int,
    while_open: Callable[[bool], Awaitable[None]],
    open_timeout: float = 30.0,
    request_timeout: float = 120.0,
) -> tuple[LoadResult, float | None]:
    """Start `count` streams at once; once all have sent their first event (or after `open_timeout`),
    await `while_open(all_opened)`, then let the streams finish.

    Returns the result and the seconds it took until all streams were open (None if they never were).
    """
    tally = _Tally()
    opened = 0
    all_open = asyncio.Event()

    def on_first_data() -> None:
        nonlocal opened
        opened += 1
        if opened == count:
            all_open.set()

    async with _session(request_timeout) as session:
        start = time.perf_counter()
        tasks = [
            asyncio.create_task(_one_stream(session, url, headers, body, tally, on_first_data))
            for _ in range(count)
        ]
        done_waiter: asyncio.Future[Any] = asyncio.gather(*tasks)
        open_waiter: asyncio.Future[Any] = asyncio.ensure_future(all_open.wait())
        await asyncio.wait(
            (open_waiter, done_waiter), timeout=open_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        open_seconds = time.perf_counter() - start if all_open.is_set() else None
        open_waiter.cancel()
        if not done_waiter.done():
            await while_open(all_open.is_set())
        await done_waiter
        return tally.result(time.perf_counter() - start), open_seconds
