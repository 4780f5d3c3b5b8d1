"""The values strategies rank."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Candidate:
    """One deployment of a logical model as the policy sees it."""

    name: str
    position: int
    """Order in the config's deployment list (0 first)."""
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-attempt timeouts in seconds, and the overall deadline for all attempts of one request."""

    connect: float = 5.0
    first_token: float = 30.0
    total: float = 300.0
    deadline: float = 600.0


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """Deployments to try, in order, at most `max_attempts` of them."""

    order: tuple[Candidate, ...]
    max_attempts: int
    timeouts: Timeouts
