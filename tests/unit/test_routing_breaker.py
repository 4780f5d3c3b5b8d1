from __future__ import annotations

import pytest

from policies.circuit_breaker import BreakerConfig, BreakerRegistry, BreakerState, CircuitBreaker

CONFIG = BreakerConfig(
    consecutive_failures=3,
    error_rate=0.5,
    min_requests=10,
    window_s=10.0,
    base_cooldown_s=10.0,
    max_cooldown_s=25.0,
    half_open_probes=1,
    probe_timeout_s=5.0,
    forgive_after_s=100.0,
)


def failing(times: int, now: float = 0.0, config: BreakerConfig = CONFIG) -> CircuitBreaker:
    breaker = CircuitBreaker(config)
    for _ in range(times):
        breaker.record(now, ok=False)
    return breaker


def test_starts_closed_and_allows() -> None:
    breaker = CircuitBreaker(CONFIG)
    assert breaker.state(0.0) is BreakerState.CLOSED
    assert breaker.allow(0.0) and breaker.unavailable(0.0) is None
    assert breaker.retry_in(0.0) == 0.0


def test_opens_on_consecutive_failures() -> None:
    breaker = failing(2)
    assert breaker.state(0.0) == "closed"
    breaker.record(0.0, ok=False)
    assert breaker.state(0.0) == "open"
    assert not breaker.allow(1.0)
    assert breaker.retry_in(1.0) == pytest.approx(9.0)
    assert breaker.unavailable(1.0) == "has its circuit open after repeated failures (retry in 9.0 s)"


def test_a_success_resets_the_consecutive_count() -> None:
    breaker = failing(2)
    breaker.record(0.0, ok=True)
    breaker.record(0.0, ok=False)
    breaker.record(0.0, ok=False)
    assert breaker.state(0.0) == "closed"


def test_opens_on_error_rate_with_enough_requests() -> None:
    breaker = CircuitBreaker(CONFIG)
    # Alternating, so the consecutive rule never fires; 5 of 10 is not above 50%.
    for ok in [True, False] * 5:
        breaker.record(0.0, ok)
    assert breaker.state(0.0) == "closed"
    breaker.record(0.0, ok=False)  # 6 of 11 failed
    assert breaker.state(0.0) == "open" and breaker.ejections == 1


def test_error_rate_needs_the_minimum_request_count() -> None:
    breaker = CircuitBreaker(CONFIG)
    for ok in [False, False, True] * 3:  # 6 of 9 failed, but fewer than 10 attempts
        breaker.record(0.0, ok)
    assert breaker.state(0.0) == "closed"


def test_error_rate_forgets_attempts_that_left_the_window() -> None:
    breaker = CircuitBreaker(CONFIG)
    for ok in [False, False, True] * 3:
        breaker.record(0.0, ok)
    for _ in range(5):
        breaker.record(20.0, ok=True)
    breaker.record(20.0, ok=False)
    assert breaker.state(20.0) == "closed"


def test_half_open_after_the_cooldown_lets_one_probe_through() -> None:
    breaker = failing(3)
    assert breaker.state(10.0) == "half_open"
    assert breaker.allow(10.0)
    assert not breaker.allow(10.5)  # the only probe slot is taken
    assert breaker.unavailable(10.5) == "has its circuit half-open with every probe request in flight"


def test_probe_success_closes() -> None:
    breaker = failing(3)
    assert breaker.allow(10.0)
    breaker.record(11.0, ok=True)
    assert breaker.state(11.0) == "closed"
    assert breaker.allow(11.0) and breaker.allow(11.0)


def test_probe_failure_reopens_with_a_longer_cooldown_up_to_the_max() -> None:
    breaker = failing(3)
    assert breaker.ejections == 1
    assert breaker.allow(10.0)
    breaker.record(10.0, ok=False)
    assert breaker.state(10.0) == "open" and breaker.ejections == 2
    assert breaker.retry_in(10.0) == pytest.approx(20.0)  # base 10 s x 2 ejections
    assert breaker.allow(30.0)
    breaker.record(30.0, ok=False)
    assert breaker.retry_in(30.0) == pytest.approx(25.0)  # 30 s capped at max_cooldown_s


def test_several_probes() -> None:
    config = BreakerConfig(consecutive_failures=1, base_cooldown_s=1.0, half_open_probes=2)
    breaker = failing(1, config=config)
    assert breaker.allow(1.0) and breaker.allow(1.0) and not breaker.allow(1.0)
    breaker.record(1.5, ok=True)
    assert breaker.state(1.5) == "closed"


def test_a_lost_probe_frees_its_slot_after_the_probe_timeout() -> None:
    breaker = failing(3)
    assert breaker.allow(10.0)
    assert not breaker.allow(14.0)
    assert breaker.allow(15.0)


def test_release_frees_a_probe_slot() -> None:
    breaker = failing(3)
    assert breaker.allow(10.0)
    breaker.release(10.1)
    assert breaker.allow(10.2)


def test_late_results_while_open_are_ignored() -> None:
    breaker = failing(3)
    breaker.record(1.0, ok=True)
    assert breaker.state(1.0) == "open"
    breaker.record(2.0, ok=False)
    assert breaker.ejections == 1 and breaker.retry_in(2.0) == pytest.approx(8.0)


def test_ejections_are_forgiven_after_staying_closed() -> None:
    breaker = failing(3)
    breaker.allow(10.0)
    breaker.record(10.0, ok=False)  # second ejection
    breaker.allow(30.0)
    breaker.record(30.0, ok=True)  # closed at 30 with 2 ejections
    for _ in range(3):
        breaker.record(235.0, ok=False)  # 205 s closed: two forgiven, so this is the first again
    assert breaker.ejections == 1 and breaker.retry_in(235.0) == pytest.approx(10.0)


def test_reopening_soon_after_closing_keeps_the_longer_cooldown() -> None:
    breaker = failing(3)
    breaker.allow(10.0)
    breaker.record(10.0, ok=True)
    for _ in range(3):
        breaker.record(20.0, ok=False)
    assert breaker.ejections == 2 and breaker.retry_in(20.0) == pytest.approx(20.0)


def test_cool_down_after_429_is_not_an_ejection() -> None:
    breaker = CircuitBreaker(CONFIG)
    breaker.cool_down(0.0, 4.0)
    assert breaker.state(1.0) == "cooling" and not breaker.allow(1.0)
    assert breaker.unavailable(1.0) == "is rate limited by the upstream (429) for another 3.0 s"
    assert breaker.retry_in(1.0) == pytest.approx(3.0)
    assert breaker.state(4.0) == "closed" and breaker.allow(4.0)
    assert breaker.ejections == 0


def test_cool_down_keeps_the_later_deadline_and_caps_it() -> None:
    breaker = CircuitBreaker(BreakerConfig(max_retry_after_s=60.0))
    breaker.cool_down(0.0, 30.0)
    breaker.cool_down(1.0, 5.0)
    assert breaker.retry_in(1.0) == pytest.approx(29.0)
    breaker.cool_down(1.0, 86_400.0)
    assert breaker.retry_in(1.0) == pytest.approx(60.0)
    breaker.cool_down(1.0, -3.0)
    breaker.cool_down(1.0, 0.0)
    assert breaker.retry_in(1.0) == pytest.approx(60.0)


def test_cooling_hides_half_open_until_it_ends() -> None:
    breaker = failing(3)
    breaker.cool_down(5.0, 10.0)
    assert breaker.state(12.0) == "cooling" and not breaker.allow(12.0)
    assert breaker.state(15.0) == "half_open" and breaker.allow(15.0)


def test_state_does_not_reserve_probes() -> None:
    breaker = failing(3)
    for _ in range(5):
        assert breaker.state(10.0) == "half_open" and breaker.unavailable(10.0) is None
    assert breaker.allow(10.0)


def test_registry_creates_breakers_lazily_and_reports_states() -> None:
    registry = BreakerRegistry(CONFIG)
    assert registry.allow("a", 0.0) and registry.state("a", 0.0) == "closed"
    assert registry.unavailable("a", 0.0) is None and registry.retry_in("a", 0.0) == 0.0
    assert registry.states(0.0) == {}
    for _ in range(3):
        registry.record("a", 0.0, ok=False)
    registry.record("b", 0.0, ok=True)
    registry.cool_down("c", 0.0, 5.0)
    assert registry.states(1.0) == {"a": "open", "b": "closed", "c": "cooling"}
    assert not registry.allow("a", 1.0)
    assert sorted(registry.names()) == ["a", "b", "c"]


def test_registry_exclusions_watch_only_troubled_breakers() -> None:
    registry = BreakerRegistry(CONFIG)
    assert registry.exclusions(0.0) == {}
    for _ in range(3):
        registry.record("a", 0.0, ok=False)
    registry.cool_down("c", 0.0, 5.0)
    assert set(registry.exclusions(1.0)) == {"a", "c"}
    assert set(registry.exclusions(6.0)) == {"a"}  # c recovered and is forgotten
    assert registry.exclusions(10.0) == {}  # a is half-open with a free probe slot
    assert registry.allow("a", 10.0)
    assert set(registry.exclusions(10.0)) == {"a"}  # its probe is in flight
    registry.record("a", 11.0, ok=True)
    assert registry.exclusions(11.0) == {}
    registry.release("a", 11.0)
    registry.release("unknown", 11.0)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        BreakerConfig(consecutive_failures=0)
    with pytest.raises(ValueError):
        BreakerConfig(error_rate=0.0)
    with pytest.raises(ValueError):
        BreakerConfig(base_cooldown_s=60.0, max_cooldown_s=30.0)
    with pytest.raises(ValueError):
        BreakerConfig(window_s=0.0)
