"""Gemini `streamGenerateContent?alt=sse` chunks → OpenAI `chat.completion.chunk`s.

Every SSE `data:` of the stream is a whole `GenerateContentResponse` carrying the next piece of each
candidate: text parts are deltas, a `functionCall` part arrives complete, the last chunk of a candidate
has its `finishReason`, and `usageMetadata` is cumulative (the last one seen holds the totals). There is
no end-of-stream event: the stream is complete when the connection ends after every candidate finished
(or after `promptFeedback` blocked the prompt). An `{"error": ...}` object may replace the rest.
Translation of parts and finish reasons is shared with `response`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from providers.base import Usage
from providers.chat_translation import openai_usage
from providers.chat_translation import parse_event as parse_event  # re-exported: `feed()` takes what it returns
from providers.errors import UpstreamError, UpstreamProtocolError
from providers.gemini.response import candidate_parts, finish_reason, tool_call, usage_from_gemini

Chunk = dict[str, Any]


@dataclass(slots=True)
class _Choice:
    tool_calls: int = 0
    finished: bool = False


class GeminiStreamTranslator:
    """State of one streamed response. `feed()` each parsed SSE data object and send the chunks it returns;
    when the upstream closes, send what `end()` returns (the usage chunk) — it raises
    `UpstreamProtocolError` if a candidate never finished.

    With `include_usage`, every chunk carries `"usage": null` and a last chunk with no choices carries the
    usage, as OpenAI does for `stream_options.include_usage`; `usage` is kept either way.
    """

    def __init__(self, *, model: str, request_id: str, created: int, include_usage: bool) -> None:
        self._envelope: Chunk = {
            "id": f"chatcmpl-{request_id}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._include_usage = include_usage
        self._choices: dict[int, _Choice] = {}
        self._meta: dict[str, Any] | None = None

    @property
    def started(self) -> bool:
        return bool(self._choices)

    @property
    def usage(self) -> Usage:
        return usage_from_gemini(self._meta)

    def feed(self, data: dict[str, Any]) -> list[Chunk]:
        error = data.get("error")
        if error is not None:
            error = error if isinstance(error, dict) else {"message": str(error)}
            status = error.get("status")
            message = error.get("message") or "unknown error"
            raise UpstreamError(f"upstream stream error: {message}", code=str(status) if status else None)
        if isinstance(data.get("usageMetadata"), dict):
            self._meta = data["usageMetadata"]
        chunks: list[Chunk] = []
        candidates = data.get("candidates")
        for position, candidate in enumerate(candidates if isinstance(candidates, list) else []):
            if isinstance(candidate, dict):
                chunks.extend(self._candidate(candidate, position))
        feedback = data.get("promptFeedback")
        if not candidates and isinstance(feedback, dict) and feedback.get("blockReason"):
            chunks.extend(self._blocked())
        return chunks

    def end(self) -> list[Chunk]:
        """The upstream closed the stream: the closing usage chunk, or raise if it was cut short."""
        if not self._choices:
            raise UpstreamProtocolError("upstream stream ended before any candidate")
        if not all(choice.finished for choice in self._choices.values()):
            raise UpstreamProtocolError("upstream stream ended before a finishReason")
        if not self._include_usage:
            return []
        return [{**self._envelope, "choices": [], "usage": openai_usage(self.usage)}]

    def _start(self, index: int) -> tuple[_Choice, list[Chunk]]:
        choice = self._choices.get(index)
        if choice is not None:
            return choice, []
        choice = self._choices[index] = _Choice()
        return choice, [self._chunk(index, {"role": "assistant", "content": ""})]

    def _candidate(self, candidate: dict[str, Any], position: int) -> list[Chunk]:
        index = candidate.get("index")
        index = index if isinstance(index, int) else position
        choice, chunks = self._start(index)
        if choice.finished:
            return chunks
        for part in candidate_parts(candidate):
            if "functionCall" in part:
                call = {"index": choice.tool_calls, **tool_call(part, choice.tool_calls)}
                choice.tool_calls += 1
                chunks.append(self._chunk(index, {"tool_calls": [call]}))
            elif part["text"]:
                chunks.append(self._chunk(index, {"content": part["text"]}))
        reason = candidate.get("finishReason")
        if reason is not None:
            choice.finished = True
            finish = finish_reason(reason, has_tool_calls=choice.tool_calls > 0)
            chunks.append(self._chunk(index, {}, finish))
        return chunks

    def _blocked(self) -> list[Chunk]:
        chunks: list[Chunk] = []
        for index in sorted(self._choices) or [0]:
            choice, started = self._start(index)
            chunks.extend(started)
            if not choice.finished:
                choice.finished = True
                chunks.append(self._chunk(index, {}, "content_filter"))
        return chunks

    def _chunk(self, index: int, delta: dict[str, Any], finish: str | None = None) -> Chunk:
        chunk: Chunk = {
            **self._envelope,
            "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self._include_usage:
            chunk["usage"] = None
        return chunk
