"""Load the usage events of a time range: the archive (files, PostgreSQL) and the Redis streams, deduplicated.

The archive (`gateway.usage_archive`) holds what was acknowledged, possibly twice in the files; the
streams hold what is recent, archived or not. Together, deduplicated by `request_id`, they give every
event exactly once, for as long as the stream keeps an entry until it has been archived.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.archive import ArchiveUnavailable, PostgresSink
from gateway.usage_archive import TENANTS_KEY
from gateway.usage_ledger import usage_stream_key
from providers.errors import ServiceUnavailable

log = logging.getLogger("switchyard.reports")

STREAM_SLACK_SECONDS = 600.0
"""A stream id is the time the ledger wrote the entry, a little after the event's `ts`
(or much later, after a spool replay within that window)."""
_PAGE = 10_000


async def load_events(
    redis: aioredis.Redis,
    archive_dir: Path | None,
    *,
    since: float,
    until: float,
    tenants: Collection[str] | None,
    postgres: PostgresSink | None = None,
) -> list[dict[str, Any]]:
    """Events with `since <= ts < until`, sorted by `ts`, each `request_id` once.

    The archive is read from the files under `archive_dir` and from `postgres`, each when given (both:
    the files written before the archive moved to PostgreSQL still count, once). `tenants=None` means
    every tenant (the members of `sy:tenants`, and every tenant in the archive). Raises
    ServiceUnavailable when Redis or the archive cannot be read.
    """
    wanted = None if tenants is None else frozenset(tenants)
    try:
        names = sorted(wanted) if wanted is not None else sorted(_text(t) for t in await redis.smembers(TENANTS_KEY))
        streamed = [e for name in names for e in await _stream_events(redis, name, since, until)]
    except (RedisError, OSError) as exc:
        raise ServiceUnavailable(f"The usage store is unavailable ({type(exc).__name__}: {exc}).") from exc
    archived: list[dict[str, Any]] = []
    if archive_dir is not None:
        try:
            archived = await asyncio.to_thread(_archive_events, archive_dir, since, until, wanted)
        except OSError as exc:
            raise ServiceUnavailable(f"The usage archive cannot be read ({exc}).") from exc
    if postgres is not None:
        try:
            archived += await postgres.read(since=since, until=until, tenants=wanted)
        except ArchiveUnavailable as exc:
            log.warning("reports: %s", exc)  # the details (host, cause) for the operator, not the client
            raise ServiceUnavailable("The usage archive (PostgreSQL) cannot be read; try again later.") from exc
    unique: dict[str, dict[str, Any]] = {}
    anonymous: list[dict[str, Any]] = []
    for event in (*archived, *streamed):
        request_id = event.get("request_id")
        if request_id is None:
            anonymous.append(event)
        else:
            unique.setdefault(str(request_id), event)
    events = [*unique.values(), *anonymous]
    events.sort(key=lambda e: (e["ts"], str(e.get("request_id"))))
    return events


async def _stream_events(redis: aioredis.Redis, tenant: str, since: float, until: float) -> list[dict[str, Any]]:
    key = usage_stream_key(tenant)
    low = f"{max(0, int((since - STREAM_SLACK_SECONDS) * 1000))}"
    high = f"{max(0, int((until + STREAM_SLACK_SECONDS) * 1000))}"
    events: list[dict[str, Any]] = []
    while True:
        page: Any = await redis.xrange(key, min=low, max=high, count=_PAGE)
        for _, fields in page:
            event = _parse(fields.get(b"event", fields.get("event")))
            if event is not None and event.get("tenant") == tenant and since <= event["ts"] < until:
                events.append(event)
        if len(page) < _PAGE:
            return events
        low = "(" + _text(page[-1][0])


def _archive_events(
    directory: Path, since: float, until: float, tenants: frozenset[str] | None
) -> list[dict[str, Any]]:
    first = datetime.fromtimestamp(since, UTC).date()
    last = datetime.fromtimestamp(max(since, until - 1e-6), UTC).date()
    events = []
    for folder in _day_folders(directory, first, last):
        for path in sorted(folder.glob("*.jsonl")):
            for line in path.read_bytes().splitlines():
                event = _parse(line)
                if event is None:
                    continue  # the torn end of a write that crashed: the entry was not acked, so it is written again
                if (tenants is None or event.get("tenant") in tenants) and since <= event["ts"] < until:
                    events.append(event)
    return events


def _day_folders(directory: Path, first: date, last: date) -> Iterator[Path]:
    if not directory.is_dir():
        return
    for folder in sorted(directory.iterdir()):
        try:
            day = date.fromisoformat(folder.name)
        except ValueError:
            continue  # `unreadable/` and anything else that is not a day
        if first <= day <= last and folder.is_dir():
            yield folder


def _parse(raw: Any) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("ts"), int | float):
        return None
    return event


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
