"""The PostgreSQL archive sink: one row per request id, committed before the archive acknowledges.

    switchyard_usage_events(request_id text primary key, ts timestamptz, tenant text, event jsonb)
    switchyard_unreadable_usage_entries(stream text, entry_id text, entry text, primary key (stream, entry_id))

Both tables (and the indexes on `(tenant, ts)` and `(ts)`) are created when missing. A write is one
transaction of at most two `INSERT ... ON CONFLICT DO NOTHING` over `unnest` arrays, so writing the
same events again (at-least-once delivery) leaves one row each. Every session asks for
`synchronous_commit = on`: the commit returns only once the WAL is flushed, whatever the server's
default. The connection string holds a password: it is never logged, and no error message carries it.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Collection, Sequence
from typing import Any

import asyncpg
import orjson

from gateway.archive.entries import parsed_event
from gateway.archive.sink import ArchiveEntry, ArchiveUnavailable
from gateway.usage_record import usage_stream_key

log = logging.getLogger("switchyard.archive")

EVENTS_TABLE = "switchyard_usage_events"
UNREADABLE_TABLE = "switchyard_unreadable_usage_entries"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {EVENTS_TABLE} (
    request_id text PRIMARY KEY,
    ts timestamptz NOT NULL,
    tenant text NOT NULL,
    event jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS {EVENTS_TABLE}_tenant_ts ON {EVENTS_TABLE} (tenant, ts);
CREATE INDEX IF NOT EXISTS {EVENTS_TABLE}_ts ON {EVENTS_TABLE} (ts);
CREATE TABLE IF NOT EXISTS {UNREADABLE_TABLE} (
    stream text NOT NULL,
    entry_id text NOT NULL,
    entry text NOT NULL,
    PRIMARY KEY (stream, entry_id)
);
"""
_INSERT_EVENTS = f"""
INSERT INTO {EVENTS_TABLE} (request_id, ts, tenant, event)
SELECT r, to_timestamp(t), $3::text, e::jsonb FROM unnest($1::text[], $2::float8[], $4::text[]) AS u(r, t, e)
ON CONFLICT (request_id) DO NOTHING
"""
_INSERT_UNREADABLE = f"""
INSERT INTO {UNREADABLE_TABLE} (stream, entry_id, entry)
SELECT $1::text, i, e FROM unnest($2::text[], $3::text[]) AS u(i, e)
ON CONFLICT (stream, entry_id) DO NOTHING
"""
_SCHEMA_LOCK = 0x5377_4172_6368  # any constant: serializes concurrent CREATE ... IF NOT EXISTS
_EDGE_SLACK = 0.001
"""`timestamptz` keeps microseconds: read a millisecond more on each side, then filter on the event's `ts`."""
_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
    ValueError,
)
"""What asyncpg raises: server errors, a closed or broken connection, a refused or timed-out connect,
and a connection string it cannot parse (ValueError)."""


class PostgresSink:
    def __init__(self, dsn: str, *, connect_timeout: float = 5.0, command_timeout: float = 60.0) -> None:
        """`dsn`: `postgresql://user:password@host:port/database`. Nothing connects before `start` or the
        first write; connections come from a small pool that replaces broken ones (a server restart)."""
        self._dsn = dsn
        self._secrets = _secrets(dsn)
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None
        self._schema_ready = False
        self._opening = asyncio.Lock()

    @property
    def description(self) -> str:
        """Where the events go, without credentials, for logs: `PostgreSQL host:port/database`."""
        try:
            url = urllib.parse.urlsplit(self._dsn)
            where = f"{url.hostname or 'local socket'}{f':{url.port}' if url.port else ''}{url.path}"
        except ValueError:
            where = "(unparsable address)"
        return f"PostgreSQL {where}"

    async def start(self) -> None:
        """Connect and create the tables if they are missing. Never raises: a failure is logged, and the
        first write tries again (the events wait in the stream meanwhile)."""
        try:
            await self._ready()
        except ArchiveUnavailable as exc:
            log.error("usage archive: %s; events stay in the Redis streams until it is reachable", exc)

    async def write(self, tenant: str, entries: Sequence[ArchiveEntry]) -> None:
        """Insert the entries in one transaction, committed (WAL flushed) before returning; a request id
        already stored is skipped. Raises ArchiveUnavailable."""
        request_ids: list[str] = []
        instants: list[float] = []
        events: list[str] = []
        unreadable_ids: list[str] = []
        unreadable: list[str] = []
        stream = usage_stream_key(tenant)
        for entry in entries:
            event = parsed_event(entry)
            request_id = None if event is None else event.get("request_id")
            if event is None or not isinstance(request_id, str | int) or isinstance(request_id, bool):
                unreadable_ids.append(entry.entry_id)
                unreadable.append(_describe(stream, entry).decode())
                continue
            request_ids.append(str(request_id))
            instants.append(float(event["ts"]))
            events.append(_jsonb_text(event))
        pool = await self._ready()
        try:
            async with pool.acquire() as conn, conn.transaction():
                if request_ids:
                    await conn.execute(_INSERT_EVENTS, request_ids, instants, tenant, events)
                if unreadable_ids:
                    await conn.execute(_INSERT_UNREADABLE, stream, unreadable_ids, unreadable)
        except _ERRORS as exc:
            raise self._unavailable("storing usage events", exc) from None

    async def read(self, *, since: float, until: float, tenants: Collection[str] | None) -> list[dict[str, Any]]:
        """The stored events with `since <= ts < until` (of `tenants`; None: all), in no particular order.
        Raises ArchiveUnavailable."""
        query = f"SELECT event FROM {EVENTS_TABLE} WHERE ts >= to_timestamp($1) AND ts < to_timestamp($2)"
        args: list[Any] = [since - _EDGE_SLACK, until + _EDGE_SLACK]
        if tenants is not None:
            query += " AND tenant = ANY($3::text[])"
            args.append(sorted(tenants))
        pool = await self._ready()
        try:
            rows = await pool.fetch(query, *args)
        except _ERRORS as exc:
            raise self._unavailable("reading usage events", exc) from None
        found = (orjson.loads(row[0]) for row in rows)
        return [e for e in found if isinstance(ts := e.get("ts"), int | float) and since <= ts < until]

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), 5.0)
        except (TimeoutError, *_ERRORS):
            pool.terminate()

    async def _ready(self) -> asyncpg.Pool:
        """The pool, once the tables exist; raises ArchiveUnavailable."""
        if self._pool is not None and self._schema_ready:
            return self._pool
        async with self._opening:
            try:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=0,
                        max_size=4,
                        timeout=self._connect_timeout,
                        command_timeout=self._command_timeout,
                        server_settings={"synchronous_commit": "on", "application_name": "switchyard-archive"},
                    )
                if not self._schema_ready:
                    await self._create_schema(self._pool)
                    self._schema_ready = True
            except _ERRORS as exc:
                raise self._unavailable("connecting", exc) from None
            return self._pool

    @staticmethod
    async def _create_schema(pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn:
            # An account that may only insert and select can use tables a DBA created: look before creating.
            present = await conn.fetchrow("SELECT to_regclass($1), to_regclass($2)", EVENTS_TABLE, UNREADABLE_TABLE)
            if present is not None and None not in tuple(present):
                return
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
                await conn.execute(_SCHEMA)
            log.info("usage archive: created the tables %s and %s", EVENTS_TABLE, UNREADABLE_TABLE)

    def _unavailable(self, action: str, exc: BaseException) -> ArchiveUnavailable:
        message = f"{self.description}: {action} failed ({type(exc).__name__}: {exc})"
        for secret in self._secrets:
            message = message.replace(secret, "[redacted]")
        return ArchiveUnavailable(message)


def _describe(stream: str, entry: ArchiveEntry) -> bytes:
    """What the unreadable table keeps of an entry (the archive's description, when it made one)."""
    if entry.ts is None:
        return entry.raw
    fields = {"event": entry.raw.decode("utf-8", "replace")}
    return orjson.dumps({"stream": stream, "id": entry.entry_id, "fields": fields})


def _jsonb_text(event: dict[str, Any]) -> str:
    """The event as JSON that jsonb accepts: jsonb cannot hold U+0000 (one would fail the whole batch),
    so it is stored as U+FFFD."""
    text = orjson.dumps(event)
    if b"\\u0000" in text:
        text = orjson.dumps(_without_nul(event))
    return text.decode()


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def _secrets(dsn: str) -> tuple[str, ...]:
    """The connection string and its passwords (in the userinfo or as a `password=` parameter)."""
    found = [dsn]
    try:
        url = urllib.parse.urlsplit(dsn)
        found += [url.password or "", *urllib.parse.parse_qs(url.query).get("password", [])]
    except ValueError:
        pass
    found += [form(s) for s in found for form in (urllib.parse.quote, urllib.parse.unquote)]
    return tuple(sorted({s for s in found if s}, key=len, reverse=True))
