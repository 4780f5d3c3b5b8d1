"""OpenAI `chat.completion` → Anthropic `message` object (https://docs.anthropic.com/en/api/messages). Pure.

Where the two formats differ, this module decides:

- Only the first choice is read (the translated request never asks for more).
- `content` becomes one text block, then each tool call a `tool_use` block. Arguments that are not a JSON
  object cannot be an Anthropic `input`: they become `{"_raw_arguments": "<the text>"}` rather than `{}`,
  so the model's output is kept and a client validating the input against its schema reports it (an
  empty string is read as `{}`, what some backends send for a call without arguments). Streams pass the
  arguments through unchanged, as Anthropic's `input_json_delta` does.
- An OpenAI `refusal` becomes a text block with stop reason `refusal`. Reasoning text some backends add
  (`reasoning_content`) is dropped: a thinking block would need a signature the gateway cannot make.
- Finish reasons: `stop` → `end_turn`, `length` → `max_tokens`, `tool_calls` (and the legacy
  `function_call`, or tool calls under `stop`, as some backends send) → `tool_use`, `content_filter` (or a
  refusal under `stop`) → `refusal`.
  OpenAI does not say when a stop sequence ended the reply; vLLM does, with a string `stop_reason` in the
  choice, which becomes `stop_sequence`. Elsewhere a stop sequence reads as `end_turn`.
- Usage: Anthropic counts `input_tokens` apart from cache reads, so the cached tokens are taken out of
  `prompt_tokens` and reported as `cache_read_input_tokens`. OpenAI reports no cache writes: 0.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from providers.base import Usage

RAW_ARGUMENTS_KEY = "_raw_arguments"

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_fields(choice: dict[str, Any], *, has_tool_use: bool = False, refused: bool = False) -> tuple[str, str | None]:
    """Anthropic's `stop_reason` and `stop_sequence` for a finished OpenAI choice."""
    finish = choice.get("finish_reason")
    reason = STOP_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"
    matched = choice.get("stop_reason")  # vLLM: the stop string that matched (or a stop token id)
    if reason != "end_turn":
        return reason, None
    if has_tool_use:
        return "tool_use", None
    if refused:
        return "refusal", None
    if finish == "stop" and isinstance(matched, str) and matched:
        return "stop_sequence", matched
    return "end_turn", None


def anthropic_usage(usage: Usage | None) -> dict[str, int]:
    usage = usage or Usage()
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    return {
        "input_tokens": usage.prompt_tokens - cached,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": usage.completion_tokens,
    }


def message_id(completion_id: Any) -> str:
    """`msg_` and the upstream completion's id (without its `chatcmpl-` prefix), or a random one."""
    if isinstance(completion_id, str) and completion_id:
        return "msg_" + completion_id.removeprefix("chatcmpl-")
    return "msg_" + uuid.uuid4().hex


def tool_use_id() -> str:
    """An id for a tool call the upstream sent without one."""
    return "toolu_" + uuid.uuid4().hex[:24]


def tool_input(arguments: Any) -> dict[str, Any]:
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {RAW_ARGUMENTS_KEY: arguments}


def openai_to_messages_response(completion: dict[str, Any], *, model: str) -> dict[str, Any]:
    """Translate a `chat.completion` into an Anthropic `message`, named after `model` (the client's model)."""
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    reply = choice.get("message")
    if not isinstance(reply, dict):
        reply = {}
    content: list[dict[str, Any]] = []
    text = reply.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    refusal = reply.get("refusal")
    if isinstance(refusal, str) and refusal:
        content.append({"type": "text", "text": refusal})
    for call in reply.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        call_id = str(call.get("id") or tool_use_id())
        name = function.get("name") or ""
        content.append(
            {"type": "tool_use", "id": call_id, "name": name, "input": tool_input(function.get("arguments"))}
        )
    has_tool_use = any(block["type"] == "tool_use" for block in content)
    reason, sequence = stop_fields(choice, has_tool_use=has_tool_use, refused=bool(refusal))
    return {
        "id": message_id(completion.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": anthropic_usage(Usage.from_openai(completion.get("usage"))),
    }
