"""When to try the next deployment, and the deadlines of each attempt."""

from __future__ import annotations

from typing import Final

from policies.candidates import Timeouts
from policies.frozen_record import FrozenRecord


class AttemptWindow(FrozenRecord):
    """Absolute instants on the caller's clock for one attempt (built per attempt: see `policies.frozen_record`)."""

    _fields = ("connect_timeout", "first_byte_at", "total_at")
    __slots__ = _fields
    connect_timeout: Final[float]
    first_byte_at: Final[float]
    total_at: Final[float]

    def __init__(self, *, connect_timeout: float, first_byte_at: float, total_at: float) -> None:
        self.connect_timeout = connect_timeout
        self.first_byte_at = first_byte_at
        self.total_at = total_at


def attempt_window(now: float, started: float, timeouts: Timeouts) -> AttemptWindow | None:
    """The deadlines of an attempt starting at `now` for a request that started at `started`.

    Every per-attempt limit is clipped to the request's overall deadline; None when no time is left.
    """
    deadline = started + timeouts.deadline
    if now >= deadline:
        return None
    total_at = min(now + timeouts.total, deadline)
    return AttemptWindow(
        connect_timeout=min(timeouts.connect, total_at - now),
        first_byte_at=min(now + timeouts.first_token, total_at),
        total_at=total_at,
    )


def should_try_next(*, retryable: bool, attempts_made: int, max_attempts: int, remaining: int) -> bool:
    """Fail over only on errors another deployment may not have (connect, timeout, 429, 5xx)."""
    return retryable and attempts_made < max_attempts and remaining > 0
