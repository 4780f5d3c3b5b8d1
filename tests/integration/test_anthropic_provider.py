"""`kind: anthropic` through the real gateway, with the official openai SDK, against a fake Anthropic API
that replays recorded Messages responses and streams."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from tests.conftest import GatewayFactory, upstream_provider
from tests.fakes.anthropic_upstream import API_KEY, VERSION, FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.servers import TENANT_KEY, Gateway

USER = [{"role": "user", "content": "hello"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
        },
    }
]


def claude(model: str) -> dict[str, object]:
    return {"deployments": [{"provider": "claude", "model": model}]}


@pytest.fixture(scope="module")
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: GatewayFactory, fake_anthropic: FakeAnthropic, upstream: FakeOpenAI) -> Gateway:
    return module_gateway_factory(
        providers={
            "claude": {"kind": "anthropic", "base_url": fake_anthropic.base_url, "api_key": API_KEY},
            "wrong-key": {"kind": "anthropic", "base_url": fake_anthropic.base_url, "api_key": "sk-ant-wrong-key"},
            "openai": upstream_provider(upstream),
        },
        policies={"two": {"max_attempts": 2}},
        models={
            "text": claude("claude-text"),
            "tools": claude("claude-tool_use"),
            "short": claude("claude-max_tokens"),
            "cut": claude("claude-text+truncate"),
            "malformed": claude("claude-text+malformed"),
            "error-mid": claude("claude-text+error-after-4"),
            "overloaded": claude("claude-text+status-529"),
            "rate-limited": claude("claude-text+status-429"),
            "failover": {
                "policy": "two",
                "deployments": [
                    {"provider": "claude", "model": "claude-text+status-529"},
                    {"provider": "openai", "model": "gpt-fake"},
                ],
            },
            "failover-500": {
                "policy": "two",
                "deployments": [
                    {"provider": "claude", "model": "claude-text+status-500"},
                    {"provider": "claude", "model": "claude-max_tokens"},
                ],
            },
            "bad-key": {"deployments": [{"provider": "wrong-key", "model": "claude-text"}]},
        },
    )


@pytest.fixture
def fake(fake_anthropic: FakeAnthropic) -> FakeAnthropic:
    fake_anthropic.clear()
    return fake_anthropic


def test_non_stream_text_with_cached_usage(gateway: Gateway, fake: FakeAnthropic) -> None:
    raw = gateway.openai().chat.completions.with_raw_response.create(
        model="text",
        messages=[{"role": "system", "content": "Be brief."}, *USER],
        max_tokens=64,
        stop=["END"],
        user="u-1",
    )
    reply = raw.parse()
    assert reply.id == "chatcmpl-msg_01XFDUDYJgAACzvnptvVoYEL"
    assert reply.choices[0].message.content == "Hello! How can I help you today?"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (12 + 1024 + 256, 12)
    assert reply.usage.prompt_tokens_details is not None and reply.usage.prompt_tokens_details.cached_tokens == 1024
    assert raw.headers["x-switchyard-deployment"] == "claude/claude-text"
    sent = fake.last
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == API_KEY and sent.headers["anthropic-version"] == VERSION
    assert "authorization" not in sent.headers
    assert sent.body == {
        "model": "claude-text",
        "max_tokens": 64,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
    }


def test_stream_with_include_usage(gateway: Gateway, fake: FakeAnthropic) -> None:
    stream = gateway.openai().chat.completions.create(
        model="text", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello! How can I help you today? ☕"
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert all(c.usage is None for c in chunks[:-1])
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (2173, 15, 2188)
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 2048
    assert fake.last.body["stream"] is True and fake.last.body["max_tokens"] == 4096


def test_stream_without_include_usage_has_no_usage_chunk(gateway: Gateway, fake: FakeAnthropic) -> None:
    with (
        gateway.http() as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {TENANT_KEY}"},
            json={"model": "text", "messages": USER, "stream": True},
        ) as response,
    ):
        text = response.read().decode()
    assert response.status_code == 200
    assert '"usage"' not in text and '"Hello"' in text
    assert text.endswith("data: [DONE]\n\n")


def test_streamed_tool_calls_reassemble(gateway: Gateway, fake: FakeAnthropic) -> None:
    stream = gateway.openai().chat.completions.create(
        model="tools",
        messages=USER,
        tools=TOOLS,
        tool_choice="required",
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += call.id or ""
                entry["name"] += (call.function.name or "") if call.function else ""
                entry["arguments"] += (call.function.arguments or "") if call.function else ""
            finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    assert [(c["id"], c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("toolu_01NRLabsLyVHZPKxbKvkfSMn", "get_weather", {"location": "Paris"}),
        ("toolu_01QzUfKPfd8u6DwQ5JN4cRDe", "get_time", {"timezone": "Europe/Paris"}),
    ]
    sent = fake.last.body
    assert sent["tools"] == [{"name": "get_weather", "input_schema": TOOLS[0]["function"]["parameters"]}]
    assert sent["tool_choice"] == {"type": "any"}


def test_tool_round_trip_non_stream(gateway: Gateway, fake: FakeAnthropic) -> None:
    client = gateway.openai()
    first = client.chat.completions.create(model="tools", messages=USER, tools=TOOLS)
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls" and message.tool_calls
    call = message.tool_calls[0]
    assert call.function.name == "get_weather"
    history = [
        *USER,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "15°C"},
    ]
    client.chat.completions.create(model="text", messages=history, tools=TOOLS)
    turns = fake.last.body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"][-1] == {
        "type": "tool_use",
        "id": call.id,
        "name": "get_weather",
        "input": {"location": "San Francisco, CA", "unit": "celsius"},
    }
    assert turns[2]["content"] == [{"type": "tool_result", "tool_use_id": call.id, "content": "15°C"}]


def test_max_tokens_finish_reason_and_legacy_completions(gateway: Gateway, fake: FakeAnthropic) -> None:
    client = gateway.openai()
    reply = client.chat.completions.create(model="short", messages=USER, max_completion_tokens=8)
    assert reply.choices[0].finish_reason == "length"
    legacy = client.completions.create(model="short", prompt="Tell me a story", max_tokens=8)
    assert legacy.object == "text_completion" and legacy.choices[0].text == "Once upon a time, in a quiet"
    assert fake.last.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Tell me a story"}]}]
    streamed = list(client.completions.create(model="text", prompt="hi", stream=True))
    assert "".join(c.choices[0].text for c in streamed if c.choices) == "Hello! How can I help you today? ☕"


@pytest.mark.parametrize("stream", [False, True])
def test_failover_from_anthropic_529(gateway: Gateway, fake: FakeAnthropic, stream: bool) -> None:
    client = gateway.openai()
    if stream:
        raw = client.chat.completions.with_raw_response.create(model="failover", messages=USER, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    else:
        raw = client.chat.completions.with_raw_response.create(model="failover", messages=USER)
        text = raw.parse().choices[0].message.content or ""
    assert text == "fake reply to: hello"
    assert raw.headers["x-switchyard-deployment"] == "openai/gpt-fake"
    assert raw.headers["x-switchyard-attempts"] == "2"
    assert fake.last.body["model"] == "claude-text+status-529"


def test_failover_from_500_to_another_anthropic_deployment(gateway: Gateway, fake: FakeAnthropic) -> None:
    reply = gateway.openai().chat.completions.create(model="failover-500", messages=USER)
    assert reply.choices[0].message.content == "Once upon a time, in a quiet"
    assert [r.body["model"] for r in fake.requests] == ["claude-text+status-500", "claude-max_tokens"]


def test_overloaded_alone_keeps_anthropics_message(gateway: Gateway) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        gateway.openai().chat.completions.create(model="overloaded", messages=USER)
    assert info.value.status_code == 502
    assert "Overloaded" in info.value.message


def test_rate_limit_is_a_429_with_retry_after(gateway: Gateway) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        gateway.openai().chat.completions.create(model="rate-limited", messages=USER)
    assert "exceed the rate limit" in info.value.message
    assert info.value.response.headers["retry-after"] == "1"


def test_mid_stream_error_event_raises_api_error(gateway: Gateway) -> None:
    stream = gateway.openai().chat.completions.create(model="error-mid", messages=USER, stream=True)
    received = ""
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received += chunk.choices[0].delta.content or "" if chunk.choices else ""
    assert received == "Hello"  # what arrived before the error still reached the client
    assert "Overloaded" in info.value.message


def test_truncated_stream_raises_api_error(gateway: Gateway) -> None:
    stream = gateway.openai().chat.completions.create(model="cut", messages=USER, stream=True)
    with pytest.raises(openai.APIError) as info:
        list(stream)
    assert "message_stop" in info.value.message


def test_truncated_body_is_a_clean_502(gateway: Gateway) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        gateway.openai().chat.completions.create(model="cut", messages=USER)
    assert info.value.status_code == 502


@pytest.mark.parametrize("stream", [False, True])
def test_malformed_json_is_a_clean_502(gateway: Gateway, stream: bool) -> None:
    response = gateway.http().post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {TENANT_KEY}"},
        json={"model": "malformed", "messages": USER, "stream": stream},
    )
    assert response.status_code == 502
    error = response.json()["error"]
    assert "not JSON" in error["message"]
    assert error["attempts"][0]["deployment"] == "claude/claude-text+malformed"


def test_wrong_upstream_key_is_a_502_with_anthropics_message(gateway: Gateway) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        gateway.openai().chat.completions.create(model="bad-key", messages=USER)
    assert info.value.status_code == 502 and "invalid x-api-key" in info.value.message
    assert "sk-ant-wrong-key" not in str(info.value.body)


def test_unsupported_requests_are_400s_naming_the_param(gateway: Gateway, fake: FakeAnthropic) -> None:
    client = gateway.openai()
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="text", input="x")
    assert "does not support embeddings" in info.value.message
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="text", messages=[{"role": "user", "content": [audio]}])
    assert isinstance(info.value.body, dict) and info.value.body["param"] == "messages[0].content[0]"
    assert fake.requests == []  # rejected before any upstream call
