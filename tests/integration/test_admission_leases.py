"""Admission leases: a busy key is admitted from leases (few Redis calls), and budgets and limits hold.

Each test counts Redis admission calls from the gateway's own histogram, checks what the leases left in
Redis once they are returned (reservations, rate-limit arrival times), and that the budget held.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis

from gateway.admission_rules import limit_key, reservation_keys, reserved_key, spend_key
from policies.budgets import period_window
from providers.base import Endpoint
from providers.usage_estimate import estimate_prompt_tokens
from tests.conftest import GatewayFactory
from tests.integration.ledger_support import counter, fire, unique, wait_events
from tests.servers import ADMIN_KEY, Gateway

MAX_TOKENS = 5
BODY = {"model": "m", "messages": [{"role": "user", "content": "lease me"}], "max_tokens": MAX_TOKENS}
PRICE = {"input": 100.0, "output": 100.0}  # 100 micro-USD a token


def sections(tenant: str, key: str, tenant_config: dict[str, Any], **ledger: Any) -> dict[str, Any]:
    return {
        "auth": {"admin_key": ADMIN_KEY, "keys": [{"key": key, "tenant": tenant, "name": "lease"}]},
        "providers": {"mock": {"kind": "mock", "chunk_delay_ms": 0}},
        "models": {"m": {"deployments": [{"provider": "mock", "model": "mock", "price": PRICE}]}},
        "tenants": {tenant: tenant_config},
        "ledger": ledger,
    }


def metric(gateway: Gateway, name: str) -> float:
    text = gateway.http().get("/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def redis_admissions(gateway: Gateway) -> float:
    return metric(gateway, "switchyard_admission_duration_seconds_count")


def wait_returned(store: redis.Redis, tenant: str, timeout: float = 10.0) -> None:
    """Until no lease of the tenant holds a reservation (leases are returned once their second is over)."""
    _, held = reservation_keys(tenant)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and store.hlen(held):
        time.sleep(0.1)
    assert store.hlen(held) == 0, store.hgetall(held)


def test_a_busy_key_is_admitted_from_leases_and_what_they_did_not_use_goes_back(
    gateway_factory: GatewayFactory, store: redis.Redis
) -> None:
    tenant, key = unique("lease"), "sk-lease-busy"
    rpm = 1200  # 50 ms per request; a lease may hold 1% of it: 12 requests
    config = sections(tenant, key, {"budget": {"usd": 1000, "period": "month"}, "rate_limit": {"rpm": rpm}})
    config["auth"]["keys"].append({"key": "sk-lease-warm", "tenant": "warm-up", "name": "warm"})
    gateway = gateway_factory(**config)
    # A first request of another tenant loads what the gateway loads once (the tokenizer, the scripts),
    # so the timed requests below are admitted as they arrive.
    assert asyncio.run(fire(gateway.url, "sk-lease-warm", BODY, 1))[0][0] == 200
    before = redis_admissions(gateway)
    results = asyncio.run(fire(gateway.url, key, BODY, 60, concurrency=4))
    assert [status for status, _ in results] == [200] * 60
    calls = redis_admissions(gateway) - before
    assert metric(gateway, "switchyard_admission_leases_total") >= 3
    assert calls <= 20, f"{calls} Redis admission calls for 60 requests"
    # Requests admitted from a lease carry OpenAI's rate-limit headers all the same.
    raw = gateway.openai(key=key).chat.completions.with_raw_response.create(**BODY)  # type: ignore[call-overload]
    assert raw.headers["x-ratelimit-limit-requests"] == str(rpm)
    assert 0 <= int(raw.headers["x-ratelimit-remaining-requests"]) < rpm
    assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    found = wait_events(store, tenant, 61)
    wait_returned(store, tenant)
    returned_ms = time.time() * 1000
    window = period_window("month", time.time())
    assert counter(store, reserved_key(tenant, "tenant", window.id)) == 0
    assert counter(store, spend_key(tenant, "tenant", window.id)) == sum(e["cost_micro_usd"] for e in found)
    # The 61 requests cost 61 x 50 ms of arrival time from the first admission, which happened while the
    # first request was in flight; falling behind the rate (a slow host) moves it to the last admission
    # plus its cost. Permits a lease held unused were given back, else it would be up to 12 x 50 ms later.
    interval = 60_000 / rpm
    first_start = min(e["ts"] * 1000 - e["latency_ms"] for e in found)
    first_end, last_end = min(e["ts"] * 1000 for e in found), max(e["ts"] * 1000 for e in found)
    low = first_start + 61 * interval
    high = max(first_end + 61 * interval, last_end + interval)
    tat = float(store.get(limit_key(tenant, "tenant", "rpm")) or 0)
    if tat == 0:  # the return came once the arrival time had passed: the key is deleted, nothing held
        assert returned_ms >= low, (returned_ms - first_start, low - first_start)
    else:
        assert low - 5 <= tat <= high + 100, (tat - first_start, low - first_start, high - first_start)


def test_leases_never_spend_past_the_budget(gateway_factory: GatewayFactory, store: redis.Redis) -> None:
    tenant, key = unique("lease-budget"), "sk-lease-budget"
    estimate = (estimate_prompt_tokens(Endpoint.CHAT, BODY) + MAX_TOKENS) * 100
    budget_micro = 1500 * estimate  # 1% of it covers 10 leased requests (each set aside at 1.5x its estimate)
    gateway = gateway_factory(**sections(tenant, key, {"budget": {"usd": budget_micro / 1e6, "period": "month"}}))
    results = asyncio.run(fire(gateway.url, key, BODY, 1800, concurrency=48))
    statuses = [status for status, _ in results]
    assert set(statuses) <= {200, 429}
    refused = [body for status, body in results if status == 429]
    assert refused and all(b["error"]["code"] == "budget_exceeded" for b in refused)
    assert metric(gateway, "switchyard_admission_leases_total") >= 10
    served = statuses.count(200)
    assert served >= 1500  # the estimate is an upper bound: at least what it covers gets through
    found = wait_events(store, tenant, served)
    assert len(found) == served
    wait_returned(store, tenant)
    window = period_window("month", time.time())
    spent = counter(store, spend_key(tenant, "tenant", window.id))
    assert spent == sum(e["cost_micro_usd"] for e in found)
    assert spent <= budget_micro
    assert counter(store, reserved_key(tenant, "tenant", window.id)) == 0


def test_leases_can_be_turned_off(gateway_factory: GatewayFactory, store: redis.Redis) -> None:
    tenant, key = unique("no-lease"), "sk-lease-off"
    gateway = gateway_factory(
        **sections(tenant, key, {"budget": {"usd": 1000, "period": "month"}}, admission_leases=False)
    )
    before = redis_admissions(gateway)
    results = asyncio.run(fire(gateway.url, key, BODY, 30, concurrency=4))
    assert [status for status, _ in results] == [200] * 30
    assert redis_admissions(gateway) - before == 30
    assert metric(gateway, "switchyard_admission_leases_total") == 0
    wait_events(store, tenant, 30)
    window = period_window("month", time.time())
    assert counter(store, reserved_key(tenant, "tenant", window.id)) == 0
