"""Pure translation between OpenAI and Google's Gemini API, against recorded wire samples."""

from __future__ import annotations

import base64
import copy
import json
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.base import Usage
from providers.errors import InvalidRequest, UpstreamError, UpstreamProtocolError
from providers.gemini.embeddings import embed_requests, embedding_vectors, embeddings_to_openai
from providers.gemini.errors import status_error
from providers.gemini.request import request_to_gemini
from providers.gemini.response import gemini_to_openai, usage_from_gemini
from providers.gemini.schema import schema_to_gemini
from providers.gemini.stream import GeminiStreamTranslator, parse_event
from providers.sse import SSEDecoder
from tests.fakes.gemini_upstream import check_request

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "gemini"
MODEL = "gemini-2.5-flash"
CREATED = 1_700_000_000
RID = "req-1"
USER = [{"role": "user", "content": "hi"}]
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {}}}}}]


def load(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def translate(**body: Any) -> dict[str, Any]:
    return request_to_gemini({"model": "gemini", "messages": USER, **body})


def to_openai(resp: dict[str, Any]) -> dict[str, Any]:
    return gemini_to_openai(resp, model=MODEL, request_id=RID, created=CREATED)


# ---------------------------------------------------------------------------------------- requests


@pytest.mark.parametrize("name", ["conversation", "tools", "images", "json_schema"])
def test_request_fixture(name: str) -> None:
    sample = load(f"request_{name}.json")
    original = copy.deepcopy(sample["openai"])
    translated = request_to_gemini(sample["openai"])
    assert translated == sample["gemini"]
    assert sample["openai"] == original  # the body is reused for the next attempt: never changed
    assert check_request(translated) is None  # and Google's own rules hold


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ({"type": "function", "function": {"name": "f"}}, {"mode": "ANY", "allowedFunctionNames": ["f"]}),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    assert translate(tools=TOOLS, tool_choice=choice)["toolConfig"] == {"functionCallingConfig": expected}


def test_minimal_request_and_json_mode() -> None:
    assert translate() == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert translate(tool_choice="none", n=1, presence_penalty=0) == translate()
    assert translate(response_format={"type": "json_object"})["generationConfig"] == {
        "responseMimeType": "application/json"
    }
    assert "generationConfig" not in translate(response_format={"type": "text"})
    assert translate(max_tokens=9, stop=["a", "b"])["generationConfig"] == {
        "maxOutputTokens": 9,
        "stopSequences": ["a", "b"],
    }


def test_tool_results_and_legacy_function_messages() -> None:
    call = {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        *USER,
        {"role": "assistant", "content": "Looking.", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_9", "content": "[1, 2]"},
        {"role": "assistant", "content": "And the legacy way?"},
        {"role": "function", "name": "g", "content": ' {"x": 1}'},
    ]
    contents = request_to_gemini({"messages": messages})["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [{"text": "Looking."}, {"functionCall": {"name": "f", "args": {}}}],
    }
    assert contents[2]["parts"] == [{"functionResponse": {"name": "f", "response": {"output": "[1, 2]"}}}]
    assert contents[4]["parts"] == [{"functionResponse": {"name": "g", "response": {"output": ' {"x": 1}'}}}]


def test_tool_call_ids_repeat_across_turns() -> None:
    """Ids are `call_<n>` per response: a later turn's call_0 names its own function."""

    def turn(name: str) -> list[dict[str, Any]]:
        call = {"id": "call_0", "type": "function", "function": {"name": name, "arguments": "{}"}}
        return [
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_0", "content": "ok"},
        ]

    contents = request_to_gemini({"messages": [*USER, *turn("first"), *turn("second")]})["contents"]
    assert [c["parts"][0]["functionResponse"]["name"] for c in contents[2::2]] == ["first", "second"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": [{"type": "input_image", "image": {}}]}]}, "messages[0].content[0]"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://h/x.png"}}]}]},
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,raw"}}]}
                ]
            },
            "messages[0].content[0]",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}]},
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "flac"}}],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        ({"messages": [*USER, {"role": "tool", "tool_call_id": "call_7", "content": "x"}]}, "messages[1].tool_call_id"),
        (
            {
                "messages": [
                    *USER,
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}],
                    },
                ]
            },
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            {"messages": [*USER, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function"}]}]},
            "messages[1].tool_calls[0]",
        ),
        (
            {
                "messages": [
                    {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
                    *USER,
                ]
            },
            "messages[0].content[0]",
        ),
        ({"messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
        ({"messages": [{"role": "function", "content": "no name"}]}, "messages[0].role"),
        ({"messages": USER, "tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0]"),
        ({"messages": USER, "tool_choice": "required"}, "tool_choice"),
        ({"messages": USER, "tools": TOOLS, "tool_choice": {"type": "function", "function": {}}}, "tool_choice"),
        ({"messages": USER, "logprobs": True}, "logprobs"),
        ({"messages": USER, "audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"messages": USER, "modalities": ["text", "audio"]}, "modalities"),
        ({"messages": USER, "functions": [{"name": "f"}]}, "functions"),
    ],
)
def test_unsupported_input_names_the_param(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        request_to_gemini({"model": "gemini", **body})
    assert info.value.param == param
    assert info.value.status == 400


def test_functions_without_arguments_have_no_parameters() -> None:
    tools = [
        {"type": "function", "function": {"name": "a"}},
        {
            "type": "function",
            "function": {"name": "b", "parameters": {"type": "object", "additionalProperties": False}},
        },
    ]
    assert translate(tools=tools)["tools"] == [{"functionDeclarations": [{"name": "a"}, {"name": "b"}]}]


# ----------------------------------------------------------------------------------------- schemas


def test_schema_all_of_and_type_lists() -> None:
    schema = {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": ["string", "number"]}}, "required": ["a"]},
            {"properties": {"b": {"enum": [1, 2]}}, "required": ["b"]},
        ],
        "description": "merged",
    }
    assert schema_to_gemini(schema, param="p") == {
        "type": "OBJECT",
        "description": "merged",
        "properties": {"a": {"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]}, "b": {}},
        "required": ["a", "b"],
    }


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        (
            {"$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}}, "$ref": "#/$defs/N"},
            "itself",
        ),
        ({"properties": {"x": {"$ref": "https://example.com/schema.json"}}}, "unresolvable"),
        ({"properties": {"x": {"$ref": "#/$defs/Missing"}}}, "unresolvable"),
    ],
)
def test_schemas_gemini_cannot_take(schema: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        translate(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    assert info.value.param == "response_format.json_schema.schema" and problem in info.value.message


# --------------------------------------------------------------------------------------- responses


def test_text_response() -> None:
    assert to_openai(load("response_text.json")) == {
        "id": "chatcmpl-req-1",
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Google's headquarters, also known as the Googleplex, is located in **Mountain View, California**.\n",
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 7,
            "completion_tokens": 22,
            "total_tokens": 29,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }


def test_function_call_response_skips_thoughts_and_keeps_the_signature() -> None:
    resp = load("response_function_call.json")
    out = to_openai(resp)
    [choice] = out["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None  # the thought summary is not the answer
    assert choice["message"]["tool_calls"] == [
        {
            "id": "call_0",
            "type": "function",
            "function": {"name": "now", "arguments": "{}"},
            "extra_content": {
                "google": {"thought_signature": resp["candidates"][0]["content"]["parts"][1]["thoughtSignature"]}
            },
        }
    ]
    assert out["usage"]["completion_tokens"] == 8 + 501 and out["usage"]["total_tokens"] == 547
    assert out["usage"]["completion_tokens_details"] == {"reasoning_tokens": 501}


def test_parallel_function_calls() -> None:
    out = to_openai(load("response_parallel_calls.json"))
    calls = out["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        ("call_0", "sum", {"y": 1, "x": 2}),
        ("call_1", "multiply", {"y": 3, "x": 4}),
        ("call_2", "subtract", {"y": 5, "x": 6}),
    ]
    assert out["usage"]["total_tokens"] == 0  # no usageMetadata in this sample


@pytest.mark.parametrize(
    ("name", "content", "finish"),
    [
        ("response_safety.json", "Safety error incoming in 5, 4, 3, 2...", "content_filter"),
        ("response_prompt_blocked.json", "", "content_filter"),
        ("response_other_no_content.json", "", "stop"),
    ],
)
def test_filtered_and_empty_answers(name: str, content: str, finish: str) -> None:
    [choice] = to_openai(load(name))["choices"]
    assert (choice["index"], choice["message"]["content"], choice["finish_reason"]) == (0, content, finish)


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("OTHER", "stop"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("SOMETHING_NEW", "stop"),
    ],
)
def test_finish_reasons(reason: str, finish: str) -> None:
    resp = load("response_text.json")
    resp["candidates"][0]["finishReason"] = reason
    assert to_openai(resp)["choices"][0]["finish_reason"] == finish


def test_candidates_become_choices() -> None:
    resp = load("response_text.json")
    second = {**resp["candidates"][0], "index": 1, "content": {"role": "model", "parts": [{"text": "Other."}]}}
    resp["candidates"] = [{**resp["candidates"][0], "index": 0}, second]
    out = to_openai(resp)
    assert [(c["index"], c["message"]["content"]) for c in out["choices"]][1] == (1, "Other.")


def test_usage_from_gemini() -> None:
    assert usage_from_gemini(load("response_cached_thoughts.json")["usageMetadata"]) == Usage(
        prompt_tokens=12013, completion_tokens=15 + 73, cached_tokens=11243, reasoning_tokens=73
    )
    meta = {"promptTokenCount": 5, "toolUsePromptTokenCount": 20, "candidatesTokenCount": 3}
    assert usage_from_gemini(meta) == Usage(prompt_tokens=25, completion_tokens=3)
    assert usage_from_gemini(None) == Usage()


def test_not_a_response_is_a_protocol_error() -> None:
    with pytest.raises(UpstreamProtocolError):
        to_openai({"modelVersion": "gemini-2.0-flash"})


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("status", "name", "upstream", "http", "retryable", "code", "retry_after"),
    [
        (429, "error_rate_limit.json", 429, 429, True, "RESOURCE_EXHAUSTED", 47.0),
        (503, "error_unavailable.json", 503, 502, True, "UNAVAILABLE", None),
        (500, "error_internal.json", 500, 502, True, "INTERNAL", None),
        (400, "error_api_key_invalid.json", 401, 502, False, "INVALID_ARGUMENT", None),
        (404, "error_not_found.json", 404, 404, False, "NOT_FOUND", None),
    ],
)
def test_google_errors(
    status: int, name: str, upstream: int, http: int, retryable: bool, code: str, retry_after: float | None
) -> None:
    error = status_error(status, (FIXTURES / name).read_bytes())
    assert (error.upstream_status, error.http_status, error.retryable) == (upstream, http, retryable)
    assert (error.code, error.retry_after) == (code, retry_after)
    assert error.message == load(name)["error"]["message"]


def test_error_retry_delays_and_bodies_that_are_not_google_json() -> None:
    body = b'[{"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED", "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.5s"}]}}]'
    assert status_error(429, body).retry_after == 2.5
    assert status_error(429, body, "9").retry_after == 9.0  # a Retry-After header wins
    plain = status_error(502, b"<html>Bad Gateway</html>")
    assert (plain.message, plain.code, plain.retryable) == ("<html>Bad Gateway</html>", None, True)
    assert status_error(500, b"").message == "upstream returned HTTP 500"


# -------------------------------------------------------------------------------------- embeddings


def test_embedding_requests() -> None:
    assert embed_requests({"input": "hello", "dimensions": 8}, "gemini-embedding-001") == (
        "embedContent",
        [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "hello"}]},
                "outputDimensionality": 8,
            }
        ],
    )
    method, payloads = embed_requests({"input": [f"t{i}" for i in range(250)]}, "models/gemini-embedding-001")
    assert method == "batchEmbedContents" and [len(p["requests"]) for p in payloads] == [100, 100, 50]
    assert payloads[2]["requests"][-1] == {
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "t249"}]},
    }
    for tokens in ([1, 2, 3], [[1, 2], [3]]):
        with pytest.raises(InvalidRequest) as info:
            embed_requests({"input": tokens}, "m")
        assert info.value.param == "input"


def test_embedding_responses_float_and_base64() -> None:
    single = embedding_vectors("embedContent", [load("embed_content.json")])
    assert single == [load("embed_content.json")["embedding"]["values"]]
    vectors = embedding_vectors("batchEmbedContents", [load("batch_embed_contents.json")])
    body = {"input": ["first text", "second"], "encoding_format": "float"}
    out, usage = embeddings_to_openai(body, vectors, model="gemini-embedding-001")
    assert out["object"] == "list" and out["model"] == "gemini-embedding-001"
    assert [(d["object"], d["index"], d["embedding"]) for d in out["data"]] == [
        ("embedding", 0, vectors[0]),
        ("embedding", 1, vectors[1]),
    ]
    assert usage == Usage(prompt_tokens=3, estimated=True) and out["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    encoded, _ = embeddings_to_openai({**body, "encoding_format": "base64"}, vectors, model="m")
    decoded = struct.unpack("<4f", base64.b64decode(encoded["data"][1]["embedding"]))
    assert decoded == pytest.approx(vectors[1], rel=1e-6)


@pytest.mark.parametrize(
    ("responses", "problem"),
    [
        ([{"embeddings": [{"values": [0.1]}]}], "1 embeddings for 2 inputs"),
        ([{"embeddings": [{"values": [0.1]}, {}]}], "without values"),
        ([{"error": "nope"}], "without values"),
    ],
)
def test_broken_embedding_responses(responses: list[Any], problem: str) -> None:
    with pytest.raises(UpstreamProtocolError) as info:
        embeddings_to_openai({"input": ["a", "b"]}, embedding_vectors("batchEmbedContents", responses), model="m")
    assert problem in info.value.message


# ------------------------------------------------------------------------------------------ streams


def run_stream(data: bytes, cuts: list[int] | None = None, **options: Any) -> tuple[list[dict[str, Any]], str]:
    """Feed `data` split at `cuts` through the SSE decoder and a translator as the provider does:
    (chunks, how it ended)."""
    points = sorted(set(cuts or []))
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    decoder = SSEDecoder()
    translator = GeminiStreamTranslator(
        model=MODEL, request_id=RID, created=CREATED, **{"include_usage": True, **options}
    )
    chunks: list[dict[str, Any]] = []
    try:
        for piece in [*pieces, None]:
            for event in decoder.feed(piece) if piece is not None else decoder.flush():
                chunks.extend(translator.feed(parse_event(event)))
        chunks.extend(translator.end())
    except UpstreamError as exc:
        return chunks, f"{type(exc).__name__}({exc.code}): {exc.message}"
    return chunks, "complete"


def sse(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


ENVELOPE = {"id": "chatcmpl-req-1", "object": "chat.completion.chunk", "created": CREATED, "model": MODEL}


def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {**ENVELOPE, "choices": [choice], "usage": None}


def test_text_stream_chunks() -> None:
    assert run_stream(sse("stream_text.sse")) == (
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "The"}),
            chunk({"content": " capital of Wyoming"}),
            chunk({"content": " is **Cheyenne**.\n"}),
            chunk({}, "stop"),
            {
                **ENVELOPE,
                "choices": [],
                "usage": {
                    "prompt_tokens": 7,
                    "completion_tokens": 10,
                    "total_tokens": 17,
                    "prompt_tokens_details": {"cached_tokens": 0},
                    "completion_tokens_details": {"reasoning_tokens": 0},
                },
            },
        ],
        "complete",
    )


def test_function_call_stream() -> None:
    chunks, ended = run_stream(sse("stream_function_call.sse"))
    assert ended == "complete"
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert all("content" not in d for d in deltas[1:])  # thought summaries are not streamed as the answer
    [call] = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert (call["index"], call["id"], call["type"], call["function"]) == (
        0,
        "call_0",
        "function",
        {"name": "now", "arguments": "{}"},
    )
    assert call["extra_content"]["google"]["thought_signature"].startswith("CiIBVKhc7vB+")
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] == 6 + 168
    assert chunks[-1]["usage"]["completion_tokens_details"] == {"reasoning_tokens": 168}


@pytest.mark.parametrize(
    ("name", "text", "finish"),
    [
        ("stream_recitation.sse", "text1text2text3text4text5text6text7text8", "content_filter"),
        ("stream_empty_parts.sse", "Here's a cute cartoon kitten playing with a ball of yarn for you! ", "stop"),
        ("stream_prompt_blocked.sse", "", "content_filter"),
        (
            "stream_no_content_parts.sse",
            "I will generate a 3D rendering of a whimsical scene featuring a pink pig wearing a distinguished grey top hat"
            " and large, feathery white wings soaring through the air. Below, a vibrant, clean, and modern futuristic city"
            " will be visible, characterized by sleek, rounded buildings, elevated walkways, and an abundance of lush green"
            " trees and parks integrated throughout the cityscape under a bright, slightly cloudy sky.\n\n",
            "stop",
        ),
    ],
)
def test_streams_that_end_in_a_filter_or_without_text(name: str, text: str, finish: str) -> None:
    chunks, ended = run_stream(sse(name))
    assert ended == "complete"
    assert chunks[0] == chunk({"role": "assistant", "content": ""})
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == text
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == finish


def test_stream_without_usage_requested_keeps_usage_aside() -> None:
    decoder = SSEDecoder()
    translator = GeminiStreamTranslator(model=MODEL, request_id=RID, created=CREATED, include_usage=False)
    chunks = [c for event in decoder.feed(sse("stream_text.sse")) for c in translator.feed(parse_event(event))]
    assert translator.end() == []
    assert all("usage" not in c and c["choices"] for c in chunks)
    assert translator.usage == Usage(prompt_tokens=7, completion_tokens=10)


def test_stream_cut_between_events_is_a_protocol_error() -> None:
    data = sse("stream_text.sse")
    chunks, ended = run_stream(data[: data.index(b'data: {"candidates": [{"content": {"parts": [{"text": " is')])
    assert [c["choices"][0]["delta"].get("content") for c in chunks][1:] == ["The", " capital of Wyoming"]
    assert ended == "UpstreamProtocolError(upstream_protocol_error): upstream stream ended before a finishReason"


def test_error_event_raises_with_googles_message() -> None:
    data = sse("stream_text.sse").split(b"\n\n")[0] + b"\n\n"
    data += b'data: {"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}\n\n'
    chunks, ended = run_stream(data)
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", "The"]
    assert (
        ended == "UpstreamError(UNAVAILABLE): upstream stream error: The model is overloaded. Please try again later."
    )


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "ended before any candidate"),
        (b'data: {"candidates": [{"content": \n\n', "not JSON"),
        (b"data: [1, 2]\n\n", "not a JSON object"),
    ],
)
def test_broken_streams(data: bytes, problem: str) -> None:
    chunks, ended = run_stream(data)
    assert chunks == [] and ended.startswith("UpstreamProtocolError") and problem in ended


def test_two_candidates_stream_as_two_choices() -> None:
    def event(*candidates: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps({"candidates": list(candidates)}) + b"\n\n"

    first = event(
        {"index": 0, "content": {"parts": [{"text": "A"}]}}, {"index": 1, "content": {"parts": [{"text": "B"}]}}
    )
    chunks, ended = run_stream(first + event({"index": 1, "finishReason": "MAX_TOKENS"}))
    assert ended.endswith("ended before a finishReason")  # candidate 0 never finished
    assert [(c["choices"][0]["index"], c["choices"][0]["finish_reason"]) for c in chunks][-1] == (1, "length")
    chunks, ended = run_stream(
        first + event({"index": 1, "finishReason": "MAX_TOKENS"}, {"index": 0, "finishReason": "STOP"})
    )
    assert ended == "complete" and {c["choices"][0]["index"] for c in chunks if c["choices"]} == {0, 1}


STREAMS = {
    name: sse(name)
    for name in (
        "stream_text.sse",
        "stream_function_call.sse",
        "stream_recitation.sse",
        "stream_empty_parts.sse",
        "stream_prompt_blocked.sse",
        "stream_no_content_parts.sse",
    )
}
WHOLE = {name: run_stream(data) for name, data in STREAMS.items()}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(STREAMS)), st.lists(st.integers(min_value=0, max_value=3300), max_size=20))
def test_any_byte_split_gives_identical_chunks(name: str, cuts: list[int]) -> None:
    data = STREAMS[name]
    assert WHOLE[name][1] == "complete"
    assert run_stream(data, [c % (len(data) + 1) for c in cuts]) == WHOLE[name]
