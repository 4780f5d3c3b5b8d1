"""Priority failover across deployments, timeouts and the overall deadline, streams included."""

from __future__ import annotations

import time

import openai
import pytest

from tests.conftest import GatewayFactory, upstream_provider
from tests.fakes.openai_upstream import FakeOpenAI
from tests.servers import Gateway, free_port

USER = [{"role": "user", "content": "hello"}]


def dep(model: str) -> dict[str, str]:
    return {"provider": "fake", "model": model}


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: GatewayFactory, upstream: FakeOpenAI) -> Gateway:
    return module_gateway_factory(
        providers={
            "fake": upstream_provider(upstream),
            "dead": {"kind": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1", "api_key": "sk-upstream"},
        },
        policies={
            "quick": {"max_attempts": 3, "timeout": {"connect": "1s", "first_token": "600ms", "total": "5s"}},
            "single": {"max_attempts": 1},
            "short-deadline": {"max_attempts": 3, "timeout": {"first_token": "5s"}, "deadline": "1s"},
        },
        models={
            "after-500": {"policy": "quick", "deployments": [dep("a+status-500"), dep("b")]},
            "after-429": {"policy": "quick", "deployments": [dep("a+status-429"), dep("b")]},
            "after-hang": {"policy": "quick", "deployments": [dep("a+hang"), dep("b")]},
            "after-hang-body": {"policy": "quick", "deployments": [dep("a+hang-body"), dep("b")]},
            "after-refused": {"policy": "quick", "deployments": [{"provider": "dead", "model": "x"}, dep("b")]},
            "after-malformed": {"policy": "quick", "deployments": [dep("a+malformed"), dep("b")]},
            "all-500": {"policy": "quick", "deployments": [dep("a+status-500"), dep("b+status-503")]},
            "all-429": {"policy": "quick", "deployments": [dep("a+status-429"), dep("b+status-429")]},
            "all-hang": {"policy": "quick", "deployments": [dep("a+hang"), dep("b+hang")]},
            "single": {"policy": "single", "deployments": [dep("a+status-500"), dep("b")]},
            "deadline": {"policy": "short-deadline", "deployments": [dep("a+hang"), dep("b+hang"), dep("c")]},
            "drop-mid-stream": {"policy": "quick", "deployments": [dep("a+drop-after-3+words-20"), dep("b")]},
            "no-done": {"policy": "quick", "deployments": [dep("a+no-done"), dep("b")]},
        },
    )


@pytest.mark.parametrize(
    "model",
    ["after-500", "after-429", "after-hang", "after-hang-body", "after-refused", "after-malformed"],
)
@pytest.mark.parametrize("stream", [False, True])
def test_fails_over_to_next_deployment(gateway: Gateway, upstream: FakeOpenAI, model: str, stream: bool) -> None:
    client = gateway.openai()
    if stream:
        raw = client.chat.completions.with_raw_response.create(model=model, messages=USER, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    else:
        raw = client.chat.completions.with_raw_response.create(model=model, messages=USER)
        text = raw.parse().choices[0].message.content or ""
    assert text == "fake reply to: hello"
    assert raw.headers["x-switchyard-deployment"] == "fake/b"
    assert raw.headers["x-switchyard-attempts"] == "2"


def test_all_failed_keeps_upstream_messages(gateway: Gateway) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        gateway.openai().chat.completions.create(model="all-500", messages=USER)
    assert info.value.status_code == 502
    assert "fake upstream error 500" in info.value.message and "fake upstream error 503" in info.value.message
    body = info.value.body
    assert isinstance(body, dict) and [a["deployment"] for a in body["attempts"]] == [
        "fake/a+status-500",
        "fake/b+status-503",
    ]
    assert "sk-upstream" not in str(body)


def test_all_rate_limited_is_429(gateway: Gateway) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        gateway.openai().chat.completions.create(model="all-429", messages=USER)
    assert info.value.response.headers["retry-after"] == "1"


def test_all_timed_out_is_504(gateway: Gateway) -> None:
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as info:
        gateway.openai().chat.completions.create(model="all-hang", messages=USER)
    assert info.value.status_code == 504
    assert 1.0 <= time.monotonic() - started < 5, "two 600 ms first-token timeouts"


def test_max_attempts_one_does_not_fail_over(gateway: Gateway, upstream: FakeOpenAI) -> None:
    upstream.clear()
    with pytest.raises(openai.InternalServerError):
        gateway.openai().chat.completions.create(model="single", messages=USER)
    assert [r.body["model"] for r in upstream.requests] == ["a+status-500"]


def test_overall_deadline_bounds_all_attempts(gateway: Gateway, upstream: FakeOpenAI) -> None:
    upstream.clear()
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as info:
        gateway.openai().chat.completions.create(model="deadline", messages=USER)
    assert info.value.status_code == 504
    assert time.monotonic() - started < 3
    assert "c" not in [r.body["model"] for r in upstream.requests]


def test_stream_broken_after_first_byte_is_an_sdk_error_not_a_failover(gateway: Gateway, upstream: FakeOpenAI) -> None:
    upstream.clear()
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in gateway.openai().chat.completions.create(model="drop-mid-stream", messages=USER, stream=True):
            received.append(chunk)
    assert received, "the first events reached the client before the upstream broke"
    assert "upstream stream broken" in info.value.message
    assert [r.body["model"] for r in upstream.requests] == ["a+drop-after-3+words-20"]


def test_stream_ending_without_finish_or_done_is_an_sdk_error(gateway: Gateway) -> None:
    with pytest.raises(openai.APIError) as info:
        list(gateway.openai().chat.completions.create(model="no-done", messages=USER, stream=True))
    assert "ended before completion" in info.value.message
