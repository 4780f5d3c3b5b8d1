"""`strategy: priority` — try deployments in the order the config lists them."""

from __future__ import annotations

from collections.abc import Sequence

from policies.candidates import Candidate, RoutePlan, Timeouts


def rank(candidates: Sequence[Candidate]) -> tuple[Candidate, ...]:
    return tuple(sorted((c for c in candidates if c.enabled), key=lambda c: c.position))


def plan(candidates: Sequence[Candidate], *, max_attempts: int, timeouts: Timeouts) -> RoutePlan:
    order = rank(candidates)
    return RoutePlan(order=order, max_attempts=min(max_attempts, len(order)), timeouts=timeouts)
