"""Cost and usage reports from usage events: group, bucket by UTC period, sum. Pure: no I/O.

An event is the JSON form of `gateway.usage_ledger.UsageRecord`. Money stays integer micro-USD
until it is printed; `usd()` prints it exactly, without going through a float.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from providers.errors import InvalidRequest

Event = Mapping[str, Any]
Bucket = Literal["hour", "day", "month", "none"]
GroupValue = str | None

GROUP_FIELDS = ("tenant", "team", "project", "key", "model", "deployment", "provider", "endpoint", "status")
"""Besides these, `tag:<name>` groups by the value of one request tag ("" when absent)."""
BUCKETS: tuple[Bucket, ...] = ("hour", "day", "month", "none")
_EVENT_FIELD = {"key": "key_id"}
_TAG = "tag:"


@dataclass(frozen=True, slots=True)
class Usage:
    """Sums over a set of events. Tokens follow the ledger: cached and cache-write tokens are inside
    prompt tokens, reasoning tokens inside completion tokens."""

    requests: int = 0
    errors: int = 0
    """Requests that ended with a status >= 400."""
    estimated_requests: int = 0
    """Requests whose tokens were counted by the gateway because the upstream reported none."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_micro_usd: int = 0
    list_cost_micro_usd: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


USAGE_FIELDS = tuple(f.name for f in fields(Usage))


@dataclass(frozen=True, slots=True)
class ReportRow:
    group: tuple[GroupValue, ...]
    """One value per `Report.group_by` field, in that order."""
    period_start: datetime | None
    period_end: datetime | None
    """Exclusive; both None when the report has no bucket."""
    usage: Usage


@dataclass(frozen=True, slots=True)
class Report:
    group_by: tuple[str, ...]
    bucket: Bucket
    since: datetime | None
    until: datetime | None
    rows: tuple[ReportRow, ...]
    totals: Usage


def parse_group_by(value: str | Sequence[str]) -> tuple[str, ...]:
    """`"tenant,tag:env"` or a sequence of names → the validated names (duplicates dropped)."""
    names = value.split(",") if isinstance(value, str) else list(value)
    result: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        valid = name in GROUP_FIELDS or (name.startswith(_TAG) and len(name) > len(_TAG))
        if not valid:
            allowed = ", ".join((*GROUP_FIELDS, "tag:<name>"))
            raise InvalidRequest(f"Unknown group_by field '{name}'; allowed: {allowed}.", param="group_by")
        if name not in result:
            result.append(name)
    return tuple(result)


def parse_bucket(value: str) -> Bucket:
    if value not in BUCKETS:
        raise InvalidRequest(f"Unknown bucket '{value}'; allowed: {', '.join(BUCKETS)}.", param="bucket")
    return cast(Bucket, value)


def build_report(
    events: Iterable[Event],
    *,
    group_by: str | Sequence[str] = (),
    bucket: str = "none",
    since: datetime | None = None,
    until: datetime | None = None,
) -> Report:
    """Rows sorted by period, then cost (highest first), then group values; `totals` sums all events."""
    names = parse_group_by(group_by)
    period = parse_bucket(bucket)
    sums: dict[tuple[tuple[GroupValue, ...], datetime | None], list[int]] = {}
    total = [0] * len(USAGE_FIELDS)
    for event in events:
        group = tuple(group_value(event, name) for name in names)
        start = period_bounds(float(event["ts"]), period)[0] if period != "none" else None
        counters = event_counters(event)
        row = sums.setdefault((group, start), [0] * len(USAGE_FIELDS))
        for i, n in enumerate(counters):
            row[i] += n
            total[i] += n
    rows = [
        ReportRow(group, start, _period_end(start, period), Usage(*counters))
        for (group, start), counters in sums.items()
    ]
    rows.sort(key=_row_order)
    return Report(names, period, since, until, tuple(rows), Usage(*total))


def group_value(event: Event, name: str) -> GroupValue:
    if name.startswith(_TAG):
        tags = event.get("tags") or {}
        return str(tags.get(name[len(_TAG) :], ""))
    if name == "status":
        return f"{int(event.get('status') or 0) // 100}xx"
    value = event.get(_EVENT_FIELD.get(name, name))
    return None if value is None else str(value)


def event_counters(event: Event) -> tuple[int, ...]:
    """One event's contribution, in `USAGE_FIELDS` order."""
    status = int(event.get("status") or 0)
    return (
        1,
        int(status >= 400),
        int(bool(event.get("estimated"))),
        int(event.get("prompt_tokens") or 0),
        int(event.get("completion_tokens") or 0),
        int(event.get("cached_tokens") or 0),
        int(event.get("cache_write_tokens") or 0),
        int(event.get("reasoning_tokens") or 0),
        int(event.get("cost_micro_usd") or 0),
        int(event.get("list_cost_micro_usd") or 0),
    )


def period_bounds(ts: float, bucket: Bucket) -> tuple[datetime, datetime]:
    """The UTC hour, day or month holding `ts`: [start, end)."""
    moment = datetime.fromtimestamp(ts, UTC)
    if bucket == "hour":
        start = moment.replace(minute=0, second=0, microsecond=0)
    elif bucket == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    elif bucket == "month":
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        raise ValueError("a report without bucket has no periods")
    end = _period_end(start, bucket)
    assert end is not None
    return start, end


def _period_end(start: datetime | None, bucket: Bucket) -> datetime | None:
    if start is None:
        return None
    if bucket == "hour":
        return start + timedelta(hours=1)
    if bucket == "day":
        return start + timedelta(days=1)
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


def usd(micro_usd: int) -> str:
    """Integer micro-USD as an exact decimal string with 6 decimals: 1234567 → "1.234567"."""
    return millionths(micro_usd)


def millionths(n: int) -> str:
    """n / 10**6 as an exact decimal string with 6 decimals, never through a float."""
    sign = "-" if n < 0 else ""
    whole, fraction = divmod(abs(n), 1_000_000)
    return f"{sign}{whole}.{fraction:06d}"


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, to the second: 2026-11-01T00:00:00Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _row_order(row: ReportRow) -> tuple[Any, ...]:
    return (
        row.period_start or datetime.min.replace(tzinfo=UTC),
        -row.usage.cost_micro_usd,
        tuple((value is None, value or "") for value in row.group),
    )
