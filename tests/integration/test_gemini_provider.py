"""`kind: gemini` through the real gateway, with the official openai SDK, against a fake Gemini API that
replays recorded generateContent responses and streams."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator

import openai
import pytest

from tests.conftest import GatewayFactory
from tests.fakes.gemini_upstream import API_KEY, FakeGemini, fake_vector
from tests.servers import TENANT_KEY, Gateway

USER = [{"role": "user", "content": "hello"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "now",
            "description": "The current date and time",
            "parameters": {
                "type": "object",
                "properties": {"timezone": {"type": "string"}},
                "additionalProperties": False,
            },
        },
    }
]


def gemini(model: str, provider: str = "gemini") -> dict[str, object]:
    return {"deployments": [{"provider": provider, "model": model}]}


@pytest.fixture(scope="module")
def fake_gemini() -> Iterator[FakeGemini]:
    with FakeGemini() as fake:
        yield fake


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: GatewayFactory, fake_gemini: FakeGemini) -> Gateway:
    provider = {"kind": "gemini", "base_url": fake_gemini.base_url, "api_key": API_KEY}
    return module_gateway_factory(
        providers={
            "gemini": provider,
            "second": provider,
            "wrong-key": {**provider, "api_key": "AIza-wrong-key"},
        },
        policies={"two": {"max_attempts": 2}},
        models={
            "text": gemini("gemini-text"),
            "tools": gemini("gemini-function_call"),
            "safety": gemini("gemini-safety"),
            "recitation": gemini("gemini-recitation"),
            "blocked": gemini("gemini-prompt_blocked"),
            "image-text": gemini("gemini-no_content_parts"),
            "embed": gemini("gemini-embedding-001"),
            "cut": gemini("gemini-text+truncate"),
            "malformed": gemini("gemini-text+malformed"),
            "error-mid": gemini("gemini-text+error-after-2"),
            "overloaded": gemini("gemini-text+status-503"),
            "rate-limited": gemini("gemini-text+status-429"),
            "bad-key": gemini("gemini-text", "wrong-key"),
            "failover": {
                "policy": "two",
                "deployments": [
                    {"provider": "gemini", "model": "gemini-text+status-503"},
                    {"provider": "second", "model": "gemini-text"},
                ],
            },
            "failover-first-event": {
                "policy": "two",
                "deployments": [
                    {"provider": "gemini", "model": "gemini-text+error-after-0"},
                    {"provider": "second", "model": "gemini-text"},
                ],
            },
        },
    )


@pytest.fixture
def fake(fake_gemini: FakeGemini) -> FakeGemini:
    fake_gemini.clear()
    return fake_gemini


def test_non_stream_text(gateway: Gateway, fake: FakeGemini) -> None:
    raw = gateway.openai().chat.completions.with_raw_response.create(
        model="text",
        messages=[{"role": "system", "content": "Be brief."}, *USER],
        max_tokens=64,
        stop=["END"],
        temperature=0.5,
    )
    reply = raw.parse()
    assert reply.id == f"chatcmpl-{raw.headers['x-request-id']}"
    assert reply.choices[0].message.content == (
        "Google's headquarters, also known as the Googleplex, is located in **Mountain View, California**.\n"
    )
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (7, 22)
    assert raw.headers["x-switchyard-deployment"] == "gemini/gemini-text"
    sent = fake.last
    assert sent.path == "/v1beta/models/gemini-text:generateContent" and sent.query == {}
    assert sent.headers["x-goog-api-key"] == API_KEY and "authorization" not in sent.headers
    assert sent.body == {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "hello"}]}],
        "generationConfig": {"stopSequences": ["END"], "maxOutputTokens": 64, "temperature": 0.5},
    }


def test_stream_with_include_usage(gateway: Gateway, fake: FakeGemini) -> None:
    stream = gateway.openai().chat.completions.create(
        model="text", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "The capital of Wyoming is **Cheyenne**.\n"
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert all(c.usage is None for c in chunks[:-1])
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (7, 10, 17)
    assert fake.last.path == "/v1beta/models/gemini-text:streamGenerateContent" and fake.last.query == {"alt": "sse"}


def test_stream_without_include_usage_has_no_usage_chunk(gateway: Gateway, fake: FakeGemini) -> None:
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
    assert '"usage"' not in text and "Cheyenne" in text
    assert text.endswith("data: [DONE]\n\n")


def test_streamed_tool_calls_reassemble_and_round_trip(gateway: Gateway, fake: FakeGemini) -> None:
    client = gateway.openai()
    stream = client.chat.completions.create(
        model="tools", messages=USER, tools=TOOLS, tool_choice="required", stream=True
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
            assert not choice.delta.content  # the thought summaries stay out of the answer
    assert finish == "tool_calls"
    assert [(c["id"], c["name"], json.loads(c["arguments"])) for c in calls.values()] == [("call_0", "now", {})]
    sent = fake.last.body
    assert sent["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "now",
                    "description": "The current date and time",
                    "parameters": {"type": "OBJECT", "properties": {"timezone": {"type": "STRING"}}},
                }
            ]
        }
    ]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}

    first = client.chat.completions.create(model="tools", messages=USER, tools=TOOLS)
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls" and message.tool_calls
    history = [
        *USER,
        message.model_dump(exclude_none=True),  # keeps extra_content.google.thought_signature
        {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "2025-12-30T10:00:00Z"},
    ]
    client.chat.completions.create(model="text", messages=history, tools=TOOLS)
    turns = fake.last.body["contents"]
    assert [t["role"] for t in turns] == ["user", "model", "user"]
    assert turns[1]["parts"][0]["functionCall"] == {"name": "now", "args": {}}
    assert turns[1]["parts"][0]["thoughtSignature"].startswith("CtQOAVSoXO74PmYr9AFurEIJ")
    assert turns[2]["parts"] == [{"functionResponse": {"name": "now", "response": {"output": "2025-12-30T10:00:00Z"}}}]


def test_stream_whose_last_event_lacks_its_blank_line_completes(gateway: Gateway) -> None:
    chunks = list(gateway.openai().chat.completions.create(model="image-text", messages=USER, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).endswith("slightly cloudy sky.\n\n")
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


@pytest.mark.parametrize(
    ("model", "stream"), [("safety", False), ("recitation", True), ("blocked", False), ("blocked", True)]
)
def test_filtered_answers_finish_with_content_filter(gateway: Gateway, model: str, stream: bool) -> None:
    client = gateway.openai()
    if stream:
        chunks = list(client.chat.completions.create(model=model, messages=USER, stream=True))
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"
    else:
        reply = client.chat.completions.create(model=model, messages=USER)
        assert reply.choices[0].finish_reason == "content_filter"
        assert reply.choices[0].message.content == (
            "" if model == "blocked" else "Safety error incoming in 5, 4, 3, 2..."
        )


def test_embeddings_float_and_base64(gateway: Gateway, fake: FakeGemini) -> None:
    client = gateway.openai()
    floats = client.embeddings.create(model="embed", input=["a", "bb"], dimensions=4, encoding_format="float")
    assert [d.embedding for d in floats.data] == [fake_vector("a", 4), fake_vector("bb", 4)]
    assert floats.usage.prompt_tokens == 2 and floats.model == "gemini-embedding-001"
    assert fake.last.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert fake.last.body == {
        "requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": text}]}, "outputDimensionality": 4}
            for text in ("a", "bb")
        ]
    }
    sdk_default = client.embeddings.create(
        model="embed", input="bb", dimensions=4
    )  # the SDK asks for base64, decodes it
    assert sdk_default.data[0].embedding == pytest.approx(fake_vector("bb", 4), rel=1e-6)
    assert fake.last.path == "/v1beta/models/gemini-embedding-001:embedContent"
    raw = gateway.http().post(
        "/v1/embeddings",
        headers={"Authorization": f"Bearer {TENANT_KEY}"},
        json={"model": "embed", "input": ["ccc"], "encoding_format": "base64"},
    )
    vector = struct.unpack("<3072f", base64.b64decode(raw.json()["data"][0]["embedding"]))
    assert list(vector) == pytest.approx(fake_vector("ccc", 3072), rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("stream", [False, True])
def test_failover_from_a_503_to_a_second_deployment(gateway: Gateway, fake: FakeGemini, stream: bool) -> None:
    client = gateway.openai()
    if stream:
        raw = client.chat.completions.with_raw_response.create(model="failover", messages=USER, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        assert text == "The capital of Wyoming is **Cheyenne**.\n"
    else:
        raw = client.chat.completions.with_raw_response.create(model="failover", messages=USER)
        assert raw.parse().choices[0].message.content.startswith("Google's headquarters")  # type: ignore[union-attr]
    assert raw.headers["x-switchyard-deployment"] == "second/gemini-text"
    assert raw.headers["x-switchyard-attempts"] == "2"
    assert [r.path.split("/")[-1].split(":")[0] for r in fake.requests] == ["gemini-text+status-503", "gemini-text"]


def test_stream_failing_at_its_first_event_fails_over(gateway: Gateway, fake: FakeGemini) -> None:
    """The stream is primed through its first translated chunk: an error event there is still before the
    client's first byte."""
    raw = gateway.openai().chat.completions.with_raw_response.create(
        model="failover-first-event", messages=USER, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "The capital of Wyoming is **Cheyenne**.\n"
    assert (raw.headers["x-switchyard-deployment"], raw.headers["x-switchyard-attempts"]) == ("second/gemini-text", "2")


def test_overloaded_alone_keeps_googles_message(gateway: Gateway) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        gateway.openai().chat.completions.create(model="overloaded", messages=USER)
    assert info.value.status_code == 502
    assert "The model is overloaded. Please try again later." in info.value.message


def test_rate_limit_is_a_429_with_googles_retry_delay(gateway: Gateway) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        gateway.openai().chat.completions.create(model="rate-limited", messages=USER)
    assert "You exceeded your current quota" in info.value.message
    assert info.value.response.headers["retry-after"] == "47"


def test_truncated_stream_raises_api_error(gateway: Gateway) -> None:
    stream = gateway.openai().chat.completions.create(model="cut", messages=USER, stream=True)
    received = ""
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received += chunk.choices[0].delta.content or "" if chunk.choices else ""
    assert received == "The capital of Wyoming"
    assert "finishReason" in info.value.message


def test_mid_stream_error_event_raises_api_error(gateway: Gateway) -> None:
    stream = gateway.openai().chat.completions.create(model="error-mid", messages=USER, stream=True)
    received = ""
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received += chunk.choices[0].delta.content or "" if chunk.choices else ""
    assert received == "The capital of Wyoming"  # what arrived before the error still reached the client
    assert "The model is overloaded" in info.value.message


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
    assert error["attempts"][0]["deployment"] == "gemini/gemini-text+malformed"


def test_wrong_upstream_key_is_a_502_with_googles_message(gateway: Gateway) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        gateway.openai().chat.completions.create(model="bad-key", messages=USER)
    assert info.value.status_code == 502 and "API key not valid" in info.value.message
    assert "AIza-wrong-key" not in str(info.value.body)


def test_unsupported_requests_are_400s_naming_the_param(gateway: Gateway, fake: FakeGemini) -> None:
    client = gateway.openai()
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model="text", prompt="x")
    assert "does not support completions" in info.value.message
    part = {"type": "file", "file": {"file_id": "file-abc123"}}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="text", messages=[{"role": "user", "content": [part]}])  # type: ignore[list-item]
    assert isinstance(info.value.body, dict) and info.value.body["param"] == "messages[0].content[0]"
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="embed", input=[[1, 2, 3]])
    assert isinstance(info.value.body, dict) and info.value.body["param"] == "input"
    assert fake.requests == []  # rejected before any upstream call
