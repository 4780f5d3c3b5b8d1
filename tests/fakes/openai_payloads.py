"""Pure builders for OpenAI wire-format payloads, used by the fake upstream in ``openai_upstream``.

Nothing here does I/O: every function maps a parsed request body to plain JSON-ready dicts.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from dataclasses import dataclass
from typing import Any

TOOL_CALL_ID = "call_fake_1"
TOOL_ARGUMENTS = '{"city": "Paris"}'
JSON_REPLY = '{"fake": true}'
DEFAULT_EMBEDDING_DIMENSIONS = 8
MAX_EMBEDDING_DIMENSIONS = 3072
FAKE_MODEL_ID = "fake-model"

_VALUED_BEHAVIOR = re.compile(r"(status|slow|delay-first|drop-after|late-end|words)-(\d+)")
_FLAG_BEHAVIORS = {
    "hang": "hang",
    "hang-body": "hang_body",
    "no-done": "no_done",
    "malformed": "malformed",
    "no-usage": "no_usage",
}


@dataclass
class Behaviors:
    """Fault injection parsed from a model name such as ``gpt-fake+slow-50+drop-after-3``."""

    status: int | None = None
    hang: bool = False
    hang_body: bool = False
    slow_ms: int = 0
    delay_first_ms: int = 0
    drop_after: int | None = None
    late_end_ms: int = 0
    """Streams: the end of the body (the chunked encoding's last chunk) this long after `[DONE]`, not
    in the same write."""
    no_done: bool = False
    malformed: bool = False
    no_usage: bool = False
    """Like some OpenAI-compatible servers: no `usage` in responses, no usage chunk in streams."""
    words: int | None = None

    @classmethod
    def from_model(cls, model: Any) -> Behaviors:
        """Parse behaviors; raises ValueError on an unknown one so typos in tests fail loudly."""
        behaviors = cls()
        if not isinstance(model, str):
            return behaviors
        for token in model.split("+")[1:]:
            if token in _FLAG_BEHAVIORS:
                setattr(behaviors, _FLAG_BEHAVIORS[token], True)
                continue
            match = _VALUED_BEHAVIOR.fullmatch(token)
            if match is None:
                raise ValueError(f"unknown fake behavior {token!r} in model {model!r}")
            name, value = match.group(1), int(match.group(2))
            if name == "status":
                behaviors.status = value
            elif name == "slow":
                behaviors.slow_ms = value
            elif name == "delay-first":
                behaviors.delay_first_ms = value
            elif name == "drop-after":
                behaviors.drop_after = value
            elif name == "late-end":
                behaviors.late_end_ms = value
            else:
                behaviors.words = value
        return behaviors


@dataclass
class Reply:
    """What every choice of a (chat) completion says."""

    content: str | None
    finish_reason: str
    tool_name: str | None = None

    @property
    def completion_tokens(self) -> int:
        text = TOOL_ARGUMENTS if self.tool_name is not None else self.content or ""
        return len(split_words(text))


def error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    if status == 429:
        error_type = "requests"
    elif status >= 500:
        error_type = "server_error"
    else:
        error_type = "invalid_request_error"
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def split_words(text: str) -> list[str]:
    """Split into words that keep their trailing whitespace, so ``"".join(...)`` restores the text."""
    return re.findall(r"\S+\s*", text)


def message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"]
        return " ".join(parts)
    return ""


def _shape_text(text: str, body: dict[str, Any]) -> tuple[str, str]:
    """Apply ``stop`` and ``max_tokens``/``max_completion_tokens`` (counted in words) like OpenAI would."""
    finish_reason = "stop"
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str) and s]
    cut_positions = [text.find(s) for s in stops if s and s in text]
    if cut_positions:
        text = text[: min(cut_positions)]
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(limit, int) and not isinstance(limit, bool):
        words = split_words(text)
        if len(words) > limit:
            text = "".join(words[:limit]).rstrip()
            finish_reason = "length"
    return text, finish_reason


def _base_text(echo: str, behaviors: Behaviors) -> str:
    if behaviors.words is not None:
        return " ".join(f"w{i}" for i in range(1, behaviors.words + 1))
    return f"fake reply to: {echo}"


def chat_reply(body: dict[str, Any], behaviors: Behaviors) -> Reply:
    tools = body.get("tools")
    if isinstance(tools, list) and tools and body.get("tool_choice") != "none":
        tool_choice = body.get("tool_choice")
        if isinstance(tool_choice, dict) and isinstance(tool_choice.get("function"), dict):
            name = tool_choice["function"].get("name")
        else:
            name = (tools[0].get("function") or {}).get("name")
        return Reply(content=None, finish_reason="tool_calls", tool_name=str(name))
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema"):
        return Reply(content=JSON_REPLY, finish_reason="stop")
    messages = body.get("messages") or []
    user_messages = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    echo = message_text(user_messages[-1].get("content")) if user_messages else ""
    text, finish_reason = _shape_text(_base_text(echo, behaviors), body)
    return Reply(content=text, finish_reason=finish_reason)


def chat_prompt_tokens(body: dict[str, Any]) -> int:
    messages = body.get("messages")
    return 10 * len(messages) if isinstance(messages, list) else 0


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def choice_count(body: dict[str, Any]) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1


def _tool_call(name: str) -> dict[str, Any]:
    return {"id": TOOL_CALL_ID, "type": "function", "function": {"name": name, "arguments": TOOL_ARGUMENTS}}


def chat_completion(completion_id: str, created: int, model: Any, body: dict[str, Any], reply: Reply) -> dict:
    n = choice_count(body)
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
    if reply.tool_name is not None:
        message["tool_calls"] = [_tool_call(reply.tool_name)]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [
            {"index": i, "message": message, "logprobs": None, "finish_reason": reply.finish_reason} for i in range(n)
        ],
        "usage": usage(chat_prompt_tokens(body), n * reply.completion_tokens),
    }


def _split_in_pieces(text: str, pieces: int) -> list[str]:
    size = max(1, -(-len(text) // pieces))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _interleave(per_choice: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    longest = max((len(events) for events in per_choice), default=0)
    return [events[i] for i in range(longest) for events in per_choice if i < len(events)]


def include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def chat_stream(
    completion_id: str, created: int, model: Any, body: dict[str, Any], reply: Reply
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return ``(content_chunks, closing_chunks)``; closing = finish_reason chunks plus the usage chunk."""
    with_usage = include_usage(body)

    def chunk(index: int, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if with_usage:
            event["usage"] = None
        return event

    n = choice_count(body)
    per_choice: list[list[dict[str, Any]]] = []
    for i in range(n):
        if reply.tool_name is not None:
            header = {"index": 0, "id": TOOL_CALL_ID, "type": "function"}
            header["function"] = {"name": reply.tool_name, "arguments": ""}
            events = [chunk(i, {"role": "assistant", "content": None, "tool_calls": [header]})]
            for piece in _split_in_pieces(TOOL_ARGUMENTS, 3):
                events.append(chunk(i, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        else:
            events = [chunk(i, {"role": "assistant", "content": ""})]
            events += [chunk(i, {"content": word}) for word in split_words(reply.content or "")]
        per_choice.append(events)
    closing = [chunk(i, {}, reply.finish_reason) for i in range(n)]
    if with_usage:
        usage_chunk = chunk(0, {})
        usage_chunk["choices"] = []
        usage_chunk["usage"] = usage(chat_prompt_tokens(body), n * reply.completion_tokens)
        closing.append(usage_chunk)
    return _interleave(per_choice), closing


def _prompts(body: dict[str, Any]) -> list[str]:
    """Legacy ``prompt``: a string, a list of strings, a token array or a list of token arrays."""
    prompt = body.get("prompt", "")
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
        return [" ".join(map(str, prompt))]
    if isinstance(prompt, list):
        return [p if isinstance(p, str) else " ".join(map(str, p)) for p in prompt] or [""]
    return [""]


def completion_texts(body: dict[str, Any], behaviors: Behaviors) -> list[tuple[str, str]]:
    """One ``(text, finish_reason)`` per choice: ``n`` choices per prompt, as OpenAI does."""
    shaped = [_shape_text(_base_text(prompt, behaviors), body) for prompt in _prompts(body)]
    return [text_and_reason for text_and_reason in shaped for _ in range(choice_count(body))]


def completion_usage(body: dict[str, Any], texts: list[tuple[str, str]]) -> dict[str, int]:
    prompt_tokens = sum(len(split_words(p)) for p in _prompts(body))
    return usage(prompt_tokens, sum(len(split_words(text)) for text, _ in texts))


def completion(completion_id: str, created: int, model: Any, body: dict[str, Any], behaviors: Behaviors) -> dict:
    texts = completion_texts(body, behaviors)
    return {
        "id": completion_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [
            {"text": text, "index": i, "logprobs": None, "finish_reason": reason}
            for i, (text, reason) in enumerate(texts)
        ],
        "usage": completion_usage(body, texts),
    }


def completion_stream(
    completion_id: str, created: int, model: Any, body: dict[str, Any], behaviors: Behaviors
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    texts = completion_texts(body, behaviors)
    with_usage = include_usage(body)

    def chunk(index: int, text: str, finish_reason: str | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {
            "id": completion_id,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [{"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}],
        }
        if with_usage:
            event["usage"] = None
        return event

    per_choice = [[chunk(i, word) for word in split_words(text)] for i, (text, _) in enumerate(texts)]
    closing = [chunk(i, "", reason) for i, (_, reason) in enumerate(texts)]
    if with_usage:
        usage_chunk = chunk(0, "")
        usage_chunk["choices"] = []
        usage_chunk["usage"] = completion_usage(body, texts)
        closing.append(usage_chunk)
    return _interleave(per_choice), closing


def embedding_vector(item: Any, dimensions: int) -> list[float]:
    """Deterministic vector in [-1, 1) whose values are exact float32s (so float and base64 modes agree)."""
    seed = repr(item).encode()
    raw = b""
    block = 0
    while len(raw) < 4 * dimensions:
        raw += hashlib.sha256(seed + block.to_bytes(4, "little")).digest()
        block += 1
    values = [number / 2**31 - 1.0 for number in struct.unpack(f"<{dimensions}I", raw[: 4 * dimensions])]
    return list(struct.unpack(f"<{dimensions}f", struct.pack(f"<{dimensions}f", *values)))


def embedding_inputs(body: dict[str, Any]) -> list[Any] | None:
    """Normalise ``input`` to a list of items (str or token list); None if it is invalid."""
    value = body.get("input")
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(t, int) and not isinstance(t, bool) for t in value):
            return [value]
        if all(isinstance(item, str) or (isinstance(item, list) and item) for item in value):
            return value
    return None


def embeddings(model: Any, body: dict[str, Any], items: list[Any]) -> dict[str, Any]:
    dimensions = body.get("dimensions")
    if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions <= 0:
        dimensions = DEFAULT_EMBEDDING_DIMENSIONS
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(items):
        vector = embedding_vector(item, dimensions)
        encoded: Any = vector
        if as_base64:
            encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    prompt_tokens = sum(len(item) if isinstance(item, list) else len(split_words(item)) for item in items)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def models_list(created: int) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": FAKE_MODEL_ID, "object": "model", "created": created, "owned_by": "switchyard-fake"}],
    }
