"""A fake Anthropic Messages API: a real aiohttp.web server on 127.0.0.1 that replays the recorded
fixtures under ``tests/fixtures/anthropic``.

It checks ``x-api-key`` and ``anthropic-version`` like Anthropic does, validates the request shape
Anthropic enforces (alternating roles, non-empty text blocks, tool results answering the previous
turn's tool uses), records every request, and injects faults chosen by the model name:
``claude-<scenario>[+fault...]`` replays ``response_<scenario>.json`` or ``stream_<scenario>.sse``;
faults are ``status-<code>`` (Anthropic's error JSON; 429 with ``retry-after``), ``truncate`` (the
stream stops inside ``message_delta``; a JSON body stops halfway), ``malformed`` (the first event or
the body is not JSON) and ``error-after-<n>`` (an ``overloaded_error`` event after n events, sent
200 ms later so that it reaches the gateway mid-stream, after the first chunk was relayed).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.threaded_server import ThreadedUpstream

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "anthropic"
API_KEY = "sk-ant-fake-key"
VERSION = "2023-06-01"
_ERROR_FIXTURES = {429: "error_rate_limit", 500: "error_api", 529: "error_overloaded", 401: "error_authentication"}
_FAULT = re.compile(r"(status|error-after)-(\d+)|truncate|malformed")


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]  # lower-cased keys
    body: Any


@dataclass
class Faults:
    status: int | None = None
    truncate: bool = False
    malformed: bool = False
    error_after: int | None = None

    @classmethod
    def parse(cls, model: Any) -> tuple[str, Faults]:
        """``claude-text+status-529`` → ("text", Faults(status=529)); unknown faults raise ValueError."""
        name, *tokens = str(model).split("+")
        faults = cls()
        for token in tokens:
            match = _FAULT.fullmatch(token)
            if match is None:
                raise ValueError(f"unknown fake fault {token!r}")
            if match.group(1) == "status":
                faults.status = int(match.group(2))
            elif match.group(1) == "error-after":
                faults.error_after = int(match.group(2))
            else:
                setattr(faults, token, True)
        return name.removeprefix("claude-"), faults


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _error(status: int, kind: str, message: str) -> web.Response:
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}
    return web.json_response(body, status=status, dumps=lambda v: orjson.dumps(v).decode())


def _fixture_error(status: int) -> web.Response:
    name = _ERROR_FIXTURES.get(status)
    body = fixture(f"{name}.json") if name else orjson.dumps({"type": "error", "error": {"type": "api_error"}})
    headers = {"retry-after": "1"} if status == 429 else None
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def check_request(body: Any) -> str | None:
    """The first rule of the Messages API this request breaks, in Anthropic's words, or None."""
    if not isinstance(body, dict):
        return "The request body is not valid JSON."
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    if not isinstance(body.get("system", ""), str | list):
        return "system: Input should be a valid string"
    previous: dict[str, Any] | None = None
    for index, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if role not in {"user", "assistant"}:
            return f"messages.{index}.role: Input should be 'user' or 'assistant'"
        if previous is not None and previous["role"] == role:
            return f'messages: roles must alternate between "user" and "assistant", but found multiple "{role}" roles in a row'
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks:
            if block.get("type") == "text" and not block.get("text"):
                return f"messages.{index}: text content blocks must be non-empty"
            if block.get("type") == "tool_result":
                asked = {b.get("id") for b in (previous or {}).get("content", []) if b.get("type") == "tool_use"}
                if role != "user" or block.get("tool_use_id") not in asked:
                    return f"messages.{index}: unexpected `tool_use_id` found in `tool_result` blocks"
        previous = {"role": role, "content": blocks}
    return None


class FakeAnthropic(ThreadedUpstream[RecordedRequest]):
    """Use as ``with FakeAnthropic() as fake: ...``; requests land in ``fake.requests``."""

    label = "Anthropic"
    base_path = "/v1"

    def __init__(self, api_key: str = API_KEY) -> None:
        super().__init__(api_key)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw
        self._record(RecordedRequest(request.path, {k.lower(): v for k, v in request.headers.items()}, body))
        if (request.method, request.path) != ("POST", "/v1/messages"):
            return _error(404, "not_found_error", f"Not found: {request.method} {request.path}")
        if request.headers.get("x-api-key") != self.api_key:
            return _fixture_error(401)
        if request.headers.get("anthropic-version") != VERSION:
            return _error(400, "invalid_request_error", "anthropic-version: header is required")
        problem = check_request(body)
        if problem is not None:
            return _error(400, "invalid_request_error", problem)
        try:
            scenario, faults = Faults.parse(body.get("model"))
        except ValueError as exc:
            return _error(400, "invalid_request_error", str(exc))
        if faults.status is not None:
            return _fixture_error(faults.status)
        stream = body.get("stream") is True
        name = f"stream_{scenario}.sse" if stream else f"response_{scenario}.json"
        if not (FIXTURES / name).is_file():
            return _error(404, "not_found_error", f"model: claude-{scenario}")
        if stream:
            return await self._stream(request, fixture(name), faults)
        return await self._respond(request, fixture(name), faults)

    async def _respond(self, request: web.Request, payload: bytes, faults: Faults) -> web.StreamResponse:
        if faults.malformed:
            return web.Response(body=b'{"type": "message", "content": [', content_type="application/json")
        if faults.truncate:
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.content_length = len(payload)
            await response.prepare(request)
            await response.write(payload[: len(payload) // 2])
            if request.transport is not None:
                request.transport.close()
            return response
        return web.Response(body=payload, content_type="application/json")

    async def _stream(self, request: web.Request, payload: bytes, faults: Faults) -> web.StreamResponse:
        events = [event + b"\n\n" for event in payload.split(b"\n\n") if event.strip()]
        if faults.malformed:
            events[0] = b'event: message_start\ndata: {"type": "message_start", "message": {\n\n'
        if faults.error_after is not None:
            error = b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
            events = [*events[: faults.error_after], error]
        if faults.truncate:
            cut = next(i for i, event in enumerate(events) if event.startswith(b"event: message_delta"))
            events = [*events[:cut], events[cut][: len(events[cut]) // 2]]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        for event in events:
            if event.startswith(b"event: error"):
                await asyncio.sleep(0.2)  # arrive after the gateway has committed to this stream
            await response.write(event)
        await response.write_eof()
        return response
