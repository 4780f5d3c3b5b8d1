"""`strategy: slo_cost` — the cheapest deployment that meets a latency objective.

A deployment meets the objective when its recent p95 (time to first token or total latency) is at
or under `slo_s`. Deployments without enough recent samples to judge come right after the ones
that meet it, so they get measured; the ones that miss it come last, fastest first. When nothing
meets the objective the fastest measured deployment therefore leads, unless one is still unjudged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from policies.observations import NO_LATENCY, DeploymentView, LatencyView, RequestView
from policies.strategies.ranking import LATENCY_METRICS, LatencyMetric, Ranking, p95_of, uses_ttft

_MEETS = "meets the latency objective; cheapest first (score: cost in micro-USD)"
_MEETS_UNPRICED = "meets the latency objective; unknown price, after the priced ones"
_UNJUDGED = "too few recent samples to judge its latency; cheapest first (score: cost in micro-USD)"
_MISSES = "misses the latency objective; fastest first (score: p95 in seconds)"


@dataclass(frozen=True, slots=True)
class SloCostConfig:
    slo_s: float
    """The objective: p95 latency (or time to first token) at most this many seconds."""
    metric: LatencyMetric = "auto"
    min_samples: int = 5
    """Fewer recent samples than this: not judged yet."""

    def __post_init__(self) -> None:
        if not self.slo_s > 0 or not math.isfinite(self.slo_s):
            raise ValueError(f"slo_s must be a positive number of seconds, not {self.slo_s!r}")
        if self.metric not in LATENCY_METRICS:
            raise ValueError(f"metric must be one of {', '.join(sorted(LATENCY_METRICS))}, not {self.metric!r}")
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be at least 1, not {self.min_samples!r}")


def rank(
    request: RequestView,
    eligible: Sequence[DeploymentView],
    *,
    latencies: Mapping[str, LatencyView],
    costs: Mapping[str, int | None],
    config: SloCostConfig,
) -> Ranking:
    """Meeting ones by cost (unknown price last, ties by position), then unjudged ones by cost, then
    missing ones by p95 (ties by position)."""
    ttft = uses_ttft(config.metric, request.stream)
    slo = config.slo_s
    min_samples = config.min_samples
    get_latency = latencies.get
    get_cost = costs.get
    meets: list[tuple[int, int, str]] = []
    meets_unpriced: list[tuple[int, str]] = []
    unjudged: list[tuple[float, int, str]] = []
    misses: list[tuple[float, int, str]] = []
    for d in eligible:
        view = get_latency(d.name, NO_LATENCY)
        p95 = p95_of(view, ttft) if view.samples >= min_samples else None
        if p95 is not None and p95 > slo:
            misses.append((p95, d.position, d.name))
            continue
        cost = get_cost(d.name)
        if p95 is None:
            # Unknown prices sort after every known one: math.inf is above any cost.
            unjudged.append((math.inf if cost is None else cost, d.position, d.name))
        elif cost is None:
            meets_unpriced.append((d.position, d.name))
        else:
            meets.append((cost, d.position, d.name))
    meets.sort()
    meets_unpriced.sort()
    unjudged.sort()
    misses.sort()
    order = [k[2] for k in meets]
    order.extend([k[1] for k in meets_unpriced])
    order.extend([k[2] for k in unjudged])
    order.extend([k[2] for k in misses])
    scores: list[float | None] = [float(k[0]) for k in meets]
    scores.extend([None] * len(meets_unpriced))
    scores.extend([None if k[0] == math.inf else float(k[0]) for k in unjudged])
    scores.extend([k[0] for k in misses])
    why = (
        (_MEETS,) * len(meets)
        + (_MEETS_UNPRICED,) * len(meets_unpriced)
        + (_UNJUDGED,) * len(unjudged)
        + (_MISSES,) * len(misses)
    )
    return Ranking(order=tuple(order), scores=tuple(scores), why=why)
