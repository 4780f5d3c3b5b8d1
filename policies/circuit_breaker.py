"""Circuit breakers (outlier ejection) per deployment: stop sending to one that keeps failing.

States, as the strings metrics and the admin API show:

- `closed`: traffic flows; failures are counted.
- `open`: ejected after `consecutive_failures` failures in a row, or an error rate above
  `error_rate` over the last `window_s` with at least `min_requests` attempts. It stays open for
  `base_cooldown_s` times the number of recent ejections, at most `max_cooldown_s` (Envoy's
  base_ejection_time * n); every `forgive_after_s` spent closed forgets one ejection.
- `half_open`: the cool-down is over; `allow()` lets `half_open_probes` requests through at once.
  A success closes the breaker, a failure re-opens it with a longer cool-down.
- `cooling`: the upstream answered 429 with a Retry-After; unavailable until then. Not an ejection:
  it neither counts as a failure nor lengthens later cool-downs.

Record only failures that say something about the deployment (connect errors, timeouts, 5xx,
a broken stream), not the client's 4xx; a 429 goes to `cool_down`, not `record`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from policies.rolling_counts import RollingCounts


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    COOLING = "cooling"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    consecutive_failures: int = 5
    error_rate: float = 0.5
    """Open when the share of failed attempts in the window is above this…"""
    min_requests: int = 20
    """…and the window holds at least this many attempts."""
    window_s: float = 30.0
    base_cooldown_s: float = 30.0
    max_cooldown_s: float = 300.0
    half_open_probes: int = 1
    probe_timeout_s: float = 60.0
    """A probe whose result never arrives frees its slot after this long."""
    forgive_after_s: float = 300.0
    max_retry_after_s: float = 600.0
    """A Retry-After longer than this is capped (a misbehaving upstream cannot eject for a day)."""

    def __post_init__(self) -> None:
        if self.consecutive_failures < 1 or self.min_requests < 1 or self.half_open_probes < 1:
            raise ValueError("consecutive_failures, min_requests and half_open_probes must be at least 1")
        if not 0 < self.error_rate <= 1:
            raise ValueError(f"error_rate must be in (0, 1], not {self.error_rate!r}")
        for name in ("window_s", "base_cooldown_s", "max_cooldown_s", "probe_timeout_s", "forgive_after_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds")
        if self.max_cooldown_s < self.base_cooldown_s:
            raise ValueError("max_cooldown_s must not be below base_cooldown_s")


class CircuitBreaker:
    """One deployment's breaker. Times are the caller's clock (`now`, seconds)."""

    __slots__ = (
        "_closed_since",
        "_config",
        "_consecutive",
        "_cooling_until",
        "_ejections",
        "_on_trouble",
        "_open_until",
        "_probe_at",
        "_probes",
        "_state",
        "_window",
    )

    def __init__(self, config: BreakerConfig | None = None, *, on_trouble: Callable[[], None] | None = None) -> None:
        """`on_trouble` is called whenever the breaker opens or starts cooling down."""
        self._config = config or BreakerConfig()
        self._on_trouble = on_trouble
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._window = RollingCounts(self._config.window_s)
        self._ejections = 0
        self._closed_since = -math.inf
        self._open_until = 0.0
        self._probes = 0
        self._probe_at = 0.0
        self._cooling_until = -math.inf

    @property
    def ejections(self) -> int:
        """Recent ejections: the cool-down multiplier of the current or last open period."""
        return self._ejections

    def state(self, now: float) -> BreakerState:
        """The state `allow(now)` would act on, without reserving anything."""
        if self._state is BreakerState.OPEN and now < self._open_until:
            return BreakerState.OPEN
        if now < self._cooling_until:
            return BreakerState.COOLING
        return BreakerState.HALF_OPEN if self._state is BreakerState.OPEN else self._state

    def unavailable(self, now: float) -> str | None:
        """Why `allow(now)` would refuse, in English (to follow the deployment's name); None when it
        would let a request through."""
        if self._state is BreakerState.OPEN and now < self._open_until:
            return f"has its circuit open after repeated failures (retry in {self._open_until - now:.1f} s)"
        if now < self._cooling_until:
            return f"is rate limited by the upstream (429) for another {self._cooling_until - now:.1f} s"
        if self._state is not BreakerState.CLOSED and self._probes_in_use(now) >= self._config.half_open_probes:
            return "has its circuit half-open with every probe request in flight"
        return None

    def retry_in(self, now: float) -> float:
        """Seconds until a request could be allowed again (0 when it could be now)."""
        until = self._cooling_until
        if self._state is BreakerState.OPEN:
            until = max(until, self._open_until)
        return max(0.0, until - now)

    def allow(self, now: float) -> bool:
        """May a request go to this deployment now? In half-open this reserves one probe slot, which
        `record` (or `release`) frees: call it right before the attempt, once per attempt."""
        if now < self._cooling_until:
            return False
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if now < self._open_until:
                return False
            self._state = BreakerState.HALF_OPEN
            self._probes = 0
        in_use = self._probes_in_use(now)
        if in_use >= self._config.half_open_probes:
            return False
        self._probes = in_use + 1
        self._probe_at = now
        return True

    def record(self, now: float, ok: bool) -> None:
        """The result of an attempt that `allow` let through."""
        state = self._state
        if state is BreakerState.OPEN:
            return  # a late answer from before the ejection: the cool-down decides, not it
        if state is BreakerState.HALF_OPEN:
            self._probes = max(0, self._probes - 1)
            if ok:
                self._close(now)
            else:
                self._open(now)
            return
        self._window.add(now, 1, 0 if ok else 1)
        if ok:
            self._consecutive = 0
            return
        self._consecutive += 1
        if self._consecutive >= self._config.consecutive_failures:
            self._open(now)
            return
        total, failed = self._window.totals(now)
        if total >= self._config.min_requests and failed > self._config.error_rate * total:
            self._open(now)

    def release(self, now: float) -> None:
        """An allowed attempt ended without a verdict (the client left): free its probe slot."""
        if self._state is BreakerState.HALF_OPEN:
            self._probes = max(0, self._probes - 1)

    def cool_down(self, now: float, seconds: float) -> None:
        """The upstream asked us to wait (429 with Retry-After): unavailable for `seconds`."""
        if not seconds > 0:
            return
        seconds = min(seconds, self._config.max_retry_after_s)
        self._cooling_until = max(self._cooling_until, now + seconds)
        if self._on_trouble is not None:
            self._on_trouble()

    def recovered(self, now: float) -> bool:
        """Closed and not cooling down: nothing about it needs watching."""
        return self._state is BreakerState.CLOSED and now >= self._cooling_until

    def _probes_in_use(self, now: float) -> int:
        if self._probes and now - self._probe_at >= self._config.probe_timeout_s:
            return 0  # their results never came: let new probes through
        return self._probes

    def _open(self, now: float) -> None:
        config = self._config
        if self._state is BreakerState.CLOSED:
            forgiven = int((now - self._closed_since) // config.forgive_after_s) if self._ejections else 0
            self._ejections = max(0, self._ejections - forgiven)
        self._ejections += 1
        self._state = BreakerState.OPEN
        self._open_until = now + min(config.base_cooldown_s * self._ejections, config.max_cooldown_s)
        self._probes = 0
        self._consecutive = 0
        self._window.clear()
        if self._on_trouble is not None:
            self._on_trouble()

    def _close(self, now: float) -> None:
        self._state = BreakerState.CLOSED
        self._closed_since = now
        self._consecutive = 0
        self._window.clear()


class BreakerRegistry:
    """The breakers of every deployment, by deployment name, created on first use.

    It keeps the names of breakers that opened or cooled down since they were last seen recovered,
    so `exclusions(now)`, called once per routing decision, looks only at those.
    """

    __slots__ = ("_breakers", "_config", "_troubled")

    def __init__(self, config: BreakerConfig | None = None) -> None:
        self._config = config or BreakerConfig()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._troubled: set[str] = set()

    def get(self, name: str) -> CircuitBreaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            troubled = self._troubled
            breaker = self._breakers[name] = CircuitBreaker(self._config, on_trouble=lambda: troubled.add(name))
        return breaker

    def allow(self, name: str, now: float) -> bool:
        """See `CircuitBreaker.allow`: call it right before each attempt (it reserves half-open probes)."""
        breaker = self._breakers.get(name)
        return True if breaker is None else breaker.allow(now)

    def record(self, name: str, now: float, ok: bool) -> None:
        self.get(name).record(now, ok)

    def release(self, name: str, now: float) -> None:
        breaker = self._breakers.get(name)
        if breaker is not None:
            breaker.release(now)

    def cool_down(self, name: str, now: float, seconds: float) -> None:
        self.get(name).cool_down(now, seconds)

    def state(self, name: str, now: float) -> str:
        breaker = self._breakers.get(name)
        return BreakerState.CLOSED.value if breaker is None else breaker.state(now).value

    def unavailable(self, name: str, now: float) -> str | None:
        """Why `name` cannot take a request now, or None (see `CircuitBreaker.unavailable`)."""
        breaker = self._breakers.get(name)
        return None if breaker is None else breaker.unavailable(now)

    def exclusions(self, now: float) -> Mapping[str, str]:
        """Every deployment that cannot take a request now, with the reason (for `constraints`)."""
        if not self._troubled:
            return _NOTHING
        found: dict[str, str] = {}
        for name in tuple(self._troubled):
            breaker = self._breakers[name]
            reason = breaker.unavailable(now)
            if reason is not None:
                found[name] = reason
            elif breaker.recovered(now):
                self._troubled.discard(name)
        return found

    def retry_in(self, name: str, now: float) -> float:
        breaker = self._breakers.get(name)
        return 0.0 if breaker is None else breaker.retry_in(now)

    def states(self, now: float) -> dict[str, str]:
        """Every known breaker's state, for metrics and the admin API."""
        return {name: breaker.state(now).value for name, breaker in self._breakers.items()}

    def names(self) -> Iterator[str]:
        return iter(self._breakers)


_NOTHING: Mapping[str, str] = MappingProxyType({})
