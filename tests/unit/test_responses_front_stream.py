"""Chat completion chunks → Responses SSE events, each validated by the `openai` SDK's event union, fed to the
SDK's own stream accumulator (`ResponseStreamState`, what `client.responses.stream()` runs), and read by the
SDK's clients offline."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from itertools import pairwise
from typing import Any

import openai
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai._types import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseErrorEvent, ResponseStreamEvent
from pydantic import TypeAdapter

from providers.errors import GatewayError, InvalidRequest, ServiceUnavailable, UpstreamProtocolError, UpstreamTimeout
from providers.responses_front import (
    ChatToResponsesStream,
    chat_completion_to_response,
    error_event,
)
from providers.sse import SSEDecoder
from tests.unit.responses_front_support import FIXTURES, MODEL, assert_known, httpx, offline_client

REQUEST: dict[str, Any] = {"model": MODEL, "input": "hi", "stream": True}
EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
USAGE = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}


def chunk(delta: dict[str, Any] | None = None, finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason, **extra}]
    return {"id": "chatcmpl-7", "object": "chat.completion.chunk", "created": 1700000000, "choices": choices}


def usage_chunk(usage: dict[str, Any] = USAGE) -> dict[str, Any]:
    return {**chunk(), "usage": usage}


def call(index: int, arguments: str, name: str | None = None, call_id: str | None = None) -> dict[str, Any]:
    function: dict[str, Any] = {"arguments": arguments}
    out: dict[str, Any] = {"index": index, "function": function}
    if name is not None:
        function["name"] = name
        out["type"] = "function"
    if call_id is not None:
        out["id"] = call_id
    return out


def chat_chunks(name: str) -> list[dict[str, Any]]:
    events = SSEDecoder().feed((FIXTURES / name).read_bytes())
    return [orjson.loads(event.data) for event in events if event.data != "[DONE]"]


def translate(chunks: list[dict[str, Any]], request: dict[str, Any] = REQUEST) -> bytes:
    stream = ChatToResponsesStream(request, model=MODEL)
    return b"".join(stream.feed(c) for c in chunks) + stream.finish()


def decode(raw: bytes) -> list[dict[str, Any]]:
    """SSE bytes → event dicts: each named after its type, numbered 0, 1, 2..., valid in the SDK's union."""
    events = []
    for number, event in enumerate(SSEDecoder().feed(raw)):
        data = orjson.loads(event.data)
        assert event.event == data["type"]
        assert data["sequence_number"] == number
        assert_known(EVENTS.validate_python(data))
        events.append(data)
    return events


def assert_well_formed(events: list[dict[str, Any]]) -> None:
    """created, in_progress, then items: each added (numbered in order from 0) before its parts and deltas,
    done after them with the text and arguments its deltas add up to; the final response last, holding the
    items as they were done."""
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    for event in events[:2]:
        assert event["response"]["status"] == "in_progress" and event["response"]["output"] == []
    final = events[-1]
    assert final["type"] in ("response.completed", "response.incomplete")
    assert final["response"]["status"] == final["type"].removeprefix("response.")
    assert final["response"]["id"] == events[0]["response"]["id"]
    items: dict[int, dict[str, Any]] = {}
    done: dict[int, dict[str, Any]] = {}
    texts: dict[tuple[int, int], str] = {}
    arguments: dict[int, str] = {}
    for event in events[2:-1]:
        kind, index = event["type"], event.get("output_index")
        assert isinstance(index, int) and index not in done, event
        if kind == "response.output_item.added":
            assert index == len(items) and event["item"]["status"] == "in_progress"
            items[index] = event["item"]
            arguments[index] = ""
            continue
        assert items[index]["id"] == (event.get("item_id") or event.get("item", {}).get("id"))
        if kind == "response.content_part.added":
            assert event["content_index"] == len([k for k in texts if k[0] == index])
            texts[(index, event["content_index"])] = ""
        elif kind in ("response.output_text.delta", "response.refusal.delta"):
            texts[(index, event["content_index"])] += event["delta"]
        elif kind == "response.output_text.done":
            assert event["text"] == texts[(index, event["content_index"])]
        elif kind == "response.refusal.done":
            assert event["refusal"] == texts[(index, event["content_index"])]
        elif kind == "response.content_part.done":
            part = event["part"]
            assert part.get("text", part.get("refusal")) == texts[(index, event["content_index"])]
        elif kind == "response.function_call_arguments.delta":
            arguments[index] += event["delta"]
        elif kind == "response.function_call_arguments.done":
            assert event["arguments"] == arguments[index]
        else:
            assert kind == "response.output_item.done", kind
            assert event["item"]["status"] in ("completed", "incomplete")
            if event["item"]["type"] == "function_call":
                assert event["item"]["arguments"] == arguments[index]
            done[index] = event["item"]
    assert sorted(done) == sorted(items)  # every item closed
    assert final["response"]["output"] == [done[index] for index in sorted(done)]


def accumulate(events: list[dict[str, Any]]) -> Response:
    """The response the SDK's accumulator builds; its delta-built snapshot must agree with the final output."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in events:
        state.handle_event(EVENTS.validate_python(event))
    snapshot = state._ResponseStreamState__current_snapshot  # type: ignore[attr-defined]
    if events[-1]["type"] == "response.incomplete":
        return Response.model_validate(events[-1]["response"])  # the SDK only finishes on response.completed
    final = state._completed_response
    assert final is not None
    for built, item in zip(snapshot.output, final.output, strict=True):
        assert built.type == item.type and built.id == item.id
        if item.type == "message":
            assert [p.to_dict().get("text") for p in built.content] == [p.to_dict().get("text") for p in item.content]
        elif item.type == "function_call":
            assert (built.call_id, built.arguments) == (item.call_id, item.arguments)
    assert unparsed(final.to_dict()) == events[-1]["response"]
    return Response.model_validate(events[-1]["response"])


def unparsed(value: Any) -> Any:
    """The SDK's `ParsedResponse` as JSON, without the `parsed` fields it adds for `responses.parse()`."""
    if isinstance(value, dict):
        return {k: unparsed(v) for k, v in value.items() if k not in ("parsed", "parsed_arguments")}
    if isinstance(value, list):
        return [unparsed(v) for v in value]
    return value


def comparable(response: dict[str, Any]) -> dict[str, Any]:
    """A response without what differs between two translations of one reply: ids and timestamps."""
    out = {k: v for k, v in response.items() if k not in ("id", "created_at", "completed_at")}
    out["output"] = [{k: v for k, v in item.items() if k != "id"} for item in response["output"]]
    return out


# ---------------------------------------------------------------------------------------- streams


def test_text_fixture() -> None:
    events = decode(translate(chat_chunks("stream_text.chat.sse")))
    assert_well_formed(events)
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 3,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[3]["part"] == {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    assert events[4]["logprobs"] == [] and events[4]["content_index"] == 0
    response = accumulate(events)
    assert response.output_text == "Hello! How can I help?"
    assert response.usage is not None and (response.usage.input_tokens, response.usage.output_tokens) == (19, 8)
    assert response.service_tier == "default" and response.model == MODEL


def test_tool_calls_fixture_matches_the_non_streaming_response() -> None:
    chunks = chat_chunks("stream_tool_calls.chat.sse")
    events = decode(translate(chunks))
    assert_well_formed(events)
    streamed = accumulate(events)
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
    message = {"role": "assistant", "content": "Checking both.", "tool_calls": calls}
    whole = {
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": chunks[-1]["usage"],
        "service_tier": "default",
    }
    expected = chat_completion_to_response(whole, REQUEST, model=MODEL)
    assert comparable(streamed.to_dict()) == comparable(expected)
    assert streamed.usage is not None and streamed.usage.input_tokens_details.cached_tokens == 2048
    # the message is closed before the first call opens, as OpenAI's own streams order them
    types = [(e["type"], e.get("output_index")) for e in events]
    assert types.index(("response.output_item.done", 0)) < types.index(("response.output_item.added", 1))


def test_text_and_interleaved_tool_calls() -> None:
    chunks = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Let me "}),
        chunk({"content": "check."}),
        chunk({"tool_calls": [call(0, "", "get_weather", "call_a")]}),
        chunk({"tool_calls": [call(1, '{"city":', "get_time", "call_b")]}),
        chunk({"tool_calls": [call(0, '{"city":"Paris"}')]}),
        chunk({"tool_calls": [call(2, "{}", "ping", "call_c"), call(1, '"Rome"}')]}),
        chunk({"content": "And more."}),  # text after the calls: a new message item
        chunk({}, "tool_calls"),
        usage_chunk(),
    ]
    events = decode(translate(chunks))
    assert_well_formed(events)
    response = accumulate(events)
    assert [(item.type, getattr(item, "call_id", None)) for item in response.output] == [
        ("message", None),
        ("function_call", "call_a"),
        ("function_call", "call_b"),
        ("function_call", "call_c"),
        ("message", None),
    ]
    assert [getattr(item, "arguments", None) for item in response.output][1:4] == [
        '{"city":"Paris"}',
        '{"city":"Rome"}',
        "{}",
    ]
    assert [getattr(item, "name", None) for item in response.output][1:4] == ["get_weather", "get_time", "ping"]
    assert response.output_text == "Let me check.And more."
    assert response.status == "completed" and response.usage is not None and response.usage.total_tokens == 13


def test_length_is_incomplete_and_the_last_item_too() -> None:
    chunks = [
        chunk({"content": "Once upon"}),
        chunk({"tool_calls": [call(0, '{"a":', "f", "c1")]}),
        chunk({}, "length"),
        usage_chunk(),
    ]
    events = decode(translate(chunks))
    assert_well_formed(events)
    assert events[-1]["type"] == "response.incomplete"
    response = accumulate(events)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    assert [item.status for item in response.output] == ["completed", "incomplete"]
    assert response.completed_at is None and response.usage is not None

    filtered = accumulate(decode(translate([chunk({"content": "x"}, "content_filter")])))
    assert filtered.incomplete_details is not None and filtered.incomplete_details.reason == "content_filter"


def test_no_usage_chunk_means_null_usage() -> None:
    events = decode(translate([chunk({"content": "hi"}, "stop")]))
    assert_well_formed(events)
    assert events[-1]["response"]["usage"] is None
    assert accumulate(events).usage is None


def test_usage_on_the_finish_chunk_and_cached_and_reasoning_tokens() -> None:
    usage = {
        **USAGE,
        "prompt_tokens_details": {"cached_tokens": 5},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }
    response = accumulate(decode(translate([{**chunk({"content": "hi"}, "stop"), "usage": usage}])))
    assert response.usage is not None
    assert (
        response.usage.input_tokens_details.cached_tokens,
        response.usage.output_tokens_details.reasoning_tokens,
    ) == (5, 2)


def test_finish_without_chunks_is_an_empty_message() -> None:
    stream = ChatToResponsesStream(REQUEST, model=MODEL, response_id="resp_fixed", created_at=7)
    assert not stream.started
    events = decode(stream.finish())
    assert_well_formed(events)
    assert stream.started and events[0]["response"]["id"] == "resp_fixed" and events[0]["response"]["created_at"] == 7
    assert stream.finish() == b"" and stream.feed(chunk({"content": "late"})) == b""
    response = accumulate(events)
    assert [item.type for item in response.output] == ["message"] and response.output_text == ""


def test_refusal_part() -> None:
    events = decode(translate([chunk({"refusal": "I can't "}), chunk({"refusal": "help."}), chunk({}, "stop")]))
    assert_well_formed(events)
    assert "response.refusal.delta" in [e["type"] for e in events]
    message = accumulate(events).output[0]
    assert message.type == "message"
    assert [part.to_dict() for part in message.content] == [{"type": "refusal", "refusal": "I can't help."}]


def test_tool_calls_without_index_late_names_and_no_arguments() -> None:
    chunks = [
        chunk({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": '{"x":'}}]}),
        chunk({"tool_calls": [{"function": {"arguments": " 1}"}}]}),
        chunk({"tool_calls": [{"id": "b", "function": {"arguments": ""}}]}),
        chunk({"tool_calls": [{"id": "b", "function": {"name": "g"}}]}),  # the name after the call began
        chunk({"tool_calls": [{"index": 5, "function": "junk"}, "junk"]}),
        chunk({}, "tool_calls"),
    ]
    response = accumulate(decode(translate(chunks)))
    assert [(i.call_id, i.name, i.arguments) for i in response.output if i.type == "function_call"][:2] == [
        ("a", "f", '{"x": 1}'),
        ("b", "g", "{}"),
    ]
    assert response.output[2].type == "function_call" and response.output[2].call_id.startswith("call_")


def test_other_choices_reasoning_and_chunks_after_the_finish_are_ignored() -> None:
    chunks = [
        chunk({"reasoning_content": "thinking..."}),
        {"id": "c", "choices": [{"index": 1, "delta": {"content": "other"}}]},
        {"id": "c", "choices": "junk"},
        chunk({"content": "mine"}, "stop"),
        chunk({"content": "after the finish"}),
    ]
    response = accumulate(decode(translate(chunks)))
    assert response.output_text == "mine" and len(response.output) == 1


def test_logprobs_in_deltas_and_parts() -> None:
    logprobs = {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.1,
                "bytes": [72, 105],
                "top_logprobs": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105]}],
            }
        ]
    }
    events = decode(
        translate([chunk({"content": "Hi"}, logprobs=logprobs), chunk({}, "stop")], {**REQUEST, "top_logprobs": 1})
    )
    delta = next(e for e in events if e["type"] == "response.output_text.delta")
    assert delta["logprobs"][0]["token"] == "Hi" and delta["logprobs"][0]["logprob"] == -0.1
    part = accumulate(events).output[0].content[0]  # type: ignore[union-attr]
    assert part.logprobs is not None and part.logprobs[0].bytes == [72, 105]
    assert events[-1]["response"]["top_logprobs"] == 1


def test_request_settings_are_echoed_in_every_response_event() -> None:
    request = {**REQUEST, "instructions": "Be terse.", "metadata": {"k": "v"}, "temperature": 0.3}
    events = decode(translate([chunk({"content": "ok"}, "stop")], request))
    for event in (events[0], events[1], events[-1]):
        response = event["response"]
        assert (response["instructions"], response["metadata"], response["temperature"]) == (
            "Be terse.",
            {"k": "v"},
            0.3,
        )


# ---------------------------------------------------------------------------------------- chunk splits

SEGMENTS = st.lists(
    st.one_of(
        st.tuples(st.just("text"), st.text(min_size=1, max_size=30)),
        st.tuples(
            st.from_regex(r"[a-z_]{1,8}", fullmatch=True),
            st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3).map(json.dumps),
        ),
    ),
    max_size=5,
)


def pieces(data: st.DataObject, text: str) -> list[str]:
    """`text` cut at arbitrary places, empty pieces included."""
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=4)))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in pairwise(bounds)]


@settings(max_examples=100, deadline=None)
@given(segments=SEGMENTS, data=st.data(), split_bytes=st.integers(1, 64))
def test_any_chunking_gives_the_non_streaming_response(
    segments: list[tuple[str, str]], data: st.DataObject, split_bytes: int
) -> None:
    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for position, (kind, value) in enumerate(segments):
        if kind == "text":
            chunks += [chunk({"content": piece}) for piece in pieces(data, value)]
            texts.append(value)
            continue
        first, *rest = pieces(data, value)
        chunks.append(chunk({"tool_calls": [call(position, first, kind, f"call_{position}")]}))
        chunks += [chunk({"tool_calls": [call(position, piece)]}) for piece in rest]
        calls.append({"id": f"call_{position}", "type": "function", "function": {"name": kind, "arguments": value}})
    chunks += [chunk({}, "tool_calls" if calls else "stop"), usage_chunk()]

    raw = translate(chunks)
    # the bytes read the same however the socket splits them
    decoder = SSEDecoder()
    split = [e for i in range(0, len(raw), split_bytes) for e in decoder.feed(raw[i : i + split_bytes])]
    assert [e.data for e in split] == [e.data for e in SSEDecoder().feed(raw)]

    events = decode(raw)
    assert_well_formed(events)
    streamed = accumulate(events)
    assert streamed.output_text == "".join(texts)
    assert [(i.name, json.loads(i.arguments)) for i in streamed.output if i.type == "function_call"] == [
        (c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls
    ]
    is_text = [kind == "text" for kind, _ in segments]
    if is_text == sorted(is_text, reverse=True):  # all text before the calls: exactly the non-streaming response
        message = {"role": "assistant", "content": "".join(texts) or None, "tool_calls": calls or None}
        whole = {
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": USAGE,
        }
        assert comparable(streamed.to_dict()) == comparable(chat_completion_to_response(whole, REQUEST, model=MODEL))


# ---------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "error",
    [
        ServiceUnavailable("draining"),
        UpstreamTimeout("upstream took too long"),
        UpstreamProtocolError("stream cut short"),
        InvalidRequest("bad", param="input[0]"),
        GatewayError("oops"),
    ],
)
def test_error_event(error: GatewayError) -> None:
    stream = ChatToResponsesStream(REQUEST, model=MODEL)
    raw = stream.feed(chunk({"content": "Hel"}))
    raw += stream.error_event(error)
    events = decode(raw)
    last = events[-1]
    assert last == {
        "type": "error",
        "sequence_number": len(events) - 1,
        "code": error.code,
        "message": error.message,
        "param": error.param,
        "error": {"type": error.error_type, "code": error.code, "message": error.message, "param": error.param},
    }
    assert ResponseErrorEvent.model_validate(last).message == error.message
    assert stream.finish() == b"" and stream.feed(chunk({"content": "late"})) == b""
    assert decode(error_event(error))[0]["sequence_number"] == 0


# ---------------------------------------------------------------------------------------- the SDK, offline

Events = Callable[[dict[str, Any], dict[str, Any]], bytes]


@pytest.fixture
def sdk() -> Iterator[Callable[[Events], openai.OpenAI]]:
    """An offline `openai` client answered with the SSE bytes `events(chat request, Responses body)` returns."""
    clients: list[openai.OpenAI] = []

    def make(events: Events) -> openai.OpenAI:
        def handler(chat: dict[str, Any], original: dict[str, Any]) -> httpx.Response:
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=events(chat, original))

        clients.append(offline_client(handler))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def fixture_stream(chat: dict[str, Any], original: dict[str, Any]) -> bytes:
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    return translate(chat_chunks("stream_tool_calls.chat.sse"), original)


def test_sdk_stream_helper(sdk: Callable[[Events], openai.OpenAI]) -> None:
    tools: Any = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": False}]
    with sdk(fixture_stream).responses.stream(model=MODEL, input="Weather?", tools=tools) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        response = stream.get_final_response()
    assert "".join(deltas) == "Checking both." == response.output_text
    assert [item.type for item in response.output] == ["message", "function_call", "function_call"]
    assert response.usage is not None and response.usage.total_tokens == 2258


def test_sdk_create_stream(sdk: Callable[[Events], openai.OpenAI]) -> None:
    events = list(sdk(fixture_stream).responses.create(model=MODEL, input="Weather?", stream=True))
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert events[-1].type == "response.completed"
    assert [item.type for item in events[-1].response.output] == ["message", "function_call", "function_call"]


def test_sdk_incomplete_stream_has_no_final_response(sdk: Callable[[Events], openai.OpenAI]) -> None:
    """As against OpenAI: the SDK's helper finishes only on `response.completed`."""
    client = sdk(lambda chat, original: translate([chunk({"content": "Once"}, "length")], original))
    with client.responses.stream(model=MODEL, input="A story", max_output_tokens=16) as stream:
        events = list(stream)
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details is not None


def broken_stream(chat: dict[str, Any], original: dict[str, Any]) -> bytes:
    stream = ChatToResponsesStream(original, model=MODEL)
    return stream.feed(chunk({"content": "Hel"})) + stream.error_event(UpstreamTimeout("upstream took too long"))


def test_sdk_create_stream_raises_on_the_error_event(sdk: Callable[[Events], openai.OpenAI]) -> None:
    seen: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for event in sdk(broken_stream).responses.create(model=MODEL, input="hi", stream=True):
            seen.append(event.type)
    assert seen[-1] == "response.output_text.delta"  # the events before the error reached the client
    assert caught.value.message == "upstream took too long"
    assert (caught.value.code, caught.value.type) == ("upstream_timeout", "timeout")
    assert not isinstance(caught.value, openai.APIStatusError)


def test_sdk_stream_helper_raises_on_the_error_event(sdk: Callable[[Events], openai.OpenAI]) -> None:
    with pytest.raises(openai.APIError, match="upstream took too long"):
        with sdk(broken_stream).responses.stream(model=MODEL, input="hi") as stream:
            stream.get_final_response()


def test_sdk_yields_a_flat_error_event_without_raising(sdk: Callable[[Events], openai.OpenAI]) -> None:
    """Why the event carries `error` too: with the documented flat fields only, the SDK does not raise."""

    def flat(chat: dict[str, Any], original: dict[str, Any]) -> bytes:
        raw = broken_stream(chat, original)
        head, _, last = raw.rstrip(b"\n").rpartition(b"\n\n")
        name, _, data = last.partition(b"\ndata: ")
        event = orjson.loads(data)
        del event["error"]
        return head + b"\n\n" + name + b"\ndata: " + orjson.dumps(event) + b"\n\n"

    events = list(sdk(flat).responses.create(model=MODEL, input="hi", stream=True))
    assert events[-1].type == "error" and events[-1].message == "upstream took too long"
