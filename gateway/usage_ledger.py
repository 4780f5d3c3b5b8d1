"""The ledger: every usage record settled in Redis exactly once, off the hot path, never lost.

`record()` only enqueues. A background writer sends batches through the idempotent settlement script
(`settlement.py`: one call per tenant per batch, all in one round trip). While Redis is unreachable,
records — each with its settlement — go to an append-only spool file (fsync'd) and are replayed when
it answers again, and after a restart; the script's dedupe key makes a replay count once.

Keys carry the tenant as a hash tag (`sy:{tenant}:...`) so the script runs on Redis Cluster too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.admission_rules import NO_TICKET, Ticket
from gateway.config.tenancy import RetentionConfig
from gateway.settlement import (
    SETTLE_SCRIPT,
    SETTLE_SHA,
    Alert,
    Entry,
    alerts_from,
    dedupe_key,
    script_args,
    settlement,
    settlements,
    tenant_chunks,
    usage_stream_key,
)
from gateway.usage_record import UsageRecord

__all__ = ["UsageLedger", "UsageRecord", "dedupe_key", "usage_stream_key"]

log = logging.getLogger("switchyard.ledger")

TENANTS = "sy:tenants"
_DEDUPE_SECONDS = 35 * 86400
_STREAM_MAXLEN = 5_000_000
_BATCH = 256
_PER_SCRIPT = 16
_QUEUE_LIMIT = 100_000
_REPLAY_EVERY = 2.0
_LINGER = 0.05


class UsageLedger:
    def __init__(
        self,
        client: aioredis.Redis,
        spool_dir: Path,
        retention: RetentionConfig | None = None,
        on_alert: Callable[[Alert], None] | None = None,
    ) -> None:
        self._redis = client
        self._spool_dir = spool_dir
        self._spool_file = spool_dir / f"usage-{os.getpid()}.jsonl"
        self._retention = retention or RetentionConfig()
        self._on_alert = on_alert
        self._pending: deque[tuple[UsageRecord, Ticket]] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        """Set while the writer waits for a record (a deque and a future: asyncio.Queue's put and get
        cost ~70 bytecodes per record)."""
        self._task: asyncio.Task[None] | None = None
        self._connection: AbstractConnection | None = None
        """The writer's own connection, taken from the pool until `aclose` (see `_script_call`)."""
        self._spooled = 0
        self._known_tenants: set[str] = set()
        self.written = 0

    @property
    def backlog(self) -> int:
        return len(self._pending) + self._spooled

    def record(self, record: UsageRecord, ticket: Ticket = NO_TICKET) -> None:
        """Enqueue; never blocks, never raises. Past the queue limit the record goes to the spool."""
        pending = self._pending
        if len(pending) >= _QUEUE_LIMIT:
            self._append_spool([self._entry(record, ticket)])
            return
        pending.append((record, ticket))
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            if not wakeup.done():
                wakeup.set_result(None)

    async def start(self) -> None:
        self._spool_dir.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.create_task(self._run(), name="usage-ledger")

    async def aclose(self, timeout: float = 10.0) -> None:
        """Flush what is queued (to Redis, or to the spool if Redis does not answer in time)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        pending = self._entries(self._drain_queue(len(self._pending)))
        if pending:
            try:
                await asyncio.wait_for(self._write(pending), timeout)
            except (RedisError, OSError, TimeoutError):
                self._append_spool(pending)
        if self._connection is not None:
            await self._redis.connection_pool.release(self._connection)
            self._connection = None

    def _entry(self, record: UsageRecord, ticket: Ticket) -> Entry:
        return record, settlement(record, ticket, self._retention)

    def _entries(self, pairs: list[tuple[UsageRecord, Ticket]]) -> list[Entry]:
        return settlements(pairs, self._retention)

    def _drain_queue(self, limit: int) -> list[tuple[UsageRecord, Ticket]]:
        pending = self._pending
        return [pending.popleft() for _ in range(min(limit, len(pending)))]

    async def _arrival(self, timeout: float | None) -> bool:
        """Wait until a record is pending (at most `timeout` seconds); False if none came in time."""
        if self._pending:
            return True
        waiter = self._wakeup = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return False
        finally:
            self._wakeup = None
        return True

    async def _settle(self, batch: list[tuple[UsageRecord, Ticket]]) -> None:
        """Write a batch one script call at a time, each prepared just before it is sent: the event loop
        serves requests between the calls instead of waiting for the whole batch's settlements and JSON
        (a batch of a few hundred records held it ~1 ms)."""
        for _, pairs in tenant_chunks(batch, _PER_SCRIPT):
            await self._write(self._entries(pairs))

    async def _run(self) -> None:
        await self._replay_spool()
        while True:
            # Wake up now and then to replay the spool even when no traffic comes.
            if not await self._arrival(_REPLAY_EVERY if self._spooled else None):
                await self._replay_spool()
                continue
            if len(self._pending) < _BATCH:
                # Records are off the hot path: gathering them for a moment turns hundreds of Redis calls
                # (each costing the gateway's CPU) into one.
                await asyncio.sleep(_LINGER)
            batch = self._drain_queue(_BATCH)
            try:
                await self._settle(batch)
            except (RedisError, OSError) as exc:
                log.warning(
                    "Redis unavailable for the usage ledger (%s); spooling %d records",
                    type(exc).__name__,
                    len(batch),
                )
                # All of them: the script skips a record settled before the failure when it is replayed.
                await asyncio.to_thread(self._append_spool, self._entries(batch))
                await asyncio.sleep(1.0)
                continue
            if self._spooled:
                await self._replay_spool()

    async def _write(self, batch: list[Entry]) -> None:
        """Script calls of at most `_PER_SCRIPT` records of one tenant, sent one after another (EVALSHA;
        the script is loaded on first use and after a Redis restart). Redis runs a script without
        interruption: short ones let the admission calls of requests in flight in between."""
        chunks = tenant_chunks(batch, _PER_SCRIPT)
        calls = [script_args(tenant, entries, _DEDUPE_SECONDS, _STREAM_MAXLEN) for tenant, entries in chunks]
        new_tenants = [t for t in dict.fromkeys(tenant for tenant, _ in chunks) if t not in self._known_tenants]
        try:
            replies = await self._evalsha_all(calls, new_tenants)
        except NoScriptError:
            await self._redis.script_load(SETTLE_SCRIPT)
            replies = await self._evalsha_all(calls, new_tenants)  # idempotent: settled records are skipped
        self._known_tenants.update(new_tenants)
        self.written += len(batch)
        if self._on_alert is not None:
            for (tenant, entries), reply in zip(chunks, replies, strict=True):
                for alert in alerts_from(tenant, entries, reply or []):
                    self._on_alert(alert)

    async def _evalsha_all(self, calls: list[list[Any]], new_tenants: list[str]) -> list[Any]:
        # One call after another, not one pipeline: Redis serves a client's pipelined commands in one
        # go, so a long pipeline of scripts would hold back the admissions of requests waiting to start.
        replies = [await self._script_call(call) for call in calls]
        if new_tenants:
            await self._redis.sadd(TENANTS, *new_tenants)
        return replies

    async def _script_call(self, call: list[Any]) -> Any:
        """EVALSHA of the settle script on the writer's own connection. The writer sends one call at a
        time, so it keeps one of the pool's connections instead of taking and returning one per call:
        `execute_command` costs ~2,000 Python bytecodes per call in redis-py 8.1 (checkout and release,
        their events and metrics, retries), this ~900. A call that fails on the connection (Redis
        restarted, a dropped socket) is sent once more on a new socket, as redis-py's own retry would: a
        record the script settled already is skipped."""
        for attempt in (1, 2):
            connection = self._connection
            if connection is None:  # the pool's, so that closing the client closes it too
                connection = self._connection = await self._redis.connection_pool.get_connection()
            try:
                await connection.send_packed_command(
                    connection.pack_command("EVALSHA", SETTLE_SHA, *call), check_health=False
                )
                return await connection.read_response()
            except ResponseError:
                raise  # the reply was read whole (NOSCRIPT, a script error): the connection is fine
            except (RedisConnectionError, RedisTimeoutError) as exc:
                await connection.disconnect()
                if attempt == 2 or isinstance(exc, RedisTimeoutError):
                    raise  # Redis is slow, not gone: the caller spools (the replay skips what was settled)
            except BaseException:
                await connection.disconnect()  # cancelled mid-call: a reply may be left unread
                raise
        raise AssertionError("unreachable")

    def _append_spool(self, batch: list[Entry]) -> None:
        data = b"".join(orjson.dumps({"record": r, "settle": s}) + b"\n" for r, s in batch)
        fd = os.open(self._spool_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._spooled += len(batch)

    async def _replay_spool(self) -> None:
        """Move each spool file aside (atomically, so two workers never replay the same one) and write it."""
        for path in sorted(self._spool_dir.glob("usage-*")):
            if not path.name.endswith(".jsonl") and _owner_alive(path):
                continue  # another live worker is replaying it
            claimed = path.with_name(f"{path.name.split('.')[0]}.replay-{os.getpid()}")
            try:
                path.rename(claimed)
            except FileNotFoundError:
                continue
            entries = [_spooled_entry(line) for line in claimed.read_bytes().splitlines() if line.strip()]
            try:
                for start in range(0, len(entries), _BATCH):
                    await self._write(entries[start : start + _BATCH])
            except (RedisError, OSError):
                claimed.rename(path.with_name(f"{path.name.split('.')[0]}.jsonl"))
                return
            claimed.unlink()
            if path == self._spool_file:
                self._spooled = 0
            log.info("replayed %d spooled usage records from %s", len(entries), path.name)


_RECORD_FIELDS = {f.name for f in dataclasses.fields(UsageRecord)}


def _spooled_entry(line: bytes) -> Entry:
    data = orjson.loads(line)
    if "record" not in data:  # written by a version that spooled bare records
        data = {"record": data, "settle": None}
    record = UsageRecord(**{k: v for k, v in data["record"].items() if k in _RECORD_FIELDS})
    return record, data["settle"] or settlement(record, NO_TICKET, RetentionConfig())


def _owner_alive(path: Path) -> bool:
    """A `usage-N.replay-PID` file whose PID still runs belongs to that process."""
    try:
        os.kill(int(path.name.rsplit("-", 1)[1]), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
