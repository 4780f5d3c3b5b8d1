"""Lease bookkeeping: what a lease admits, and how the next one is sized."""

from __future__ import annotations

from policies.admission_lease import LEASE_SECONDS, MAX_REQUESTS, MIN_REQUESTS, Lease, next_size, per_request


def lease(requests: int = 10, tokens: int = 1000, cost: int = 500, now: float = 100.0) -> Lease:
    return Lease("lease:x", requests, requests, tokens, cost, use_until=now + LEASE_SECONDS, expires=now + 61)


def test_take_spends_a_request_its_tokens_and_its_cost() -> None:
    held = lease()
    assert held.take(100.0, tokens=100, cost=50, hold=60)
    assert (held.requests, held.tokens, held.cost) == (9, 900, 450)


def test_take_refuses_what_the_lease_cannot_cover_and_spends_nothing() -> None:
    held = lease(requests=1, tokens=100, cost=50)
    assert not held.take(100.0, tokens=101, cost=1, hold=60)  # tokens
    assert not held.take(100.0, tokens=1, cost=51, hold=60)  # cost
    assert not held.take(100.0 + LEASE_SECONDS, tokens=1, cost=1, hold=1)  # its time is over
    assert not held.take(100.0, tokens=1, cost=1, hold=62)  # would outlive the reservation
    assert (held.requests, held.tokens, held.cost) == (1, 100, 50)
    assert held.take(100.0, tokens=100, cost=50, hold=60)
    assert not held.take(100.0, tokens=0, cost=0, hold=0)  # no request left


def test_a_lease_used_up_in_time_doubles_the_next() -> None:
    held = lease(requests=16)
    for _ in range(16):
        assert held.take(100.2, tokens=1, cost=1, hold=1)
    assert held.exhausted_early(100.5)
    assert next_size(held, 100.5) == 32
    big = lease(requests=MAX_REQUESTS)
    big.requests = 0
    assert next_size(big, 100.5) == MAX_REQUESTS


def test_a_lease_that_ran_out_of_time_sizes_the_next_to_twice_its_use() -> None:
    held = lease(requests=100)
    for _ in range(30):
        held.take(100.0, tokens=1, cost=1, hold=1)
    assert next_size(held, 101.5) == 60
    idle = lease(requests=100)
    assert next_size(idle, 101.5) == MIN_REQUESTS
    assert next_size(None, 0.0) == 2 * MIN_REQUESTS


def test_per_request_leaves_a_margin_over_the_estimate() -> None:
    assert per_request(0) == 0
    assert per_request(100) == 151
