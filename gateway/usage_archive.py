"""The durable archive of the usage streams: every event handed to a sink, off the hot path.

Each gateway process runs one `UsageArchive` under its own consumer name in the consumer group
`archive` of every tenant's usage stream (the tenants are the members of the set `sy:tenants`).
A round reads, per tenant:

- what this consumer read earlier but never acknowledged (once per process: after a restart),
- what other consumers left pending for longer than `min_idle` (a worker that died; XAUTOCLAIM),
- what is new (XREADGROUP `>`).

It hands each batch to its sink (`gateway.archive`), which returns once the events are durable, and
only then acknowledges the entries. The default sink appends JSON lines to
`<directory>/<YYYY-MM-DD>/<consumer>.jsonl` (the UTC date of the event's `ts`) and fsyncs them;
`PostgresSink` commits them to a table keyed by request id.

Delivery is at least once, not exactly once: a crash between the write and the XACK, or a consumer
that was only slow when another reclaimed its entries, writes the same event twice. The files keep
both lines and readers dedupe by `request_id` (`gateway.reports.query.load_events`); PostgreSQL keeps
one row.

An entry whose `event` field is not a JSON object with a numeric `ts` is not dropped either: the sink
keeps it, with its stream and id, apart from the events (`<directory>/unreadable/<consumer>.jsonl`),
and it is acknowledged. Redis and sink errors are logged and retried on the next round; the loop
never dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from gateway.archive.entries import parse_entries
from gateway.archive.entries import text as _text
from gateway.archive.jsonl import JsonlSink
from gateway.archive.sink import ArchiveEntry, ArchiveSink, ArchiveUnavailable
from gateway.usage_ledger import usage_stream_key

log = logging.getLogger("switchyard.archive")

TENANTS_KEY = "sy:tenants"
ARCHIVE_GROUP = "archive"
_SINK_ERROR_REPEAT = 300.0
"""The same sink error is logged again (not only at debug level) after this many seconds."""
_YIELD_EVERY = 50
"""Entries parsed between two returns to the event loop."""
_CONSUMER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

StreamId = tuple[int, int]
Entry = Sequence[Any]
"""A stream entry: its id and its fields (a mapping, or a flat list as Redis sent it; nil once trimmed)."""


class UsageArchive:
    def __init__(
        self,
        redis: aioredis.Redis,
        sink: ArchiveSink | Path,
        consumer: str,
        *,
        min_idle: float = 60.0,
        interval: float = 2.0,
        batch: int = 200,
        sink_batch: int = 2000,
    ) -> None:
        """`sink`: where the events go; a directory means daily JSON Lines files there (`JsonlSink`),
        which this archive closes. A sink passed in is the caller's to close, after `aclose`.
        `consumer` names this process in the group and its files (letters, digits, `._-`);
        entries pending on another consumer for `min_idle` seconds are taken over. `batch`: entries per
        read from Redis; the event loop is held while a read's reply is parsed (a 1,000-entry read held
        it ~5 ms on the 2-core machine, every round under load: the p99 of requests served meanwhile).
        `sink_batch`: entries of consecutive reads gathered into one sink write and one XACK (a write
        per 200-entry read spent ~5 µs per entry there in fsyncs and thread hand-offs, ~1.5 µs per
        entry at 2,000)."""
        if not _CONSUMER_NAME.fullmatch(consumer):
            raise ValueError(f"consumer name {consumer!r} must be letters, digits, '.', '_' or '-'")
        self._redis = redis
        self._reader = _raw_replies(redis, "XREADGROUP")
        self._owns_sink = isinstance(sink, Path)
        self._sink: ArchiveSink = JsonlSink(sink, consumer) if isinstance(sink, Path) else sink
        self._consumer = consumer
        self._min_idle_ms = max(0, int(min_idle * 1000))
        self._interval = interval
        self._batch = batch
        self._sink_batch = max(batch, sink_batch)
        self._groups: set[str] = set()
        """Tenants whose group is known to exist."""
        self._own_checked: set[str] = set()
        """Tenants whose entries pending on this consumer were re-read since this process started."""
        self._unacked: dict[str, list[Any]] = {}
        """Entry ids the sink made durable whose XACK failed: acknowledged first next round, not written again."""
        self._round = asyncio.Lock()
        """One round at a time per consumer (the loop, or a caller's drain_once)."""
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sink_error: tuple[str, float] | None = None
        """The last sink error logged, and when: repeats within `_SINK_ERROR_REPEAT` go to debug."""
        self.archived = 0
        """Entries handed to the sink (and made durable by it) since start-up."""

    async def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="usage-archive")

    async def aclose(self, timeout: float = 10.0) -> None:
        """Let the current round finish (its entries then need no second write), then stop."""
        task, self._task = self._task, None
        if task is not None:
            self._stop.set()
            try:
                await asyncio.wait_for(task, timeout)
            except TimeoutError:
                # wait_for cancelled the task: what it read but did not acknowledge is archived next start
                log.warning("usage archive: the last round did not finish within %ss", timeout)
        if self._owns_sink:
            await self._sink.aclose()

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.drain_once()
            except Exception:
                log.exception("usage archive: unexpected error; retrying next round")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)

    async def drain_once(self) -> int:
        """Archive everything pending now in every tenant's stream; return the number of entries archived.

        Never raises for Redis or sink errors: they are logged, and what was not acknowledged is
        retried on the next call."""
        async with self._round:
            return await self._drain_all()

    async def _drain_all(self) -> int:
        try:
            tenants = sorted(_text(t) for t in await self._redis.smembers(TENANTS_KEY))
        except (RedisError, OSError) as exc:
            log.warning("usage archive: cannot list tenants (%s: %s); retrying next round", type(exc).__name__, exc)
            return 0
        before = self.archived
        for tenant in tenants:
            # One tenant's failure does not hold the others back: an entry the sink cannot take stops only its stream.
            try:
                await self._drain_tenant(tenant)
            except ArchiveUnavailable as exc:
                self._sink_failed(tenant, exc)
                self._own_checked.discard(tenant)  # what was read but not stored is pending on us
            except (RedisError, OSError) as exc:
                log.warning(
                    "usage archive: tenant %s failed (%s: %s); retrying next round", tenant, type(exc).__name__, exc
                )
                self._groups.discard(tenant)  # the stream may have been deleted with its group
                self._own_checked.discard(tenant)  # what was read but not written is pending on us
        return self.archived - before

    def _sink_failed(self, tenant: str, exc: ArchiveUnavailable) -> None:
        """Log a sink outage once, not once per tenant and round (and again every few minutes)."""
        now = time.monotonic()
        message = str(exc)
        last = self._sink_error
        repeat = last is not None and last[0] == message and now - last[1] < _SINK_ERROR_REPEAT
        if not repeat:
            self._sink_error = (message, now)
        log.log(
            logging.DEBUG if repeat else logging.ERROR,
            "usage archive: %s; the events of tenant %s stay in the Redis stream, retried every round",
            message,
            tenant,
        )

    async def _drain_tenant(self, tenant: str) -> None:
        key = usage_stream_key(tenant)
        unacked = self._unacked.pop(tenant, None)
        if unacked:
            await self._ack(tenant, key, unacked)
        if tenant not in self._groups:
            try:
                await self._redis.xgroup_create(key, ARCHIVE_GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._groups.add(tenant)
        if tenant not in self._own_checked:
            await self._drain_own(tenant, key)
        cursor: Any = "0-0"
        deleted = False
        while True:
            reply = await self._redis.xautoclaim(
                key, ARCHIVE_GROUP, self._consumer, self._min_idle_ms, start_id=cursor, count=self._batch
            )
            # Redis 6.2 answers nil for an entry trimmed while pending and leaves it pending, now on us;
            # Redis 7 drops it from the pending list itself and lists its id in reply[2].
            cursor, claimed = reply[0], reply[1]
            deleted = deleted or any(entry_id is None for entry_id, _ in claimed)
            await self._archive(tenant, key, claimed)
            if _text(cursor) == "0-0":
                break
        if deleted:
            await self._drain_own(tenant, key)  # reads those as (id, nil) and acknowledges them
        await self._archive_reads(tenant, key, ">")

    async def _drain_own(self, tenant: str, key: str) -> None:
        """Archive the entries pending on this consumer: read before a crash, or claimed."""
        await self._archive_reads(tenant, key, "0")  # an explicit id: this consumer's own pending entries after it
        self._own_checked.add(tenant)

    async def _archive_reads(self, tenant: str, key: str, start: str) -> None:
        """Read from `start` until a read comes back short, archiving every `sink_batch` entries and
        what is left at the end."""
        gathered: list[Entry] = []
        last: Any = start
        while True:
            entries = await self._read(key, last)
            gathered += entries
            short = len(entries) < self._batch
            if short or len(gathered) >= self._sink_batch:
                await self._archive(tenant, key, gathered)
                gathered = []
            if short:
                return
            if start != ">":
                last = entries[-1][0]

    async def _read(self, key: str, last: Any) -> list[Entry]:
        reply: Any = await self._reader.execute_command(
            "XREADGROUP", "GROUP", ARCHIVE_GROUP, self._consumer, "COUNT", self._batch, "STREAMS", key, last
        )
        if not reply:
            return []
        # RESP3: {stream: entries}; RESP2: [[stream, entries]]. An entry is [id, [field, value, ...]], its
        # fields nil once the entry was trimmed while pending.
        entries = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
        return list(entries)

    async def _archive(self, tenant: str, key: str, entries: Sequence[Entry]) -> None:
        batch: list[ArchiveEntry] = []
        ids: list[Any] = []
        for start in range(0, len(entries), _YIELD_EVERY):
            if start:
                await asyncio.sleep(0)  # let requests in between: parsing an entry takes a few µs
            parsed, read = parse_entries(entries[start : start + _YIELD_EVERY], key)
            batch += parsed
            ids += read
        if batch:
            await self._sink.write(tenant, batch)
            self.archived += len(batch)
            if self._sink_error is not None:
                self._sink_error = None
                log.info("usage archive: the sink stores events again")
        if ids:
            await self._ack(tenant, key, ids)

    async def _ack(self, tenant: str, key: str, ids: list[Any]) -> None:
        try:
            await self._redis.xack(key, ARCHIVE_GROUP, *ids)
        except (RedisError, OSError):
            self._unacked.setdefault(tenant, []).extend(ids)
            raise


def _raw_replies(redis: aioredis.Redis, *commands: str) -> aioredis.Redis:
    """A client on `redis`'s pool that returns the replies to `commands` as Redis sent them: redis-py's
    callback for XREADGROUP rebuilds every entry's fields into a dict (~3 µs per entry on the 2-core
    machine), of which the archive reads one."""
    raw = aioredis.Redis(connection_pool=redis.connection_pool)  # not its pool: closing it closes nothing
    for command in commands:
        raw.response_callbacks.pop(command, None)
    return raw


async def prune_stream(redis: aioredis.Redis, tenant: str, keep_seconds: float, *, now: float | None = None) -> int:
    """Trim the tenant's usage stream of entries older than `keep_seconds` that the archive has acknowledged.

    Never trims at or past the group's oldest pending entry, nor past its last-delivered id (entries
    the archive has not read yet); a stream without the `archive` group is left alone. Returns the
    number of entries removed. Raises RedisError.
    """
    key = usage_stream_key(tenant)
    now = time.time() if now is None else now
    limit: StreamId = (max(0, int((now - keep_seconds) * 1000)), 0)
    try:
        groups = await redis.xinfo_groups(key)
    except ResponseError as exc:
        if "no such key" in str(exc).lower():
            return 0
        raise
    group = next((g for g in groups if _text(g["name"]) == ARCHIVE_GROUP), None)
    if group is None:
        return 0
    delivered = _parse_id(group["last-delivered-id"])
    limit = min(limit, (delivered[0], delivered[1] + 1))
    if int(group["pending"]):
        # New deliveries after this point get ids above last-delivered-id, so they stay above the limit.
        oldest = (await redis.xpending(key, ARCHIVE_GROUP))["min"]
        if oldest is not None:
            limit = min(limit, _parse_id(oldest))
    if limit <= (0, 1):
        return 0
    return int(await redis.xtrim(key, minid=f"{limit[0]}-{limit[1]}", approximate=False))


def _parse_id(value: Any) -> StreamId:
    ms, _, seq = _text(value).partition("-")
    return int(ms), int(seq or 0)
