"""A vLLM deployment whose /health fails goes last; its scraped load shows in metrics and admin."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import GatewayFactory, upstream_provider
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.vllm_server import FakeVLLMProbes
from tests.servers import ADMIN_KEY, Gateway, free_port

USER = [{"role": "user", "content": "hi"}]


@pytest.fixture
def probes() -> Iterator[FakeVLLMProbes]:
    with FakeVLLMProbes() as server:
        yield server


def served_by(gateway: Gateway) -> tuple[str, str]:
    raw = gateway.openai().chat.completions.with_raw_response.create(model="chat", messages=USER)
    return raw.headers["x-switchyard-deployment"], raw.headers["x-switchyard-attempts"]


def wait_until(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_unhealthy_vllm_is_tried_last_and_recovers(
    gateway_factory: GatewayFactory, upstream: FakeOpenAI, probes: FakeVLLMProbes
) -> None:
    probes.health_status = 503
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
        models={
            "chat": {"deployments": [{"provider": "gpu", "model": "llama"}, {"provider": "hosted", "model": "gpt"}]}
        },
    )
    assert served_by(gateway) == ("hosted/gpt", "1"), "unhealthy server skipped without a failed attempt"
    admin = gateway.http(headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    server = next(d for d in admin.get("/admin/v1/deployments").json()["data"] if d["provider"] == "gpu")["server"]
    assert server["healthy"] is False and "503" in server["error"]

    probes.health_status = 200
    assert wait_until(lambda: served_by(gateway)[0] == "gpu/llama")
    text = admin.get("/metrics").text
    values = {
        (s.name, s.labels.get("provider")): s.value for f in text_string_to_metric_families(text) for s in f.samples
    }
    assert values[("switchyard_backend_healthy", "gpu")] == 1
    assert values[("switchyard_backend_requests_running", "gpu")] == 12
    assert values[("switchyard_backend_requests_waiting", "gpu")] == 4
    assert values[("switchyard_backend_kv_cache_usage_ratio", "gpu")] == 0.61


def test_unreachable_vllm_never_breaks_the_gateway(gateway_factory: GatewayFactory, upstream: FakeOpenAI) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    gateway = gateway_factory(
        providers={
            "gpu": {"kind": "vllm", "base_url": f"{dead}/v1", "scrape_interval": "100ms"},
            "hosted": upstream_provider(upstream),
        },
        models={
            "chat": {"deployments": [{"provider": "gpu", "model": "llama"}, {"provider": "hosted", "model": "gpt"}]}
        },
    )
    for _ in range(3):
        assert served_by(gateway) == ("hosted/gpt", "1")
    admin = gateway.http(headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    server = admin.get("/admin/v1/deployments").json()["data"][0]["server"]
    assert server["healthy"] is False and server["error"].startswith("unreachable")
    assert admin.get("/readyz").status_code == 200
