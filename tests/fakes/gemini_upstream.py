"""A fake Gemini API (generativelanguage v1beta): a real aiohttp.web server on 127.0.0.1 that replays the
recorded fixtures under ``tests/fixtures/gemini``.

It serves ``POST /v1beta/models/{model}:{method}`` for generateContent, streamGenerateContent (only with
``?alt=sse``), embedContent and batchEmbedContents; checks ``x-goog-api-key`` as Google does (missing:
403, wrong: the 400 ``API_KEY_INVALID``); rejects what Google rejects in a request body (unknown fields,
empty text parts, Schema keywords Gemini lacks, function responses that do not answer the previous
turn's calls); records every request; and injects faults chosen by the model name:
``gemini-<scenario>[+fault...]`` replays ``response_<scenario>.json`` or ``stream_<scenario>.sse``, any
``embedding...`` model embeds (vectors from ``fake_vector``). Faults are ``status-<code>`` (Google's error
JSON: 429 with its RetryInfo, 500, 503), ``truncate`` (the stream ends before its last event; a JSON body
stops halfway), ``malformed`` (the first event or the body is not JSON) and ``error-after-<n>`` (an error
event after n events, sent 200 ms later so that it reaches the gateway mid-stream).
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.threaded_server import ThreadedUpstream

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "gemini"
API_KEY = "AIza-fake-gemini-key"
_ERROR_FIXTURES = {429: "error_rate_limit", 500: "error_internal", 503: "error_unavailable"}
_FAULT = re.compile(r"(status|error-after)-(\d+)|truncate|malformed")
_PATH = re.compile(r"^/v1beta/models/([^/:]+):(generateContent|streamGenerateContent|embedContent|batchEmbedContents)$")
_REQUEST_FIELDS = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings"}
_GENERATION_FIELDS = {
    "stopSequences", "responseMimeType", "responseSchema", "candidateCount", "maxOutputTokens", "temperature",
    "topP", "topK", "seed", "presencePenalty", "frequencyPenalty", "responseLogprobs", "logprobs", "thinkingConfig",
}  # fmt: skip
_PART_DATA = {"text", "inlineData", "fileData", "functionCall", "functionResponse"}
_SCHEMA_FIELDS = {
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties", "required",
    "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf", "propertyOrdering",
    "default", "items", "minimum", "maximum",
}  # fmt: skip
_TYPES = {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"}


@dataclass
class RecordedRequest:
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased keys
    body: Any


@dataclass
class Faults:
    status: int | None = None
    truncate: bool = False
    malformed: bool = False
    error_after: int | None = None

    @classmethod
    def parse(cls, model: str) -> tuple[str, Faults]:
        """``gemini-text+status-503`` → ("text", Faults(status=503)); unknown faults raise ValueError."""
        name, *tokens = model.split("+")
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
        return name.removeprefix("gemini-"), faults


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fake_vector(text: str, dimensions: int) -> list[float]:
    """The fake's embedding of `text`: deterministic, and different for texts of different lengths."""
    return [round(math.sin(len(text) + i), 6) for i in range(dimensions)]


def google_error(status: int, kind: str, message: str) -> web.Response:
    body = {"error": {"code": status, "message": message, "status": kind}}
    return web.json_response(body, status=status, dumps=lambda v: orjson.dumps(v).decode())


def _fixture_error(status: int) -> web.Response:
    name = _ERROR_FIXTURES.get(status)
    if name is None:
        return google_error(status, "UNKNOWN", f"fake status {status}")
    return web.Response(body=fixture(f"{name}.json"), status=status, content_type="application/json")


def _schema_problem(schema: Any, where: str, *, function_parameters: bool = False) -> str | None:
    if not isinstance(schema, dict):
        return f"{where}: Schema must be an object"
    for key in schema:
        if key not in _SCHEMA_FIELDS:
            return f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
    if "type" in schema and schema["type"] not in _TYPES:
        return f"Invalid value at '{where}.type', \"{schema['type']}\""
    if function_parameters and schema.get("type") == "OBJECT" and not schema.get("properties"):
        return f"{where}.properties: should be non-empty for OBJECT type"
    subschemas = [*(schema.get("properties") or {}).items(), *(("anyOf", s) for s in schema.get("anyOf") or [])]
    if "items" in schema:
        subschemas.append(("items", schema["items"]))
    for name, sub in subschemas:
        problem = _schema_problem(sub, f"{where}.{name}")
        if problem:
            return problem
    return None


def check_request(body: Any) -> str | None:
    """The first rule of `generateContent` this body breaks, in Google's words, or None."""
    if not isinstance(body, dict):
        return "Invalid JSON payload received."
    for key in body:
        if key not in _REQUEST_FIELDS:
            return f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    calls = 0
    for index, content in enumerate(contents):
        if content.get("role") not in {"user", "model"}:
            return f"Please use a valid role: user, model. (contents[{index}])"
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"* GenerateContentRequest.contents[{index}].parts: contents.parts must not be empty."
        for part in parts:
            if len(_PART_DATA & part.keys()) != 1 or not part.keys() <= _PART_DATA | {"thoughtSignature", "thought"}:
                return f"contents[{index}]: a part holds exactly one of {sorted(_PART_DATA)}"
            if "text" in part and not part["text"]:
                return "Unable to submit request because it has an empty text parameter."
        responses = sum("functionResponse" in part for part in parts)
        if responses and (content["role"] != "user" or responses != calls):
            return (
                "Please ensure that the number of function response parts is equal to the number of function "
                "call parts of the function call turn."
            )
        calls = sum("functionCall" in part for part in parts)
    for tool_index, tool in enumerate(body.get("tools") or []):
        for index, declaration in enumerate(tool.get("functionDeclarations") or []):
            where = f"tools[{tool_index}].function_declarations[{index}].parameters"
            if "parameters" in declaration:
                problem = _schema_problem(declaration["parameters"], where, function_parameters=True)
                if problem:
                    return problem
    generation = body.get("generationConfig") or {}
    for key in generation:
        if key not in _GENERATION_FIELDS:
            return f"Invalid JSON payload received. Unknown name \"{key}\" at 'generation_config': Cannot find field."
    if "responseSchema" in generation:
        return _schema_problem(generation["responseSchema"], "generation_config.response_schema")
    return None


class FakeGemini(ThreadedUpstream[RecordedRequest]):
    """Use as ``with FakeGemini() as fake: ...``; requests land in ``fake.requests``."""

    label = "Gemini"
    base_path = "/v1beta"

    def __init__(self, api_key: str = API_KEY) -> None:
        super().__init__(api_key)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw
        headers = {k.lower(): v for k, v in request.headers.items()}
        self._record(RecordedRequest(request.path, dict(request.query), headers, body))
        match = _PATH.match(request.path)
        if request.method != "POST" or match is None:
            return google_error(404, "NOT_FOUND", f"Not found: {request.method} {request.path}")
        if "x-goog-api-key" not in headers:
            return google_error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        if headers["x-goog-api-key"] != self.api_key:
            return web.Response(body=fixture("error_api_key_invalid.json"), status=400, content_type="application/json")
        model, method = match.groups()
        try:
            scenario, faults = Faults.parse(model)
        except ValueError as exc:
            return google_error(400, "INVALID_ARGUMENT", str(exc))
        if faults.status is not None:
            return _fixture_error(faults.status)
        if method in {"embedContent", "batchEmbedContents"}:
            return self._embed(method, model, body)
        problem = check_request(body)
        if problem is not None:
            return google_error(400, "INVALID_ARGUMENT", problem)
        stream = method == "streamGenerateContent"
        if stream and request.query.get("alt") != "sse":
            return google_error(400, "INVALID_ARGUMENT", "this fake streams only with alt=sse")
        name = f"stream_{scenario}.sse" if stream else f"response_{scenario}.json"
        if not (FIXTURES / name).is_file():
            return google_error(404, "NOT_FOUND", f"models/{model} is not found for API version v1beta")
        if stream:
            return await self._stream(request, fixture(name), faults)
        return await self._respond(request, fixture(name), faults)

    def _embed(self, method: str, model: str, body: Any) -> web.Response:
        requests = [body] if method == "embedContent" else body.get("requests") or []
        embeddings = []
        for index, item in enumerate(requests):
            if item.get("model") != f"models/{model}":
                return google_error(400, "INVALID_ARGUMENT", f"requests[{index}].model must be models/{model}")
            text = item["content"]["parts"][0]["text"]
            embeddings.append({"values": fake_vector(text, item.get("outputDimensionality") or 3072)})
        answer = {"embedding": embeddings[0]} if method == "embedContent" else {"embeddings": embeddings}
        return web.json_response(answer, dumps=lambda v: orjson.dumps(v).decode())

    async def _respond(self, request: web.Request, payload: bytes, faults: Faults) -> web.StreamResponse:
        if faults.malformed:
            return web.Response(body=b'{"candidates": [{"content": ', content_type="application/json")
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
        separator = b"\r\n\r\n" if b"\r\n" in payload else b"\n\n"
        *complete, rest = payload.split(separator)
        # Replayed byte for byte: a recorded stream whose last event lacks its blank line keeps it so.
        events = [event + separator for event in complete] + ([rest] if rest.strip() else [])
        if faults.malformed:
            events[0] = b'data: {"candidates": [{"content": {\n\n'
        if faults.error_after is not None:
            error = b'data: {"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}\n\n'
            events = [*events[: faults.error_after], error]
        if faults.truncate:
            events = events[:-1]  # a clean cut between events: only the missing finishReason tells
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in events:
            if event.startswith(b'data: {"error"'):
                await asyncio.sleep(0.2)  # arrive after the gateway has committed to this stream
            await response.write(event)
        await response.write_eof()
        return response
