"""`strategy: lowest_cost` — the cheapest deployment for this request first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from policies.observations import DeploymentView, RequestView
from policies.strategies.ranking import Ranking

_PRICED = "estimated cost in micro-USD, cheapest first"
_UNPRICED = "unknown price: after every priced deployment"


@dataclass(frozen=True, slots=True)
class LowestCostConfig:
    """No options: costs come from each deployment's price and the request's token estimate."""


def rank(request: RequestView, eligible: Sequence[DeploymentView], *, costs: Mapping[str, int | None]) -> Ranking:
    """By estimated cost (`costs`, micro-USD by name; None or missing: unknown price, ranked after
    every priced deployment), ties by config position. Score: the cost."""
    get = costs.get
    priced: list[tuple[int, int, str]] = []
    unpriced: list[tuple[int, str]] = []
    for d in eligible:
        cost = get(d.name)
        if cost is None:
            unpriced.append((d.position, d.name))
        else:
            priced.append((cost, d.position, d.name))
    priced.sort()
    unpriced.sort()
    order = [k[2] for k in priced]
    order.extend([k[1] for k in unpriced])
    scores: list[float | None] = [float(k[0]) for k in priced]
    scores.extend([None] * len(unpriced))
    why = (_PRICED,) * len(priced) + (_UNPRICED,) * len(unpriced)
    return Ranking(order=tuple(order), scores=tuple(scores), why=why)
