"""Pure translation between OpenAI and Anthropic's Messages API, against recorded wire samples."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.anthropic.request import completion_request_to_chat, request_to_anthropic
from providers.anthropic.response import anthropic_to_openai, chat_to_text_completion, usage_from_anthropic
from providers.anthropic.stream import AnthropicStreamTranslator
from providers.base import Usage
from providers.errors import InvalidRequest, UpstreamError, UpstreamProtocolError, UpstreamStatusError
from providers.sse import SSEDecoder
from tests.fakes.anthropic_upstream import check_request

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "anthropic"
MODEL = "claude-sonnet-4-20250514"
CREATED = 1_700_000_000
USER = [{"role": "user", "content": "hi"}]


def load(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def translate(**body: Any) -> dict[str, Any]:
    return request_to_anthropic({"model": "claude", "messages": USER, **body}, MODEL)


# ---------------------------------------------------------------------------------------- requests


@pytest.mark.parametrize(
    "name", ["request_conversation.json", "request_images.json", "request_tools.json", "request_json_schema.json"]
)
def test_request_fixture(name: str) -> None:
    sample = load(name)
    original = copy.deepcopy(sample["openai"])
    translated = request_to_anthropic(sample["openai"], MODEL)
    assert translated == sample["anthropic"]
    assert sample["openai"] == original  # the body is reused for the next attempt: never changed
    assert check_request(translated) is None  # and Anthropic's own rules (alternation, tool results) hold


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "f"}}, {"type": "tool", "name": "f"}),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert translate(tools=tools, tool_choice=choice)["tool_choice"] == expected


def test_parallel_tool_calls_false_without_tool_choice() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    out = translate(tools=tools, parallel_tool_calls=False)
    assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert "tool_choice" not in translate(tools=tools)


def test_defaults_and_scalar_fields() -> None:
    out = request_to_anthropic({"model": "c", "messages": USER}, MODEL, default_max_tokens=1234)
    assert out == {
        "model": MODEL,
        "max_tokens": 1234,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }
    out = translate(max_tokens=50, stop=["END", "STOP"], temperature=0.3)
    assert (out["max_tokens"], out["stop_sequences"], out["temperature"]) == (50, ["END", "STOP"], 0.3)
    assert "stream" not in translate(stream=False)


def test_json_object_mode_adds_a_system_instruction() -> None:
    out = translate(response_format={"type": "json_object"})
    assert out["system"].startswith("Respond with one valid JSON object and nothing else")
    assert "system" not in translate(response_format={"type": "text"})


def test_system_messages_anywhere_join_in_order() -> None:
    messages = [
        {"role": "developer", "content": "one"},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": [{"type": "text", "text": "two"}]},
        {"role": "assistant", "content": "hello"},
    ]
    out = request_to_anthropic({"model": "c", "messages": messages}, MODEL)
    assert out["system"] == "one\n\ntwo"
    assert [m["role"] for m in out["messages"]] == ["user", "assistant"]


def test_assistant_text_and_tool_calls_in_one_turn() -> None:
    call = {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": '{"a": [1, 2]}'}}
    messages = [*USER, {"role": "assistant", "content": "Let me look.", "tool_calls": [call]}]
    out = request_to_anthropic({"model": "c", "messages": messages}, MODEL)
    assert out["messages"][1]["content"] == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1, 2]}},
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "x"},
                            {"type": "image_url", "image_url": {"url": "data:image/svg+xml;base64,PHN2Zz4="}},
                        ],
                    }
                ]
            },
            "messages[0].content[1]",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://host/x.png"}}]}
                ]
            },
            "messages[0].content[0]",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]},
            "messages[0].content[0]",
        ),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
        (
            {
                "messages": [
                    *USER,
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{not json"}}
                        ],
                    },
                ]
            },
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            {
                "messages": [
                    *USER,
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "[1]"}}],
                    },
                ]
            },
            "messages[1].tool_calls[0].function.arguments",
        ),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
        (
            {
                "messages": [
                    {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
                    *USER,
                ]
            },
            "messages[0].content[0]",
        ),
        ({"messages": USER, "n": 2}, "n"),
        ({"messages": USER, "logprobs": True}, "logprobs"),
        ({"messages": USER, "modalities": ["text", "audio"]}, "modalities"),
        ({"messages": USER, "tool_choice": "required"}, "tool_choice"),
    ],
)
def test_unsupported_input_names_the_param(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        request_to_anthropic({"model": "c", **body}, MODEL)
    assert info.value.param == param
    assert info.value.status == 400


def test_legacy_completion_request() -> None:
    chat = completion_request_to_chat({"model": "c", "prompt": ["Say hi"], "max_tokens": 5, "stream": True})
    assert chat == {"model": "c", "max_tokens": 5, "stream": True, "messages": [{"role": "user", "content": "Say hi"}]}
    for body, param in [({"prompt": ["a", "b"]}, "prompt"), ({"prompt": "a", "echo": True}, "echo")]:
        with pytest.raises(InvalidRequest) as info:
            completion_request_to_chat({"model": "c", **body})
        assert info.value.param == param


# --------------------------------------------------------------------------------------- responses


def test_text_response() -> None:
    assert anthropic_to_openai(load("response_text.json"), model=MODEL, created=CREATED) == {
        "id": "chatcmpl-msg_01XFDUDYJgAACzvnptvVoYEL",
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you today?", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 12 + 1024 + 256,
            "completion_tokens": 12,
            "total_tokens": 12 + 1024 + 256 + 12,
            "prompt_tokens_details": {"cached_tokens": 1024},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }


def test_tool_use_response() -> None:
    out = anthropic_to_openai(load("response_tool_use.json"), model=MODEL, created=CREATED)
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "I'll check the current weather in San Francisco for you."
    [call] = choice["message"]["tool_calls"]
    assert call["id"] == "toolu_01A09q90qw90lq917835lq9"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "San Francisco, CA", "unit": "celsius"}


def test_tool_only_response_has_null_content() -> None:
    message = {**load("response_tool_use.json")}
    message["content"] = message["content"][1:]
    assert anthropic_to_openai(message, model=MODEL, created=CREATED)["choices"][0]["message"]["content"] is None


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("something_new", "stop"),
    ],
)
def test_finish_reasons(stop_reason: str, finish: str) -> None:
    message = {**load("response_max_tokens.json"), "stop_reason": stop_reason}
    assert anthropic_to_openai(message, model=MODEL, created=CREATED)["choices"][0]["finish_reason"] == finish


def test_thinking_blocks_are_left_out_but_counted() -> None:
    message = load("response_text.json")
    message["content"].insert(0, {"type": "thinking", "thinking": "hmm", "signature": "sig"})
    message["usage"]["output_tokens_details"] = {"thinking_tokens": 7}
    out = anthropic_to_openai(message, model=MODEL, created=CREATED)
    assert out["choices"][0]["message"]["content"] == "Hello! How can I help you today?"
    assert out["usage"]["completion_tokens_details"] == {"reasoning_tokens": 7}


def test_usage_from_anthropic() -> None:
    usage = {"input_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5, "output_tokens": 3}
    assert usage_from_anthropic(usage) == Usage(
        prompt_tokens=115, completion_tokens=3, cached_tokens=100, cache_write_tokens=5
    )
    assert usage_from_anthropic({"input_tokens": 4, "output_tokens": 2, "cache_read_input_tokens": None}) == Usage(4, 2)
    assert usage_from_anthropic(None) == Usage()


def test_not_a_message_is_a_protocol_error() -> None:
    with pytest.raises(UpstreamProtocolError):
        anthropic_to_openai({"type": "error", "error": {"type": "api_error"}}, model=MODEL, created=CREATED)


def test_text_completion_response() -> None:
    chat = anthropic_to_openai(load("response_max_tokens.json"), model=MODEL, created=CREATED)
    legacy = chat_to_text_completion(chat)
    assert legacy["id"] == "cmpl-msg_01Wo6G8qX1nGWLcuZW9QF1ij" and legacy["object"] == "text_completion"
    assert legacy["choices"] == [
        {"index": 0, "text": "Once upon a time, in a quiet", "logprobs": None, "finish_reason": "length"}
    ]
    assert legacy["usage"] == chat["usage"]


def test_529_overloaded_is_retryable() -> None:
    error = UpstreamStatusError(529, "Overloaded", code="overloaded_error")
    assert error.retryable and error.http_status == 502


# ------------------------------------------------------------------------------------------ streams


def run_stream(data: bytes, cuts: list[int] | None = None, **options: Any) -> tuple[list[dict[str, Any]], str]:
    """Feed `data` split at `cuts` through the SSE decoder and a translator: (chunks, how it ended)."""
    points = sorted(set(cuts or []))
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    decoder = SSEDecoder()
    translator = AnthropicStreamTranslator(model=MODEL, created=CREATED, **{"include_usage": True, **options})
    chunks: list[dict[str, Any]] = []
    try:
        for piece in pieces:
            for event in decoder.feed(piece):
                chunks.extend(translator.feed(event))
        translator.end()
    except UpstreamError as exc:
        return chunks, f"{type(exc).__name__}({exc.code}): {exc.message}"
    return chunks, "complete"


def sse(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_text_stream_chunks() -> None:
    chunks, ended = run_stream(sse("stream_text.sse"))
    assert ended == "complete"
    envelope = {
        "id": "chatcmpl-msg_01HCDu5LRGeP2o7s2xGmxyx8",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            **envelope,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            "usage": None,
        }

    assert chunks == [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hello"}),
        chunk({"content": "! How can I"}),
        chunk({"content": " help you today? ☕"}),
        chunk({}, "stop"),
        {
            **envelope,
            "choices": [],
            # message_delta repeats the input and cache counts cumulatively: replaced, not added
            "usage": {
                "prompt_tokens": 25 + 2048 + 100,
                "completion_tokens": 15,
                "total_tokens": 25 + 2048 + 100 + 15,
                "prompt_tokens_details": {"cached_tokens": 2048},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        },
    ]


def test_stream_without_usage_requested_keeps_usage_aside() -> None:
    decoder, translator = SSEDecoder(), AnthropicStreamTranslator(model=MODEL, created=CREATED, include_usage=False)
    chunks = [c for event in decoder.feed(sse("stream_text.sse")) for c in translator.feed(event)]
    assert all("usage" not in c and c["choices"] for c in chunks)
    assert translator.usage == Usage(
        prompt_tokens=2173, completion_tokens=15, cached_tokens=2048, cache_write_tokens=100
    )


def test_tool_use_stream_reassembles_tool_calls() -> None:
    chunks, ended = run_stream(sse("stream_tool_use.sse"))
    assert ended == "complete"
    text, calls, finish = "", {}, None
    for chunk in chunks:
        for choice in chunk["choices"]:
            text += choice["delta"].get("content") or ""
            for call in choice["delta"].get("tool_calls", []):
                entry = calls.setdefault(call["index"], {"id": None, "name": "", "arguments": ""})
                entry["id"] = call.get("id") or entry["id"]
                entry["name"] += call.get("function", {}).get("name") or ""
                entry["arguments"] += call.get("function", {}).get("arguments") or ""
            finish = choice["finish_reason"] or finish
    assert text == "I'll check the current weather in Paris for you."
    assert [(c["id"], c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("toolu_01NRLabsLyVHZPKxbKvkfSMn", "get_weather", {"location": "Paris"}),
        ("toolu_01QzUfKPfd8u6DwQ5JN4cRDe", "get_time", {"timezone": "Europe/Paris"}),
    ]
    assert finish == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] == 89  # cumulative: not 1 + 89


def test_error_event_raises_with_anthropics_message() -> None:
    chunks, ended = run_stream(sse("stream_error.sse"))
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "The first part arrived"
    assert ended == "UpstreamError(overloaded_error): upstream stream error: Overloaded"


def test_stream_cut_before_message_stop_is_a_protocol_error() -> None:
    data = sse("stream_text.sse")
    chunks, ended = run_stream(data[: data.index(b"event: message_stop")])
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert ended.startswith("UpstreamProtocolError") and "message_stop" in ended


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"event: message_start\ndata: {not json\n\n", "not JSON"),
        (
            b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}}\n\n',
            "before message_start",
        ),
    ],
)
def test_broken_streams(data: bytes, problem: str) -> None:
    chunks, ended = run_stream(data)
    assert chunks == [] and ended.startswith("UpstreamProtocolError") and problem in ended


def test_unknown_events_and_deltas_are_ignored() -> None:
    extra = (
        b'event: content_block_start\ndata: {"type":"content_block_start","index":5,"content_block":{"type":"thinking","thinking":""}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":5,"delta":{"type":"thinking_delta","thinking":"hmm"}}\n\n'
        b'event: brand_new_event\ndata: {"type":"brand_new_event","x":1}\n\n'
    )
    data = sse("stream_text.sse")
    at = data.index(b"event: content_block_start")
    assert run_stream(data[:at] + extra + data[at:]) == run_stream(data)


def test_legacy_text_completion_stream() -> None:
    chunks, ended = run_stream(sse("stream_text.sse"), text_completion=True, include_usage=False)
    assert ended == "complete"
    assert {c["object"] for c in chunks} == {"text_completion"} and chunks[0][
        "id"
    ] == "cmpl-msg_01HCDu5LRGeP2o7s2xGmxyx8"
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Hello! How can I help you today? ☕"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


STREAMS = {name: sse(name) for name in ("stream_text.sse", "stream_tool_use.sse", "stream_error.sse")}
WHOLE = {name: run_stream(data) for name, data in STREAMS.items()}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(STREAMS)), st.lists(st.integers(min_value=0, max_value=2400), max_size=20))
def test_any_byte_split_gives_identical_chunks(name: str, cuts: list[int]) -> None:
    data = STREAMS[name]
    assert run_stream(data, [c % (len(data) + 1) for c in cuts]) == WHOLE[name]
