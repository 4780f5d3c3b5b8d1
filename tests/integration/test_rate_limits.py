"""Rate limits (rpm, tpm) enforced across two gateway processes sharing one Redis, OpenAI's headers."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest

from tests.conftest import GatewayFactory
from tests.integration.ledger_support import unique
from tests.servers import ADMIN_KEY, Gateway

USER = [{"role": "user", "content": "hi"}]


def sections(tenant: str, key: str, tenant_config: dict[str, Any], **key_extra: Any) -> dict[str, Any]:
    return {
        "auth": {"admin_key": ADMIN_KEY, "keys": [{"key": key, "tenant": tenant, "name": "rl", **key_extra}]},
        "providers": {"mock": {"kind": "mock", "chunk_delay_ms": 0}},
        "models": {
            "m": {"deployments": [{"provider": "mock", "model": "mock"}]},
            "other": {"deployments": [{"provider": "mock", "model": "mock"}]},
        },
        "tenants": {tenant: tenant_config},
    }


def test_rpm_holds_across_two_gateways(gateway_factory: GatewayFactory) -> None:
    tenant, key = unique("rpm"), "sk-rate-limit-rpm"
    config = sections(tenant, key, {"rate_limit": {"rpm": 5}})
    first, second = gateway_factory(**config), gateway_factory(**config)
    remaining = []
    for gateway in (first, first, first, second, second):
        raw = gateway.openai(key=key).chat.completions.with_raw_response.create(model="m", messages=USER)
        assert raw.headers["x-ratelimit-limit-requests"] == "5"
        remaining.append(int(raw.headers["x-ratelimit-remaining-requests"]))
    assert remaining == [4, 3, 2, 1, 0]
    for gateway in (first, second):
        with pytest.raises(openai.RateLimitError) as refused:
            gateway.openai(key=key).chat.completions.create(model="m", messages=USER)
        assert refused.value.code == "rate_limit_exceeded"
        headers = refused.value.response.headers
        assert 1 <= int(headers["retry-after"]) <= 13 and int(headers["retry-after-ms"]) > 0
    # GCRA refills one request every 12 s; a refused request does not use up capacity.


def test_tpm_counts_prompt_and_output_and_refuses_what_can_never_fit(gateway_factory: GatewayFactory) -> None:
    tenant, key = unique("tpm"), "sk-rate-limit-tpm"
    gateway = gateway_factory(**sections(tenant, key, {"rate_limit": {"tpm": 200}}))
    client = gateway.openai(key=key)
    raw = client.chat.completions.with_raw_response.create(model="m", messages=USER, max_tokens=50)
    assert raw.headers["x-ratelimit-limit-tokens"] == "200"
    assert 100 <= int(raw.headers["x-ratelimit-remaining-tokens"]) < 150
    with pytest.raises(openai.RateLimitError) as too_large:
        client.chat.completions.create(model="m", messages=USER, max_tokens=500)
    assert too_large.value.code == "tokens_exceeded"
    assert "retry-after" not in too_large.value.response.headers  # waiting would not help


def test_tpm_is_corrected_by_the_real_usage(gateway_factory: GatewayFactory) -> None:
    """The estimate reserves max_tokens; the ledger gives back what the answer did not use."""
    tenant, key = unique("tpmfix"), "sk-rate-limit-tpm-fix"
    gateway = gateway_factory(**sections(tenant, key, {"rate_limit": {"tpm": 1000}}))
    client = gateway.openai(key=key)
    first = client.chat.completions.with_raw_response.create(model="m", messages=USER, max_tokens=400)
    after_first = int(first.headers["x-ratelimit-remaining-tokens"])
    assert after_first < 600
    time.sleep(0.5)  # the ledger settles and refunds the unused ~390 output tokens
    second = client.chat.completions.with_raw_response.create(model="m", messages=USER, max_tokens=10)
    assert int(second.headers["x-ratelimit-remaining-tokens"]) > after_first + 300


def test_model_and_key_limits_apply_separately(gateway_factory: GatewayFactory) -> None:
    tenant, key = unique("scoped"), "sk-rate-limit-scoped"
    gateway: Gateway = gateway_factory(
        **sections(tenant, key, {"model_limits": {"m": {"rpm": 2}}}, rate_limit={"rpm": 4})
    )
    client = gateway.openai(key=key)
    client.chat.completions.create(model="m", messages=USER)
    client.chat.completions.create(model="m", messages=USER)
    with pytest.raises(openai.RateLimitError) as model_limited:
        client.chat.completions.create(model="m", messages=USER)
    assert "model:m" in model_limited.value.message
    client.chat.completions.create(model="other", messages=USER)  # another model still has room...
    client.chat.completions.create(model="other", messages=USER)
    with pytest.raises(openai.RateLimitError) as key_limited:  # ...until the key's own limit
        client.chat.completions.create(model="other", messages=USER)
    assert "key:rl" in key_limited.value.message
