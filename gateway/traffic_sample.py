"""A recorded traffic sample for `route simulate`: usage events read from the ledger's JSON Lines,
checked field by field, deduplicated by request id and ordered by when each request started."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from providers.base import Endpoint


@dataclass(frozen=True, slots=True)
class TrafficEvent:
    """The fields of one usage record that a replay reads."""

    request_id: str | None
    ts: float
    model: str
    deployment: str | None
    status: int
    tenant: str | None
    endpoint: str
    stream: bool
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    images: int
    audio_seconds: float
    cost_micro_usd: int
    latency_ms: float | None
    ttft_ms: float | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def started_at(self) -> float:
        return self.ts - (self.latency_ms or 0.0) / 1000


@dataclass(frozen=True, slots=True)
class Traffic:
    """Events in the order their requests started, each `request_id` once."""

    events: tuple[TrafficEvent, ...]
    malformed: int
    """Lines that were not a usage event (not JSON, not an object, a field of the wrong type)."""
    duplicates: int
    """Events dropped because an earlier one had the same `request_id` (the archive writes at least once)."""


class _Malformed(ValueError):
    pass


def _get(raw: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    """`raw[key]` if of `kind` (a bool is not a number; a float is finite), `default` if absent or null."""
    value = raw.get(key)
    if value is None:
        return default
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
        raise _Malformed(key)
    if isinstance(value, float) and not math.isfinite(value):
        raise _Malformed(key)
    return value


def event_from_record(raw: object) -> TrafficEvent | None:
    """The event in one decoded ledger line; None when it is not one (`ts`, `model` and `status` are
    required, every other field is optional but must have its type)."""
    if not isinstance(raw, Mapping):
        return None
    number = (int, float)
    try:
        ts, model, status = _get(raw, "ts", number), _get(raw, "model", str), _get(raw, "status", int)
        if ts is None or not model or status is None:
            return None
        latency = _get(raw, "latency_ms", number)
        ttft = _get(raw, "ttft_ms", number)
        request_id = raw.get("request_id")
        return TrafficEvent(
            request_id=None if request_id is None else str(request_id),
            ts=float(ts),
            model=model,
            deployment=_get(raw, "deployment", str),
            status=status,
            tenant=_get(raw, "tenant", str),
            endpoint=_get(raw, "endpoint", str, Endpoint.CHAT.value),
            stream=_get(raw, "stream", bool, False),
            prompt_tokens=_get(raw, "prompt_tokens", int, 0),
            completion_tokens=_get(raw, "completion_tokens", int, 0),
            cached_tokens=_get(raw, "cached_tokens", int, 0),
            cache_write_tokens=_get(raw, "cache_write_tokens", int, 0),
            reasoning_tokens=_get(raw, "reasoning_tokens", int, 0),
            images=_get(raw, "images", int, 0),
            audio_seconds=float(_get(raw, "audio_seconds", number, 0.0)),
            cost_micro_usd=_get(raw, "cost_micro_usd", int, 0),
            latency_ms=float(latency) if latency is not None and latency >= 0 else None,
            ttft_ms=float(ttft) if ttft is not None else None,
        )
    except _Malformed:
        return None


def collect_traffic(records: Iterable[object]) -> Traffic:
    """Parse decoded ledger lines (anything that is not an event object is counted as malformed),
    keep the first event of each `request_id` and order them by start."""
    seen: set[str] = set()
    events: list[TrafficEvent] = []
    malformed = duplicates = 0
    for raw in records:
        event = event_from_record(raw)
        if event is None:
            malformed += 1
            continue
        if event.request_id is not None:
            if event.request_id in seen:
                duplicates += 1
                continue
            seen.add(event.request_id)
        events.append(event)
    events.sort(key=lambda e: (e.started_at, e.ts, e.request_id or ""))
    return Traffic(tuple(events), malformed, duplicates)
