"""Gemini `GenerateContentResponse` → OpenAI `chat.completion`. Pure.

- Each candidate becomes a choice (its `index`, 0 when absent). Text parts are joined; `thought` parts
  (thought summaries) are left out, their tokens stay in the usage; parts without an OpenAI equivalent
  (`inlineData` output, `executableCode`...) are left out.
- `functionCall` parts become `tool_calls` with ids `call_<n>` (n counts the calls of the choice: Gemini
  gives function calls no id) and the args as a JSON string. A part's `thoughtSignature` rides along as
  the tool call's `extra_content.google.thought_signature`, the field Google's own OpenAI endpoint uses,
  so that a client sending the message back returns it (see `request`).
- Finish reasons: STOP → stop (tool_calls when the choice has function calls), MAX_TOKENS → length,
  SAFETY, RECITATION, BLOCKLIST, PROHIBITED_CONTENT, SPII and the IMAGE_* filters → content_filter;
  anything else (OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL, reasons added later) → stop, as a client can
  handle no other value.
- A prompt Google blocked (`promptFeedback`, no candidates) is one choice with empty content and
  finish_reason content_filter: an answer the client can read, not an error.
"""

from __future__ import annotations

from typing import Any

import orjson

from providers.base import Usage
from providers.chat_translation import openai_usage
from providers.errors import UpstreamProtocolError

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}


def finish_reason(reason: Any, *, has_tool_calls: bool) -> str:
    mapped = FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"
    return "tool_calls" if mapped == "stop" and has_tool_calls else mapped


def usage_from_gemini(meta: Any) -> Usage:
    """Gemini's `usageMetadata` as ours. `promptTokenCount` already includes cached tokens (as OpenAI's
    prompt_tokens does); thinking tokens are billed as output, so completion = candidates + thoughts."""
    if not isinstance(meta, dict):
        return Usage()
    thoughts = _int(meta.get("thoughtsTokenCount"))
    return Usage(
        prompt_tokens=_int(meta.get("promptTokenCount")) + _int(meta.get("toolUsePromptTokenCount")),
        completion_tokens=_int(meta.get("candidatesTokenCount")) + thoughts,
        cached_tokens=_int(meta.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def prompt_blocked(resp: dict[str, Any]) -> bool:
    """Google refused the prompt itself: feedback and no candidates."""
    return not resp.get("candidates") and isinstance(resp.get("promptFeedback"), dict)


def tool_call(part: dict[str, Any], position: int) -> dict[str, Any]:
    """An OpenAI tool call for a `functionCall` part, the `position`-th call of its choice."""
    call = part["functionCall"]
    args = call.get("args") if isinstance(call.get("args"), dict) else {}
    out: dict[str, Any] = {
        "id": f"call_{position}",
        "type": "function",
        "function": {"name": call.get("name"), "arguments": orjson.dumps(args).decode()},
    }
    if isinstance(part.get("thoughtSignature"), str):
        out["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
    return out


def candidate_parts(candidate: dict[str, Any]) -> list[dict[str, Any]]:
    """The candidate's parts worth translating: answer text and function calls, in order."""
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return [part for part in parts or [] if isinstance(part, dict) and _translated(part)]


def _translated(part: dict[str, Any]) -> bool:
    if isinstance(part.get("functionCall"), dict):
        return True
    return isinstance(part.get("text"), str) and not part.get("thought")


def gemini_to_openai(resp: dict[str, Any], *, model: str, request_id: str, created: int) -> dict[str, Any]:
    """Translate a non-streaming response; raises `UpstreamProtocolError` if it is not one."""
    candidates = resp.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        if not prompt_blocked(resp):
            raise UpstreamProtocolError("upstream returned JSON that is not a Gemini response (no candidates)")
        choices = [_choice(0, "", [], "content_filter")]
    else:
        choices = [_translate_candidate(c, position) for position, c in enumerate(candidates) if isinstance(c, dict)]
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": openai_usage(usage_from_gemini(resp.get("usageMetadata"))),
    }


def _translate_candidate(candidate: dict[str, Any], position: int) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in candidate_parts(candidate):
        if "functionCall" in part:
            calls.append(tool_call(part, len(calls)))
        else:
            texts.append(part["text"])
    index = candidate.get("index")
    finish = finish_reason(candidate.get("finishReason"), has_tool_calls=bool(calls))
    return _choice(index if isinstance(index, int) else position, "".join(texts), calls, finish)


def _choice(index: int, text: str, calls: list[dict[str, Any]], finish: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return {"index": index, "message": message, "logprobs": None, "finish_reason": finish}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
