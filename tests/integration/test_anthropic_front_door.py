"""`POST /v1/messages`: the official `anthropic` SDK against the gateway, served by OpenAI-format backends."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from tests.conftest import GatewayFactory, upstream_provider
from tests.fakes.openai_upstream import FakeOpenAI
from tests.servers import TENANT_KEY, Gateway

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: GatewayFactory, upstream: FakeOpenAI) -> Gateway:
    return module_gateway_factory(
        providers={"mock": {"kind": "mock", "chunk_delay_ms": 1}, "fake": upstream_provider(upstream)},
        policies={"quick": {"max_attempts": 2, "timeout": {"first_token": "2s", "total": "5s"}}},
        models={
            "mock": {"deployments": [{"provider": "mock", "model": "mock"}]},
            "fake-chat": {"deployments": [{"provider": "fake", "model": "gpt-4o-mini"}]},
            "after-500": {
                "policy": "quick",
                "deployments": [{"provider": "fake", "model": "a+status-500"}, {"provider": "fake", "model": "b"}],
            },
            "all-500": {
                "policy": "quick",
                "deployments": [
                    {"provider": "fake", "model": "a+status-500"},
                    {"provider": "fake", "model": "b+status-503"},
                ],
            },
            "drop-mid-stream": {"deployments": [{"provider": "fake", "model": "a+drop-after-3+words-20"}]},
            "late-end": {"deployments": [{"provider": "fake", "model": "a+late-end-1500"}]},
        },
    )


def client(gateway: Gateway, key: str = TENANT_KEY) -> anthropic.Anthropic:
    made = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0, timeout=20)
    gateway.clients.append(made)
    return made


def test_message_from_the_mock(gateway: Gateway) -> None:
    message = client(gateway).messages.create(
        model="mock",
        max_tokens=200,
        system="You are terse.",
        messages=[{"role": "user", "content": "Hello there"}],
    )
    assert message.type == "message" and message.role == "assistant" and message.model == "mock"
    assert message.stop_reason == "end_turn"
    text = "".join(block.text for block in message.content if block.type == "text")
    assert "Hello there" in text
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def test_stream_matches_the_whole_message(gateway: Gateway) -> None:
    sdk = client(gateway)
    request = {"model": "mock", "max_tokens": 200, "messages": [{"role": "user", "content": "one two three"}]}
    with sdk.messages.stream(**request) as stream:  # type: ignore[arg-type]
        deltas = list(stream.text_stream)
        final = stream.get_final_message()
    whole = sdk.messages.create(**request)  # type: ignore[arg-type]
    assert len(deltas) > 3
    assert "".join(deltas) == whole.content[0].text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == whole.usage.output_tokens


@pytest.mark.parametrize("stream", [False, True])
def test_tool_use_both_ways(gateway: Gateway, stream: bool) -> None:
    sdk = client(gateway)
    request = {
        "model": "mock",
        "max_tokens": 200,
        "tools": [WEATHER_TOOL],
        "messages": [{"role": "user", "content": "weather in Paris?"}],
    }
    if stream:
        with sdk.messages.stream(**request) as events:  # type: ignore[arg-type]
            message = events.get_final_message()
    else:
        message = sdk.messages.create(**request)  # type: ignore[arg-type]
    assert message.stop_reason == "tool_use"
    call = next(block for block in message.content if block.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"city": "mock"}
    # The tool result goes back in Anthropic's format and reaches the backend as an OpenAI tool message.
    follow_up = sdk.messages.create(
        model="mock",
        max_tokens=200,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "none"},
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]},
        ],
    )
    assert follow_up.stop_reason == "end_turn"


def test_translated_request_reaches_an_openai_upstream(gateway: Gateway, fresh_upstream: FakeOpenAI) -> None:
    message = client(gateway).messages.create(
        model="fake-chat",
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief."}],
        stop_sequences=["END"],
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    )
    assert message.content and message.usage.output_tokens > 0
    sent = fresh_upstream.requests[-1].body
    assert sent["model"] == "gpt-4o-mini" and sent["max_tokens"] == 64 and sent["stop"] == ["END"]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["messages"][1]["role"] == "user"


def test_fails_over_like_any_chat_request(gateway: Gateway) -> None:
    raw = client(gateway).messages.with_raw_response.create(
        model="after-500", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-switchyard-attempts"] == "2"
    assert raw.headers["x-switchyard-deployment"] == "fake/b"
    assert raw.parse().content


def test_errors_arrive_as_anthropic_exceptions(gateway: Gateway) -> None:
    with pytest.raises(anthropic.AuthenticationError) as bad_key:
        client(gateway, key="sk-wrong").messages.create(
            model="mock", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert bad_key.value.body["type"] == "error"  # type: ignore[index]
    assert bad_key.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError):
        client(gateway).messages.create(model="nope", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.BadRequestError) as invalid:
        client(gateway).messages.create(
            model="mock",
            max_tokens=10,
            messages=[{"role": "user", "content": [{"type": "server_tool_thing"}]}],  # type: ignore[list-item]
        )
    assert "messages[0].content[0]" in str(invalid.value)
    with pytest.raises(anthropic.InternalServerError) as failed:
        client(gateway).messages.create(model="all-500", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert failed.value.status_code == 502


def test_missing_max_tokens_and_malformed_json_are_400(gateway: Gateway) -> None:
    http = httpx.Client(base_url=gateway.url, headers={"x-api-key": TENANT_KEY}, timeout=10)
    gateway.clients.append(http)
    missing = http.post("/v1/messages", json={"model": "mock", "messages": [{"role": "user", "content": "x"}]})
    assert missing.status_code == 400
    assert missing.json()["error"]["type"] == "invalid_request_error" and "max_tokens" in missing.text
    malformed = http.post("/v1/messages", content=b"{nope", headers={"content-type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["type"] == "error"


def test_broken_stream_ends_with_an_error_event(gateway: Gateway) -> None:
    with pytest.raises(anthropic.APIStatusError):
        with client(gateway).messages.stream(
            model="drop-mid-stream", max_tokens=100, messages=[{"role": "user", "content": "x"}]
        ) as stream:
            for _ in stream.text_stream:
                pass


def test_a_stream_ends_at_done_when_the_upstream_ends_its_body_late(gateway: Gateway, upstream: FakeOpenAI) -> None:
    """`message_stop` and the end of the response go out when `[DONE]` is read, not when the upstream's body
    ends (here 1.5 s later): the SDK's stream is over while the upstream's is still open."""
    assert upstream.wait_streams_closed()
    with client(gateway).messages.stream(
        model="late-end", max_tokens=100, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        still_open = upstream.open_streams
    assert text and final.stop_reason == "end_turn" and final.usage.output_tokens > 0
    assert still_open == 1
    assert upstream.wait_streams_closed()
