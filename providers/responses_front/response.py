"""OpenAI `chat.completion` → a Responses `response` object. Pure.

https://platform.openai.com/docs/api-reference/responses/object

Where the two APIs differ, this module decides:

- Only the first choice is read (the translated request never asks for more).
- `output` holds a `message` item, then one `function_call` item per tool call (the chat call's `id` is
  its `call_id`). The message carries an `output_text` part with the content and a `refusal` part with the
  chat `refusal`; it is left out when there is neither but there are tool calls, and an empty text part
  stands in when there is nothing at all, so `output[0]` is always there. Empty tool arguments (what some
  backends send for a call without arguments) become `{}`: Responses arguments are JSON.
- Status: finish reason `length` → `incomplete` with `incomplete_details.reason` `max_output_tokens`,
  `content_filter` → `incomplete` with reason `content_filter`, anything else → `completed`. In an
  incomplete response the last item, the one cut short, is `incomplete` too.
- Usage: `prompt_tokens` → `input_tokens` (cached tokens in `input_tokens_details`), `completion_tokens`
  → `output_tokens` (reasoning tokens in `output_tokens_details`). No usage from the upstream → `null`,
  not zeros: unknown is not nothing.
- The rest echoes the client's request as OpenAI does (`instructions`, `tools`, `tool_choice`, `text`...).
  Sampling parameters the client did not send are `null`: the backend's defaults are not OpenAI's, and the
  gateway does not know them. `store` is false (nothing is stored), `truncation` is `disabled` (the gateway
  never truncates) and `previous_response_id` is null.
- Logprobs from the chat choice (asked for by `top_logprobs` or `include`) become the text part's.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from providers.base import Usage

INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}
_ECHOED = ("instructions", "max_output_tokens", "max_tool_calls", "prompt_cache_key", "safety_identifier")
_SAMPLING = ("temperature", "top_p", "top_logprobs", "user")


def new_id(prefix: str) -> str:
    """An id like OpenAI's: `resp_`, `msg_` or `fc_` and 48 random hex digits."""
    return f"{prefix}_{secrets.token_hex(24)}"


def outcome(finish_reason: Any) -> tuple[str, dict[str, str] | None]:
    """The response's `status` and `incomplete_details` for a chat finish reason."""
    reason = INCOMPLETE_REASONS.get(finish_reason) if isinstance(finish_reason, str) else None
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def responses_usage(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": usage.cache_write_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def text_logprobs(logprobs: Any) -> list[dict[str, Any]]:
    """A chat choice's `logprobs.content` as Responses text logprobs (`[]` when there are none)."""
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    out = []
    for entry in content if isinstance(content, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("token"), str):
            top = entry.get("top_logprobs")
            out.append({**_logprob(entry), "top_logprobs": [_logprob(t) for t in top or [] if isinstance(t, dict)]})
    return out


def _logprob(entry: dict[str, Any]) -> dict[str, Any]:
    token = str(entry.get("token") or "")
    raw = entry.get("bytes")
    data = raw if isinstance(raw, list) else list(token.encode())
    return {"token": token, "bytes": data, "logprob": float(entry.get("logprob") or 0.0)}


def text_part(text: str, logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs or []}


def refusal_part(refusal: str) -> dict[str, Any]:
    return {"type": "refusal", "refusal": refusal}


def message_item(item_id: str, content: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def response_object(
    request: dict[str, Any],
    *,
    model: str,
    response_id: str,
    created_at: int,
    status: str,
    output: list[dict[str, Any]],
    usage: Usage | None = None,
    incomplete_details: dict[str, str] | None = None,
    service_tier: Any = None,
) -> dict[str, Any]:
    """A whole `response` object; `request` is the client's Responses body, whose settings it echoes."""
    echoed = {key: request.get(key) for key in _ECHOED}
    reasoning = _object(request.get("reasoning"))
    text = _object(request.get("text"))
    metadata = request.get("metadata")
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": None,
        "incomplete_details": incomplete_details,
        "instructions": echoed["instructions"],
        "max_output_tokens": echoed["max_output_tokens"],
        "max_tool_calls": echoed["max_tool_calls"],
        "model": model,
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls") is not False,
        "previous_response_id": None,
        "prompt_cache_key": echoed["prompt_cache_key"],
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": echoed["safety_identifier"],
        "service_tier": service_tier if isinstance(service_tier, str) else None,
        "store": False,
        "text": {"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity")},
        "tool_choice": request.get("tool_choice") or "auto",
        "tools": [_echo_tool(tool) for tool in request.get("tools") or [] if isinstance(tool, dict)],
        "truncation": "disabled",
        "usage": responses_usage(usage),
        "metadata": metadata if isinstance(metadata, dict) else {},
        **{key: request.get(key) for key in _SAMPLING},
    }


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _echo_tool(tool: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "description", "parameters", "strict")
    return {"type": tool.get("type"), **{key: tool.get(key) for key in keys}}


def chat_completion_to_response(
    completion: dict[str, Any],
    request: dict[str, Any],
    *,
    model: str,
    response_id: str | None = None,
    created_at: int | None = None,
) -> dict[str, Any]:
    """Translate a `chat.completion` into a Responses `response`, named after `model` (the client's model).

    `request` is the client's original Responses body; `created_at` defaults to the completion's `created`.
    """
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    reply = choice.get("message")
    if not isinstance(reply, dict):
        reply = {}
    status, incomplete = outcome(choice.get("finish_reason"))
    output = _output(reply, text_logprobs(choice.get("logprobs")))
    if status == "incomplete":
        output[-1]["status"] = "incomplete"
    if created_at is None:
        created = completion.get("created")
        created_at = created if isinstance(created, int) else int(time.time())
    return response_object(
        request,
        model=model,
        response_id=response_id or new_id("resp"),
        created_at=created_at,
        status=status,
        output=output,
        usage=Usage.from_openai(completion.get("usage")),
        incomplete_details=incomplete,
        service_tier=completion.get("service_tier"),
    )


def _output(reply: dict[str, Any], logprobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    calls = []
    for call in reply.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        arguments = function.get("arguments")
        arguments = arguments if isinstance(arguments, str) and arguments.strip() else "{}"
        call_id = str(call.get("id") or new_id("call"))
        calls.append(function_call_item(new_id("fc"), call_id, str(function.get("name") or ""), arguments, "completed"))
    content = []
    text = reply.get("content")
    if isinstance(text, str) and text:
        content.append(text_part(text, logprobs))
    refusal = reply.get("refusal")
    if isinstance(refusal, str) and refusal:
        content.append(refusal_part(refusal))
    if not content and not calls:
        content.append(text_part(""))
    return ([message_item(new_id("msg"), content, "completed")] if content else []) + calls
