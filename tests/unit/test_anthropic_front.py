"""Anthropic's Messages API in front of the gateway: requests to OpenAI, completions and chunks back, against
recorded wire samples and the official `anthropic` SDK's own models and stream parsing (offline)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from providers.anthropic_front import (
    OpenAIToAnthropicStream,
    anthropic_error_body,
    error_event,
    messages_request_to_openai,
    openai_to_messages_response,
)
from providers.anthropic_front.errors import anthropic_error_type
from providers.anthropic_front.response import RAW_ARGUMENTS_KEY
from providers.anthropic_front.stream import ping_event
from providers.errors import (
    AllAttemptsFailed,
    AuthenticationFailed,
    FailedAttempt,
    GatewayError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ServiceUnavailable,
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from providers.sse import SSEDecoder

try:  # the SDK moved from `httpx` to its successor `httpx2` in anthropic 2.x
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "anthropic_front"
MODEL = "claude-sonnet-4-5"
ALIAS = "smart"
"""The model the SDK asks for: a gateway alias, since the SDK warns about retired Claude model names."""
EVENTS: TypeAdapter[Any] = TypeAdapter(anthropic.types.RawMessageStreamEvent)


def load(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def request(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 256, "messages": [{"role": "user", "content": "hi"}], **fields}


def decode(raw: bytes) -> list[dict[str, Any]]:
    """Anthropic SSE bytes → event dicts, checking each event is named after its type."""
    events = []
    for event in SSEDecoder().feed(raw):
        data = orjson.loads(event.data)
        assert event.event == data["type"]
        events.append(data)
    return events


def translate_stream(chunks: list[dict[str, Any]]) -> bytes:
    stream = OpenAIToAnthropicStream(model=MODEL)
    return b"".join(stream.feed(chunk) for chunk in chunks) + stream.finish()


def openai_chunks(name: str) -> list[dict[str, Any]]:
    events = SSEDecoder().feed((FIXTURES / name).read_bytes())
    return [orjson.loads(event.data) for event in events if event.data != "[DONE]"]


def accumulate(events: list[dict[str, Any]]) -> anthropic.types.Message:
    """The message the SDK builds from the events, each validated against the SDK's event union."""
    snapshot: Any = None
    buffers: dict[int, bytes] = {}
    for event in events:
        snapshot = accumulate_event(event=EVENTS.validate_python(event), current_snapshot=snapshot, json_bufs=buffers)
    return anthropic.types.Message.model_validate(snapshot.to_dict())


def assert_well_formed(events: list[dict[str, Any]]) -> None:
    """message_start first; blocks numbered from 0, each started, fed and stopped before the next starts;
    message_delta then message_stop last."""
    types = [event["type"] for event in events]
    assert types[0] == "message_start"
    assert types[-2:] == ["message_delta", "message_stop"]
    assert {"message_start", "message_delta", "message_stop"}.isdisjoint(types[1:-2])
    kinds: dict[int, str] = {}
    open_index: int | None = None
    for event in events[1:-2]:
        if event["type"] == "content_block_start":
            assert open_index is None and event["index"] == len(kinds)
            open_index = event["index"]
            kinds[event["index"]] = event["content_block"]["type"]
        elif event["type"] == "content_block_delta":
            assert event["index"] == open_index
            expected = {"text": "text_delta", "tool_use": "input_json_delta"}[kinds[event["index"]]]
            assert event["delta"]["type"] == expected
        elif event["type"] == "content_block_stop":
            assert event["index"] == open_index
            open_index = None
        else:
            assert event["type"] == "ping"
    assert open_index is None


# ---------------------------------------------------------------------------------------- requests


@pytest.mark.parametrize(
    "name", ["request_simple.json", "request_system_blocks.json", "request_images.json", "request_tools.json"]
)
def test_request_fixture(name: str) -> None:
    sample = load(name)
    original = copy.deepcopy(sample["anthropic"])
    assert messages_request_to_openai(sample["anthropic"]) == sample["openai"]
    assert sample["anthropic"] == original


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        ({"type": "tool", "name": "f"}, {"tool_choice": {"type": "function", "function": {"name": "f"}}}),
        (
            {"type": "any", "disable_parallel_tool_use": True},
            {"tool_choice": "required", "parallel_tool_calls": False},
        ),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: dict[str, Any]) -> None:
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    out = messages_request_to_openai(request(tools=tools, tool_choice=choice))
    assert {k: out[k] for k in ("tool_choice", "parallel_tool_calls") if k in out} == expected


def test_tool_choice_none_without_tools_is_dropped() -> None:
    assert "tool_choice" not in messages_request_to_openai(request(tool_choice={"type": "none"}))


def test_output_config_format_becomes_json_schema() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    out = messages_request_to_openai(request(output_config={"format": {"type": "json_schema", "schema": schema}}))
    assert out["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


def test_stream_false_and_unknown_fields_are_dropped() -> None:
    out = messages_request_to_openai(request(stream=False, thinking={"type": "adaptive"}, top_k=3, speed="fast"))
    assert out == {"model": MODEL, "max_tokens": 256, "messages": [{"role": "user", "content": "hi"}]}


def test_tool_result_without_content_and_only_thinking_assistant_turn() -> None:
    thinking = {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    out = messages_request_to_openai(
        request(
            messages=[
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [thinking, {"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "is_error": True}]},
                {"role": "assistant", "content": [thinking]},
            ]
        )
    )
    assert out["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "t", "content": "Error"},
    ]


ROLE_USER = {"role": "user", "content": "x"}


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"model": ""}, "model"),
        ({"messages": []}, "messages"),
        ({"messages": [ROLE_USER, {"role": "system", "content": "x"}]}, "messages[1].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [ROLE_USER, {"role": "user", "content": [{"type": "video"}]}]}, "messages[1].content[0].type"),
        ({"messages": [ROLE_USER, {"role": "user", "content": [{"text": "x"}]}]}, "messages[1].content[0].type"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": []}]}
                ]
            },
            "messages[0].content[0].input",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "x"}}]}]},
            "messages[0].content[0].source.media_type",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}
                ]
            },
            "messages[0].content[0].source.type",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "ftp://x"}}]}
                ]
            },
            "messages[0].content[0].source.url",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image"}]}]},
            "messages[0].content[0].source",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "document", "source": {"type": "base64", "media_type": "text/csv", "data": "x"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].source.media_type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "tool_use"}]}],
                    }
                ]
            },
            "messages[0].content[0].content[0].type",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]}, "messages[0].content[0].tool_use_id"),
        ({"system": [{"type": "image"}]}, "system[0].type"),
        ({"temperature": 1.5}, "temperature"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"tools": [{"name": "f"}]}, "tools[0].input_schema"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
        ({"tool_choice": {"type": "auto"}}, "tool_choice"),
        ({"tools": [{"name": "f", "input_schema": {}}], "tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({"tools": [{"name": "f", "input_schema": {}}], "tool_choice": {"type": "required"}}, "tool_choice.type"),
        ({"metadata": {"user_id": 7}}, "metadata.user_id"),
    ],
)
def test_validation_errors_name_the_param(changes: dict[str, Any], param: str) -> None:
    body = {k: v for k, v in {**request(), **changes}.items() if v is not None}
    with pytest.raises(InvalidRequest) as caught:
        messages_request_to_openai(body)
    assert caught.value.param == param
    assert caught.value.message.startswith(f"{param}: ")
    assert caught.value.http_status == 400


def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidRequest):
        messages_request_to_openai([])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- responses


@pytest.mark.parametrize("name", ["response_text.json", "response_tool_use.json", "response_vllm_stop_sequence.json"])
def test_response_fixture(name: str) -> None:
    sample = load(name)
    message = openai_to_messages_response(sample["openai"], model=MODEL)
    assert message == sample["anthropic"]
    anthropic.types.Message.model_validate(message)


def completion(message: dict[str, Any], finish_reason: str | None = "stop", **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}],
        **extra,
    }


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
        ("x", "end_turn"),
    ],
)
def test_stop_reasons(finish_reason: str | None, stop_reason: str) -> None:
    message = openai_to_messages_response(completion({"content": "a"}, finish_reason), model=MODEL)
    assert (message["stop_reason"], message["stop_sequence"]) == (stop_reason, None)
    assert message["usage"] == {
        "input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 0,
    }


def test_tool_calls_under_stop_and_invalid_arguments() -> None:
    calls = [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1'}},
        {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "[1, 2]"}},
        {"type": "function", "function": {"name": "h", "arguments": None}},
    ]
    message = openai_to_messages_response(completion({"content": None, "tool_calls": calls}), model=MODEL)
    assert message["stop_reason"] == "tool_use"
    blocks = message["content"]
    assert [block["input"] for block in blocks] == [{RAW_ARGUMENTS_KEY: '{"a": 1'}, {RAW_ARGUMENTS_KEY: "[1, 2]"}, {}]
    assert blocks[2]["id"].startswith("toolu_")
    anthropic.types.Message.model_validate(message)


def test_refusal_and_missing_choices() -> None:
    message = openai_to_messages_response(completion({"content": None, "refusal": "I can't help."}), model=MODEL)
    assert message["content"] == [{"type": "text", "text": "I can't help."}]
    assert message["stop_reason"] == "refusal"
    empty = openai_to_messages_response({"choices": []}, model=MODEL)
    assert empty["content"] == [] and empty["id"].startswith("msg_") and len(empty["id"]) > 10
    anthropic.types.Message.model_validate(empty)


# ---------------------------------------------------------------------------------------- streams


@pytest.mark.parametrize("name", ["stream_text", "stream_tool_use"])
def test_stream_fixture(name: str) -> None:
    raw = translate_stream(openai_chunks(f"{name}.openai.sse"))
    assert raw == (FIXTURES / f"{name}.anthropic.sse").read_bytes()
    events = decode(raw)
    assert_well_formed(events)
    accumulate(events)


def test_stream_accumulates_to_the_non_streaming_message() -> None:
    chunks = openai_chunks("stream_tool_use.openai.sse")
    streamed = accumulate(decode(translate_stream(chunks))).to_dict()
    calls = [
        {
            "id": "call_Yj1s6Yl2X9VXNnLEoTpLKqXh",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location":"Paris, France"}'},
        },
        {
            "id": "call_3bXm0h8a2QbNn4vWc5sDpT7e",
            "type": "function",
            "function": {"name": "take_screenshot", "arguments": "{}"},
        },
    ]
    whole = completion({"content": "Checking both.", "tool_calls": calls}, "tool_calls", usage=chunks[-1]["usage"])
    whole["id"] = chunks[0]["id"]
    assert streamed.pop("stop_details") is None  # the SDK's own field, set from message_delta
    assert streamed == openai_to_messages_response(whole, model=MODEL)
    assert streamed["usage"]["input_tokens"] == 162 and streamed["usage"]["cache_read_input_tokens"] == 2048


def chunk(delta: dict[str, Any] | None = None, finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason, **extra}]
    return {"id": "chatcmpl-7", "object": "chat.completion.chunk", "choices": choices}


def test_finish_without_chunks_is_still_a_well_formed_message() -> None:
    stream = OpenAIToAnthropicStream(model=MODEL)
    assert not stream.started
    events = decode(stream.finish())
    assert_well_formed(events)
    assert stream.finish() == b"" and stream.feed(chunk({"content": "late"})) == b""
    assert accumulate(events).stop_reason == "end_turn"


def test_vllm_stop_sequence_refusal_and_usage_on_the_finish_chunk() -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    stream = OpenAIToAnthropicStream(model=MODEL)
    raw = stream.feed(chunk({"content": "1, 2"}))
    assert stream.started
    raw += stream.feed({**chunk({}, "stop", stop_reason="END"), "usage": usage})
    message = accumulate(decode(raw + stream.finish()))
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "END")
    assert (message.usage.input_tokens, message.usage.output_tokens) == (5, 2)
    assert stream.usage is not None and stream.usage.prompt_tokens == 5

    refused = accumulate(decode(translate_stream([chunk({"refusal": "No."}), chunk({}, "stop")])))
    assert refused.stop_reason == "refusal" and refused.content[0].type == "text"


def test_tool_calls_without_index_and_text_after_tools() -> None:
    chunks = [
        chunk({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": '{"x":'}}]}),
        chunk({"tool_calls": [{"function": {"arguments": " 1}"}}]}),
        chunk({"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
        chunk({"tool_calls": [{"id": "b", "function": {"arguments": ""}}]}),
        chunk({"content": "done"}, "tool_calls"),
    ]
    events = decode(translate_stream(chunks))
    assert_well_formed(events)
    message = accumulate(events)
    assert [(b.type, getattr(b, "input", None)) for b in message.content] == [
        ("tool_use", {"x": 1}),
        ("tool_use", {}),
        ("text", None),
    ]
    assert message.stop_reason == "tool_use"


def test_interleaved_tool_arguments_are_a_protocol_error() -> None:
    stream = OpenAIToAnthropicStream(model=MODEL)
    stream.feed(chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}]}))
    stream.feed(chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{"}}]}))
    with pytest.raises(UpstreamProtocolError):
        stream.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}))


def test_other_choices_and_reasoning_are_ignored() -> None:
    chunks = [
        chunk({"reasoning_content": "thinking..."}),
        {"id": "c", "choices": [{"index": 1, "delta": {"content": "other"}}]},
        chunk({"content": "mine"}, "stop"),
    ]
    message = accumulate(decode(translate_stream(chunks)))
    assert [block.to_dict() for block in message.content] == [{"type": "text", "text": "mine"}]


def test_ping_and_error_events() -> None:
    assert decode(ping_event()) == [{"type": "ping"}]
    assert decode(error_event(ServiceUnavailable("draining"))) == [
        {"type": "error", "error": {"type": "overloaded_error", "message": "draining"}}
    ]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
SEGMENTS = st.lists(
    st.one_of(
        st.tuples(st.just("text"), st.text(min_size=1, max_size=40)),
        st.tuples(
            st.from_regex(r"[a-z_]{1,10}", fullmatch=True),
            st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=4).map(json.dumps),
        ),
    ),
    max_size=6,
)


def pieces(data: st.DataObject, text: str) -> list[str]:
    """`text` cut at arbitrary places, empty pieces included."""
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=5)))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in pairwise(bounds)]


@settings(max_examples=150, deadline=None)
@given(segments=SEGMENTS, data=st.data())
def test_any_chunking_keeps_text_and_arguments_and_is_well_formed(
    segments: list[tuple[str, str]], data: st.DataObject
) -> None:
    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    expected: list[tuple[str, str]] = []  # (block type or tool name, text or arguments)
    for position, (kind, value) in enumerate(segments):
        if kind == "text":
            chunks += [chunk({"content": piece}) for piece in pieces(data, value)]
            if expected and expected[-1][0] == "text":
                expected[-1] = ("text", expected[-1][1] + value)
            else:
                expected.append(("text", value))
            continue
        first, *rest = pieces(data, value)
        call = {"index": position, "id": f"call_{position}", "type": "function", "function": {"name": kind}}
        chunks.append(chunk({"tool_calls": [{**call, "function": {"name": kind, "arguments": first}}]}))
        chunks += [chunk({"tool_calls": [{"index": position, "function": {"arguments": p}}]}) for p in rest]
        expected.append((kind, value))
    has_tools = any(kind != "text" for kind, _ in expected)
    chunks.append(chunk({}, "tool_calls" if has_tools else "stop"))
    chunks.append({**chunk(), "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}})

    events = decode(translate_stream(chunks))
    assert_well_formed(events)
    got: list[tuple[str, str]] = []
    for event in events:
        if event["type"] == "content_block_start":
            block = event["content_block"]
            got.append(("text" if block["type"] == "text" else block["name"], ""))
        elif event["type"] == "content_block_delta":
            delta = event["delta"]
            got[-1] = (got[-1][0], got[-1][1] + (delta.get("text") or delta.get("partial_json") or ""))
    assert got == expected
    message = accumulate(events)
    assert [b.input for b in message.content if b.type == "tool_use"] == [
        json.loads(value) for kind, value in expected if kind != "text"
    ]
    assert message.stop_reason == ("tool_use" if has_tools else "end_turn")
    assert message.usage.output_tokens == 4


# ---------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("error", "status", "error_type"),
    [
        (InvalidRequest("bad"), 400, "invalid_request_error"),
        (AuthenticationFailed("no key"), 401, "authentication_error"),
        (PermissionDenied("no"), 403, "permission_error"),
        (NotFound("no model"), 404, "not_found_error"),
        (MethodNotAllowed("GET"), 405, "invalid_request_error"),
        (PayloadTooLarge("big"), 413, "request_too_large"),
        (UpstreamStatusError(429, "slow down"), 429, "rate_limit_error"),
        (UpstreamStatusError(500, "boom"), 502, "api_error"),
        (UpstreamConnectError("refused"), 502, "api_error"),
        (ServiceUnavailable("draining"), 503, "overloaded_error"),
        (UpstreamTimeout("slow"), 504, "api_error"),
        (AllAttemptsFailed([FailedAttempt("a", UpstreamStatusError(429, "x"))]), 429, "rate_limit_error"),
        (GatewayError("oops"), 500, "api_error"),
    ],
)
def test_error_body(error: GatewayError, status: int, error_type: str) -> None:
    assert error.http_status == status
    body = orjson.loads(anthropic_error_body(error))
    assert body == {"type": "error", "error": {"type": error_type, "message": error.message}}
    if error_type != "request_too_large":  # a type Anthropic documents that the SDK's union lacks
        anthropic.types.ErrorResponse.model_validate(body)


@pytest.mark.parametrize(
    ("status", "error_type"), [(529, "overloaded_error"), (418, "invalid_request_error"), (507, "api_error")]
)
def test_error_type_for_other_statuses(status: int, error_type: str) -> None:
    assert anthropic_error_type(status) == error_type


# ---------------------------------------------------------------------------------------- the SDK, offline

Handler = Callable[[dict[str, Any]], httpx.Response]


@pytest.fixture
def sdk() -> Iterator[Callable[[Handler], anthropic.Anthropic]]:
    """An `anthropic` client whose requests are translated, then answered by `handler`; no network."""
    clients: list[anthropic.Anthropic] = []

    def make(handler: Handler) -> anthropic.Anthropic:
        def transport(http_request: httpx.Request) -> httpx.Response:
            assert http_request.url.path == "/v1/messages"
            # Older SDKs send the key as `x-api-key`, anthropic 2.x as `Authorization: Bearer`.
            key = http_request.headers.get("x-api-key") or http_request.headers["authorization"].removeprefix("Bearer ")
            assert key == "sk-gateway"
            return handler(messages_request_to_openai(orjson.loads(http_request.content)))

        http = httpx.Client(transport=httpx.MockTransport(transport))
        client = anthropic.Anthropic(
            api_key="sk-gateway", base_url="http://127.0.0.1:9", http_client=http, max_retries=0
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_sdk_create(sdk: Callable[[Handler], anthropic.Anthropic]) -> None:
    sample = load("response_tool_use.json")

    def handler(body: dict[str, Any]) -> httpx.Response:
        assert body["tools"][0]["function"]["name"] == "get_weather" and "stream" not in body
        return httpx.Response(200, content=orjson.dumps(openai_to_messages_response(sample["openai"], model=MODEL)))

    tool = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}
    message = sdk(handler).messages.create(
        model=ALIAS, max_tokens=100, messages=[{"role": "user", "content": "Weather in Paris?"}], tools=[tool]
    )
    assert message.to_dict() == sample["anthropic"]


def test_sdk_stream(sdk: Callable[[Handler], anthropic.Anthropic]) -> None:
    def handler(body: dict[str, Any]) -> httpx.Response:
        assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
        content = ping_event() + translate_stream(openai_chunks("stream_text.openai.sse"))
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=content)

    client = sdk(handler)
    with client.messages.stream(model=ALIAS, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]) as stream:
        assert "".join(stream.text_stream) == "Hello! How can I help?"
        message = stream.get_final_message()
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (19, 8)


def test_sdk_stream_error_event(sdk: Callable[[Handler], anthropic.Anthropic]) -> None:
    def handler(body: dict[str, Any]) -> httpx.Response:
        stream = OpenAIToAnthropicStream(model=MODEL)
        content = stream.feed(chunk({"content": "Hel"})) + error_event(ServiceUnavailable("Overloaded"))
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=content)

    client = sdk(handler)
    with pytest.raises(anthropic.APIStatusError) as caught:
        with client.messages.stream(
            model=ALIAS, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
        ) as stream:
            stream.get_final_message()
    assert caught.value.body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


@pytest.mark.parametrize(
    ("error", "exception"),
    [
        (InvalidRequest("messages[0].role: bad", param="messages[0].role"), anthropic.BadRequestError),
        (AuthenticationFailed("Invalid API key"), anthropic.AuthenticationError),
        (NotFound("no such model"), anthropic.NotFoundError),
        (UpstreamStatusError(429, "slow down"), anthropic.RateLimitError),
        (ServiceUnavailable("draining"), anthropic.InternalServerError),
    ],
)
def test_sdk_errors(
    sdk: Callable[[Handler], anthropic.Anthropic], error: GatewayError, exception: type[Exception]
) -> None:
    client = sdk(lambda body: httpx.Response(error.http_status, content=anthropic_error_body(error)))
    with pytest.raises(exception) as caught:
        client.messages.create(model=ALIAS, max_tokens=10, messages=[{"role": "user", "content": "Hi"}])
    assert isinstance(caught.value, anthropic.APIStatusError)
    assert caught.value.body == orjson.loads(anthropic_error_body(error))
