"""The usage archive's per-entry work, synchronous so that it compiles (scripts/build_native.py): what a
sink gets of each stream entry, and the default sink's lines grouped by the day folder they go to."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.archive.sink import ArchiveEntry

UNREADABLE_DIR = "unreadable"


def parse_entries(entries: Sequence[Sequence[Any]], key: str) -> tuple[list[ArchiveEntry], list[Any]]:
    """The sink's entries, and the ids to acknowledge once they are durable, of stream `key`'s `entries`
    ([id, fields]; an id of nil is skipped, and fields of nil, an entry trimmed while pending, leave
    nothing to archive but are acknowledged)."""
    batch: list[ArchiveEntry] = []
    ids: list[Any] = []
    for entry_id, fields in entries:
        if entry_id is None:
            continue
        ids.append(entry_id)
        if fields:
            batch.append(archive_entry(fields, key, entry_id))
    return batch, ids


def archive_entry(fields: Mapping[Any, Any] | Sequence[Any], key: str, entry_id: Any) -> ArchiveEntry:
    """What the sink gets of one stream entry (its fields as a mapping, or as Redis sent them: a flat
    list): its event and `ts`, or (unreadable) a description of it."""
    raw = _event_field(fields)
    ts = _ledger_ts(raw) if isinstance(raw, bytes) else -1.0
    if ts < 0:
        # Not in the ledger's shape: parsed whole (an event written by hand, by another version, or not
        # an event at all).
        event = _event_object(raw)
        if event is None:
            described = {text(k): text(v) for k, v in _as_mapping(fields).items()}
            entry = {"stream": key, "id": text(entry_id), "fields": described}
            return ArchiveEntry(text(entry_id), orjson.dumps(entry), None)
        ts = float(event["ts"])
    return ArchiveEntry(text(entry_id), raw if isinstance(raw, bytes) else str(raw).encode(), ts)


def parsed_event(entry: ArchiveEntry) -> dict[str, Any] | None:
    """The event of a readable entry as a JSON object whose `ts` is a real instant; None for an unreadable
    one, or one that is not such an object after all (`archive_entry` reads the ledger's events for their
    `ts` alone)."""
    return None if entry.ts is None else _event_object(entry.raw)


_LEDGER_HEAD = re.compile(rb'\{"request_id":"[^"\\]*","ts":(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?),')
"""How the ledger's events begin (orjson writes a usage record's fields in order, without spaces): an id
free of escapes, then the number `ts`."""


def _ledger_ts(raw: bytes) -> float:
    """The `ts` of an event in the ledger's shape, read without parsing the rest: 1.4 µs, against 1.6-2.2
    for orjson.loads of a usage record (timeit, compiled, 2-core machine); the gateway ran 10,857 fewer
    instructions per request (`python -m benchmarks.instructions --no-relay`). -1 when `raw` is not in
    that shape or its `ts` is not a real instant."""
    found = _LEDGER_HEAD.match(raw)
    if found is None or not raw.endswith(b"}"):
        return -1.0
    ts = float(found.group(1))
    return ts if 0 <= ts < _MAX_TS else -1.0


_MAX_TS = 1e11
"""An instant with a UTC date, which sinks file it under (year 5138)."""


def _event_object(raw: Any) -> dict[str, Any] | None:
    try:
        event = orjson.loads(raw)
        if not isinstance(event, dict) or not 0 <= float(event["ts"]) < _MAX_TS:
            return None
    except (orjson.JSONDecodeError, TypeError, KeyError, ValueError, OverflowError, OSError):
        return None
    return event


def lines_by_folder(entries: Sequence[ArchiveEntry]) -> dict[str, list[bytes]]:
    """Each entry's line (the event's own JSON, as the ledger wrote it: no second encoding) under the
    folder of its event's UTC day, or under `unreadable`."""
    by_folder: dict[str, list[bytes]] = {}
    day = -1
    folder = ""
    for entry in entries:
        ts = entry.ts
        if ts is None:
            by_folder.setdefault(UNREADABLE_DIR, []).append(entry.raw)
            continue
        entry_day = int(ts // 86400)
        if entry_day != day:  # events come in time order: nearly always the day of the one before
            day = entry_day
            folder = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")
        by_folder.setdefault(folder, []).append(entry.raw)
    return by_folder


def text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _as_mapping(fields: Mapping[Any, Any] | Sequence[Any]) -> Mapping[Any, Any]:
    if isinstance(fields, Mapping):
        return fields
    return dict(zip(fields[::2], fields[1::2], strict=False))  # [field, value, ...] as Redis sent them


def _event_field(fields: Mapping[Any, Any] | Sequence[Any]) -> Any:
    if not isinstance(fields, Mapping) and len(fields) == 2 and fields[0] == b"event":
        return fields[1]  # what the ledger writes
    found = _as_mapping(fields)
    return found.get(b"event", found.get("event"))
