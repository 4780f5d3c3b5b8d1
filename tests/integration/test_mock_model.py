"""The built-in mock model through the real gateway, with the official openai SDK."""

from __future__ import annotations

import base64
import struct

import pytest

from tests.conftest import GatewayFactory
from tests.servers import Gateway

MOCK_SECTIONS = {
    "providers": {"mock": {"kind": "mock", "chunk_delay_ms": 1}},
    "models": {
        "mock": {"deployments": [{"provider": "mock", "model": "mock"}]},
        "mock-embedding": {"deployments": [{"provider": "mock", "model": "mock-embedding"}]},
    },
}


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: GatewayFactory) -> Gateway:
    return module_gateway_factory(**MOCK_SECTIONS)


def test_chat_is_deterministic_and_counts_usage(gateway: Gateway) -> None:
    client = gateway.openai()
    first = client.chat.completions.create(model="mock", messages=[{"role": "user", "content": "Hello there"}])
    second = client.chat.completions.create(model="mock", messages=[{"role": "user", "content": "Hello there"}])
    assert first.choices[0].message.content == second.choices[0].message.content
    assert "Hello there" in (first.choices[0].message.content or "")
    assert first.usage is not None and first.usage.prompt_tokens > 0 and first.usage.completion_tokens > 0


def test_stream_token_by_token_with_usage(gateway: Gateway) -> None:
    client = gateway.openai()
    stream = client.chat.completions.create(
        model="mock",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.endswith("one two three")
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 5
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    whole = client.chat.completions.create(model="mock", messages=[{"role": "user", "content": "one two three"}])
    assert whole.choices[0].message.content == text


def test_models_list_names_the_mock(gateway: Gateway) -> None:
    models = {m.id: m for m in gateway.openai().models.list()}
    assert models["mock"].owned_by == "switchyard-mock"
    assert gateway.openai().models.retrieve("mock").id == "mock"


def test_mock_tools_json_stop_and_max_tokens(gateway: Gateway) -> None:
    client = gateway.openai()
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ]
    reply = client.chat.completions.create(
        model="mock", messages=[{"role": "user", "content": "weather?"}], tools=tools
    )
    call = reply.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather" and call.function.arguments == '{"city":"mock"}'
    assert reply.choices[0].finish_reason == "tool_calls"
    json_reply = client.chat.completions.create(
        model="mock", messages=[{"role": "user", "content": "x"}], response_format={"type": "json_object"}
    )
    assert json_reply.choices[0].message.content == '{"mock":true,"echo":"x"}'
    cut = client.chat.completions.create(model="mock", messages=[{"role": "user", "content": "a b c"}], max_tokens=2)
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 2  # type: ignore[union-attr]
    stopped = client.chat.completions.create(
        model="mock", messages=[{"role": "user", "content": "a b c"}], stop=["model"]
    )
    assert stopped.choices[0].message.content == "This is Switchyard's mock "
    multi = client.chat.completions.create(model="mock", messages=[{"role": "user", "content": "hi"}], n=3)
    assert [c.index for c in multi.choices] == [0, 1, 2]


def test_mock_embeddings_float_and_base64_agree(gateway: Gateway) -> None:
    client = gateway.openai()
    floats = client.embeddings.create(model="mock-embedding", input=["alpha", "beta"], encoding_format="float")
    assert len(floats.data) == 2 and len(floats.data[0].embedding) == 256
    raw = (
        gateway.http()
        .post(
            "/v1/embeddings",
            headers={"Authorization": "Bearer sk-test-tenant-key"},
            json={"model": "mock-embedding", "input": "alpha", "encoding_format": "base64"},
        )
        .json()
    )
    decoded = struct.unpack("<256f", base64.b64decode(raw["data"][0]["embedding"]))
    assert decoded == pytest.approx(floats.data[0].embedding, abs=1e-6)
    sdk_default = client.embeddings.create(model="mock-embedding", input="alpha")  # the SDK asks for base64
    assert sdk_default.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)


def test_legacy_completions(gateway: Gateway) -> None:
    client = gateway.openai()
    done = client.completions.create(model="mock", prompt="say something", max_tokens=50)
    assert done.choices[0].text.strip() == "say something"
    streamed = "".join(
        c.choices[0].text for c in client.completions.create(model="mock", prompt="abc", stream=True) if c.choices
    )
    assert streamed.strip() == "abc"
