"""`kind: mock` — a built-in, deterministic model for trying the API and for tests.

No network, no key: replies echo the last user message, are streamed token by token in OpenAI's
exact chunk format, honour `n`, `stop`, `max_tokens`, JSON mode and tools, and report usage
counted with tiktoken. Embeddings are deterministic unit vectors derived from the input's hash.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from providers import tokens
from providers.base import Completion, Endpoint, EnvFlag, UpstreamCall, Usage
from providers.errors import UpstreamProtocolError

_PREFIX = "This is Switchyard's mock model. You said: "
_EMPTY_PROMPT = "This is Switchyard's mock model. Send a user message and it is echoed back."
_MAX_ECHO_TOKENS = 256


class MockConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["mock"]
    enabled: EnvFlag = True
    chunk_delay_ms: float = Field(default=0, ge=0, le=10_000, description="Pause between streamed tokens.")
    embedding_dimensions: int = Field(default=256, ge=1, le=8192)


class MockProvider:
    def __init__(self, name: str, config: MockConfig) -> None:
        self.kind = "mock"
        self.name = name
        self._delay = config.chunk_delay_ms / 1000
        self._dimensions = config.embedding_dimensions
        tokens.encoding()  # load the ranks now, not on the first request

    async def aclose(self) -> None:
        return None

    async def complete(self, call: UpstreamCall) -> Completion:
        if call.endpoint is Endpoint.EMBEDDINGS:
            return self._embed(call)
        reply = _Reply.build(call)
        body = reply.completion_object(chat=call.endpoint is Endpoint.CHAT)
        return Completion(body=orjson.dumps(body), usage=reply.usage)

    async def open_stream(self, call: UpstreamCall) -> MockStream:
        if call.endpoint is Endpoint.EMBEDDINGS:
            raise UpstreamProtocolError("embeddings cannot be streamed")
        reply = _Reply.build(call)
        events = reply.stream_events(chat=call.endpoint is Endpoint.CHAT, with_usage=call.client_wants_usage)
        return MockStream(events, reply.usage, self._delay)

    def _embed(self, call: UpstreamCall) -> Completion:
        raw = call.body.get("input")
        inputs = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
        dims = call.body.get("dimensions") or self._dimensions
        base64_format = call.body.get("encoding_format") == "base64"
        data = []
        prompt_tokens = 0
        for index, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(str(t) for t in item or [])
            prompt_tokens += len(item) if isinstance(item, list) else tokens.count_text(text)
            vector = _unit_vector(text, dims)
            embedding: Any = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if base64_format else vector
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        usage = Usage(prompt_tokens=prompt_tokens)
        body = {
            "object": "list",
            "data": data,
            "model": call.model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
        return Completion(body=orjson.dumps(body), usage=usage)


class MockStream:
    def __init__(self, events: list[bytes], usage: Usage, delay: float) -> None:
        self._events = events
        self._delay = delay
        self.usage: Usage | None = usage
        self.done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        last = len(self._events) - 1
        for index, event in enumerate(self._events):
            self.done = index == last
            yield event
            if self._delay and 0 < index < last:
                await asyncio.sleep(self._delay)

    async def aclose(self) -> None:
        return None


def _unit_vector(text: str, dims: int) -> list[float]:
    values: list[float] = []
    counter = 0
    while len(values) < dims:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend((b / 127.5) - 1.0 for b in digest)
        counter += 1
    values = values[:dims]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    return [v / norm for v in values]


class _Reply:
    """One deterministic answer: text pieces (or a tool call) per choice, finish reason and usage."""

    def __init__(
        self,
        call: UpstreamCall,
        pieces: list[str],
        finish: str,
        tool: dict[str, Any] | None,
        prompt_tokens: int,
    ) -> None:
        self.call = call
        self.pieces = pieces
        self.finish = finish
        self.tool = tool
        self.n = _int(call.body.get("n"), 1)
        completion = len(pieces) + (tokens.count_text(tool["function"]["arguments"]) + 5 if tool else 0)
        self.usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=completion * self.n)
        self.id = ("chatcmpl-mock-" if call.endpoint is Endpoint.CHAT else "cmpl-mock-") + call.request_id
        self.created = int(time.time())

    @classmethod
    def build(cls, call: UpstreamCall) -> _Reply:
        body = call.body
        if call.endpoint is Endpoint.CHAT:
            messages = body.get("messages") or []
            prompt_tokens = tokens.count_chat_prompt(messages)
            tool = _tool_call(body)
            if tool is not None:
                return cls(call, [], "tool_calls", tool, prompt_tokens)
            text = _chat_reply_text(messages, body.get("response_format"))
        else:
            prompt = body.get("prompt")
            prompt_text = prompt if isinstance(prompt, str) else " ".join(str(p) for p in prompt or [])
            prompt_tokens = tokens.count_text(prompt_text)
            text = " " + _echo(prompt_text) if prompt_text else _EMPTY_PROMPT
        finish = "stop"
        stop = body.get("stop")
        for marker in [stop] if isinstance(stop, str) else stop or []:
            if isinstance(marker, str) and marker and marker in text:
                text = text[: text.index(marker)]
        pieces = tokens.split_tokens(text)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and 0 < limit < len(pieces):
            pieces = pieces[:limit]
            finish = "length"
        return cls(call, pieces, finish, None, prompt_tokens)

    def _envelope(self, chat: bool, chunk: bool) -> dict[str, Any]:
        if chat:
            kind = "chat.completion.chunk" if chunk else "chat.completion"
        else:
            kind = "text_completion"
        return {"id": self.id, "object": kind, "created": self.created, "model": self.call.model}

    def completion_object(self, *, chat: bool) -> dict[str, Any]:
        text = "".join(self.pieces)
        choices = []
        for index in range(self.n):
            if chat:
                message: dict[str, Any] = {"role": "assistant", "content": None if self.tool else text}
                if self.tool:
                    message["tool_calls"] = [self.tool]
                choices.append({"index": index, "message": message, "logprobs": None, "finish_reason": self.finish})
            else:
                choices.append({"index": index, "text": text, "logprobs": None, "finish_reason": self.finish})
        return {**self._envelope(chat, False), "choices": choices, "usage": self.usage.to_openai()}

    def stream_events(self, *, chat: bool, with_usage: bool) -> list[bytes]:
        base = self._envelope(chat, True)
        extra = {"usage": None} if with_usage else {}
        events: list[dict[str, Any]] = []

        def delta_chunk(index: int, delta: dict[str, Any] | str, finish: str | None = None) -> dict[str, Any]:
            if chat:
                choice: dict[str, Any] = {
                    "index": index,
                    "delta": delta,
                    "logprobs": None,
                    "finish_reason": finish,
                }
            else:
                choice = {"index": index, "text": delta, "logprobs": None, "finish_reason": finish}
            return {**base, "choices": [choice], **extra}

        if chat:
            events.extend(delta_chunk(i, {"role": "assistant", "content": ""}) for i in range(self.n))
        if self.tool is not None:
            for i in range(self.n):
                events.append(
                    delta_chunk(
                        i,
                        {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    **self.tool,
                                    "function": {"name": self.tool["function"]["name"], "arguments": ""},
                                }
                            ]
                        },
                    )
                )
                for part in _thirds(self.tool["function"]["arguments"]):
                    events.append(delta_chunk(i, {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}))
        for piece in self.pieces:
            for i in range(self.n):
                events.append(delta_chunk(i, {"content": piece} if chat else piece))
        for i in range(self.n):
            events.append(delta_chunk(i, {} if chat else "", self.finish))
        if with_usage:
            events.append({**base, "choices": [], "usage": self.usage.to_openai()})
        return [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and value > 0 else default


def _echo(text: str) -> str:
    pieces = tokens.split_tokens(" ".join(text.split()))
    return "".join(pieces[:_MAX_ECHO_TOKENS])


def _chat_reply_text(messages: list[Any], response_format: Any) -> str:
    last_user = next(
        (
            tokens.message_text(m.get("content"))
            for m in reversed(messages)
            if isinstance(m, dict) and m.get("role") == "user"
        ),
        "",
    )
    echo = _echo(last_user)
    if isinstance(response_format, dict) and response_format.get("type") in {"json_object", "json_schema"}:
        return orjson.dumps({"mock": True, "echo": echo}).decode()
    return _PREFIX + echo if echo else _EMPTY_PROMPT


def _tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not isinstance(tools, list) or not tools or choice == "none":
        return None
    functions: list[dict[str, Any]] = [
        t["function"] for t in tools if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]
    if not functions:
        return None
    chosen = functions[0]
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        chosen = next((f for f in functions if f.get("name") == wanted), chosen)
    arguments = _placeholder_arguments(chosen.get("parameters"))
    return {
        "id": "call_mock_0",
        "type": "function",
        "function": {"name": chosen.get("name", ""), "arguments": arguments},
    }


def _placeholder_arguments(schema: Any) -> str:
    """Arguments that satisfy the required properties of a simple JSON schema, with placeholder values."""
    if not isinstance(schema, dict):
        return "{}"
    properties = schema.get("properties") or {}
    placeholders = {"string": "mock", "integer": 1, "number": 1.0, "boolean": True, "array": [], "object": {}}
    args = {
        name: placeholders.get((properties.get(name) or {}).get("type", "string"), "mock")
        for name in schema.get("required") or []
        if isinstance(name, str)
    }
    return orjson.dumps(args).decode()


def _thirds(text: str) -> list[str]:
    step = max(1, -(-len(text) // 3))
    return [text[i : i + step] for i in range(0, len(text), step)] or [""]
