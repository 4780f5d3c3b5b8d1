"""`strategy: least_load` — the deployment with the least work on it first.

Work is this gateway's in-flight requests, plus, for servers that report it (vLLM), the requests
waiting and running on the server; KV-cache usage breaks ties. A hosted API reports no queue, so
in a mixed pool it is compared on in-flight requests alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from policies.observations import IDLE, DeploymentView, LoadView, RequestView
from policies.strategies.ranking import Ranking

_WHY = "requests in flight + waiting + running, fewest first; KV-cache usage breaks ties"


@dataclass(frozen=True, slots=True)
class LeastLoadConfig:
    """No options."""


def load_score(load: LoadView) -> float:
    """In-flight requests plus the server's own waiting and running counts where it reports them."""
    score = float(load.in_flight)
    if load.queue_waiting is not None:
        score += load.queue_waiting
    if load.running is not None:
        score += load.running
    return score


def rank(request: RequestView, eligible: Sequence[DeploymentView], *, loads: Mapping[str, LoadView]) -> Ranking:
    """By `load_score`, then KV-cache usage (unreported counts as 0), then config position.
    Score: the load score."""
    keyed = []
    for index, d in enumerate(eligible):
        load = loads.get(d.name, IDLE)
        kv = load.kv_cache_usage
        keyed.append((load_score(load), 0.0 if kv is None else kv, d.position, index, d.name))
    keyed.sort()
    return Ranking(
        order=tuple([k[4] for k in keyed]),
        scores=tuple([k[0] for k in keyed]),
        why=(_WHY,) * len(keyed),
    )
