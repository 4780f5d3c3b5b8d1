from __future__ import annotations

import pytest

from policies.retry_budget import RetryBudget, RetryBudgetConfig
from policies.rolling_counts import RollingCounts


def test_rolling_counts_sum_over_the_window() -> None:
    counts = RollingCounts(window_s=10.0, buckets=10)
    counts.add(0.5, 1, 0)
    counts.add(5.0, 2, 1)
    assert counts.totals(5.0) == (3, 1)
    assert counts.totals(9.9) == (3, 1)
    assert counts.totals(10.0) == (2, 1)  # the window is now buckets [1, 11): 0.5 left it
    assert counts.totals(14.9) == (2, 1)
    assert counts.totals(15.0) == (0, 0)


def test_rolling_counts_reuse_slots_and_clear() -> None:
    counts = RollingCounts(window_s=1.0, buckets=2)
    counts.add(0.0, 5, 5)
    counts.add(1.0, 1, 0)  # reuses the slot of bucket 0 two buckets later
    assert counts.totals(1.0) == (1, 0)
    counts.clear()
    assert counts.totals(1.0) == (0, 0)


def test_rolling_counts_never_rewrite_history() -> None:
    counts = RollingCounts(window_s=10.0, buckets=10)
    counts.add(50.0, 1, 0)
    counts.add(20.0, 1, 0)  # earlier than seen: counted in the current bucket
    assert counts.totals(50.0) == (2, 0)


def test_rolling_counts_validate() -> None:
    with pytest.raises(ValueError):
        RollingCounts(window_s=0.0)
    with pytest.raises(ValueError):
        RollingCounts(window_s=1.0, buckets=0)


def test_minimum_retries_without_traffic() -> None:
    budget = RetryBudget(RetryBudgetConfig(ratio=0.2, min_retries=3, window_s=10.0))
    assert [budget.try_acquire_retry(0.0) for _ in range(4)] == [True, True, True, False]


def test_ratio_of_requests() -> None:
    budget = RetryBudget(RetryBudgetConfig(ratio=0.2, min_retries=0, window_s=10.0))
    for _ in range(50):
        budget.on_request(0.0)
    granted = sum(budget.try_acquire_retry(1.0) for _ in range(100))
    assert granted == 10
    assert budget.usage(1.0) == (50, 10)


def test_floor_and_ratio_do_not_add_up() -> None:
    budget = RetryBudget(RetryBudgetConfig(ratio=0.5, min_retries=3, window_s=10.0))
    for _ in range(10):
        budget.on_request(0.0)
    assert sum(budget.try_acquire_retry(0.0) for _ in range(20)) == 5


def test_budget_refills_as_the_window_slides() -> None:
    budget = RetryBudget(RetryBudgetConfig(ratio=0.0, min_retries=2, window_s=10.0))
    assert budget.try_acquire_retry(0.0) and budget.try_acquire_retry(0.0)
    assert not budget.try_acquire_retry(5.0)
    assert budget.try_acquire_retry(10.5)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        RetryBudgetConfig(ratio=-0.1)
    with pytest.raises(ValueError):
        RetryBudgetConfig(window_s=0.0)


class _ReferenceCounts:
    """The window's rule, spelled out over every event: an event counts in the bucket of the latest time
    seen so far (its own, unless the clock went back), and totals cover the `buckets` latest buckets."""

    def __init__(self, window_s: float, buckets: int) -> None:
        self.width, self.buckets = window_s / buckets, buckets
        self.latest = -1
        self.events: list[tuple[int, int, int]] = []

    def add(self, now: float, first: int, second: int) -> None:
        self.latest = max(int(now // self.width), self.latest)
        self.events.append((self.latest, first, second))

    def totals(self, now: float) -> tuple[int, int]:
        oldest = max(int(now // self.width), self.latest) - self.buckets
        kept = [(f, s) for bucket, f, s in self.events if bucket > oldest]
        return sum(f for f, _ in kept), sum(s for _, s in kept)

    def clear(self) -> None:
        self.events.clear()


def test_rolling_counts_match_the_rule_for_random_events() -> None:
    import random

    rng = random.Random(3)
    for _ in range(50):
        window, buckets = rng.choice([1.0, 10.0, 30.0]), rng.choice([1, 2, 5, 10])
        counts, reference = RollingCounts(window, buckets), _ReferenceCounts(window, buckets)
        now = 0.0
        for _ in range(300):
            now = max(0.0, now + rng.choice([0.0, 0.001, 0.05, 0.3, window / 2, window * 1.5, -window / 3]))
            action = rng.random()
            if action < 0.6:
                first, second = rng.randint(0, 3), rng.randint(0, 2)
                counts.add(now, first, second)
                reference.add(now, first, second)
            elif action < 0.97:
                assert counts.totals(now) == reference.totals(now)
            else:
                counts.clear()
                reference.clear()
