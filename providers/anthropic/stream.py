"""Anthropic Messages SSE events → OpenAI `chat.completion.chunk`s (https://docs.anthropic.com/en/api/streaming).

The event flow is `message_start`, per content block `content_block_start`, `content_block_delta`…,
`content_block_stop`, then `message_delta` (stop reason, usage) and `message_stop`; `ping` may come
anywhere and `error` may replace the rest. Usage in `message_delta` is cumulative: its fields replace
those of `message_start`, they are not added. Unknown event and delta types are ignored, as Anthropic
asks of clients (new ones may be added).
"""

from __future__ import annotations

from typing import Any

import orjson

from providers.anthropic.response import finish_reason, usage_from_anthropic
from providers.base import Usage
from providers.chat_translation import openai_usage, parse_event
from providers.errors import UpstreamError, UpstreamProtocolError
from providers.sse import SSEvent

Chunk = dict[str, Any]
_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


class AnthropicStreamTranslator:
    """State of one streamed message. `feed()` each decoded SSE event, send the chunks it returns, then
    call `end()`: a stream that stopped before `message_stop` raises `UpstreamProtocolError`.

    With `text_completion`, chunks are legacy `text_completion` chunks (text only) instead of chat ones.
    With `include_usage`, every chunk carries `"usage": null` and a last chunk with no choices carries the
    usage, as OpenAI does for `stream_options.include_usage`; `usage` is kept either way.
    """

    def __init__(self, *, model: str, created: int, include_usage: bool, text_completion: bool = False) -> None:
        self._model = model
        self._created = created
        self._include_usage = include_usage
        self._text_completion = text_completion
        self._object = "text_completion" if text_completion else "chat.completion.chunk"
        self._id: str | None = None
        self._usage: dict[str, Any] = {}
        self._tools: dict[int, int] = {}
        """Anthropic content block index → OpenAI tool call index."""
        self._finished = False
        self.done = False
        """`message_stop` was seen."""

    @property
    def started(self) -> bool:
        return self._id is not None

    @property
    def usage(self) -> Usage:
        return usage_from_anthropic(self._usage)

    def feed(self, event: SSEvent) -> list[Chunk]:
        data = parse_event(event)
        name = event.event if event.event != "message" else str(data.get("type", ""))
        return self.translate(name, data)

    def translate(self, event: str, data: dict[str, Any]) -> list[Chunk]:
        if event == "error":
            error = data.get("error")
            if not isinstance(error, dict):
                error = {}
            message = error.get("message") or "unknown error"
            raise UpstreamError(f"upstream stream error: {message}", code=error.get("type"))
        if event == "ping" or self.done:
            return []
        if event == "message_start":
            return self._message_start(data.get("message"))
        if self._id is None:
            if event in {"content_block_start", "content_block_delta", "message_delta", "message_stop"}:
                raise UpstreamProtocolError(f"upstream stream sent {event} before message_start")
            return []
        if event == "content_block_start":
            return self._block_start(data.get("index"), data.get("content_block"))
        if event == "content_block_delta":
            return self._block_delta(data.get("index"), data.get("delta"))
        if event == "message_delta":
            return self._message_delta(data)
        if event == "message_stop":
            return self._message_stop()
        return []  # content_block_stop and event types added after this was written

    def end(self) -> None:
        """The upstream closed the stream: raise unless it was complete."""
        if not self.done:
            raise UpstreamProtocolError("upstream stream ended before message_stop")

    def _message_start(self, message: Any) -> list[Chunk]:
        if not isinstance(message, dict) or self._id is not None:
            raise UpstreamProtocolError("upstream stream sent an invalid or repeated message_start")
        prefix = "cmpl-" if self._text_completion else "chatcmpl-"
        self._id = prefix + str(message.get("id", ""))
        self._update_usage(message.get("usage"))
        return [] if self._text_completion else [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, index: Any, block: Any) -> list[Chunk]:
        if not isinstance(block, dict):
            return []
        if block.get("type") == "text" and block.get("text"):
            return self._text(str(block["text"]))
        if block.get("type") != "tool_use" or self._text_completion:
            return []
        position = len(self._tools)
        self._tools[index] = position
        arguments = orjson.dumps(block["input"]).decode() if block.get("input") else ""
        call = {
            "index": position,
            "id": block.get("id"),
            "type": "function",
            "function": {"name": block.get("name"), "arguments": arguments},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, index: Any, delta: Any) -> list[Chunk]:
        if not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return self._text(str(delta["text"]))
        if kind == "input_json_delta" and delta.get("partial_json") and index in self._tools:
            call = {"index": self._tools[index], "function": {"arguments": str(delta["partial_json"])}}
            return [self._chunk({"tool_calls": [call]})]
        return []  # thinking_delta, signature_delta, citations_delta: no OpenAI equivalent

    def _message_delta(self, data: dict[str, Any]) -> list[Chunk]:
        self._update_usage(data.get("usage"))
        delta = data.get("delta")
        stop_reason = delta.get("stop_reason") if isinstance(delta, dict) else None
        if stop_reason is None or self._finished:
            return []
        self._finished = True
        return [self._chunk({}, finish_reason(stop_reason))]

    def _message_stop(self) -> list[Chunk]:
        self.done = True
        chunks = [] if self._finished else [self._chunk({}, "stop")]
        self._finished = True
        if self._include_usage:
            chunks.append({**self._envelope(), "choices": [], "usage": openai_usage(self.usage)})
        return chunks

    def _update_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            for key in _USAGE_KEYS:
                if isinstance(usage.get(key), int):
                    self._usage[key] = usage[key]
            if isinstance(usage.get("output_tokens_details"), dict):
                self._usage["output_tokens_details"] = usage["output_tokens_details"]

    def _text(self, text: str) -> list[Chunk]:
        return [self._chunk({"content": text})]

    def _envelope(self) -> Chunk:
        return {"id": self._id, "object": self._object, "created": self._created, "model": self._model}

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> Chunk:
        if self._text_completion:
            choice: dict[str, Any] = {"index": 0, "text": delta.get("content", ""), "logprobs": None}
        else:
            choice = {"index": 0, "delta": delta, "logprobs": None}
        choice["finish_reason"] = finish
        chunk = {**self._envelope(), "choices": [choice]}
        if self._include_usage:
            chunk["usage"] = None
        return chunk
