"""How the usage archive reads its streams: replies as Redis sent them (RESP2 and RESP3), and sink writes
that gather consecutive reads."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from gateway.archive.jsonl import JsonlSink
from gateway.archive.sink import ArchiveEntry
from gateway.usage_archive import ARCHIVE_GROUP, TENANTS_KEY, UsageArchive
from gateway.usage_ledger import usage_stream_key
from tests.integration.test_usage_archive import _DB, add, archived_lines, event, tenant_name


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
async def client(redis_url: str, request: pytest.FixtureRequest) -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.Redis.from_url(redis_url, db=_DB, protocol=request.param)
    await redis.delete(TENANTS_KEY)
    yield redis
    await redis.aclose()


async def test_each_reply_shape_archives_events_extra_fields_and_trimmed_entries(
    client: aioredis.Redis, tmp_path: Path
) -> None:
    tenant = tenant_name("shapes")
    key = usage_stream_key(tenant)
    now = time.time()
    ids = await add(client, [event(tenant, f"s{i}", now) for i in range(4)])
    await client.xadd(key, {"event": orjson.dumps(event(tenant, "extra", now)), "note": "kept apart"})
    await client.xadd(key, {"other": "no event field"})
    await client.xgroup_create(key, ARCHIVE_GROUP, id="0")
    await client.xreadgroup(ARCHIVE_GROUP, "w", {key: ">"}, count=2)  # s0, s1 read, then the worker died
    await client.xdel(key, ids[1])  # and s1 was trimmed while pending: Redis now sends its fields as nil
    archive = UsageArchive(client, tmp_path, "w")
    assert await archive.drain_once() == 5  # s0, s2, s3, extra, and the unreadable one
    events = [line for line in archived_lines(tmp_path) if "stream" not in line]
    assert sorted(line["request_id"] for line in events) == ["extra", "s0", "s2", "s3"]
    unreadable = orjson.loads((tmp_path / "unreadable" / "w.jsonl").read_bytes())
    assert unreadable["fields"] == {"other": "no event field"}
    assert (await client.xpending(key, ARCHIVE_GROUP))["pending"] == 0  # s1 acknowledged too
    assert await archive.drain_once() == 0


class _CountingSink(JsonlSink):
    """The default sink, noting the size of every write it makes durable."""

    def __init__(self, directory: Path, consumer: str) -> None:
        super().__init__(directory, consumer)
        self.writes: list[int] = []

    async def write(self, tenant: str, entries: Sequence[ArchiveEntry]) -> None:
        await super().write(tenant, entries)
        self.writes.append(len(entries))


async def test_consecutive_reads_are_gathered_into_one_write_and_acknowledgement(
    client: aioredis.Redis, tmp_path: Path
) -> None:
    tenant = tenant_name("gather")
    key = usage_stream_key(tenant)
    await add(client, [event(tenant, f"g{i}", time.time()) for i in range(65)])
    sink = _CountingSink(tmp_path, "w")
    archive = UsageArchive(client, sink, "w", batch=10, sink_batch=25)
    seen: list[Any] = []
    original = sink.write

    async def write_then_look(tenant: str, entries: Sequence[ArchiveEntry]) -> None:
        seen.append((await client.xpending(key, ARCHIVE_GROUP))["pending"])  # read, not yet acknowledged
        await original(tenant, entries)

    sink.write = write_then_look  # type: ignore[method-assign]
    assert await archive.drain_once() == 65
    assert sink.writes == [30, 30, 5]  # reads of 10, written once 25 were gathered, then the short read's rest
    assert seen == [30, 30, 5]  # each write's entries were acknowledged after it, before the next was read
    assert len(archived_lines(tmp_path)) == 65
    assert (await client.xpending(key, ARCHIVE_GROUP))["pending"] == 0
