from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from providers.base import Endpoint, Usage
from providers.tokens import count_chat_prompt, count_text
from providers.usage_estimate import (
    estimate_prompt_tokens,
    max_output_tokens,
    usage_from_completion,
    usage_from_stream,
)

CHAT_STREAM = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1730000000,"model":"gpt-4o-mini",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1730000000,"model":"gpt-4o-mini",'
    b'"choices":[{"index":0,"delta":{"content":"Caf\xc3\xa9 au lait"},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1730000000,"model":"gpt-4o-mini",'
    b'"choices":[{"index":0,"delta":{"content":", s\'il vous pla\xc3\xaet \xe2\x98\x95"},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1730000000,"model":"gpt-4o-mini",'
    b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)
CHAT_TEXT = "Café au lait, s'il vous plaît ☕"

TOOL_STREAM = (
    b'data: {"id":"chatcmpl-2","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,'
    b'"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function",'
    b'"function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-2","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,'
    b'"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"city\\": \\"Par"}}]},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-2","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,'
    b'"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time",'
    b'"arguments":"{\\"tz\\": \\"CET\\"}"}}]},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-2","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,'
    b'"delta":{"tool_calls":[{"index":0,"function":{"arguments":"is\\"}"}}]},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-2","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,'
    b'"delta":{},"finish_reason":"tool_calls"}]}\n\n'
    b"data: [DONE]\n\n"
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted(set(cuts))
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def test_chat_stream_counts_streamed_text() -> None:
    assert usage_from_stream([CHAT_STREAM], prompt_tokens=12) == Usage(
        prompt_tokens=12, completion_tokens=count_text(CHAT_TEXT), estimated=True
    )


def test_every_byte_boundary_gives_the_same_usage() -> None:
    whole = usage_from_stream([CHAT_STREAM], 12)
    for cut in range(len(CHAT_STREAM) + 1):
        assert usage_from_stream([CHAT_STREAM[:cut], CHAT_STREAM[cut:]], 12) == whole, cut
    assert usage_from_stream([CHAT_STREAM[i : i + 1] for i in range(len(CHAT_STREAM))], 12) == whole


@settings(max_examples=200)
@given(st.lists(st.integers(min_value=0, max_value=len(TOOL_STREAM)), max_size=15))
def test_any_split_of_a_tool_stream_gives_the_same_usage(cuts: list[int]) -> None:
    assert usage_from_stream(split(TOOL_STREAM, cuts), 0) == usage_from_stream([TOOL_STREAM], 0)


def test_tool_call_names_and_arguments_are_counted_per_call() -> None:
    expected = sum(map(count_text, ["get_weather", '{"city": "Paris"}', "get_time", '{"tz": "CET"}']))
    assert usage_from_stream([TOOL_STREAM], 30) == Usage(prompt_tokens=30, completion_tokens=expected, estimated=True)


def test_stream_cut_mid_event_counts_what_arrived() -> None:
    cut = CHAT_STREAM.index(b", s'il")
    usage = usage_from_stream([CHAT_STREAM[:cut]], 5)
    assert usage == Usage(prompt_tokens=5, completion_tokens=count_text("Café au lait"), estimated=True)
    assert usage_from_stream([], 5) == Usage(prompt_tokens=5, estimated=True)


def test_usage_chunk_wins() -> None:
    stream = (
        CHAT_STREAM.replace(b"data: [DONE]\n\n", b"")
        + b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":9,'
        b'"completion_tokens":11,"total_tokens":20,"prompt_tokens_details":{"cached_tokens":4},'
        b'"completion_tokens_details":{"reasoning_tokens":0}}}\n\n'
        b"data: [DONE]\n\n"
    )
    assert usage_from_stream(split(stream, [100, 400]), 999) == Usage(
        prompt_tokens=9, completion_tokens=11, cached_tokens=4
    )


def test_null_usage_on_each_chunk_is_ignored_and_the_last_usage_wins() -> None:
    chunk = {"choices": [{"index": 0, "delta": {"content": "hi"}}], "usage": None}
    running = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
    final = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
    stream = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in (chunk, running, chunk, final))
    assert usage_from_stream([stream], 0) == Usage(prompt_tokens=3, completion_tokens=2)
    only_nulls = b"data: " + json.dumps(chunk).encode() + b"\n\n"
    assert usage_from_stream([only_nulls], 0) == Usage(completion_tokens=count_text("hi"), estimated=True)


def test_reasoning_content_is_inside_completion() -> None:
    events = [
        {"choices": [{"index": 0, "delta": {"reasoning_content": "The user wants a greeting."}}]},
        {"choices": [{"index": 0, "delta": {"content": "Hello!"}}]},
        {"choices": [{"index": 0, "delta": {"reasoning": "Not counted twice", "reasoning_content": ""}}]},
    ]
    stream = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    reasoning = count_text("The user wants a greeting.")
    assert usage_from_stream([stream], 1) == Usage(
        prompt_tokens=1, completion_tokens=reasoning + count_text("Hello!"), reasoning_tokens=reasoning, estimated=True
    )


def test_text_completion_stream_with_two_choices_and_junk() -> None:
    stream = (
        b'data: {"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":"Once upon","finish_reason":null}]}\n\n'
        b'data: {"id":"cmpl-1","object":"text_completion","choices":[{"index":1,"text":"In a land","finish_reason":null}]}\n\n'
        b": keep-alive\n\n"
        b"data: {not json\n\n"
        b'data: ["a list"]\n\n'
        b'data: {"choices":"odd"}\n\n'
        b'data: {"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":" a time","finish_reason":"stop"}]}\n\n'
        b"data: [DONE]\n\n"
    )
    expected = count_text("Once upon a time") + count_text("In a land")
    assert usage_from_stream([stream], 4) == Usage(prompt_tokens=4, completion_tokens=expected, estimated=True)


def test_completion_body_usage_or_estimate() -> None:
    with_usage = {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}}],
        "usage": {"prompt_tokens": 8, "completion_tokens": 2, "completion_tokens_details": {"reasoning_tokens": 1}},
    }
    assert usage_from_completion(json.dumps(with_usage).encode(), 99) == Usage(8, 2, reasoning_tokens=1)
    without = {
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hello there"}},
            {
                "index": 1,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
            },
        ],
    }
    expected = count_text("Hello there") + count_text("f") + count_text("{}")
    assert usage_from_completion(json.dumps(without).encode(), 7) == Usage(7, expected, estimated=True)
    text = {"object": "text_completion", "choices": [{"index": 0, "text": "the end"}]}
    assert usage_from_completion(json.dumps(text).encode(), 3) == Usage(3, count_text("the end"), estimated=True)
    assert usage_from_completion(b"\xff not json", 3) == Usage(3, estimated=True)


def test_chat_prompt_includes_tools() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}]
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            "strict": True,
        },
    }
    plain = estimate_prompt_tokens(Endpoint.CHAT, {"messages": messages})
    assert plain == count_chat_prompt(messages)
    with_tools = estimate_prompt_tokens(Endpoint.CHAT, {"messages": messages, "tools": [tool, "junk"]})
    shown = {k: tool["function"][k] for k in ("name", "description", "parameters")}  # type: ignore[index]
    assert with_tools == plain + count_text(json.dumps(shown, separators=(",", ":")))


def test_chat_prompt_counts_earlier_tool_calls() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    messages = [{"role": "assistant", "content": None, "tool_calls": [call]}, {"role": "tool", "content": "18C"}]
    assert estimate_prompt_tokens(Endpoint.CHAT, {"messages": messages}) == (
        count_chat_prompt(messages) + count_text("get_weather") + count_text('{"city":"Paris"}')
    )


def test_completions_and_embeddings_prompts() -> None:
    assert estimate_prompt_tokens(Endpoint.COMPLETIONS, {"prompt": "Say this is a test"}) == count_text(
        "Say this is a test"
    )
    assert estimate_prompt_tokens(Endpoint.COMPLETIONS, {"prompt": ["a b", "c"]}) == count_text("a b") + count_text("c")
    assert estimate_prompt_tokens(Endpoint.COMPLETIONS, {"prompt": [1212, 318, 257]}) == 3
    assert estimate_prompt_tokens(Endpoint.EMBEDDINGS, {"input": [1212, 318, 257, 1332]}) == 4
    assert estimate_prompt_tokens(Endpoint.EMBEDDINGS, {"input": [[1, 2], [3], []]}) == 3
    assert estimate_prompt_tokens(Endpoint.EMBEDDINGS, {"input": ["hello world", "hi"]}) == count_text(
        "hello world"
    ) + count_text("hi")
    assert estimate_prompt_tokens(Endpoint.EMBEDDINGS, {"input": "hello world"}) == count_text("hello world")


def test_other_endpoints_count_prompt_or_input_text() -> None:
    assert estimate_prompt_tokens(Endpoint.IMAGES, {"prompt": "a red fox"}) == count_text("a red fox")
    parts = [{"type": "text", "text": "is this ok"}, {"type": "image_url", "image_url": {"url": "https://x"}}]
    assert estimate_prompt_tokens(Endpoint.MODERATIONS, {"input": parts}) == count_text("is this ok")


def test_odd_input_counts_zero_and_never_raises() -> None:
    odd: list[object] = [
        {"messages": "hi"},
        {"messages": [None, 3, {"content": 5}], "tools": {"x": 1}},
        {"tools": [{"function": "nope"}, {"type": "web_search", "filters": None}], "messages": None},
        {"prompt": None},
        {"prompt": [True, None, 1.5, [None, "x"]]},
        {"input": {"text": "x"}},
        [],
        None,
    ]
    for endpoint in Endpoint:
        for body in odd:
            assert estimate_prompt_tokens(endpoint, body) >= 0  # type: ignore[arg-type]
    assert estimate_prompt_tokens(Endpoint.EMBEDDINGS, {"input": [True, None, 2.5]}) == 0
    circular: dict[str, object] = {"name": "f"}
    circular["parameters"] = circular
    assert estimate_prompt_tokens(Endpoint.CHAT, {"messages": [], "tools": [circular]}) == count_chat_prompt([])


def test_max_output_tokens() -> None:
    assert max_output_tokens(Endpoint.CHAT, {"max_tokens": 100}, 1024) == 100
    assert max_output_tokens(Endpoint.CHAT, {"max_completion_tokens": 50, "max_tokens": 100}, 1024) == 50
    assert max_output_tokens(Endpoint.CHAT, {"max_completion_tokens": 0, "max_tokens": 100}, 1024) == 100
    assert max_output_tokens(Endpoint.CHAT, {"max_tokens": 100, "n": 3}, 1024) == 300
    assert max_output_tokens(Endpoint.CHAT, {"n": 2}, 1024) == 2048
    assert max_output_tokens(Endpoint.CHAT, {"max_tokens": "100", "n": True}, 1024) == 1024
    assert max_output_tokens(Endpoint.COMPLETIONS, {"max_tokens": 16, "n": 2, "best_of": 5}, 1024) == 80
    assert max_output_tokens(Endpoint.EMBEDDINGS, {"max_tokens": 16}, 1024) == 0
    assert max_output_tokens(Endpoint.IMAGES, {"n": 4}, 1024) == 1024
