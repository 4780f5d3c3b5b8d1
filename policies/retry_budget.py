"""A retry budget (Envoy's and Finagle's): retries may add at most a fixed share to the traffic.

Without one, a struggling upstream gets every request two or three times (failover, hedges) exactly
when it can least take them. The budget counts original requests and retries over a sliding window;
a retry (a failover attempt or a hedge) is allowed while the retries in the window stay below
`ratio` times the requests in the window, with a floor of `min_retries` per window so quiet traffic can
still fail over.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.rolling_counts import RollingCounts


@dataclass(frozen=True, slots=True)
class RetryBudgetConfig:
    ratio: float = 0.2
    """Retries allowed per original request, over the window."""
    min_retries: int = 3
    """Retries always allowed per window, whatever the traffic."""
    window_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.ratio >= 0 or self.min_retries < 0 or not self.window_s > 0:
            raise ValueError("ratio and min_retries must be non-negative and window_s positive")


class RetryBudget:
    """One budget, usually per logical model (or per gateway process). Times are the caller's clock."""

    __slots__ = ("_config", "_counts")

    def __init__(self, config: RetryBudgetConfig | None = None) -> None:
        self._config = config or RetryBudgetConfig()
        self._counts = RollingCounts(self._config.window_s)

    def on_request(self, now: float) -> None:
        """Count one original request (once per client request, not per attempt)."""
        self._counts.add(now, 1, 0)

    def try_acquire_retry(self, now: float) -> bool:
        """Take one retry from the budget if it has one; False means do not retry (or hedge)."""
        requests, retries = self._counts.totals(now)
        if retries >= max(self._config.min_retries, self._config.ratio * requests):
            return False
        self._counts.add(now, 0, 1)
        return True

    def usage(self, now: float) -> tuple[int, int]:
        """(requests, retries) in the window, for metrics."""
        return self._counts.totals(now)
