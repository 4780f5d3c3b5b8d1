from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from providers.sse import SSEDecoder, SSEvent

STREAM = (
    b'event: message_start\ndata: {"a": 1}\n\n'
    b": ping comment\n\n"
    b'event: content_block_delta\r\ndata: {"b":\r\ndata: 2}\r\n\r\n'
    b"data: plain\n\n"
    b"event: no_data\n\n"
)
EXPECTED = [
    SSEvent("message_start", '{"a": 1}'),
    SSEvent("content_block_delta", '{"b":\n2}'),
    SSEvent("message", "plain"),
]


def decode(chunks: list[bytes]) -> list[SSEvent]:
    decoder = SSEDecoder()
    out: list[SSEvent] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    return out + decoder.flush()


def test_whole_stream() -> None:
    assert decode([STREAM]) == EXPECTED


@settings(max_examples=300)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    assert decode(chunks) == EXPECTED


def test_every_single_byte_split() -> None:
    assert decode([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


def test_truncated_stream_flushes_last_event() -> None:
    assert decode([b"data: x\ndata: y"]) == [SSEvent("message", "x\ny")]
