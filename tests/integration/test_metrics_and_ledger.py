"""Prometheus figures after real requests agree with the ledger: counts, histogram buckets, token and
cost sums, budget utilisation, and the OpenTelemetry GenAI metric names."""

from __future__ import annotations

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import GatewayFactory
from tests.integration.ledger_support import unique, wait_events
from tests.servers import ADMIN_KEY


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def total(found: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in found.items() if n == name and all(dict(ls).get(k) == x for k, x in labels.items()))


def test_metrics_equal_the_ledger(gateway_factory: GatewayFactory, redis_url: str) -> None:
    tenant, key = unique("metered"), "sk-metrics-ledger-key"
    gateway = gateway_factory(
        auth={"admin_key": ADMIN_KEY, "keys": [{"key": key, "tenant": tenant}]},
        providers={"mock": {"kind": "mock", "chunk_delay_ms": 0}},
        models={"m": {"deployments": [{"provider": "mock", "model": "mock", "price": {"input": 3, "output": 15}}]}},
        tenants={tenant: {"budget": {"usd": 1, "period": "month"}}},
    )
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {key}"}, timeout=20) as http:
        for i in range(6):
            body = {"model": "m", "messages": [{"role": "user", "content": "count " * (i + 1)}], "stream": i % 2 == 0}
            assert http.post("/v1/chat/completions", json=body).status_code == 200
    store = redis.Redis.from_url(redis_url)
    events = wait_events(store, tenant, 6)
    store.close()
    text = gateway.http().get("/metrics", headers={"authorization": f"Bearer {ADMIN_KEY}"}).text
    found = samples(text)
    assert total(found, "switchyard_requests_total", model="m", status_class="2xx") == 6
    assert total(found, "switchyard_request_duration_seconds_count", model="m") == 6
    assert total(found, "switchyard_request_duration_seconds_bucket", model="m", le="+Inf") == 6
    assert total(found, "switchyard_time_to_first_token_seconds_count", model="m") == 3  # the streams
    prompt = sum(e["prompt_tokens"] for e in events)
    completion = sum(e["completion_tokens"] for e in events)
    assert total(found, "switchyard_tokens_total", model="m", type="prompt") == prompt
    assert total(found, "switchyard_tokens_total", model="m", type="completion") == completion
    cost = sum(e["cost_micro_usd"] for e in events) / 1e6
    assert total(found, "switchyard_cost_usd_total", tenant=tenant, model="m") == pytest.approx(cost, abs=1e-9)
    # OpenTelemetry GenAI conventions
    assert total(found, "gen_ai_client_token_usage_sum", gen_ai_token_type="input", gen_ai_request_model="m") == prompt
    assert (
        total(found, "gen_ai_client_token_usage_sum", gen_ai_token_type="output", gen_ai_request_model="m")
        == completion
    )
    assert total(found, "gen_ai_client_operation_duration_seconds_count", gen_ai_operation_name="chat") == 6
    assert total(found, "gen_ai_server_time_to_first_token_seconds_count", gen_ai_provider_name="mock") == 3

    assert total(found, "switchyard_time_per_output_token_seconds_count", model="m") == 3
    utilisation = total(found, "switchyard_budget_utilization_ratio", tenant=tenant, scope="tenant", period="month")
    assert utilisation == pytest.approx(cost / 1.0, rel=1e-6) and utilisation > 0
