"""Reading what the gateway wrote to Redis: usage events and counters, polled until they settle."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson
import redis


def events(client: redis.Redis, tenant: str) -> list[dict[str, Any]]:
    return [orjson.loads(fields[b"event"]) for _, fields in client.xrange(f"sy:{{{tenant}}}:usage")]


def wait_events(client: redis.Redis, tenant: str, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The tenant's events once there are at least `count` (then a moment more, to catch extras)."""
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = events(client, tenant)
        if len(found) >= count:
            time.sleep(0.3)
            return events(client, tenant)
        time.sleep(0.05)
    raise AssertionError(f"{len(found)} usage events for {tenant}, expected {count}")


def counter(client: redis.Redis, key: str) -> int:
    value = client.get(key)
    return int(value) if value is not None else 0


def unique(prefix: str) -> str:
    return f"{prefix}-{time.monotonic_ns() % 10**10}"


async def fire(
    url: str, key: str, body: dict[str, Any], count: int, concurrency: int = 0
) -> list[tuple[int, dict[str, Any]]]:
    """`count` chat completions at once (at most `concurrency` connections; 0: no limit): status and JSON."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def one() -> tuple[int, dict[str, Any]]:
            async with session.post(
                f"{url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
            ) as response:
                return response.status, await response.json()

        return await asyncio.gather(*(one() for _ in range(count)))
