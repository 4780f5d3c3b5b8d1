"""`strategy: lowest_latency` — the deployment with the lowest recent average latency first.

Pure exploitation starves a deployment that was slow once: it never gets another request, so its
average never recovers. A share of requests (`explore_share`) therefore promotes a random other
eligible deployment to first place, and a deployment with no samples at all is tried as soon as
nothing is in flight to it (one request at a time, so a new deployment is not flooded before its
first answer comes back).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from policies.observations import IDLE, NO_LATENCY, DeploymentView, LatencyView, LoadView, RequestView
from policies.strategies.ranking import LATENCY_METRICS, LatencyMetric, Ranking, ewma_of, uses_ttft

_KNOWN = {True: "average time to first token (s), fastest first", False: "average latency (s), fastest first"}
_PROBE = "no latency samples yet and nothing in flight: tried first to measure it"
_WAITING = "no latency samples yet; waiting for the request in flight to measure it"
_EXPLORED = "promoted at random (explore_share) to keep its latency current"


@dataclass(frozen=True, slots=True)
class LowestLatencyConfig:
    metric: LatencyMetric = "auto"
    explore_share: float = 0.05
    """Share of requests, 0..1, that put a random other deployment first."""

    def __post_init__(self) -> None:
        if self.metric not in LATENCY_METRICS:
            raise ValueError(f"metric must be one of {', '.join(sorted(LATENCY_METRICS))}, not {self.metric!r}")
        if not 0 <= self.explore_share <= 1:
            raise ValueError(f"explore_share must be between 0 and 1, not {self.explore_share!r}")


def rank(
    request: RequestView,
    eligible: Sequence[DeploymentView],
    *,
    latencies: Mapping[str, LatencyView],
    loads: Mapping[str, LoadView],
    config: LowestLatencyConfig,
    rng: random.Random | None,
) -> Ranking:
    """Unmeasured idle deployments (config order), then measured ones by average latency (ties by
    position), then unmeasured ones with requests in flight. Then, with probability `explore_share`,
    one uniformly chosen deployment other than the first moves to the front. Score: the average in
    seconds, None when unmeasured. `rng` is needed only when `explore_share` > 0."""
    ttft = uses_ttft(config.metric, request.stream)
    probes: list[tuple[int, int, str]] = []
    known: list[tuple[float, int, int, str]] = []
    waiting: list[tuple[int, int, str]] = []
    for index, d in enumerate(eligible):
        average = ewma_of(latencies.get(d.name, NO_LATENCY), ttft)
        if average is not None:
            known.append((average, d.position, index, d.name))
        elif loads.get(d.name, IDLE).in_flight == 0:
            probes.append((d.position, index, d.name))
        else:
            waiting.append((d.position, index, d.name))
    probes.sort()
    known.sort()
    waiting.sort()
    known_why = _KNOWN[ttft]
    order = [p[2] for p in probes]
    order.extend(k[3] for k in known)
    order.extend(w[2] for w in waiting)
    scores: list[float | None] = [None] * len(probes)
    scores.extend(k[0] for k in known)
    scores.extend([None] * len(waiting))
    why = [_PROBE] * len(probes)
    why.extend([known_why] * len(known))
    why.extend([_WAITING] * len(waiting))
    if config.explore_share > 0 and len(order) > 1:
        if rng is None:
            raise ValueError("lowest_latency with explore_share > 0 needs an injected random.Random")
        if rng.random() < config.explore_share:
            chosen = rng.randrange(1, len(order))
            order.insert(0, order.pop(chosen))
            scores.insert(0, scores.pop(chosen))
            why.pop(chosen)
            why.insert(0, _EXPLORED)
    return Ranking(order=tuple(order), scores=tuple(scores), why=tuple(why))
