"""Every openai SDK feature the issue names, through the gateway to a fake OpenAI-compatible upstream."""

from __future__ import annotations

import base64
import struct

import openai
import pytest

from tests.conftest import GatewayFactory, chat_and_embeddings
from tests.fakes.openai_upstream import FakeOpenAI
from tests.servers import UPSTREAM_KEY, Gateway

USER = [{"role": "user", "content": "hello gateway"}]


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: GatewayFactory, upstream: FakeOpenAI) -> Gateway:
    return module_gateway_factory(**chat_and_embeddings(upstream))


@pytest.fixture
def fake(upstream: FakeOpenAI) -> FakeOpenAI:
    upstream.clear()
    return upstream


def test_chat_non_stream_with_headers(gateway: Gateway, fake: FakeOpenAI) -> None:
    raw = gateway.openai().chat.completions.with_raw_response.create(model="chat", messages=USER)
    reply = raw.parse()
    assert reply.choices[0].message.content == "fake reply to: hello gateway"
    assert reply.usage is not None and reply.usage.total_tokens > 0
    assert raw.headers["x-switchyard-deployment"] == "fake/gpt-fake"
    assert raw.headers["x-switchyard-attempts"] == "1"
    assert len(raw.headers["x-request-id"]) == 24
    sent = fake.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "gpt-fake"
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_unknown_fields_pass_through_untouched(gateway: Gateway, fake: FakeOpenAI) -> None:
    extra = {"vendor_option": {"nested": [1, 2.5, None, "x"]}, "seed": 7, "logit_bias": {"50256": -100}}
    gateway.openai().chat.completions.create(
        model="chat", messages=USER, n=2, stop=["zzz"], max_completion_tokens=9, temperature=0.2, extra_body=extra
    )
    body = fake.requests[-1].body
    for key, value in extra.items():
        assert body[key] == value
    assert (body["n"], body["stop"], body["max_completion_tokens"], body["temperature"]) == (2, ["zzz"], 9, 0.2)


def test_n_stop_max_tokens_and_response_format(gateway: Gateway, fake: FakeOpenAI) -> None:
    client = gateway.openai()
    multi = client.chat.completions.create(model="chat", messages=USER, n=3)
    assert [c.index for c in multi.choices] == [0, 1, 2]
    short = client.chat.completions.create(model="chat", messages=USER, max_tokens=2)
    assert short.choices[0].finish_reason == "length"
    stopped = client.chat.completions.create(model="chat", messages=USER, stop="gateway")
    assert stopped.choices[0].message.content == "fake reply to: hello "
    json_mode = client.chat.completions.create(model="chat", messages=USER, response_format={"type": "json_object"})
    assert json_mode.choices[0].message.content == '{"fake": true}'
    assert fake.requests[-1].body["response_format"] == {"type": "json_object"}


def test_stream_with_usage_requested(gateway: Gateway, fake: FakeOpenAI) -> None:
    stream = gateway.openai().chat.completions.create(
        model="chat", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "fake reply to: hello gateway"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_usage_forces_it_upstream_and_strips_it(gateway: Gateway, fake: FakeOpenAI) -> None:
    with (
        gateway.http() as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            headers={"Authorization": "Bearer sk-test-tenant-key"},
            json={"model": "chat", "messages": USER, "stream": True},
        ) as response,
    ):
        text = response.read().decode()
    assert fake.requests[-1].body["stream_options"] == {"include_usage": True}
    assert '"usage"' not in text
    assert text.endswith("data: [DONE]\n\n")
    chunks = list(gateway.openai().chat.completions.create(model="chat", messages=USER, stream=True))
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)


def test_streamed_tool_calls(gateway: Gateway, fake: FakeOpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    stream = gateway.openai().chat.completions.create(model="chat", messages=USER, tools=tools, stream=True)
    name, arguments, finish = "", "", None
    for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                name += call.function.name or "" if call.function else ""
                arguments += call.function.arguments or "" if call.function else ""
            finish = choice.finish_reason or finish
    assert (name, arguments, finish) == ("get_weather", '{"city": "Paris"}', "tool_calls")
    whole = gateway.openai().chat.completions.create(model="chat", messages=USER, tools=tools, tool_choice="auto")
    assert whole.choices[0].message.tool_calls[0].function.name == "get_weather"  # type: ignore[index]


def test_embeddings_float_and_base64(gateway: Gateway, fake: FakeOpenAI) -> None:
    client = gateway.openai()
    floats = client.embeddings.create(model="embed", input=["a", "b"], encoding_format="float")
    assert len(floats.data) == 2
    sdk_default = client.embeddings.create(model="embed", input=["a", "b"])  # the SDK asks for base64, decodes it
    assert fake.requests[-1].body["encoding_format"] == "base64"
    assert sdk_default.data[1].embedding == pytest.approx(floats.data[1].embedding, abs=1e-6)
    explicit = client.embeddings.create(model="embed", input=["a", "b"], encoding_format="base64")
    decoded = struct.unpack(f"<{len(floats.data[1].embedding)}f", base64.b64decode(explicit.data[1].embedding))  # type: ignore[arg-type]
    assert list(decoded) == pytest.approx(floats.data[1].embedding, abs=1e-6)
    raw = (
        gateway.http()
        .post(
            "/v1/embeddings",
            headers={"Authorization": "Bearer sk-test-tenant-key"},
            json={"model": "embed", "input": "a", "encoding_format": "base64"},
        )
        .json()["data"][0]["embedding"]
    )
    vector = struct.unpack(f"<{len(floats.data[0].embedding)}f", base64.b64decode(raw))
    assert list(vector) == pytest.approx(floats.data[0].embedding, abs=1e-6)


def test_models_list_and_retrieve(gateway: Gateway) -> None:
    client = gateway.openai()
    assert {m.id for m in client.models.list()} == {"chat", "embed"}
    assert client.models.retrieve("chat").owned_by == "switchyard"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_legacy_completions(gateway: Gateway, fake: FakeOpenAI) -> None:
    client = gateway.openai()
    done = client.completions.create(model="chat", prompt="tell me", max_tokens=20)
    assert done.choices[0].text
    assert fake.requests[-1].path == "/v1/completions"
    parts = [
        c.choices[0].text for c in client.completions.create(model="chat", prompt="tell me", stream=True) if c.choices
    ]
    assert "".join(parts) == done.choices[0].text
