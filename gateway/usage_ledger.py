"""The ledger seam: one usage record per request, written to Redis off the hot path.

`record()` only enqueues. A background writer sends batches through one idempotent Lua script per
record (keyed by request id, so a replay never counts twice) that appends the record to the
tenant's usage stream. While Redis is unreachable, records go to an append-only spool file
(fsync'd) and are replayed when it answers again, so nothing billable is dropped.

Keys carry the tenant as a hash tag (`sy:{tenant}:...`) so the script runs on Redis Cluster too.
Pricing, per-tenant counters and budgets build on this seam later.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

log = logging.getLogger("switchyard.ledger")

# KEYS[1]: the tenant's usage stream; KEYS[2..]: one dedupe key per record (same tenant, same slot).
# ARGV[1]: dedupe TTL, ARGV[2]: stream MAXLEN, ARGV[3..]: the records, in KEYS order.
_RECORD_SCRIPT = """
local written = 0
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'event', ARGV[i + 1])
    written = written + 1
  end
end
return written
"""
_RECORD_SHA = hashlib.sha1(_RECORD_SCRIPT.encode()).hexdigest()
_DEDUPE_SECONDS = 7 * 86400
_STREAM_MAXLEN = 1_000_000
_BATCH = 256
_QUEUE_LIMIT = 100_000
_REPLAY_EVERY = 2.0
_LINGER = 0.05


@dataclass(slots=True)
class UsageRecord:
    """One completed request, as written to the tenant's usage stream and the archive (JSON, orjson).

    Tokens follow OpenAI's convention: `cached_tokens` and `cache_write_tokens` are counted inside
    `prompt_tokens`, `reasoning_tokens` inside `completion_tokens`. Money is integer micro-USD.
    """

    request_id: str
    ts: float
    """UNIX seconds when the request completed; the cost is rated at this instant."""
    tenant: str
    team: str | None
    key_id: str
    endpoint: str
    model: str
    """The logical model the client asked for."""
    deployment: str | None
    status: int
    stream: bool
    attempts: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    estimated: bool
    latency_ms: float
    ttft_ms: float | None
    error: str | None
    project: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    provider: str | None = None
    """The config's provider name of the deployment that served (or failed last)."""
    provider_kind: str | None = None
    upstream_model: str | None = None
    cache_write_tokens: int = 0
    images: int = 0
    audio_seconds: float = 0.0
    cost_micro_usd: int = 0
    """What the tenant is charged (the deployment's price, or the catalog's)."""
    list_cost_micro_usd: int = 0
    """The same usage at the catalog's list price (equals `cost_micro_usd` without an override)."""
    price_version: str | None = None
    """Which price rated it, e.g. `catalog:gpt-4o-mini@2024-07-18`; None: no price known (cost 0)."""
    currency: str = "USD"


def usage_stream_key(tenant: str) -> str:
    return f"sy:{{{tenant}}}:usage"


def dedupe_key(tenant: str, request_id: str) -> str:
    return f"sy:{{{tenant}}}:usage:seen:{request_id}"


class UsageLedger:
    def __init__(self, client: aioredis.Redis, spool_dir: Path) -> None:
        self._redis = client
        self._spool_dir = spool_dir
        self._spool_file = spool_dir / f"usage-{os.getpid()}.jsonl"
        self._queue: asyncio.Queue[UsageRecord] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._spooled = 0
        self.written = 0

    @property
    def backlog(self) -> int:
        return self._queue.qsize() + self._spooled

    def record(self, record: UsageRecord) -> None:
        """Enqueue; never blocks, never raises. Past the queue limit the record goes to the spool."""
        if self._queue.qsize() >= _QUEUE_LIMIT:
            self._append_spool([record])
            return
        self._queue.put_nowait(record)

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
        pending = self._drain_queue(self._queue.qsize())
        if pending:
            try:
                await asyncio.wait_for(self._write(pending), timeout)
            except (RedisError, OSError, TimeoutError):
                self._append_spool(pending)

    def _drain_queue(self, limit: int) -> list[UsageRecord]:
        batch: list[UsageRecord] = []
        while len(batch) < limit:
            try:
                batch.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return batch

    async def _run(self) -> None:
        await self._replay_spool()
        while True:
            if self._spooled:
                try:  # wake up now and then to replay the spool even when no traffic comes
                    first = await asyncio.wait_for(self._queue.get(), _REPLAY_EVERY)
                except TimeoutError:
                    await self._replay_spool()
                    continue
            else:
                first = await self._queue.get()
            if self._queue.qsize() < _BATCH - 1:
                # Records are off the hot path: gathering them for a moment turns hundreds of Redis calls
                # (each costing the gateway's CPU) into one.
                await asyncio.sleep(_LINGER)
            batch = [first, *self._drain_queue(_BATCH - 1)]
            try:
                await self._write(batch)
            except (RedisError, OSError) as exc:
                log.warning(
                    "Redis unavailable for the usage ledger (%s); spooling %d records",
                    type(exc).__name__,
                    len(batch),
                )
                await asyncio.to_thread(self._append_spool, batch)
                await asyncio.sleep(1.0)
                continue
            if self._spooled:
                await self._replay_spool()

    async def _write(self, batch: list[UsageRecord]) -> None:
        """One script call per tenant in the batch, all in one round trip (EVALSHA; the script is
        loaded on first use and after a Redis restart)."""
        by_tenant: dict[str, list[UsageRecord]] = {}
        for record in batch:
            by_tenant.setdefault(record.tenant, []).append(record)
        calls = [
            [
                1 + len(records),
                usage_stream_key(tenant),
                *(dedupe_key(tenant, r.request_id) for r in records),
                _DEDUPE_SECONDS,
                _STREAM_MAXLEN,
                *(orjson.dumps(r) for r in records),
            ]
            for tenant, records in by_tenant.items()
        ]
        try:
            await self._evalsha_all(calls)
        except NoScriptError:
            await self._redis.script_load(_RECORD_SCRIPT)
            await self._evalsha_all(calls)  # idempotent: records already written are skipped
        self.written += len(batch)

    async def _evalsha_all(self, calls: list[list[Any]]) -> None:
        if len(calls) == 1:
            await self._redis.evalsha(_RECORD_SHA, *calls[0])
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for call in calls:
                pipe.evalsha(_RECORD_SHA, *call)
            await pipe.execute()

    def _append_spool(self, batch: list[UsageRecord]) -> None:
        data = b"".join(orjson.dumps(r) + b"\n" for r in batch)
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
            records = [UsageRecord(**orjson.loads(line)) for line in claimed.read_bytes().splitlines() if line.strip()]
            try:
                for start in range(0, len(records), _BATCH):
                    await self._write(records[start : start + _BATCH])
            except (RedisError, OSError):
                claimed.rename(path.with_name(f"{path.name.split('.')[0]}.jsonl"))
                return
            claimed.unlink()
            if path == self._spool_file:
                self._spooled = 0
            log.info("replayed %d spooled usage records from %s", len(records), path.name)


def _owner_alive(path: Path) -> bool:
    """A `usage-N.replay-PID` file whose PID still runs belongs to that process."""
    try:
        os.kill(int(path.name.rsplit("-", 1)[1]), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
