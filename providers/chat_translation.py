"""What the translators between OpenAI's chat format and another wire (Anthropic, Gemini) share. Pure.

Reading OpenAI requests: `content_parts`, `plain_text` (system, tool and assistant text), `data_url`,
`tool_call_arguments`; each raises `InvalidRequest` naming the offending field. Writing OpenAI answers:
`openai_usage`. Reading the upstream's stream: `parse_event`, which raises `UpstreamProtocolError`.
Reading an OpenAI chat stream: `tool_call_position`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from providers.base import Usage
from providers.errors import InvalidRequest, UpstreamProtocolError
from providers.sse import SSEvent


def content_parts(content: Any) -> list[tuple[int, dict[str, Any]]]:
    """A message's content as (index, part): a string is one text part; parts that are not objects are skipped."""
    if isinstance(content, str):
        return [(0, {"type": "text", "text": content})]
    return [(i, p) for i, p in enumerate(content or []) if isinstance(p, dict)]


def plain_text(content: Any, where: str) -> str:
    """The text of a message that may carry only text (or refusal) parts, joined by newlines."""
    texts = []
    for index, part in content_parts(content):
        if part.get("type") not in {"text", "refusal"}:
            raise InvalidRequest(f"Only text is supported in {where}.", param=f"{where}.content[{index}]")
        texts.append(part.get("text") or part.get("refusal") or "")
    return "\n".join(t for t in texts if t)


def data_url(url: str, param: str) -> tuple[str, str]:
    """A `data:<media type>;base64,<data>` URL as (lower-case media type, base64 data)."""
    header, comma, data = url[len("data:") :].partition(",")
    if not comma or not header.endswith(";base64") or not data:
        raise InvalidRequest("Data URLs must be base64-encoded: data:<media type>;base64,<data>.", param=param)
    return header.split(";", 1)[0].lower(), data


def tool_call_arguments(function: dict[str, Any], param: str) -> dict[str, Any]:
    """An assistant tool call's `function.arguments` (a JSON string) as the object it must be."""
    try:
        arguments = orjson.loads(function.get("arguments") or "{}")
    except orjson.JSONDecodeError:
        arguments = None
    if not isinstance(arguments, dict):
        raise InvalidRequest("Tool call arguments must be a JSON object.", param=f"{param}.function.arguments")
    return arguments


def openai_usage(usage: Usage) -> dict[str, Any]:
    """OpenAI's `usage` object, with the cached and reasoning token details."""
    out = usage.to_openai()
    out["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return out


def parse_event(event: SSEvent) -> dict[str, Any]:
    """The JSON object an upstream SSE event carries; `UpstreamProtocolError` when it is not one."""
    try:
        data = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError(f"upstream sent an SSE event that is not JSON: {event.data[:200]!r}") from None
    if not isinstance(data, dict):
        raise UpstreamProtocolError("upstream sent an SSE event that is not a JSON object")
    return data


def tool_call_position(call: dict[str, Any], known_ids: Mapping[int, str]) -> int:
    """The position of a streamed tool-call delta among the calls seen so far (`known_ids`: position → call id).

    Some backends omit the delta's `index`: then a delta with a new id starts a call, one without continues
    the last."""
    index = call.get("index")
    if isinstance(index, int):
        return index
    call_id = call.get("id")
    for position, known in known_ids.items():
        if call_id and known == call_id:
            return position
    if call_id or not known_ids:
        return max(known_ids, default=-1) + 1
    return max(known_ids)
