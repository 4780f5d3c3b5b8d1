"""The pass-through stream scanner, fed every possible chunk split of recorded OpenAI streams."""

from __future__ import annotations

import itertools

import orjson
import pytest

from providers.openai_sse import OpenAIStreamScanner, first_event_json

CHUNK = b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":null}],"usage":null}\n\n'
FINISH = b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}\n\n'
USAGE = b'data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10,"prompt_tokens_details":{"cached_tokens":2}}}\n\n'
DONE = b"data: [DONE]\n\n"
STREAM = CHUNK % b"Hel" + CHUNK % b"lo" + FINISH + USAGE + DONE


def feed_split(data: bytes, cuts: list[int], strip_usage: bool) -> tuple[bytes, OpenAIStreamScanner]:
    scanner = OpenAIStreamScanner(strip_usage=strip_usage)
    out = b""
    points = [0, *cuts, len(data)]
    for start, stop in itertools.pairwise(points):
        out += scanner.feed(data[start:stop])
    return out, scanner


@pytest.mark.parametrize("strip_usage", [False, True])
def test_every_two_way_split_gives_whole_events_and_usage(strip_usage: bool) -> None:
    expected_events = 5 if not strip_usage else 4
    for cut in range(1, len(STREAM)):
        out, scanner = feed_split(STREAM, [cut], strip_usage)
        assert scanner.done and scanner.finished
        assert scanner.usage is not None and scanner.usage.prompt_tokens == 7
        assert scanner.usage.completion_tokens == 3 and scanner.usage.cached_tokens == 2
        events = [e for e in out.split(b"\n\n") if e]
        assert len(events) == expected_events
        assert out.endswith(DONE)
        assert scanner.leftover() == b""


def test_three_way_splits_never_emit_partial_events() -> None:
    for first in range(1, len(STREAM), 7):
        for second in range(first + 1, len(STREAM), 11):
            out, _ = feed_split(STREAM, [first, second], strip_usage=False)
            assert out == STREAM


def test_strip_usage_removes_usage_chunk_and_null_fields() -> None:
    out, scanner = feed_split(STREAM, [], strip_usage=True)
    assert b'"usage"' not in out
    assert scanner.usage is not None and scanner.usage.total_tokens == 10
    for event in out.split(b"\n\n"):
        if event.startswith(b"data: {"):
            payload = orjson.loads(event[6:])
            assert payload["choices"], "the usage-only chunk must be gone"


def test_keeps_usage_when_client_asked() -> None:
    out, _ = feed_split(STREAM, [], strip_usage=False)
    assert out == STREAM


def test_crlf_line_endings_are_normalised() -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    for cut in range(1, len(crlf), 5):
        out, scanner = feed_split(crlf, [cut], strip_usage=False)
        assert out == STREAM and scanner.done


def test_done_inside_content_is_not_the_end() -> None:
    out, scanner = feed_split(CHUNK % b"[DONE]", [], strip_usage=False)
    assert not scanner.done and not scanner.finished


def test_truncated_stream_leaves_leftover() -> None:
    data = CHUNK % b"a" + b'data: {"id":"c1","choi'
    out, scanner = feed_split(data, [], strip_usage=False)
    assert out == CHUNK % b"a"
    assert scanner.leftover() == b'data: {"id":"c1","choi'
    assert not scanner.done and not scanner.finished


def test_first_event_json_skips_comments_and_rejects_garbage() -> None:
    assert first_event_json(b": keep-alive\n\n" + CHUNK % b"x")["id"] == "c1"  # type: ignore[index]
    assert first_event_json(b"data: {not json\n\n") is None


@pytest.mark.parametrize(
    ("finish", "finished"),
    [
        (b'"finish_reason":"stop"', True),
        (b'"finish_reason": "length"', True),
        (b'"finish_reason" : "tool_calls"', True),
        (b'"finish_reason":null', False),
        (b'"finish_reason": null', False),
    ],
)
def test_a_finish_reason_is_seen_in_either_spacing_and_null_is_not_one(finish: bytes, finished: bool) -> None:
    scanner = OpenAIStreamScanner(strip_usage=False)
    event = b'data: {"choices":[{"index":0,"delta":{},' + finish + b"}]}\n\n"
    assert scanner.feed(event) == event
    assert scanner.finished is finished
