"""`strategy: priority` — the order the config lists the deployments in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

from policies.observations import DeploymentView, RequestView
from policies.strategies.ranking import Ranking

_WHY = "config order"


@dataclass(frozen=True, slots=True)
class PriorityConfig:
    """No options: the deployments' order in the config is the policy."""


def rank(request: RequestView, eligible: Sequence[DeploymentView]) -> Ranking:
    """By config position (score: the position, 0 first)."""
    ranked = sorted(eligible, key=_POSITION)
    return Ranking(
        order=tuple([d.name for d in ranked]),
        scores=tuple([float(d.position) for d in ranked]),
        why=(_WHY,) * len(ranked),
    )


_POSITION = attrgetter("position")
