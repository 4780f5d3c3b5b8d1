"""The usage archive and the report reader against a real Redis."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.reports.query import load_events
from gateway.usage_archive import ARCHIVE_GROUP, TENANTS_KEY, UsageArchive, prune_stream
from gateway.usage_ledger import usage_stream_key
from providers.errors import ServiceUnavailable
from tests.servers import free_port

_DB = 11  # its own database: `sy:tenants` is global, and other tests write their tenants to db 0


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    base = aioredis.Redis.from_url(redis_url).connection_pool
    pool = aioredis.ConnectionPool(connection_class=base.connection_class, **{**base.connection_kwargs, "db": _DB})
    await base.disconnect()
    redis = aioredis.Redis.from_pool(pool)
    await redis.delete(TENANTS_KEY)
    yield redis
    await redis.aclose()


def unreachable() -> aioredis.Redis:
    """A client of a port nobody listens on, failing fast (no retries)."""
    return aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))


def tenant_name(label: str) -> str:
    return f"{label}-{os.getpid()}-{time.monotonic_ns()}"


def event(tenant: str, request_id: str, when: float, **extra: Any) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "ts": when,
        "tenant": tenant,
        "team": None,
        "key_id": "k",
        "endpoint": "chat/completions",
        "model": "m",
        "deployment": "p/m",
        "status": 200,
        "estimated": False,
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "cost_micro_usd": 10,
        "list_cost_micro_usd": 10,
        "tags": {},
        **extra,
    }


async def add(redis: aioredis.Redis, events: list[dict[str, Any]], *, stream_id: str = "*") -> list[bytes]:
    async with redis.pipeline(transaction=False) as pipe:
        for e in events:
            pipe.sadd(TENANTS_KEY, e["tenant"])
            pipe.xadd(usage_stream_key(e["tenant"]), {"event": orjson.dumps(e)}, id=stream_id)
        replies = await pipe.execute()
    return list(replies[1::2])


def archived_lines(directory: Path) -> list[dict[str, Any]]:
    return [
        orjson.loads(line) for path in sorted(directory.glob("*/*.jsonl")) for line in path.read_bytes().splitlines()
    ]


async def test_two_consumers_archive_each_event_exactly_once(client: aioredis.Redis, tmp_path: Path) -> None:
    now = time.time()
    tenants = [tenant_name("a"), tenant_name("b")]
    await add(client, [event(tenants[i % 2], f"r{i}", now) for i in range(2500)])
    first = UsageArchive(client, tmp_path, "worker-1", batch=200)
    second = UsageArchive(client, tmp_path, "worker-2", batch=200)
    counts = await asyncio.gather(*(a.drain_once() for a in (first, second, first, second)))
    assert sum(counts) == 2500 and counts[0] > 0 and counts[1] > 0
    await add(client, [event(tenants[0], "late", now)])
    assert await first.drain_once() + await second.drain_once() == 1
    lines = archived_lines(tmp_path)
    ids = Counter(line["request_id"] for line in lines)
    assert len(lines) == 2501 and set(ids.values()) == {1}
    assert {p.name for p in tmp_path.glob("*/*.jsonl")} == {"worker-1.jsonl", "worker-2.jsonl"}
    for tenant in tenants:
        assert (await client.xpending(usage_stream_key(tenant), ARCHIVE_GROUP))["pending"] == 0


async def test_one_line_per_event_in_the_folder_of_its_utc_day(client: aioredis.Redis, tmp_path: Path) -> None:
    tenant = tenant_name("days")
    before = datetime(2026, 11, 3, 23, 59, 59, tzinfo=UTC).timestamp()
    after = datetime(2026, 11, 4, 0, 0, 1, tzinfo=UTC).timestamp()
    sent = [event(tenant, "x1", before, tags={"env": "prod"}), event(tenant, "x2", after), event(tenant, "x3", after)]
    await add(client, sent)
    await client.xadd(usage_stream_key(tenant), {"event": b"not json"})
    archive = UsageArchive(client, tmp_path, "w")
    assert await archive.drain_once() == 4
    assert await archive.drain_once() == 0
    day3 = (tmp_path / "2026-11-03" / "w.jsonl").read_bytes().splitlines()
    day4 = (tmp_path / "2026-11-04" / "w.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line) for line in day3] == [sent[0]]
    assert [orjson.loads(line)["request_id"] for line in day4] == ["x2", "x3"]
    unreadable = orjson.loads((tmp_path / "unreadable" / "w.jsonl").read_bytes())
    assert unreadable["stream"] == usage_stream_key(tenant) and unreadable["fields"] == {"event": "not json"}


async def test_entries_pending_on_a_dead_consumer_are_reclaimed(client: aioredis.Redis, tmp_path: Path) -> None:
    tenant = tenant_name("dead")
    key = usage_stream_key(tenant)
    ids = await add(client, [event(tenant, f"d{i}", time.time()) for i in range(6)])
    await client.xgroup_create(key, ARCHIVE_GROUP, id="0", mkstream=True)
    taken: Any = await client.xreadgroup(ARCHIVE_GROUP, "dead-worker", {key: ">"}, count=4)  # and then it died
    assert len(taken[0][1]) == 4
    await client.xdel(key, ids[3])  # trimmed while pending: nothing left to archive, but it must not stay pending
    patient = UsageArchive(client, tmp_path / "patient", "patient")
    assert await patient.drain_once() == 2  # the dead worker's entries are not idle for a minute yet
    archive = UsageArchive(client, tmp_path / "quick", "quick", min_idle=0.05)
    await asyncio.sleep(0.1)
    assert await archive.drain_once() == 3
    assert sorted(line["request_id"] for line in archived_lines(tmp_path / "quick")) == ["d0", "d1", "d2"]
    assert (await client.xpending(key, ARCHIVE_GROUP))["pending"] == 0


async def test_a_restarted_consumer_archives_what_it_read_before_dying(client: aioredis.Redis, tmp_path: Path) -> None:
    tenant = tenant_name("restart")
    key = usage_stream_key(tenant)
    await add(client, [event(tenant, "p1", time.time()), event(tenant, "p2", time.time())])
    await client.xgroup_create(key, ARCHIVE_GROUP, id="0", mkstream=True)
    await client.xreadgroup(ARCHIVE_GROUP, "w", {key: ">"}, count=10)  # read, then crashed before writing
    assert await UsageArchive(client, tmp_path, "w").drain_once() == 2
    assert (await client.xpending(key, ARCHIVE_GROUP))["pending"] == 0


async def test_prune_keeps_what_the_archive_has_not_acknowledged(client: aioredis.Redis, tmp_path: Path) -> None:
    tenant = tenant_name("prune")
    key = usage_stream_key(tenant)
    base_ms = int(time.time() * 1000) - 3_600_000
    for i in range(10):  # one entry a minute, an hour ago
        await add(client, [event(tenant, f"e{i}", base_ms / 1000 + i * 60)], stream_id=f"{base_ms + i * 60_000}-0")
    assert await prune_stream(client, tenant, 0) == 0  # no archive group yet: nothing is known to be archived
    await client.xgroup_create(key, ARCHIVE_GROUP, id="0")
    await client.xreadgroup(ARCHIVE_GROUP, "archiver", {key: ">"}, count=3)  # e0..e2 delivered
    await client.xack(key, ARCHIVE_GROUP, f"{base_ms}-0", f"{base_ms + 2 * 60_000}-0")  # e1 stays pending
    assert await prune_stream(client, tenant, 0) == 1  # only e0: e1 is pending
    await client.xack(key, ARCHIVE_GROUP, f"{base_ms + 60_000}-0")
    assert await prune_stream(client, tenant, 0) == 2  # e1, e2; e3.. were never delivered
    await client.xreadgroup(ARCHIVE_GROUP, "archiver", {key: ">"}, count=10)
    await client.xack(key, ARCHIVE_GROUP, *[f"{base_ms + i * 60_000}-0" for i in range(3, 10)])
    now = base_ms / 1000 + 3600
    assert await prune_stream(client, tenant, 3600 - 6.5 * 60, now=now) == 4  # e3..e6 are older than the cutoff
    entries: Any = await client.xrange(key)
    remaining = [orjson.loads(f[b"event"])["request_id"] for _, f in entries]
    assert remaining == ["e7", "e8", "e9"]
    assert await prune_stream(client, tenant_name("missing"), 0) == 0


async def test_redis_errors_do_not_crash_the_archive(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    down = unreachable()
    archive = UsageArchive(down, tmp_path, "w", interval=0.01)
    with caplog.at_level(logging.WARNING, "switchyard.archive"):
        assert await archive.drain_once() == 0
        await archive.start()
        await asyncio.sleep(0.1)
        await archive.aclose()
    assert "cannot list tenants" in caplog.text
    await down.aclose()


async def test_the_background_loop_archives(client: aioredis.Redis, tmp_path: Path) -> None:
    tenant = tenant_name("loop")
    archive = UsageArchive(client, tmp_path, "bg", interval=0.02)
    await archive.start()
    await add(client, [event(tenant, "b1", time.time())])
    for _ in range(100):
        if archive.archived:
            break
        await asyncio.sleep(0.02)
    await archive.aclose()
    assert [line["request_id"] for line in archived_lines(tmp_path)] == ["b1"]


async def test_load_events_merges_archive_and_streams_once(client: aioredis.Redis, tmp_path: Path) -> None:
    acme, globex = tenant_name("acme"), tenant_name("globex")
    day = datetime(2026, 11, 3, 12, tzinfo=UTC).timestamp()
    since, until = datetime(2026, 11, 3, tzinfo=UTC).timestamp(), datetime(2026, 11, 4, tzinfo=UTC).timestamp()
    # Archived and then pruned from the stream (stream ids: the ledger wrote them a second after ts).
    old = [event(acme, "old1", day), event(acme, "old2", day + 1), event(globex, "g-old", day + 2)]
    for e in old:
        await add(client, [e], stream_id=f"{int((e['ts'] + 1) * 1000)}-0")
    archive = UsageArchive(client, tmp_path, "w")
    assert await archive.drain_once() == 3
    assert await archive.drain_once() == 0
    for tenant in (acme, globex):
        assert await prune_stream(client, tenant, 0) > 0
    # A crash between fsync and ack wrote one line twice; another consumer archived it again too.
    line = orjson.dumps(old[0]) + b"\n"
    with (tmp_path / "2026-11-03" / "w.jsonl").open("ab") as f:
        f.write(line + b'{"torn": ')
    (tmp_path / "2026-11-03" / "other.jsonl").write_bytes(line)
    # Not archived yet: one event; one written after a spool replay, 5 minutes after the range ends.
    # Outside the range, though inside the stream ids read: the second before, and the first second after.
    await add(client, [event(acme, "new1", day + 10)], stream_id=f"{int((day + 11) * 1000)}-0")
    await add(client, [event(acme, "before", since - 1)], stream_id=f"{int((day + 12) * 1000)}-0")
    await add(client, [event(acme, "late", until - 1)], stream_id=f"{int((until + 300) * 1000)}-0")
    await add(client, [event(acme, "after", until)], stream_id=f"{int((until + 301) * 1000)}-0")
    assert await archive.drain_once() == 4  # now archived, and still in the stream
    written = (tmp_path / "2026-11-03" / "w.jsonl").read_bytes().splitlines()
    assert written[-3] == b'{"torn": ' and [orjson.loads(x)["request_id"] for x in written[-2:]] == ["new1", "late"]
    await add(client, [event(acme, "stream-only", day + 20)], stream_id=f"{int((until + 400) * 1000)}-0")

    everyone = await load_events(client, tmp_path, since=since, until=until, tenants=None)
    assert [e["request_id"] for e in everyone] == ["old1", "old2", "g-old", "new1", "stream-only", "late"]
    only_acme = await load_events(client, tmp_path, since=since, until=until, tenants=[acme])
    assert [e["request_id"] for e in only_acme] == ["old1", "old2", "new1", "stream-only", "late"]
    no_archive = await load_events(client, None, since=since, until=until, tenants=[acme])
    assert [e["request_id"] for e in no_archive] == ["new1", "stream-only", "late"]


async def test_load_events_without_redis_is_service_unavailable(tmp_path: Path) -> None:
    down = unreachable()
    with pytest.raises(ServiceUnavailable):
        await load_events(down, tmp_path, since=0, until=1, tenants=None)
    await down.aclose()


async def test_a_write_that_fails_acknowledges_nothing(
    client: aioredis.Redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = tenant_name("disk")
    await add(client, [event(tenant, f"f{i}", time.time()) for i in range(3)])
    blocked = tmp_path / "archive"
    blocked.write_bytes(b"")  # a file where the directory should be: every write fails
    with caplog.at_level(logging.WARNING, "switchyard.archive"):
        assert await UsageArchive(client, blocked, "w").drain_once() == 0
    assert "NotADirectoryError" in caplog.text or "FileExistsError" in caplog.text
    assert (await client.xpending(usage_stream_key(tenant), ARCHIVE_GROUP))["pending"] == 3
    blocked.unlink()
    assert await UsageArchive(client, blocked, "w").drain_once() == 3
    assert sorted(line["request_id"] for line in archived_lines(blocked)) == ["f0", "f1", "f2"]
