"""OpenAI `chat.completion.chunk`s → Anthropic Messages SSE events (https://docs.anthropic.com/en/api/streaming).

Anthropic's flow is `message_start`; per content block `content_block_start`, `content_block_delta`…,
`content_block_stop`; then `message_delta` (stop reason, usage) and `message_stop`. Blocks are numbered
from 0 in the order they open, and one closes before the next opens. Text becomes a text block with
`text_delta`s; each OpenAI tool call (told apart by its `index`) becomes a `tool_use` block whose
arguments arrive as `input_json_delta`s, passed through unchanged.

OpenAI sends the usage in a chunk after the finish chunk, so the closing events come from `finish()`,
called when the upstream stream is over. Only the first choice is read; reasoning deltas some backends add
(`reasoning_content`) are dropped, like thinking blocks in the request.
"""

from __future__ import annotations

from typing import Any

import orjson

from providers.anthropic_front.errors import anthropic_error
from providers.anthropic_front.response import anthropic_usage, message_id, stop_fields, tool_use_id
from providers.base import Usage
from providers.chat_translation import tool_call_position
from providers.errors import GatewayError, UpstreamProtocolError

Event = dict[str, Any]


def encode_event(event: Event) -> bytes:
    """One SSE event, named after its `type` as Anthropic names every event."""
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def ping_event() -> bytes:
    """A keep-alive Anthropic clients ignore; may be sent anywhere in the stream."""
    return encode_event({"type": "ping"})


def error_event(error: GatewayError) -> bytes:
    """Anthropic's in-stream `error` event, for a failure after the response has started."""
    return encode_event(anthropic_error(error))


class OpenAIToAnthropicStream:
    """State of one streamed reply. `feed()` each parsed chunk and send the bytes it returns (possibly
    empty), then call `finish()` once the upstream stream has ended, and send its bytes: the open block's
    `content_block_stop`, `message_delta` and `message_stop`. On a failure midway, send `error_event()`
    instead of `finish()`.

    `feed()` raises `UpstreamProtocolError` if the upstream interleaves the arguments of two tool calls,
    which Anthropic's sequential blocks cannot express.
    """

    def __init__(self, *, model: str) -> None:
        self._model = model
        self._id: str | None = None
        self._block = -1
        """Index of the last block opened."""
        self._open: tuple[str, int] | None = None
        """("text", 0) or ("tool", OpenAI tool call index) for the block that is open."""
        self._tools: dict[int, int] = {}
        """OpenAI tool call index → Anthropic block index."""
        self._tool_ids: dict[int, str] = {}
        self._finished_choice: dict[str, Any] = {}
        self._refused = False
        self._done = False
        self.usage: Usage | None = None
        """The upstream's usage, once a chunk has carried it."""

    @property
    def started(self) -> bool:
        """`message_start` has been produced."""
        return self._id is not None

    def feed(self, chunk: dict[str, Any]) -> bytes:
        if self._done:
            return b""
        usage = Usage.from_openai(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        events = self._start(chunk.get("id"))
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                events.extend(self._delta(delta))
            if choice.get("finish_reason"):
                self._finished_choice = choice
        return b"".join(encode_event(event) for event in events)

    def finish(self) -> bytes:
        """The closing events; the reply's stop reason comes from the finish chunk, if one was fed."""
        if self._done:
            return b""
        self._done = True
        events = [*self._start(None), *self._close()]
        reason, sequence = stop_fields(self._finished_choice, has_tool_use=bool(self._tools), refused=self._refused)
        events.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": sequence},
                "usage": anthropic_usage(self.usage),
            }
        )
        events.append({"type": "message_stop"})
        return b"".join(encode_event(event) for event in events)

    def _start(self, completion_id: Any) -> list[Event]:
        if self._id is not None:
            return []
        self._id = message_id(completion_id)
        message: Event = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": anthropic_usage(self.usage),
        }
        return [{"type": "message_start", "message": message}]

    def _delta(self, delta: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        text = delta.get("content")
        if isinstance(text, str) and text:
            events.extend(self._text(text))
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self._refused = True
            events.extend(self._text(refusal))
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict):
                events.extend(self._tool_call(call))
        return events

    def _text(self, text: str) -> list[Event]:
        events: list[Event] = []
        if self._open != ("text", 0):
            events.extend(self._open_block(("text", 0), {"type": "text", "text": ""}))
        events.append(
            {"type": "content_block_delta", "index": self._block, "delta": {"type": "text_delta", "text": text}}
        )
        return events

    def _tool_call(self, call: dict[str, Any]) -> list[Event]:
        position = tool_call_position(call, self._tool_ids)
        function = call.get("function")
        if not isinstance(function, dict):
            function = {}
        events: list[Event] = []
        if position not in self._tools:
            call_id = str(call.get("id") or tool_use_id())
            block: Event = {"type": "tool_use", "id": call_id, "name": function.get("name") or "", "input": {}}
            events.extend(self._open_block(("tool", position), block))
            self._tools[position] = self._block
            self._tool_ids[position] = call_id
        elif self._open != ("tool", position):
            raise UpstreamProtocolError("upstream interleaved the arguments of two tool calls")
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            delta = {"type": "input_json_delta", "partial_json": arguments}
            events.append({"type": "content_block_delta", "index": self._block, "delta": delta})
        return events

    def _open_block(self, key: tuple[str, int], block: dict[str, Any]) -> list[Event]:
        events = self._close()
        self._block += 1
        self._open = key
        events.append({"type": "content_block_start", "index": self._block, "content_block": block})
        return events

    def _close(self) -> list[Event]:
        if self._open is None:
            return []
        self._open = None
        return [{"type": "content_block_stop", "index": self._block}]
