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
