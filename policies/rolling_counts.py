"""Two event counters over a sliding time window, in bounded memory (a ring of time buckets)."""

from __future__ import annotations

import math


class RollingCounts:
    """Counts of two kinds of event (say requests and failures) over the last `window_s` seconds.

    The window is cut into `buckets` equal buckets and covers the current one and the `buckets` - 1
    before it: an event counts for between `window_s` - one bucket's width and `window_s` seconds.
    Memory is O(buckets) whatever the traffic. Times are the caller's clock; a time earlier than one
    already seen lands in the current bucket rather than rewriting history.
    """

    __slots__ = ("_buckets", "_firsts", "_ids", "_latest", "_latest_slot", "_seconds", "_width")

    def __init__(self, window_s: float, buckets: int = 10) -> None:
        if not window_s > 0 or not math.isfinite(window_s):
            raise ValueError(f"window_s must be a positive number of seconds, not {window_s!r}")
        if buckets < 1:
            raise ValueError(f"buckets must be at least 1, not {buckets!r}")
        self._buckets = buckets
        self._width = window_s / buckets
        self._ids = [-1] * buckets
        self._firsts = [0] * buckets
        self._seconds = [0] * buckets
        self._latest = -1
        self._latest_slot = -1 % buckets

    def add(self, now: float, first: int = 0, second: int = 0) -> None:
        bucket_id = int(now // self._width)
        # Most events land in the bucket of the one before: no call, no reset.
        slot = self._latest_slot if bucket_id <= self._latest else self._advance(bucket_id)
        self._firsts[slot] += first
        self._seconds[slot] += second

    def totals(self, now: float) -> tuple[int, int]:
        """Both counts over the window ending at `now`."""
        current = max(int(now // self._width), self._latest)
        oldest = current - self._buckets
        first = second = 0
        for slot, bucket_id in enumerate(self._ids):
            if bucket_id > oldest:
                first += self._firsts[slot]
                second += self._seconds[slot]
        return first, second

    def clear(self) -> None:
        for slot in range(self._buckets):
            self._ids[slot] = -1
            self._firsts[slot] = 0
            self._seconds[slot] = 0
        self._ids[self._latest_slot] = self._latest  # still the current bucket, now empty

    def _advance(self, bucket_id: int) -> int:
        """Make `bucket_id` (later than any seen) the current bucket, reusing its slot; return the slot."""
        self._latest = bucket_id
        slot = self._latest_slot = bucket_id % self._buckets
        if self._ids[slot] != bucket_id:
            self._ids[slot] = bucket_id
            self._firsts[slot] = 0
            self._seconds[slot] = 0
        return slot
