"""Anthropic Message → OpenAI `chat.completion` (and legacy `text_completion`). Pure.

Content blocks without an OpenAI equivalent (`thinking`, `redacted_thinking`, server tool blocks) are
left out; their tokens stay in the usage.
"""

from __future__ import annotations

from typing import Any

import orjson

from providers.base import Usage
from providers.chat_translation import openai_usage
from providers.errors import UpstreamProtocolError

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def usage_from_anthropic(usage: Any) -> Usage:
    """Anthropic's `usage` as ours. OpenAI counts cached tokens inside `prompt_tokens`; Anthropic reports
    `input_tokens` apart from cache reads and cache writes, so the three are summed."""
    if not isinstance(usage, dict):
        return Usage()
    read = _int(usage.get("cache_read_input_tokens"))
    write = _int(usage.get("cache_creation_input_tokens"))
    details = usage.get("output_tokens_details")
    thinking = _int(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    return Usage(
        prompt_tokens=_int(usage.get("input_tokens")) + read + write,
        completion_tokens=_int(usage.get("output_tokens")),
        cached_tokens=read,
        reasoning_tokens=thinking,
        cache_write_tokens=write,
    )


def anthropic_to_openai(message: dict[str, Any], *, model: str, created: int) -> dict[str, Any]:
    """Translate a non-streaming Messages response; raises `UpstreamProtocolError` if it is not one."""
    content = message.get("content")
    if message.get("type") != "message" or not isinstance(content, list):
        raise UpstreamProtocolError("upstream returned JSON that is not an Anthropic message")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif block.get("type") == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            function = {"name": block.get("name"), "arguments": arguments}
            calls.append({"id": block.get("id"), "type": "function", "function": function})
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        reply["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{message.get('id', '')}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "message": reply, "logprobs": None, "finish_reason": finish_reason(message.get("stop_reason"))}
        ],
        "usage": openai_usage(usage_from_anthropic(message.get("usage"))),
    }


def chat_to_text_completion(chat: dict[str, Any]) -> dict[str, Any]:
    """A translated `chat.completion` as a legacy `text_completion` (the reply text, same usage)."""
    choice = chat["choices"][0]
    return {
        "id": "cmpl-" + chat["id"].removeprefix("chatcmpl-"),
        "object": "text_completion",
        "created": chat["created"],
        "model": chat["model"],
        "choices": [
            {
                "index": 0,
                "text": choice["message"]["content"] or "",
                "logprobs": None,
                "finish_reason": choice["finish_reason"],
            }
        ],
        "usage": chat["usage"],
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
