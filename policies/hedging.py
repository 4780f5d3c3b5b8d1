"""Hedged requests: when the first attempt is slower than it usually is, start a second one on the
next deployment and keep whichever answers first (Dean & Barroso, "The Tail at Scale").

The delay is the deployment's recent p95, so about one request in twenty is hedged when the
deployment behaves as usual. A hedge is a retry for the retry budget: take one from
`RetryBudget.try_acquire_retry` before sending it. A stream may be hedged only until the first byte
reached the client (the gateway then cancels the slower attempt).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from policies.observations import LatencyView


@dataclass(frozen=True, slots=True)
class HedgeConfig:
    min_s: float = 0.25
    """Never hedge sooner: below this a hedge mostly doubles load."""
    max_s: float = 10.0
    """Never wait longer than this before hedging."""
    default_s: float = 2.0
    """The delay while the deployment has too few recent samples."""
    min_samples: int = 20
    max_hedges: int = 1
    """Extra attempts in flight at once for one request."""

    def __post_init__(self) -> None:
        if not 0 <= self.min_s <= self.max_s or not math.isfinite(self.max_s):
            raise ValueError("hedging needs 0 <= min_s <= max_s (finite)")
        if self.max_hedges < 0 or self.min_samples < 1:
            raise ValueError("max_hedges must be non-negative and min_samples at least 1")


def hedge_delay(
    latency: LatencyView,
    *,
    stream: bool,
    min_s: float,
    max_s: float,
    default_s: float,
    min_samples: int = 20,
) -> float:
    """Seconds to wait for the first byte before hedging: the recent p95 time to first token for a
    stream, the p95 total latency otherwise (a whole response is its first byte); `default_s` with
    fewer than `min_samples` samples; always clamped to [min_s, max_s]."""
    p95 = latency.p95_ttft_s if stream else latency.p95_latency_s
    delay = p95 if p95 is not None and latency.samples >= min_samples else default_s
    return min(max(delay, min_s), max_s)


def delay_for(latency: LatencyView, config: HedgeConfig, *, stream: bool) -> float:
    """`hedge_delay` with the config's numbers."""
    return hedge_delay(
        latency,
        stream=stream,
        min_s=config.min_s,
        max_s=config.max_s,
        default_s=config.default_s,
        min_samples=config.min_samples,
    )


def should_hedge(
    *,
    elapsed_s: float,
    delay_s: float,
    first_byte_seen: bool,
    hedges_in_flight: int,
    max_hedges: int,
    candidates_left: int,
    time_left_s: float,
) -> bool:
    """Start a hedge now? Only when the attempt has waited `delay_s` without a first byte, fewer
    than `max_hedges` hedges are running, another deployment is left to try, and the request's
    deadline leaves time for it. The caller then takes a retry from the budget; a refusal there
    means no hedge."""
    return (
        not first_byte_seen
        and elapsed_s >= delay_s
        and hedges_in_flight < max_hedges
        and candidates_left > 0
        and time_left_s > 0
    )
