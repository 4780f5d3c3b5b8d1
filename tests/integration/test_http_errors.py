"""Client errors: OpenAI's error JSON with the status the SDK maps to its exception types."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import GatewayFactory, upstream_provider
from tests.fakes.openai_upstream import FakeOpenAI
from tests.servers import TENANT_KEY, Gateway

USER = [{"role": "user", "content": "hi"}]
AUTH = {"Authorization": f"Bearer {TENANT_KEY}"}


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: GatewayFactory, upstream: FakeOpenAI) -> Gateway:
    return module_gateway_factory(
        server={"max_body_bytes": "4KiB"},
        providers={"fake": upstream_provider(upstream)},
        models={
            "chat": {"deployments": [{"provider": "fake", "model": "gpt-fake"}]},
            "bad-request": {
                "deployments": [
                    {"provider": "fake", "model": "gpt-fake+status-400"},
                    {"provider": "fake", "model": "gpt-fake"},
                ]
            },
        },
    )


def assert_openai_error(response: object, status: int) -> dict:
    assert response.status_code == status  # type: ignore[attr-defined]
    body = response.json()["error"]  # type: ignore[attr-defined]
    assert set(body) >= {"message", "type", "param", "code"}
    assert "Traceback" not in body["message"]
    return body


def test_missing_and_bad_keys_are_401(gateway: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError):
        gateway.openai(key="sk-not-a-real-key").chat.completions.create(model="chat", messages=USER)
    body = assert_openai_error(
        gateway.http().post("/v1/chat/completions", json={"model": "chat", "messages": USER}), 401
    )
    assert body["code"] == "missing_api_key"
    with pytest.raises(openai.AuthenticationError):
        gateway.openai(key="sk-not-a-real-key").models.list()


def test_unknown_model_is_404(gateway: Gateway) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        gateway.openai().chat.completions.create(model="gpt-nonexistent", messages=USER)
    assert info.value.code == "model_not_found"


def test_malformed_json_is_400(gateway: Gateway) -> None:
    body = assert_openai_error(
        gateway.http().post(
            "/v1/chat/completions", headers={**AUTH, "Content-Type": "application/json"}, content=b"{oops"
        ),
        400,
    )
    assert body["code"] == "invalid_json"


def test_invalid_field_is_400_naming_it(gateway: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        gateway.openai().chat.completions.create(model="chat", messages=[{"role": "wizard", "content": "x"}])
    assert info.value.param == "messages[0].role"
    with pytest.raises(openai.BadRequestError) as info:
        gateway.openai().chat.completions.create(model="chat", messages=USER, temperature=7)
    assert info.value.param == "temperature"
    with pytest.raises(openai.BadRequestError) as info:
        gateway.openai().embeddings.create(model="chat", input=[])
    assert info.value.param == "input"


def test_body_too_large_is_413(gateway: Gateway) -> None:
    big = [{"role": "user", "content": "x" * 10_000}]
    body = assert_openai_error(
        gateway.http().post("/v1/chat/completions", headers=AUTH, json={"model": "chat", "messages": big}), 413
    )
    assert body["code"] == "request_too_large"

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(10):
            yield b" " * 1000

    assert_openai_error(gateway.http().post("/v1/chat/completions", headers=AUTH, content=chunks()), 413)


def test_unknown_route_and_method(gateway: Gateway) -> None:
    assert_openai_error(gateway.http().get("/v1/nothing-here", headers=AUTH), 404)
    response = gateway.http().get("/v1/chat/completions", headers=AUTH)
    assert response.status_code == 405 and "error" in response.json()


def test_upstream_400_is_passed_through_and_not_retried(gateway: Gateway, upstream: FakeOpenAI) -> None:
    upstream.clear()
    with pytest.raises(openai.BadRequestError) as info:
        gateway.openai().chat.completions.create(model="bad-request", messages=USER)
    assert "fake upstream error 400" in info.value.message
    assert len(upstream.requests) == 1


def test_bad_input_records_no_usage(gateway: Gateway, redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    before = client.xlen("sy:{acme}:usage")
    for _ in range(3):
        gateway.http().post("/v1/chat/completions", headers=AUTH, content=b"{oops")
        gateway.http().post("/v1/chat/completions", headers=AUTH, json={"model": "nope", "messages": USER})
    gateway.openai().chat.completions.create(model="chat", messages=USER)  # one real request, to sync on
    import time

    deadline = time.monotonic() + 5
    while client.xlen("sy:{acme}:usage") < before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.xlen("sy:{acme}:usage") == before + 1
    client.close()
