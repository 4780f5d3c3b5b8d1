"""Routing over real HTTP: strategies, circuit breakers, 429 cool-down, spillover on vLLM load,
tenant constraints, hedging, explain, and policy config errors."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import redis

from tests.conftest import GatewayFactory, upstream_provider
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.vllm_server import FakeVLLMProbes
from tests.integration.ledger_support import unique, wait_events
from tests.servers import ADMIN_KEY, ROOT, TENANT_KEY, Gateway, write_config

USER = [{"role": "user", "content": "hi"}]


def served(gateway: Gateway, model: str, key: str = TENANT_KEY, **extra: Any) -> tuple[str, str]:
    raw = gateway.openai(key=key).chat.completions.with_raw_response.create(model=model, messages=USER, **extra)
    return raw.headers["x-switchyard-deployment"], raw.headers["x-switchyard-attempts"]


def admin(gateway: Gateway) -> Any:
    return gateway.http(headers={"authorization": f"Bearer {ADMIN_KEY}"})


def dep(model: str, **extra: Any) -> dict[str, Any]:
    return {"provider": "fake", "model": model, **extra}


def test_weighted_splits_traffic_by_weight(gateway_factory: GatewayFactory, upstream: FakeOpenAI) -> None:
    gateway = gateway_factory(
        providers={"fake": upstream_provider(upstream)},
        policies={"split": {"strategy": "weighted"}},
        models={"chat": {"policy": "split", "deployments": [dep("a", weight=3), dep("b", weight=1)]}},
    )
    counts = Counter(served(gateway, "chat")[0] for _ in range(40))
    assert counts == {"fake/a": 30, "fake/b": 10}  # smooth weighted round-robin: exact over whole cycles


def test_lowest_cost_picks_the_cheapest_for_the_request(gateway_factory: GatewayFactory, upstream: FakeOpenAI) -> None:
    gateway = gateway_factory(
        providers={"fake": upstream_provider(upstream)},
        policies={"cheap": {"strategy": "lowest_cost"}},
        models={
            "chat": {
                "policy": "cheap",
                "deployments": [
                    dep("dear", price={"input": 10, "output": 30}),
                    dep("cheap-out", price={"input": 5, "output": 1}),
                    dep("cheap-in", price={"input": 1, "output": 10}),
                ],
            }
        },
    )
    # A long answer favours the cheap output price; a long prompt with a short answer the cheap input price.
    assert served(gateway, "chat", max_tokens=4000)[0] == "fake/cheap-out"
    long_prompt = [{"role": "user", "content": "word " * 3000}]
    raw = gateway.openai().chat.completions.with_raw_response.create(model="chat", messages=long_prompt, max_tokens=1)
    assert raw.headers["x-switchyard-deployment"] == "fake/cheap-in"


def test_breaker_opens_skips_and_recovers_through_a_probe(
    gateway_factory: GatewayFactory, fresh_upstream: FakeOpenAI
) -> None:
    gateway = gateway_factory(
        providers={"fake": upstream_provider(fresh_upstream)},
        # The cooldown outlasts the requests made while the circuit is open, even on a busy host.
        routing={"circuit_breaker": {"consecutive_failures": 3, "cooldown": "3s", "max_cooldown": "3s"}},
        models={"chat": {"deployments": [dep("a+status-503"), dep("b")]}},
    )
    for _ in range(3):
        assert served(gateway, "chat") == ("fake/b", "2")
    deployments = {d["deployment"]: d for d in admin(gateway).get("/admin/v1/deployments").json()["data"]}
    assert deployments["fake/a+status-503"]["circuit"] == "open"
    before = sum(1 for r in fresh_upstream.requests if r.body.get("model") == "a+status-503")
    for _ in range(5):  # while open, the failing deployment is not even tried
        assert served(gateway, "chat") == ("fake/b", "1")
    assert sum(1 for r in fresh_upstream.requests if r.body.get("model") == "a+status-503") == before
    assert (
        'switchyard_circuit_state{deployment="fake/a+status-503",state="open"} 1.0'
        in admin(gateway).get("/metrics").text
    )
    time.sleep(3.2)
    assert served(gateway, "chat") == ("fake/b", "2")  # the half-open probe went to a, failed, and re-opened it
    deployments = {d["deployment"]: d for d in admin(gateway).get("/admin/v1/deployments").json()["data"]}
    assert deployments["fake/a+status-503"]["circuit"] == "open"


def test_a_probe_that_succeeds_closes_the_circuit(gateway_factory: GatewayFactory, fresh_upstream: FakeOpenAI) -> None:
    gateway = gateway_factory(
        providers={"fake": upstream_provider(fresh_upstream)},
        # The cooldown outlasts the request made while the circuit is open, even on a busy host.
        routing={"circuit_breaker": {"consecutive_failures": 2, "cooldown": "2s", "max_cooldown": "2s"}},
        models={"chat": {"deployments": [dep("a"), dep("b")]}},
    )
    for _ in range(2):  # the next request to reach the upstream fails: a's attempt, then b serves
        fresh_upstream.fail_next(1, status=500)
        assert served(gateway, "chat") == ("fake/b", "2")
    assert served(gateway, "chat") == ("fake/b", "1")  # open: a is skipped
    time.sleep(2.2)
    assert served(gateway, "chat") == ("fake/a", "1")  # the probe succeeded
    assert served(gateway, "chat") == ("fake/a", "1")  # and the circuit is closed


def test_429_with_retry_after_cools_the_deployment_down(
    gateway_factory: GatewayFactory, fresh_upstream: FakeOpenAI
) -> None:
    gateway = gateway_factory(
        providers={"fake": upstream_provider(fresh_upstream)},
        models={"chat": {"deployments": [dep("limited+status-429"), dep("spare")]}},
    )
    assert served(gateway, "chat") == ("fake/spare", "2")
    first = len(fresh_upstream.requests)
    assert served(gateway, "chat") == ("fake/spare", "1")  # cooling down: not tried again at once
    assert len(fresh_upstream.requests) == first + 1
    state = {d["deployment"]: d["circuit"] for d in admin(gateway).get("/admin/v1/deployments").json()["data"]}
    assert state["fake/limited+status-429"] == "cooling"


def test_client_errors_do_not_fail_over(gateway_factory: GatewayFactory, upstream: FakeOpenAI) -> None:
    gateway = gateway_factory(
        providers={"fake": upstream_provider(upstream)},
        models={"chat": {"deployments": [dep("bad+status-400"), dep("good")]}},
    )
    with pytest.raises(openai.BadRequestError):
        served(gateway, "chat")


@pytest.fixture
def probes() -> Iterator[FakeVLLMProbes]:
    with FakeVLLMProbes() as server:
        yield server


def metrics_text(waiting: float, kv: float) -> str:
    return (
        f'vllm:num_requests_running{{model_name="m"}} 4\nvllm:num_requests_waiting{{model_name="m"}} {waiting}\n'
        f'vllm:kv_cache_usage_perc{{model_name="m"}} {kv}\n'
    )


def test_spillover_shifts_to_hosted_under_gpu_load_and_back(
    gateway_factory: GatewayFactory, upstream: FakeOpenAI, probes: FakeVLLMProbes
) -> None:
    probes.metrics_text = metrics_text(0, 0.2)
    gateway = gateway_factory(
        providers={
            "gpu": {
                "kind": "vllm",
                "base_url": upstream.base_url,
                "api_key": "sk-upstream",
                "health_url": f"{probes.url}/health",
                "metrics_url": f"{probes.url}/metrics",
                "scrape_interval": "100ms",
            },
            "hosted": upstream_provider(upstream),
        },
        policies={"local-first": {"strategy": "spillover", "spill_when": {"queue_waiting": 8, "kv_cache_usage": 0.9}}},
        models={
            "chat": {
                "policy": "local-first",
                "deployments": [{"provider": "hosted", "model": "gpt"}, {"provider": "gpu", "model": "llama"}],
            }
        },
    )

    def settle(expected: str) -> bool:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if served(gateway, "chat")[0] == expected:
                return True
            time.sleep(0.05)
        return False

    assert settle("gpu/llama"), "local first while the GPU is idle, though listed second"
    probes.metrics_text = metrics_text(12, 0.5)  # queue over the threshold: spill
    assert settle("hosted/gpt")
    probes.metrics_text = metrics_text(6, 0.5)  # under the threshold but above the resume level: stay hosted
    time.sleep(0.4)
    assert {served(gateway, "chat")[0] for _ in range(10)} == {"hosted/gpt"}
    probes.metrics_text = metrics_text(2, 0.3)  # below the resume level (half): back to the GPU
    assert settle("gpu/llama")
    explained = admin(gateway).post("/admin/v1/route/explain", json={"model": "chat", "prompt_tokens": 10}).json()
    gpu = next(c for c in explained["candidates"] if c["deployment"] == "gpu/llama")
    assert gpu["queue_waiting"] == 2 and explained["strategy"] == "spillover"


def test_tenant_constraints_local_only_and_price_ceiling(gateway_factory: GatewayFactory, upstream: FakeOpenAI) -> None:
    secret, strict = unique("secret"), "sk-local-only-tenant"
    frugal, frugal_key = unique("frugal"), "sk-price-ceiling-tenant"
    gateway = gateway_factory(
        auth={
            "admin_key": ADMIN_KEY,
            "keys": [
                {"key": TENANT_KEY, "tenant": "acme"},
                {"key": strict, "tenant": secret},
                {"key": frugal_key, "tenant": frugal},
            ],
        },
        providers={"fake": upstream_provider(upstream), "mock": {"kind": "mock", "chunk_delay_ms": 0}},
        models={
            "chat": {
                "deployments": [
                    dep("hosted", price={"input": 100, "output": 100}),
                    {"provider": "mock", "model": "mock"},
                ]
            },
            "hosted-only": {"deployments": [dep("hosted")]},
        },
        tenants={
            secret: {"routing": {"local_only": True}},
            frugal: {"routing": {"max_price_usd": 0.001}},
        },
    )
    assert served(gateway, "chat") == ("fake/hosted", "1")
    assert served(gateway, "chat", key=strict) == ("mock/mock", "1")  # never leaves own deployments
    with pytest.raises(openai.PermissionDeniedError) as denied:
        served(gateway, "hosted-only", key=strict)
    assert "local-only" in denied.value.message
    assert served(gateway, "chat", key=frugal_key, max_tokens=100) == ("mock/mock", "1")  # hosted would cost 0.01+


def test_hedge_wins_over_a_slow_first_byte_and_both_are_billed(
    gateway_factory: GatewayFactory, upstream: FakeOpenAI, redis_url: str
) -> None:
    tenant, key = unique("hedge"), "sk-hedging-tenant-key"
    gateway = gateway_factory(
        auth={"admin_key": ADMIN_KEY, "keys": [{"key": key, "tenant": tenant}]},
        providers={"fake": upstream_provider(upstream)},
        policies={"hedged": {"hedging": {"enabled": True, "default_delay": "200ms", "min_delay": "100ms"}}},
        models={
            "chat": {
                "policy": "hedged",
                "deployments": [
                    dep("slow+delay-first-3000", price={"input": 1, "output": 1}),
                    dep("quick", price={"input": 1, "output": 1}),
                ],
            }
        },
    )
    started = time.monotonic()
    raw = gateway.openai(key=key).chat.completions.with_raw_response.create(model="chat", messages=USER, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text and time.monotonic() - started < 2.5
    assert raw.headers["x-switchyard-deployment"] == "fake/quick" and raw.headers["x-switchyard-attempts"] == "2"
    store = redis.Redis.from_url(redis_url)
    found = wait_events(store, tenant, 2)
    store.close()
    by_error = {e["error"]: e for e in found}
    assert by_error[None]["deployment"] == "fake/quick" and by_error[None]["status"] == 200
    loser = by_error["hedge_cancelled"]
    assert loser["deployment"] == "fake/slow+delay-first-3000" and loser["estimated"] is True
    assert loser["prompt_tokens"] > 0 and loser["cost_micro_usd"] > 0
    assert "switchyard_hedges_total" in admin(gateway).get("/metrics").text


def test_explain_lists_every_candidate_with_reasons(gateway_factory: GatewayFactory, upstream: FakeOpenAI) -> None:
    gateway = gateway_factory(
        providers={"fake": upstream_provider(upstream), "mock": {"kind": "mock"}},
        models={
            "chat": {
                "deployments": [
                    dep("small", capabilities={"context_window": 1000}),
                    dep("big", capabilities={"context_window": 100000}),
                    {"provider": "mock", "model": "mock", "capabilities": {"tools": False}},
                ]
            }
        },
    )
    answer = admin(gateway).post(
        "/admin/v1/route/explain", json={"model": "chat", "prompt_tokens": 5000, "tools": True}
    )
    assert answer.status_code == 200
    data = answer.json()
    by_name = {c["deployment"]: c for c in data["candidates"]}
    assert data["order"] == ["fake/big"] and by_name["fake/big"]["rank"] == 0
    assert by_name["fake/small"]["eligible"] is False and "context window" in by_name["fake/small"]["excluded_because"]
    assert "tools" in by_name["mock/mock"]["excluded_because"]
    assert admin(gateway).post("/admin/v1/route/explain", json={"model": "nope"}).status_code == 404
    assert admin(gateway).post("/admin/v1/route/explain", json={"model": "chat", "colour": 1}).status_code == 400
    assert gateway.http().post("/admin/v1/route/explain", json={"model": "chat"}).status_code == 401
    cli = subprocess.run(
        [sys.executable, "-m", "gateway", "route", "explain", "--model", "chat", "--prompt-tokens", "5000", "--tools"],
        cwd=ROOT,
        env={
            "SWITCHYARD_URL": gateway.url,
            "SWITCHYARD_ADMIN_KEY": ADMIN_KEY,
            "PATH": "/usr/bin:/bin",
            "COLUMNS": "200",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert "fake/big" in cli.stdout and "context window" in cli.stdout


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({"policies": {"p": {"strategy": "fastest"}}}, "policies.p.strategy"),
        ({"policies": {"p": {"strategy": "slo_cost"}}}, "strategy slo_cost needs 'slo'"),
        ({"tenants": {"t": {"routing": {"policy": "nope"}}}}, "tenants.t.routing.policy: unknown policy 'nope'"),
        ({"tenants": {"t": {"routing": {"deny": ["opnai"]}}}}, "tenants.t.routing.deny[0]: unknown deployment"),
        (
            {"policies": {"p": {"strategy": "spillover", "spill_when": {"kv_cache_usage": 2}}}},
            "policies.p.spill_when.kv_cache_usage",
        ),
    ],
)
def test_policy_config_errors_name_their_path(tmp_path: Any, sections: dict[str, Any], expected: str) -> None:
    config = {
        "providers": {"mock": {"kind": "mock"}},
        "models": {"chat": {"deployments": [{"provider": "mock", "model": "mock"}]}},
        **sections,
    }
    path = tmp_path / "bad.yaml"
    write_config(path, config)
    check = subprocess.run(
        [sys.executable, "-m", "gateway", "config", "check", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 1 and expected in check.stderr, check.stderr


def test_circuit_openings_and_sustained_failovers_call_the_webhook(
    gateway_factory: GatewayFactory, upstream: FakeOpenAI
) -> None:
    from tests.webhook_server import WebhookServer

    with WebhookServer() as webhook:
        gateway = gateway_factory(
            providers={"fake": upstream_provider(upstream)},
            routing={
                "circuit_breaker": {"consecutive_failures": 3},
                "alerts": {"failover_rate": 0.5, "failover_window": "60s", "failover_min_requests": 3},
            },
            ledger={"alert_webhook": webhook.url},
            models={"chat": {"deployments": [dep("a+status-503"), dep("b")]}},
        )
        for _ in range(4):
            served(gateway, "chat")
        received = webhook.wait(2)
    kinds = Counter(a["type"] for a in received)
    assert kinds == {"circuit_open": 1, "failover_rate": 1}, received
    opened = next(a for a in received if a["type"] == "circuit_open")
    assert opened["deployment"] == "fake/a+status-503"
    rate = next(a for a in received if a["type"] == "failover_rate")
    assert rate["model"] == "chat" and rate["failovers"] >= 2
    assert 'switchyard_alerts_total{type="circuit_open"} 1.0' in admin(gateway).get("/metrics").text
