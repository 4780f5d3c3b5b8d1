"""Budget periods and projections, as plain values: which period a moment falls in, when it ends, and
where spend is heading. The atomic parts (reserve, settle) run in Redis; this decides the numbers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

GRACE_SECONDS = 2 * 86400
"""Spend counters outlive their period by this much, so a late settlement still finds its period."""


@dataclass(frozen=True, slots=True)
class PeriodWindow:
    id: str
    """`d20261201`, `m202612` or `total`: part of the counter's key."""
    start: float | None
    end: float | None
    """UNIX seconds; None for `total`."""

    def ttl(self, now: float) -> int | None:
        """Seconds a counter of this period must live; None: forever."""
        return None if self.end is None else max(1, int(self.end - now) + GRACE_SECONDS)

    def seconds_left(self, now: float) -> float | None:
        return None if self.end is None else max(0.0, self.end - now)


def period_window(period: str, ts: float) -> PeriodWindow:
    """The day, month or `total` window holding `ts` (UTC)."""
    if period == "total":
        return _TOTAL
    return _window(period, int(ts // 86400))


@lru_cache(maxsize=64)
def _window(period: str, day: int) -> PeriodWindow:
    # Keyed by the UTC day: every request of a day shares one computation (this runs on every request).
    moment = datetime.fromtimestamp(day * 86400, UTC)
    if period == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start.timestamp() + 86400
        return PeriodWindow(f"d{start:%Y%m%d}", start.timestamp(), end)
    if period == "month":
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        following = (
            start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        )
        return PeriodWindow(f"m{start:%Y%m}", start.timestamp(), following.timestamp())
    raise ValueError(f"unknown budget period {period!r}")


_TOTAL = PeriodWindow("total", None, None)


def projected_spend(spend: int, window: PeriodWindow, now: float) -> int | None:
    """Spend at the period's end if it keeps its pace so far (linear); None for `total` budgets."""
    if window.start is None or window.end is None:
        return None
    elapsed = max(now - window.start, 3600.0)  # an hour's pace at least: the first minutes say little
    length = window.end - window.start
    return spend if elapsed >= length else int(spend * length / elapsed)


def crossed_thresholds(before: int, after: int, limit: int, thresholds: tuple[int, ...]) -> tuple[int, ...]:
    """Percentages of `limit` that spend passed when it went from `before` to `after`."""
    return tuple(p for p in thresholds if before * 100 < limit * p <= after * 100)
