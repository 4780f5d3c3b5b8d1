"""Types and helpers shared by the load generators and the runner."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    """What one load run saw from the client side. Latencies are in milliseconds."""

    requests: int  # completed requests (including those answered with an error status)
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    ttft_p50_ms: float | None = None
    ttft_p99_ms: float | None = None
    error_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of an already sorted list; NaN when empty."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)
