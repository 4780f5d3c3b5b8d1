"""Budgets that hold: reservations under 500 concurrent requests, soft-threshold alerts, budget status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import redis

from gateway.admission_rules import reserved_key, spend_key
from policies.budgets import period_window
from providers.base import Endpoint
from providers.usage_estimate import estimate_prompt_tokens
from tests.conftest import GatewayFactory
from tests.integration.ledger_support import counter, fire, unique, wait_events
from tests.servers import ADMIN_KEY
from tests.webhook_server import WebhookServer

PRICE = {"input": 100.0, "output": 100.0}  # 100 micro-USD a token: easy sums
MICRO_PER_TOKEN = 100
MAX_TOKENS = 5
BODY = {"model": "m", "messages": [{"role": "user", "content": "spend"}], "max_tokens": MAX_TOKENS}


def estimate_micro() -> int:
    return (estimate_prompt_tokens(Endpoint.CHAT, BODY) + MAX_TOKENS) * MICRO_PER_TOKEN


def mock_sections(tenant: str, key: str, budget: dict[str, Any], **ledger: Any) -> dict[str, Any]:
    return {
        "auth": {"admin_key": ADMIN_KEY, "keys": [{"key": key, "tenant": tenant, "team": "t1", "name": "bk"}]},
        "providers": {"mock": {"kind": "mock", "chunk_delay_ms": 0}},
        "models": {"m": {"deployments": [{"provider": "mock", "model": "mock", "price": PRICE}]}},
        "tenants": {tenant: {"budget": budget}},
        "ledger": ledger,
    }


def test_500_concurrent_requests_never_spend_past_the_budget(
    gateway_factory: GatewayFactory, store: redis.Redis
) -> None:
    tenant, key = unique("budget"), "sk-budget-concurrency"
    budget_micro = 100 * estimate_micro()
    gateway = gateway_factory(**mock_sections(tenant, key, {"usd": budget_micro / 1e6, "period": "month"}))
    results = asyncio.run(fire(gateway.url, key, BODY, 500))
    statuses = [status for status, _ in results]
    assert set(statuses) <= {200, 429}
    refused = [body for status, body in results if status == 429]
    assert refused and all(b["error"]["code"] == "budget_exceeded" for b in refused)
    served = statuses.count(200)
    assert served >= 100  # the estimate is an upper bound: at least the 100 it covers get through
    found = wait_events(store, tenant, served)
    assert len(found) == served and {e["status"] for e in found} == {200}
    window = period_window("month", time.time())
    spent = counter(store, spend_key(tenant, "tenant", window.id))
    assert spent == sum(e["cost_micro_usd"] for e in found)
    assert spent <= budget_micro
    assert counter(store, reserved_key(tenant, "tenant", window.id)) == 0  # every reservation released
    # The next request cannot be covered any more.
    with pytest.raises(openai.RateLimitError) as refused_error:
        gateway.openai(key=key).chat.completions.create(**BODY)  # type: ignore[call-overload]
    assert refused_error.value.code == "budget_exceeded"
    assert (
        "Retry-After" in refused_error.value.response.headers or "retry-after" in refused_error.value.response.headers
    )


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


def test_soft_thresholds_alert_once_each(
    gateway_factory: GatewayFactory, store: redis.Redis, webhook: WebhookServer
) -> None:
    tenant, key = unique("alerts"), "sk-budget-alerts-key"
    budget_micro = 10 * estimate_micro()
    gateway = gateway_factory(
        **mock_sections(tenant, key, {"usd": budget_micro / 1e6, "period": "day", "alert_at": [30, 60]},
                        alert_webhook=webhook.url)
    )  # fmt: skip
    client = gateway.openai(key=key)
    served = 0
    for _ in range(12):
        try:
            client.chat.completions.create(**BODY)  # type: ignore[call-overload]
            served += 1
        except openai.RateLimitError:
            break
        time.sleep(0.08)  # let each settle, so the next admission sees it
    assert 6 <= served <= 12
    received = webhook.wait(2)
    assert sorted(a["threshold"] for a in received) == [30, 60]
    assert {(a["tenant"], a["scope"], a["period"]) for a in received} == {(tenant, "tenant", "day")}
    metrics = gateway.http().get("/metrics").text
    assert f'switchyard_budget_alerts_total{{scope="tenant",tenant="{tenant}",threshold="30"}} 1.0' in metrics

    status = gateway.http().get(
        "/admin/v1/budgets", params={"tenant": tenant}, headers={"authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert status.status_code == 200
    (entry,) = status.json()["data"]
    assert entry["scope"] == "tenant" and entry["period"] == "day" and entry["reserved_usd"] == 0
    assert entry["spend_usd"] == pytest.approx(
        counter(store, spend_key(tenant, "tenant", period_window("day", time.time()).id)) / 1e6
    )
    assert entry["projected_spend_usd"] >= entry["spend_usd"]
    own = gateway.http().get("/v1/budgets", headers={"authorization": f"Bearer {key}"}).json()["data"]
    assert [e["tenant"] for e in own] == [tenant]


def test_a_crashed_requests_reservation_expires(gateway_factory: GatewayFactory, store: redis.Redis) -> None:
    """A reservation whose request never settles (its gateway died) is released by later admissions."""
    tenant, key = unique("expiry"), "sk-budget-expiry-key"
    budget_micro = 3 * estimate_micro()
    gateway = gateway_factory(**mock_sections(tenant, key, {"usd": budget_micro / 1e6, "period": "month"}))
    window = period_window("month", time.time())
    held = reserved_key(tenant, "tenant", window.id)
    # What a gateway that crashed mid-request leaves behind: a reservation that expired a second ago.
    store.incrby(held, budget_micro)
    store.hset(f"sy:{{{tenant}}}:resv:held", "dead-request", f"{budget_micro}|{held}")
    store.zadd(f"sy:{{{tenant}}}:resv", {"dead-request": int((time.time() - 1) * 1000)})
    gateway.openai(key=key).chat.completions.create(**BODY)  # type: ignore[call-overload]
    assert store.hget(f"sy:{{{tenant}}}:resv:held", "dead-request") is None
    wait_events(store, tenant, 1)
    assert counter(store, held) == 0
