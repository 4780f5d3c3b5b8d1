"""The usage archive's per-entry work: what a sink gets of a stream entry, and the default sink's folders."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from gateway.archive.entries import (
    UNREADABLE_DIR,
    _ledger_ts,
    archive_entry,
    lines_by_folder,
    parse_entries,
    parsed_event,
)
from gateway.usage_record import UsageRecord


def _event(request_id: str, ts: float) -> bytes:
    return orjson.dumps({"request_id": request_id, "ts": ts})


def test_fields_as_redis_sends_them_or_as_a_mapping_give_the_same_entry() -> None:
    raw = _event("r1", 1_764_000_000.5)
    flat = archive_entry([b"event", raw], "s", b"1-0")
    extra = archive_entry([b"note", b"x", b"event", raw], "s", b"1-0")
    mapped = archive_entry({b"event": raw}, "s", b"1-0")
    decoded = archive_entry({"event": raw.decode()}, "s", "1-0")  # a client with decode_responses
    assert flat == extra == mapped == decoded
    assert flat.entry_id == "1-0" and flat.raw == raw and flat.ts == 1_764_000_000.5
    assert parsed_event(flat) == orjson.loads(raw)


@pytest.mark.parametrize(
    "fields",
    [
        [b"event", b"not json"],
        [b"event", b"[1, 2]"],
        [b"event", b'{"ts": "soon"}'],
        [b"event", b'{"ts": -1}'],
        [b"event", b'{"ts": 1e300}'],
        [b"event", b'{"no_ts": 1}'],
        [b"other", b"x"],
    ],
)
def test_an_unreadable_entry_is_described_with_all_its_fields(fields: list[bytes]) -> None:
    entry = archive_entry(fields, "sy:{t}:usage", b"7-1")
    assert entry.ts is None and parsed_event(entry) is None and entry.entry_id == "7-1"
    described = orjson.loads(entry.raw)
    assert described == {
        "stream": "sy:{t}:usage",
        "id": "7-1",
        "fields": {fields[i].decode(): fields[i + 1].decode() for i in range(0, len(fields), 2)},
    }


def test_parse_entries_skips_nil_ids_and_acknowledges_trimmed_entries() -> None:
    entries = [
        [b"1-0", [b"event", _event("a", 1.0)]],
        [None, None],  # XAUTOCLAIM's nil on Redis 6.2
        [b"2-0", None],  # trimmed while pending
        [b"3-0", [b"event", b"garbage"]],
    ]
    batch, ids = parse_entries(entries, "s")
    assert ids == [b"1-0", b"2-0", b"3-0"]
    assert [e.entry_id for e in batch] == ["1-0", "3-0"]
    assert batch[0].ts == 1.0 and parsed_event(batch[0]) == {"request_id": "a", "ts": 1.0}
    assert batch[1].ts is None


def test_lines_go_to_the_folder_of_their_utc_day() -> None:
    late = datetime(2026, 11, 3, 23, 59, 59, 999000, tzinfo=UTC).timestamp()
    early = datetime(2026, 11, 4, 0, 0, 0, tzinfo=UTC).timestamp()
    raws = [_event("a", late), _event("b", early), _event("c", late), _event("d", early)]
    entries = [archive_entry([b"event", raw], "s", f"{i}-0") for i, raw in enumerate(raws)]
    entries.append(archive_entry([b"event", b"?"], "s", "9-0"))
    assert lines_by_folder(entries) == {
        "2026-11-03": [raws[0], raws[2]],
        "2026-11-04": [raws[1], raws[3]],
        UNREADABLE_DIR: [entries[-1].raw],
    }
    assert lines_by_folder([]) == {}


def test_the_ledgers_events_are_read_for_their_ts_alone() -> None:
    record = UsageRecord("gw-00000000002a", 1_764_790_000.123456, "acme", None, "k", "chat", "m", "d", 200, False,
                         1, 12, 20, 0, 0, False, 0.412, None, None)  # fmt: skip
    raw = orjson.dumps(record)
    assert _ledger_ts(raw) == record.ts  # the shape the fast path reads: what the ledger writes
    entry = archive_entry([b"event", raw], "s", b"1-0")
    assert entry.ts == record.ts and entry.raw == raw and parsed_event(entry) == orjson.loads(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"request_id":"a\\"b","ts":5.0,"x":1}',  # an escaped quote in the id: parsed whole
        b'{"request_id": "a", "ts": 5.0}',  # spaces: not orjson's output, parsed whole
        b'{"ts":5.0,"request_id":"a"}',  # another order
        b'{"request_id":"a","ts":5,"x":1}',  # an integer ts
        b'{"request_id":"a","ts":5e0,"x":1}',
    ],
)
def test_events_in_other_shapes_are_parsed_whole_with_the_same_ts(raw: bytes) -> None:
    entry = archive_entry([b"event", raw], "s", b"1-0")
    assert entry.ts == orjson.loads(raw)["ts"] == 5.0
    assert entry.raw == raw and parsed_event(entry) == orjson.loads(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"request_id":"a","ts":-1.0,"x":1}',
        b'{"request_id":"a","ts":1e300,"x":1}',
        b'{"request_id":"a","ts":1.0,"x":1',  # cut short: parsed whole, which fails
        b'{"request_id":"a","ts":01,"x":1}',  # not a JSON number
        b'{"request_id":"a","ts":NaN,"x":1}',
    ],
)
def test_the_fast_path_refuses_what_the_full_parse_refuses(raw: bytes) -> None:
    assert _ledger_ts(raw) == -1.0
    entry = archive_entry([b"event", raw], "s", b"1-0")
    assert entry.ts is None and parsed_event(entry) is None


def test_an_event_in_the_ledgers_shape_that_is_not_json_reaches_a_sink_needing_fields_as_unreadable() -> None:
    raw = b'{"request_id":"a","ts":1.0,"x":}'  # read for its ts only: the JSON Lines sink keeps it as is
    entry = archive_entry([b"event", raw], "s", b"1-0")
    assert entry.ts == 1.0 and parsed_event(entry) is None
