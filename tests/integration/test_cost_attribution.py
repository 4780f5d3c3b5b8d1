"""Every request priced and attributed: deployment and catalog prices, tags, estimated usage."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
import redis

from policies.pricing import cost_micro_usd, usd_to_micro
from tests.conftest import GatewayFactory, upstream_provider
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.ledger_support import events, wait_events
from tests.servers import ADMIN_KEY, Gateway

TENANT = "attr-tenant"
KEY = "sk-attribution-key-1"
PRICE = {"input": 0.15, "output": 0.6}


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: GatewayFactory, upstream: FakeOpenAI) -> Gateway:
    return module_gateway_factory(
        auth={
            "admin_key": ADMIN_KEY,
            "keys": [{"key": KEY, "tenant": TENANT, "team": "ml", "project": "p1", "name": "attr"}],
        },
        providers={"mock": {"kind": "mock", "chunk_delay_ms": 1}, "fake": upstream_provider(upstream)},
        models={
            "priced-mock": {
                "deployments": [
                    {
                        "provider": "mock",
                        "model": "mock",
                        "price": [
                            {"input": 1.0, "output": 2.0, "effective": "2020-01-01"},
                            {"input": 3.0, "output": 4.0, "effective": "2099-01-01"},
                        ],
                    }
                ]
            },
            "catalog-priced": {"deployments": [{"provider": "fake", "model": "gpt-4o-mini"}]},
            "no-usage": {"deployments": [{"provider": "fake", "model": "gpt-4o-mini+no-usage", "price": PRICE}]},
            "cut-stream": {
                "deployments": [{"provider": "fake", "model": "gpt-4o-mini+drop-after-4+words-30", "price": PRICE}]
            },
            "unpriced": {"deployments": [{"provider": "fake", "model": "my-own-model"}]},
        },
    )


@pytest.fixture
def store(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.delete(f"sy:{{{TENANT}}}:usage")
    yield client
    client.close()


def sdk(gateway: Gateway) -> openai.OpenAI:
    return gateway.openai(key=KEY)


def by_id(found: list[dict], request_id: str) -> dict:
    return next(e for e in found if e["request_id"] == request_id)


def test_deployment_price_in_force_rates_the_request(gateway: Gateway, store: redis.Redis) -> None:
    raw = sdk(gateway).chat.completions.with_raw_response.create(
        model="priced-mock", messages=[{"role": "user", "content": "price me"}]
    )
    usage = raw.parse().usage
    assert usage is not None
    event = by_id(wait_events(store, TENANT, 1), raw.headers["x-request-id"])
    # The 2099 price is not in force yet: the 2020 one rates it, and says so.
    assert event["price_version"] == "deployment:mock/mock@2020-01-01"
    expected = (
        usage.prompt_tokens * usd_to_micro(1.0) + usage.completion_tokens * usd_to_micro(2.0) + 500_000
    ) // 10**6
    assert event["cost_micro_usd"] == expected > 0
    assert event["list_cost_micro_usd"] == event["cost_micro_usd"]  # the mock has no catalog price
    assert (event["tenant"], event["team"], event["project"], event["key_id"]) == (TENANT, "ml", "p1", "attr")
    assert event["estimated"] is False and event["provider"] == "mock" and event["provider_kind"] == "mock"


def test_catalog_price_for_a_known_hosted_model(gateway: Gateway, store: redis.Redis) -> None:
    from gateway.pricing import catalog_schedule

    raw = sdk(gateway).chat.completions.with_raw_response.create(
        model="catalog-priced", messages=[{"role": "user", "content": "hello catalog"}]
    )
    usage = raw.parse().usage
    assert usage is not None
    event = by_id(wait_events(store, TENANT, 1), raw.headers["x-request-id"])
    schedule = catalog_schedule("gpt-4o-mini")
    assert schedule is not None
    price = schedule.at(event["ts"])
    assert price is not None and event["price_version"] == price.version
    assert event["cost_micro_usd"] == cost_micro_usd(
        price, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens
    )
    assert event["upstream_model"] == "gpt-4o-mini" and event["deployment"] == "fake/gpt-4o-mini"


def test_unknown_price_costs_nothing_and_says_so(gateway: Gateway, store: redis.Redis) -> None:
    raw = sdk(gateway).chat.completions.with_raw_response.create(
        model="unpriced", messages=[{"role": "user", "content": "x"}]
    )
    event = by_id(wait_events(store, TENANT, 1), raw.headers["x-request-id"])
    assert event["prompt_tokens"] > 0 and event["cost_micro_usd"] == 0 and event["price_version"] is None


@pytest.mark.parametrize("stream", [False, True])
def test_missing_upstream_usage_is_counted_with_tiktoken(gateway: Gateway, store: redis.Redis, stream: bool) -> None:
    client = sdk(gateway)
    if stream:
        raw = client.chat.completions.with_raw_response.create(
            model="no-usage", messages=[{"role": "user", "content": "count these words"}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    else:
        raw = client.chat.completions.with_raw_response.create(
            model="no-usage", messages=[{"role": "user", "content": "count these words"}]
        )
        text = raw.parse().choices[0].message.content or ""
    event = by_id(wait_events(store, TENANT, 1), raw.headers["x-request-id"])
    from providers.tokens import count_text

    assert event["estimated"] is True
    assert event["completion_tokens"] == count_text(text) > 0
    assert event["prompt_tokens"] > 0 and event["cost_micro_usd"] > 0


def test_cut_stream_is_billed_for_what_was_streamed(gateway: Gateway, store: redis.Redis) -> None:
    raw = sdk(gateway).chat.completions.with_raw_response.create(
        model="cut-stream", messages=[{"role": "user", "content": "long answer"}], stream=True
    )
    received = ""
    with pytest.raises(openai.APIError):
        for chunk in raw.parse():
            if chunk.choices:
                received += chunk.choices[0].delta.content or ""
    event = by_id(wait_events(store, TENANT, 1), raw.headers["x-request-id"])
    from providers.tokens import count_text

    assert event["status"] == 502 and event["estimated"] is True
    assert event["completion_tokens"] == count_text(received) > 0


def test_tags_are_attributed_and_bad_tags_are_refused(gateway: Gateway, store: redis.Redis) -> None:
    client = sdk(gateway)
    raw = client.chat.completions.with_raw_response.create(
        model="priced-mock",
        messages=[{"role": "user", "content": "tagged"}],
        extra_headers={"x-switchyard-tags": "feature=search, env=prod"},
    )
    event = by_id(wait_events(store, TENANT, 1), raw.headers["x-request-id"])
    assert event["tags"] == {"feature": "search", "env": "prod"}
    before = len(events(store, TENANT))
    http = httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {KEY}"}, timeout=10)
    gateway.clients.append(http)
    for bad in [
        "noequals",
        "1bad=x",
        "a=b,a=c",
        "a=has space",
        ",".join(f"t{i}=v" for i in range(11)),
        "k=" + "v" * 129,
    ]:
        response = http.post(
            "/v1/chat/completions",
            json={"model": "priced-mock", "messages": [{"role": "user", "content": "x"}]},
            headers={"x-switchyard-tags": bad},
        )
        assert response.status_code == 400, bad
        assert response.json()["error"]["param"] == "x-switchyard-tags"
    import time

    time.sleep(0.3)
    assert len(events(store, TENANT)) == before  # refused requests leave no usage event
