"""The ledger against a real Redis: idempotent per request id, spool and replay."""

from __future__ import annotations

import dataclasses
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import redis.asyncio as aioredis

from gateway.admission_rules import NO_TICKET
from gateway.config.tenancy import RetentionConfig
from gateway.settlement import aggregate_key, bucket_ends
from gateway.usage_ledger import UsageLedger, UsageRecord, usage_stream_key


def record(request_id: str, tenant: str) -> UsageRecord:
    return UsageRecord(
        request_id=request_id,
        ts=time.time(),
        tenant=tenant,
        team=None,
        key_id="k",
        endpoint="chat/completions",
        model="m",
        deployment="p/m",
        status=200,
        stream=False,
        attempts=1,
        prompt_tokens=3,
        completion_tokens=4,
        cached_tokens=0,
        reasoning_tokens=0,
        estimated=False,
        latency_ms=1.0,
        ttft_ms=None,
        error=None,
    )


async def test_replayed_records_are_counted_once(redis_url: str, tmp_path: Path) -> None:
    client = aioredis.Redis.from_url(redis_url)
    tenant = f"idem-{os.getpid()}-{time.monotonic_ns()}"
    ledger = UsageLedger(client, tmp_path / "spool")
    batch = [record("r1", tenant), record("r2", tenant), record("r1", tenant), record("x1", tenant + "-b")]
    entries = [ledger._entry(r, NO_TICKET) for r in batch]
    await ledger._write(entries)
    await ledger._write(entries)
    entries = await client.xrange(usage_stream_key(tenant))
    assert [orjson.loads(e[b"event"])["request_id"] for _, e in entries] == ["r1", "r2"]
    assert await client.xlen(usage_stream_key(tenant + "-b")) == 1
    await client.aclose()


async def test_spooled_records_are_replayed_once(redis_url: str, tmp_path: Path) -> None:
    client = aioredis.Redis.from_url(redis_url)
    tenant = f"spool-{os.getpid()}-{time.monotonic_ns()}"
    ledger = UsageLedger(client, tmp_path / "spool")
    (tmp_path / "spool").mkdir()
    ledger._append_spool(
        [ledger._entry(record("s1", tenant), NO_TICKET), ledger._entry(record("s2", tenant), NO_TICKET)]
    )
    # A spool file left by a worker that died mid-replay is picked up as well.
    (tmp_path / "spool" / "usage-1.replay-999999999").write_bytes(orjson.dumps(record("s3", tenant)) + b"\n")
    await ledger.start()
    ledger.record(record("s4", tenant))
    deadline = time.monotonic() + 5
    while await client.xlen(usage_stream_key(tenant)) < 4 and time.monotonic() < deadline:
        await ledger_wait()
    await ledger.aclose()
    events = [orjson.loads(e[b"event"])["request_id"] for _, e in await client.xrange(usage_stream_key(tenant))]
    assert sorted(events) == ["s1", "s2", "s3", "s4"]
    assert list((tmp_path / "spool").iterdir()) == []
    await client.aclose()


async def ledger_wait() -> None:
    import asyncio

    await asyncio.sleep(0.05)


async def test_a_write_whose_connection_redis_dropped_goes_out_on_a_new_one(redis_url: str, tmp_path: Path) -> None:
    """The writer keeps its own connection; when Redis has closed it (a restart, a timeout, CLIENT KILL)
    the next script call is sent once more on a new connection instead of spooling."""
    client = aioredis.Redis.from_url(redis_url)
    tenant = f"drop-{os.getpid()}-{time.monotonic_ns()}"
    ledger = UsageLedger(client, tmp_path / "spool")
    await ledger._write([ledger._entry(record("d1", tenant), NO_TICKET)])
    own = ledger._connection
    assert own is not None
    await own.send_command("CLIENT", "ID")
    own_id = await own.read_response()
    assert await client.client_kill_filter(_id=own_id) == 1
    await ledger._write([ledger._entry(record("d2", tenant), NO_TICKET)])
    events = [orjson.loads(e[b"event"])["request_id"] for _, e in await client.xrange(usage_stream_key(tenant))]
    assert events == ["d1", "d2"]
    assert not (tmp_path / "spool").exists() or list((tmp_path / "spool").iterdir()) == []
    await ledger.aclose()
    assert ledger._connection is None
    await client.aclose()


async def test_expiry_is_set_when_a_key_is_created_and_not_again(redis_url: str, tmp_path: Path) -> None:
    client = aioredis.Redis.from_url(redis_url)
    tenant = f"ttl-{os.getpid()}-{time.monotonic_ns()}"
    ledger = UsageLedger(client, tmp_path / "spool")

    def priced(request_id: str, cost: int = 500, team: str | None = None) -> UsageRecord:
        return dataclasses.replace(record(request_id, tenant), cost_micro_usd=cost, team=team)

    first = priced("t1")
    day_end, hour_end = bucket_ends(int(first.ts // 3600))
    retention = RetentionConfig()
    await ledger._write([ledger._entry(first, NO_TICKET)])
    now = time.time()
    day_key = aggregate_key(tenant, f"d{datetime.fromtimestamp(first.ts, UTC):%Y%m%d}")
    hour_key = aggregate_key(tenant, f"h{datetime.fromtimestamp(first.ts, UTC):%Y%m%d%H}")
    # Each bucket stays for its retention after its end; spend counters until their period's end + grace.
    assert abs(await client.ttl(day_key) - (day_end + retention.daily - now)) <= 2
    assert abs(await client.ttl(hour_key) - (hour_end + retention.hourly - now)) <= 2
    spend = {key: expire_at for key, expire_at, _ in ledger._entry(first, NO_TICKET)[1]["spend"]}
    for key, expire_at in spend.items():
        assert int(await client.get(key) or 0) == 500
        assert abs(await client.ttl(key) - (expire_at - now)) <= 2 if expire_at else await client.ttl(key) == -1

    # The same buckets and counters again: no expiry command at all.
    await client.config_resetstat()
    await ledger._write([ledger._entry(priced("t2"), NO_TICKET)])
    stats = await client.info("commandstats")
    assert stats["cmdstat_hincrby"]["calls"] > 0 and stats["cmdstat_incrby"]["calls"] == len(spend)
    assert "cmdstat_expire" not in stats and "cmdstat_expireat" not in stats
    assert int(await client.hget(day_key, "-|m|p/m|requests") or 0) == 2
    assert all([int(await client.get(key) or 0) == 1000 for key in spend])

    # A record that costs nothing leaves the spend counters alone; its tokens are still aggregated.
    await client.config_resetstat()
    await ledger._write([ledger._entry(priced("t3", cost=0), NO_TICKET)])
    stats = await client.info("commandstats")
    assert "cmdstat_incrby" not in stats and "cmdstat_expireat" not in stats
    assert all([int(await client.get(key) or 0) == 1000 for key in spend])
    assert int(await client.hget(day_key, "-|m|p/m|requests") or 0) == 3

    # A new team in the same buckets is a new field: the expiry is set again, to the same instant.
    await client.persist(day_key)
    await ledger._write([ledger._entry(priced("t4", team="ops"), NO_TICKET)])
    assert abs(await client.ttl(day_key) - (day_end + retention.daily - time.time())) <= 2
    await client.aclose()


async def test_a_settlement_spooled_with_a_relative_ttl_still_expires_then(redis_url: str, tmp_path: Path) -> None:
    """Spooled before aggregates carried an absolute expiry: its TTL is read as seconds, not as 1970."""
    client = aioredis.Redis.from_url(redis_url)
    tenant = f"oldspool-{os.getpid()}-{time.monotonic_ns()}"
    ledger = UsageLedger(client, tmp_path / "spool")
    old, settle = ledger._entry(record("o1", tenant), NO_TICKET)
    settle["agg"] = [[key, 3600, prefix] for key, _, prefix in settle["agg"]]
    await ledger._write([(old, settle)])
    for key, _, prefix in settle["agg"]:
        assert int(await client.hget(key, prefix + "requests") or 0) == 1
        assert 3590 <= await client.ttl(key) <= 3600
    await client.aclose()
