"""One JSON line per request in the gateway's log: fields, attempts with errors, and redaction."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import GatewayFactory, upstream_provider
from tests.fakes.openai_upstream import FakeOpenAI
from tests.servers import ADMIN_KEY, TENANT_KEY, UPSTREAM_KEY, Gateway

SECRET_PROMPT = "my-very-secret-prompt-text"
DEBUG_KEY = "sk-debugging-tenant-key"


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: GatewayFactory, upstream: FakeOpenAI) -> Gateway:
    return module_gateway_factory(
        auth={
            "admin_key": ADMIN_KEY,
            "keys": [
                {"key": TENANT_KEY, "tenant": "acme", "team": "search", "name": "acme-key"},
                {"key": DEBUG_KEY, "tenant": "debugging"},
            ],
        },
        providers={"fake": upstream_provider(upstream)},
        models={
            "chat": {"deployments": [{"provider": "fake", "model": "a+status-500"}, {"provider": "fake", "model": "b"}]}
        },
        tenants={"debugging": {"log_prompts": True}},
    )


def lines(gateway: Gateway, request_id: str) -> list[dict]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [json.loads(line) for line in gateway.log().splitlines() if line.startswith("{") and request_id in line]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no log line for {request_id}")


def test_a_line_per_request_with_attempts_and_no_secrets(gateway: Gateway) -> None:
    raw = gateway.openai().chat.completions.with_raw_response.create(
        model="chat",
        messages=[{"role": "user", "content": SECRET_PROMPT}],
        extra_headers={"x-switchyard-tags": "feature=logs"},
    )
    (line,) = lines(gateway, raw.headers["x-request-id"])
    assert line["event"] == "request" and line["status"] == 200 and line["tenant"] == "acme"
    assert line["key_id"] == "acme-key" and line["deployment"] == "fake/b" and line["attempts"] == 2
    assert [e["deployment"] for e in line["attempt_errors"]] == ["fake/a+status-500"]
    assert line["prompt_tokens"] > 0 and line["tags"] == {"feature": "logs"} and "latency_ms" in line
    log = gateway.log()
    assert TENANT_KEY not in log and UPSTREAM_KEY not in log and ADMIN_KEY not in log
    assert SECRET_PROMPT not in log and "authorization" not in log.lower()


def test_prompts_are_logged_only_for_a_tenant_that_asks(gateway: Gateway) -> None:
    raw = gateway.openai(key=DEBUG_KEY).chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "debug this prompt"}]
    )
    (line,) = lines(gateway, raw.headers["x-request-id"])
    assert line["prompt"] == [{"role": "user", "content": "debug this prompt"}]
    assert DEBUG_KEY not in gateway.log()
