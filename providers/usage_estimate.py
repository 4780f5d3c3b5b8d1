"""Token counts when the upstream gives none: prompt size before a request, output after it.

Counts use `tokens` (tiktoken's cl100k_base, offline), so for non-OpenAI models they are estimates.
Every function reads the client's or upstream's JSON defensively and never raises on odd shapes:
what it cannot read counts as 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from providers.base import Endpoint, Usage
from providers.sse import SSEDecoder, SSEvent
from providers.tokens import count_chat_prompt, count_text, message_text

_Part = tuple[int, str]
"""(choice index, which string of the choice): the pieces of one part are joined before counting."""
_REASONING = "reasoning"


def estimate_prompt_tokens(endpoint: Endpoint, body: Mapping[str, Any]) -> int:
    """Prompt tokens of a request body: chat messages plus tool definitions, a completions prompt,
    embeddings input (text or token ids), or any `prompt`/`input` text of the other endpoints."""
    if not isinstance(body, Mapping):
        return 0
    if endpoint == Endpoint.CHAT:
        messages = body.get("messages")
        total = 0
        if isinstance(messages, list):
            # Earlier assistant turns' tool calls are prompt too; count_chat_prompt reads only content.
            calls = (part for m in messages if isinstance(m, Mapping) for part in _tool_call_parts(m))
            total = count_chat_prompt(messages) + sum(count_text(text) for _, text in calls)
        return total + _definitions_tokens(body.get("tools")) + _definitions_tokens(body.get("functions"))
    if endpoint == Endpoint.COMPLETIONS:
        return _prompt_like_tokens(body.get("prompt")) + _prompt_like_tokens(body.get("suffix"))
    if endpoint == Endpoint.EMBEDDINGS:
        return _prompt_like_tokens(body.get("input"))
    return _prompt_like_tokens(body.get("prompt")) + _prompt_like_tokens(body.get("input"))


def _prompt_like_tokens(value: Any) -> int:
    """A string, a token-id list, or a list of strings, token-id lists or `{"text": ...}` parts."""
    if isinstance(value, str):
        return count_text(value)
    if not isinstance(value, list):
        return 0
    total = 0
    for item in value:
        if _is_token_id(item):
            total += 1
        elif isinstance(item, str):
            total += count_text(item)
        elif isinstance(item, list):
            total += sum(1 for t in item if _is_token_id(t))
        elif isinstance(item, Mapping) and isinstance(item.get("text"), str):
            total += count_text(item["text"])
    return total


def _is_token_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _definitions_tokens(tools: Any) -> int:
    """Tools (or legacy `functions`) as the JSON of each function's name, description and parameters;
    a non-function tool (a built-in with options) as its whole JSON."""
    if not isinstance(tools, list):
        return 0
    total = 0
    for tool in tools:
        if not isinstance(tool, Mapping):
            continue
        fn = tool.get("function")
        if isinstance(fn, Mapping):
            shown: Mapping[str, Any] = {k: fn[k] for k in ("name", "description", "parameters") if k in fn}
        elif tool.get("type") in (None, "function"):  # a legacy `functions` entry
            shown = {k: tool[k] for k in ("name", "description", "parameters") if k in tool}
        else:
            shown = tool
        total += count_text(_compact_json(shown))
    return total


def _compact_json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):  # a circular structure
        return ""


def max_output_tokens(endpoint: Endpoint, body: Mapping[str, Any], default: int) -> int:
    """The most output tokens a request may produce, for reservations: `max_completion_tokens`, else
    `max_tokens`, else `default`, per choice, times the choices generated (`n`, and for completions
    `best_of`, which is billed in full). Embeddings produce none; other endpoints get `default`."""
    if endpoint == Endpoint.EMBEDDINGS:
        return 0
    if endpoint not in (Endpoint.CHAT, Endpoint.COMPLETIONS) or not isinstance(body, Mapping):
        return default
    per_choice = _positive_int(body.get("max_completion_tokens")) or _positive_int(body.get("max_tokens")) or default
    choices = _positive_int(body.get("n")) or 1
    if endpoint == Endpoint.COMPLETIONS:
        choices = max(choices, _positive_int(body.get("best_of")) or 1)
    return per_choice * choices


def _index(value: Any, position: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else position


def _positive_int(value: Any) -> int | None:
    return value if _is_token_id(value) and value > 0 else None


def usage_from_stream(chunks: Iterable[bytes], prompt_tokens: int) -> Usage:
    """Usage of a relayed OpenAI chat.completion.chunk or text_completion SSE stream, split anywhere.

    The upstream's last `usage` object wins when any chunk carried one. Otherwise the completion is
    counted from the text it streamed (content, refusal, reasoning, tool-call names and arguments,
    completion text) and marked estimated, with `prompt_tokens` as given. A cut-off final event and
    unreadable JSON are skipped.
    """
    pieces: dict[_Part, list[str]] = {}
    reported: Usage | None = None
    for event in _events(chunks):
        if event.data.strip() == "[DONE]" or (obj := _json_object(event.data)) is None:
            continue
        _collect(obj, "delta", pieces)
        usage = Usage.from_openai(obj.get("usage"))
        if usage is not None:
            reported = usage
    return reported if reported is not None else _estimated(pieces, prompt_tokens)


def _events(chunks: Iterable[bytes]) -> Iterator[SSEvent]:
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.flush()


def usage_from_completion(body: bytes, prompt_tokens: int) -> Usage:
    """Usage of a non-streaming OpenAI response body: its `usage` when present, else estimated from
    its choices' messages (or completion text) like `usage_from_stream`."""
    obj = _json_object(body)
    if obj is None:
        return Usage(prompt_tokens=prompt_tokens, estimated=True)
    reported = Usage.from_openai(obj.get("usage"))
    if reported is not None:
        return reported
    pieces: dict[_Part, list[str]] = {}
    _collect(obj, "message", pieces)
    return _estimated(pieces, prompt_tokens)


def _collect(obj: Mapping[str, Any], message_field: str, pieces: dict[_Part, list[str]]) -> None:
    """Appends the text of each choice's `message_field` (a message or a delta) and completion `text`."""
    choices = obj.get("choices")
    if not isinstance(choices, list):
        return
    for position, choice in enumerate(choices):
        if not isinstance(choice, Mapping):
            continue
        index = _index(choice.get("index"), position)
        message = choice.get(message_field)
        parts = list(_message_parts(message)) if isinstance(message, Mapping) else []
        if isinstance(choice.get("text"), str):
            parts.append(("text", choice["text"]))
        for part, text in parts:
            pieces.setdefault((index, part), []).append(text)


def _estimated(pieces: Mapping[_Part, list[str]], prompt_tokens: int) -> Usage:
    completion = reasoning = 0
    for (_, part), texts in pieces.items():
        n = count_text("".join(texts))
        completion += n
        if part == _REASONING:
            reasoning += n
    return Usage(
        prompt_tokens=max(prompt_tokens, 0), completion_tokens=completion, reasoning_tokens=reasoning, estimated=True
    )


def _json_object(data: str | bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(data)
    except (ValueError, TypeError):  # also UnicodeDecodeError, a ValueError
        return None
    return obj if isinstance(obj, dict) else None


def _message_parts(message: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(part, text) of a chat message or a stream delta; a part's texts across deltas join in order."""
    content = message_text(message.get("content"))
    if content:
        yield "content", content
    if isinstance(message.get("refusal"), str):
        yield "refusal", message["refusal"]
    # DeepSeek and vLLM send `reasoning_content`; newer vLLM and OpenRouter `reasoning`. Never both counted.
    reasoning = message.get("reasoning_content")
    if not isinstance(reasoning, str):
        reasoning = message.get("reasoning")
    if isinstance(reasoning, str):
        yield _REASONING, reasoning
    yield from _tool_call_parts(message)


def _tool_call_parts(message: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for position, call in enumerate(calls):
            if not isinstance(call, Mapping) or not isinstance(call.get("function"), Mapping):
                continue
            # In a stream `index` says which call a fragment continues; a full message lists them in order.
            index = _index(call.get("index"), position)
            yield from _function_parts(call["function"], f"tool_call{index}")
    if isinstance(message.get("function_call"), Mapping):  # the legacy single function call
        yield from _function_parts(message["function_call"], "function_call")


def _function_parts(function: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, str]]:
    for field in ("name", "arguments"):
        if isinstance(function.get(field), str):
            yield f"{prefix}.{field}", function[field]
