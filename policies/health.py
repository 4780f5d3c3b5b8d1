"""Unhealthy deployments go last: still tried when nothing better answers, never first."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from policies.candidates import Candidate


def healthy_first(order: Sequence[Candidate], unhealthy: Collection[str]) -> tuple[Candidate, ...]:
    if not unhealthy:
        return tuple(order)
    return tuple(c for c in order if c.name not in unhealthy) + tuple(c for c in order if c.name in unhealthy)
