"""`strategy: weighted` — traffic split by deployment weight, with nginx's smooth weighted round-robin.

Each pick adds every eligible deployment's weight to its running score, picks the highest score and
takes the sum of the weights off the winner. Over any run of sum(weights) picks with integer weights
and a fixed set, each deployment is picked exactly `weight` times, interleaved rather than in bursts
(5:1:1 gives a a b a c a a, not a a a a a b c). Deterministic: no randomness, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from policies.observations import DeploymentView, RequestView
from policies.strategies.ranking import Ranking

_PICKED = "picked by smooth weighted round-robin"
_FALLBACK = "fallback, by weight"
_ZERO = "weight 0: fallback only"


@dataclass(frozen=True, slots=True)
class WeightedConfig:
    """No options: each deployment's `weight` is the policy."""


class WeightedState:
    """The running scores of one logical model's deployments; keep one per model for the life of a
    config (a reload starts a new one). Deployments that are not eligible for a pick keep their
    score, as nginx does for peers that are down."""

    __slots__ = ("current",)

    def __init__(self) -> None:
        self.current: dict[str, float] = {}

    def copy(self) -> WeightedState:
        """An independent copy, so a dry run (`explain`) does not move the real rotation."""
        twin = WeightedState()
        twin.current = dict(self.current)
        return twin


def rank(request: RequestView, eligible: Sequence[DeploymentView], *, state: WeightedState) -> Ranking:
    """The next pick first, then the others by weight (heaviest first, then config order) as
    fallbacks; weight-0 deployments are never picked while another has weight. Score: the weight."""
    current = state.current
    total = 0.0
    best: DeploymentView | None = None
    best_score = 0.0
    for d in eligible:
        weight = d.weight
        if weight <= 0:
            continue
        score = current.get(d.name, 0.0) + weight
        current[d.name] = score
        total += weight
        if best is None or score > best_score or (score == best_score and d.position < best.position):
            best = d
            best_score = score
    if best is not None:
        current[best.name] = best_score - total
    rest = sorted((d for d in eligible if d is not best), key=_fallback_key)
    order = [best.name] if best is not None else []
    order.extend(d.name for d in rest)
    why = [_PICKED] if best is not None else []
    why.extend(_FALLBACK if d.weight > 0 else _ZERO for d in rest)
    scores: list[float | None] = [best.weight] if best is not None else []
    scores.extend(d.weight for d in rest)
    return Ranking(order=tuple(order), scores=tuple(scores), why=tuple(why))


def _fallback_key(d: DeploymentView) -> tuple[float, int]:
    return (-d.weight, d.position)
